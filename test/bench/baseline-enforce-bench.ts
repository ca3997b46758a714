/**
 * Enforcement latency on the agent: from a rule accepting tcp 8080 committed into
 * `inet bulwark` in a network namespace (`nft -f` returned) to the agent's corrected table
 * committed (the report after enforcement written and extended into the PCR), over
 * repeated trials, with the agent's own path: nft monitor → triggered round → read, judge,
 * `nft -c`, `nft -f`, re-read, two reports extended into swtpm. After each trial a real
 * connection attempt checks that 8080 is closed again (not timed).
 */
import { createPublicKey, randomUUID } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { BaselineSource, Nftables } from '../../agent/baseline/index.js';
import { Tpm2ToolsTpm } from '../../agent/tpm2-tools-tpm.js';
import { silentLogger } from '../../daemon/index.js';
import { DEFAULT_BASELINE, decodeReport } from '../../lib/baseline/index.js';
import { trustedKeySet } from '../../lib/dsse/index.js';
import { EMPTY_REPLY_STATE } from '../../proto/index.js';
import { signPolicy, testKey } from '../helpers/signing.js';
import { NetnsHost, nftMonitorSubscribed } from '../helpers/netns.js';
import { writeSelinuxTree } from '../helpers/selinux-tree.js';
import { makeTempDir, removeDir, startTestTpms } from '../helpers/swtpm.js';
import { waitFor, waitUntil } from '../helpers/wait.js';
import type { BenchResult } from './result.js';

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
}

export async function benchBaselineEnforce(trials = 20): Promise<BenchResult[]> {
  const root = await makeTempDir('bench-baseline');
  const fleet = await startTestTpms(join(root, 'tpms'), 1);
  const host = await NetnsHost.create({ ports: [22, 8080] });
  const sw = fleet.tpms[0];
  if (sw === undefined) throw new Error('swtpm did not start');
  await mkdir(join(root, 'work'));
  const tpm = await Tpm2ToolsTpm.open({ tcti: sw.tcti, toolTimeoutMs: 20_000, akAlg: 'rsa', workRoot: join(root, 'work') });
  const tree = join(root, 'selinux');
  await writeSelinuxTree(tree);
  const bootId = randomUUID();
  // The agent enforces only a baseline envelope it verified with baselineKeys.
  const key = testKey('baseline-1');
  const baselineKeys = trustedKeySet([createPublicKey(key.publicKeyPem)]);
  const source = new BaselineSource({ tpm, nft: new Nftables({ command: host.nftCommand }), selinuxRoot: tree, dataDir: join(root, 'data'), pcr: 13, bootId: async () => bootId, log: silentLogger(), baselineKeys });
  try {
    const envelope = await signPolicy('baseline', { ...DEFAULT_BASELINE, mode: 'enforce' }, [key]);
    source.acknowledge({ verdict: 'trusted', findings: [], ...EMPTY_REPLY_STATE, baseline: new TextEncoder().encode(envelope) }, {});
    // Rounds serialized as the agent serializes them: one running, at most one waiting.
    let chain: Promise<void> = Promise.resolve();
    let waiting = false;
    const round = (): void => {
      if (waiting) return;
      waiting = true;
      chain = chain.then(async () => {
        waiting = false;
        await source.prepare({ nodeId: 'bench' });
      });
    };
    round();
    await chain;
    source.start(round);
    const pid = await waitFor('nft monitor', () => source.nftMonitor?.pid, 10_000);
    await waitUntil('nft monitor subscribed', () => nftMonitorSubscribed(pid), 10_000);
    const ms: number[] = [];
    for (let i = 0; i < trials; i++) {
      const enforced = source.reports.filter((r) => decodeReport(r).enforcement.length > 0).length;
      await host.nft('add rule inet bulwark input tcp dport 8080 accept\n');
      const started = performance.now();
      await waitFor(
        'the corrected report',
        () => (source.reports.filter((r) => decodeReport(r).enforcement.length > 0).length > enforced ? true : undefined),
        30_000,
        2,
      );
      ms.push(performance.now() - started);
      if ((await host.connect(8080)) !== 'timeout') throw new Error(`trial ${i}: 8080 is still open after enforcement`);
    }
    ms.sort((a, b) => a - b);
    return [
      { name: 'rule added -> table corrected, p50', value: percentile(ms, 50), unit: 'ms', target: 'p99 < 1000 ms' },
      { name: 'rule added -> table corrected, p99', value: percentile(ms, 99), unit: 'ms', target: 'p99 < 1000 ms' },
    ];
  } finally {
    await source.stop();
    await tpm.close();
    await host.close();
    await fleet.stop();
    await removeDir(root);
  }
}
