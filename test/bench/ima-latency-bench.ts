/**
 * Detection latency of an unknown binary: from appending its IMA entry (and extending
 * PCR 10) on a host to the controller's trust event turning the node untrusted, over
 * repeated trials against the real stack (swtpm, agent, nats-server, controller). The
 * agent's timer is 30 s, so what is measured is the push on growth. Each trial is a fresh
 * host (its own swtpm and agent), since what ran in a boot keeps the node untrusted for
 * that boot.
 */
import { randomBytes } from 'node:crypto';
import { appendFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildRuntimePolicy, formatRuntimePolicy } from '../../lib/ima/index.js';
import { createLogger } from '../../daemon/index.js';
import { TestFleet } from '../helpers/fleet.js';
import { bootAggregateOf, ImaLogBuilder } from '../helpers/ima-builder.js';
import { makeTempDir, removeDir } from '../helpers/swtpm.js';
import { printResults, type BenchResult } from './result.js';

const ALLOWED = ['/usr/bin/ls', '/usr/bin/cat', '/usr/bin/env'];

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
}

export async function benchImaLatency(trials = 20): Promise<BenchResult[]> {
  const root = await makeTempDir('bench-ima');
  const fleet = await TestFleet.create({
    root,
    controller: { intervalMs: 30_000, pullIntervalMs: 30_000, staleAfterMs: 120_000, nonceTtlMs: 30_000 },
    ...(process.env['BULWARK_BENCH_LOG'] === '1' ? { logger: createLogger({ name: 'bench', level: 'debug', destination: process.stderr }) } : {}),
  });
  try {
    await fleet.startController();
    const client = fleet.client();
    const measured = new ImaLogBuilder();
    const policy = buildRuntimePolicy(
      ALLOWED.map((p) => {
        const e = measured.realFile(p);
        return { path: e.path, digest: { algorithm: 'sha256', value: e.digest } };
      }),
      { generatedAt: new Date().toISOString(), generator: 'bench' },
    );
    await client.putPolicy('runtime', 'bench', await fleet.signed('runtime', JSON.stringify(formatRuntimePolicy(policy))));
    await client.assignPolicy('runtime', 'bench', null);

    const untrustedAt = new Map<string, number>();
    const abort = new AbortController();
    let ready: () => void = () => undefined;
    const subscribed = new Promise<void>((r) => (ready = r));
    const watching = client.watchTrust(
      '',
      (e) => {
        if (e.state === 'untrusted' && !untrustedAt.has(e.nodeId)) untrustedAt.set(e.nodeId, performance.now());
      },
      abort.signal,
      () => ready(),
    );
    await subscribed;

    const latencies: number[] = [];
    for (let i = 0; i < trials; i++) {
      // Each trial is a fresh host (its own swtpm and agent): what ran in a boot keeps a node
      // untrusted for that boot, and nothing else touches this TPM while its agent runs.
      const id = `bench-ima-${i}`;
      const logPath = join(root, `${id}.ascii`);
      const node = await fleet.addNode(id, { imaLogPath: logPath, imaFormat: 'ascii' });
      const builder = new ImaLogBuilder();
      builder.bootAggregate(await bootAggregateOf(node.tpm));
      for (const p of ALLOWED) builder.realFile(p);
      for (const e of builder.entries) await node.swtpm.extendPcr(10, builder.extendValue(e, 'sha256').toString('hex'));
      await writeFile(logPath, builder.ascii());
      await node.agent.start();
      await fleet.waitForNode(id, (n) => n.state === 'trusted');

      const before = builder.entries.length;
      const evil = builder.file('/usr/local/bin/unknown', { digest: randomBytes(32) });
      const start = performance.now();
      // The kernel's order: the entry joins the list, then PCR 10 is extended.
      await appendFile(logPath, builder.ascii(before));
      await node.swtpm.extendPcr(10, builder.extendValue(evil, 'sha256').toString('hex'));
      const deadline = Date.now() + 10_000;
      while (!untrustedAt.has(id) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 2));
      const at = untrustedAt.get(id);
      if (at === undefined) throw new Error(`trial ${i}: the unknown entry was not detected within 10 s`);
      latencies.push(at - start);
      await node.agent.stop();
      await node.tpm.close();
      await node.swtpm.stop();
      fleet.nodes.delete(id);
    }
    abort.abort();
    await watching;
    client.close();
    latencies.sort((a, b) => a - b);
    return [
      { name: `IMA detection latency p50 (${trials} trials, 30 s timer)`, value: percentile(latencies, 50), unit: 'ms' },
      { name: `IMA detection latency p99 (${trials} trials, 30 s timer)`, value: percentile(latencies, 99), unit: 'ms', target: '< 1000 ms' },
    ];
  } finally {
    await fleet.stop();
    await removeDir(root);
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  printResults(await benchImaLatency());
}
