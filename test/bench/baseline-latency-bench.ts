/**
 * Host baseline latency through the whole stack (agent with its nft monitor, swtpm,
 * nats-server, controller), on hosts in network namespaces: from a rule accepting tcp
 * 8080 added to `inet bulwark` to the controller's trust event turning the node untrusted
 * (report mode), and in enforce mode to the port being closed again (the table read back
 * without the rule; a real connection attempt then checks that 8080 times out, not timed).
 * Timers are 30 s, so what is measured is the round nft monitor triggers. Each interval
 * starts before `nft` is run (so it includes starting nft in the namespace: an upper bound).
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createLogger } from '../../daemon/index.js';
import { DEFAULT_BASELINE, renderBulwarkTable, type Baseline } from '../../lib/baseline/index.js';
import { TestFleet, type TestNode } from '../helpers/fleet.js';
import { NetnsHost } from '../helpers/netns.js';
import { writeSelinuxTree } from '../helpers/selinux-tree.js';
import { makeTempDir, removeDir } from '../helpers/swtpm.js';
import { waitFor } from '../helpers/wait.js';
import { printResults, type BenchResult } from './result.js';

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
}

const DRIFT = 'add rule inet bulwark input tcp dport 8080 accept\n';

export async function benchBaselineLatency(trials = 20): Promise<BenchResult[]> {
  const root = await makeTempDir('bench-baseline-latency');
  const fleet = await TestFleet.create({
    root,
    requireBaseline: true,
    controller: { intervalMs: 30_000, pullIntervalMs: 30_000, staleAfterMs: 120_000, nonceTtlMs: 30_000 },
    ...(process.env['BULWARK_BENCH_LOG'] === '1' ? { logger: createLogger({ name: 'bench', level: 'debug', destination: process.stderr }) } : {}),
  });
  const hosts: NetnsHost[] = [];
  try {
    await fleet.startController();
    const client = fleet.client();
    const nft = DEFAULT_BASELINE.nftables;
    if (nft === null) throw new Error('the default baseline has no nftables part');
    const table = renderBulwarkTable(nft);
    for (const mode of ['report', 'enforce'] as const) {
      const baseline: Baseline = { ...DEFAULT_BASELINE, name: `bench-${mode}`, mode };
      await client.putPolicy('baseline', baseline.name, JSON.stringify(baseline));
    }
    await client.assignPolicy('baseline', 'bench-report', null);
    await client.assignPolicy('baseline', 'bench-enforce', 'bench-enforced');

    const addHost = async (nodeId: string): Promise<{ node: TestNode; host: NetnsHost }> => {
      const host = await NetnsHost.create({ ports: [22, 8080] });
      hosts.push(host);
      await host.nft(table);
      const tree = join(root, `${nodeId}-selinux`);
      await writeSelinuxTree(tree);
      const node = await fleet.addNode(nodeId, { baseline: { nftCommand: host.nftCommand, selinuxRoot: tree } });
      await node.agent.start();
      await fleet.waitForNode(nodeId, (n) => n.state === 'trusted', 60_000);
      await fleet.waitForNftMonitor(nodeId);
      return { node, host };
    };
    const reported = await addHost('bench-reported');
    const enforced = await addHost('bench-enforced');

    const untrustedAt: Array<{ nodeId: string; at: number }> = [];
    const abort = new AbortController();
    let ready: () => void = () => undefined;
    const subscribed = new Promise<void>((r) => (ready = r));
    const watching = client.watchTrust('', (e) => {
      if (e.state === 'untrusted') untrustedAt.push({ nodeId: e.nodeId, at: performance.now() });
    }, abort.signal, () => ready());
    await subscribed;

    const toUntrusted: number[] = [];
    for (let i = 0; i < trials; i++) {
      const { node, host } = reported;
      // Every round asked for so far is done: the drift is seen by the round it triggers.
      await node.agent.attestNow();
      const start = performance.now();
      await host.nft(DRIFT);
      const event = await waitFor(
        `trial ${i}: node untrusted`,
        () => untrustedAt.find((e) => e.nodeId === node.nodeId && e.at > start),
        10_000,
        2,
      );
      toUntrusted.push(event.at - start);
      await host.nft(table);
      await fleet.waitForNode(node.nodeId, (n) => n.state === 'trusted');
    }

    const toClosed: number[] = [];
    for (let i = 0; i < trials; i++) {
      const { node, host } = enforced;
      await node.agent.attestNow();
      const start = performance.now();
      await host.nft(DRIFT);
      await waitFor(
        `trial ${i}: the rule removed`,
        async () => ((await host.run(['nft', 'list', 'chain', 'inet', 'bulwark', 'input'])).includes('8080') ? undefined : true),
        10_000,
        1,
      );
      toClosed.push(performance.now() - start);
      if ((await host.connect(8080)) !== 'timeout') throw new Error(`trial ${i}: 8080 is still open after enforcement`);
      await fleet.waitForNode(node.nodeId, (n) => n.state === 'trusted');
    }
    abort.abort();
    await watching.catch(() => undefined);
    client.close();
    toUntrusted.sort((a, b) => a - b);
    toClosed.sort((a, b) => a - b);
    return [
      { name: `rule accepting 8080 added -> node untrusted, report mode, p50 (${trials} trials)`, value: percentile(toUntrusted, 50), unit: 'ms' },
      { name: `rule accepting 8080 added -> node untrusted, report mode, p99 (${trials} trials)`, value: percentile(toUntrusted, 99), unit: 'ms', target: '< 1000 ms' },
      { name: `rule accepting 8080 added -> rule gone from inet bulwark, enforce mode, p50 (${trials} trials)`, value: percentile(toClosed, 50), unit: 'ms' },
      { name: `rule accepting 8080 added -> rule gone from inet bulwark, enforce mode, p99 (${trials} trials)`, value: percentile(toClosed, 99), unit: 'ms', target: '< 1000 ms' },
    ];
  } finally {
    await fleet.stop();
    for (const h of hosts) await h.close();
    await removeDir(root);
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  printResults(await benchBaselineLatency());
}
