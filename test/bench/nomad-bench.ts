/**
 * How fast the Nomad gate enforces a verdict, against a real Nomad (one server, three clients)
 * and real trust state (JetStream KV): from the moment a node's record turns untrusted to
 * Nomad reporting the node ineligible (seen on Nomad's own event stream), and to its last
 * allocation being stopped (client status no longer pending/running). Repeated trials on the
 * node that runs the most allocations of a three-instance app; p50/p99 reported.
 * Target: p99 < 1 s to ineligible.
 *
 *   npx tsc -p . && node dist/test/bench/nomad-bench.js
 */
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { injectTrustConstraint } from '../../lib/nomad/trust-constraint.js';
import { isLiveAllocation } from '../../lib/nomad/jobs.js';
import { ensureNomadBinary, nomadUnavailableReason } from '../helpers/nomad.js';
import { NomadTestbed } from '../helpers/nomad-testbed.js';
import { makeTempDir } from '../helpers/swtpm.js';
import { waitFor } from '../helpers/wait.js';
import { printResults, type BenchResult } from './result.js';

const here = dirname(fileURLToPath(import.meta.url));
const appsDir = join(here, '..', '..', '..', 'test', 'fixtures', 'apps');

const TRIALS = Number(process.env['BULWARK_NOMAD_BENCH_TRIALS'] ?? 15);

function percentile(xs: readonly number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)] ?? Number.NaN;
}

/** Runs the trials; an empty list (with the reason on stderr) when no Nomad binary can be built. */
export async function benchNomad(): Promise<BenchResult[]> {
  if ((await ensureNomadBinary()) === null) {
    process.stderr.write(`nomad bench skipped: ${nomadUnavailableReason() ?? 'no Nomad binary'}\n`);
    return [];
  }
  const nodes = ['node-a', 'node-b', 'node-c'];
  const bed = await NomadTestbed.start(await makeTempDir('nomad-bench'), nodes);
  try {
    for (const id of nodes) await bed.setTrust(id, 'trusted');
    bed.startReconciler('bench');
    const nomad = bed.nomad;
    for (const id of nodes) {
      await waitFor(`${id} labelled`, async () => ((await bed.node(id)).meta['bulwark_trusted'] === 'true' ? true : undefined), 30_000, 200);
    }
    const parsed = await nomad.parseJobHcl(await readFile(join(appsDir, 'nextcloud.raw.nomad.hcl'), 'utf8'));
    await nomad.registerJob(injectTrustConstraint(parsed.json));
    const liveByNode = async (): Promise<Map<string, number>> => {
      const m = new Map<string, number>(nodes.map((n) => [n, 0]));
      for (const a of await nomad.jobAllocations('nextcloud')) {
        if (a.desiredStatus === 'run' && a.clientStatus === 'running') m.set(a.nodeName, (m.get(a.nodeName) ?? 0) + 1);
      }
      return m;
    };
    await waitFor('three running allocations', async () => ([...(await liveByNode()).values()].reduce((x, y) => x + y, 0) === 3 ? true : undefined), 30_000, 100);

    const toIneligible: number[] = [];
    const toStopped: number[] = [];
    for (let trial = 0; trial < TRIALS; trial++) {
      const counts = await liveByNode();
      const victim = [...counts.entries()].sort((a, b) => b[1] - a[1])[0]?.[0] ?? 'node-a';
      const firstEvent = bed.events.length;
      const t0 = performance.now();
      await bed.setTrust(victim, 'untrusted');
      const stoppedAt = await waitFor(
        `${victim}'s allocations stopped`,
        async () => ((await nomad.jobAllocations('nextcloud')).some((a) => a.nodeName === victim && isLiveAllocation(a)) ? undefined : performance.now()),
        30_000,
        10,
      );
      const gated = await waitFor(`${victim} ineligible on the event stream`, () => bed.events.slice(firstEvent).find((e) => e.name === victim && e.eligibility === 'ineligible'), 10_000, 10);
      toIneligible.push(gated.at - t0);
      toStopped.push(stoppedAt - t0);
      // Back to trusted, and wait until the app runs three instances again before the next trial.
      await bed.setTrust(victim, 'trusted');
      await waitFor(`${victim} eligible`, async () => ((await bed.node(victim)).eligibility === 'eligible' ? true : undefined), 10_000, 20);
      await waitFor('three running allocations', async () => ([...(await liveByNode()).values()].reduce((x, y) => x + y, 0) === 3 ? true : undefined), 30_000, 50);
      process.stderr.write(`trial ${trial + 1}/${TRIALS}: ${victim} ineligible after ${Math.round(gated.at - t0)} ms, allocations stopped after ${Math.round(stoppedAt - t0)} ms\n`);
    }
    return [
      { name: `nomad: untrusted → ineligible p50 (${TRIALS} trials)`, value: percentile(toIneligible, 50), unit: 'ms' },
      { name: `nomad: untrusted → ineligible p99 (${TRIALS} trials)`, value: percentile(toIneligible, 99), unit: 'ms', target: '< 1000 ms' },
      { name: `nomad: untrusted → last allocation stopped p50`, value: percentile(toStopped, 50), unit: 'ms' },
      { name: `nomad: untrusted → last allocation stopped p99`, value: percentile(toStopped, 99), unit: 'ms' },
    ];
  } finally {
    await bed.stop();
  }
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  printResults(await benchNomad());
}
