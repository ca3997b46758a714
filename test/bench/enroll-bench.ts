/**
 * Time for one enrollment against swtpm: EK certificate check, AK check, MakeCredential,
 * activation in the TPM and the controller's checks, end to end over gRPC and JetStream.
 */
import { fileURLToPath } from 'node:url';
import { TestFleet } from '../helpers/fleet.js';
import { makeTempDir, removeDir } from '../helpers/swtpm.js';
import { printResults, type BenchResult } from './result.js';

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

/** First enrollment (AK created) once, then repeated enrollments of the same host (AK persisted). */
export async function benchEnroll(trials = 15): Promise<BenchResult[]> {
  const root = await makeTempDir('bench-enroll');
  const fleet = await TestFleet.create({ root });
  try {
    await fleet.startController();
    const node = await fleet.addNode('bench-node');
    const t0 = performance.now();
    await node.agent.enroll();
    const first = performance.now() - t0;
    const times: number[] = [];
    for (let i = 0; i < trials; i++) {
      const s = performance.now();
      await node.agent.enroll();
      times.push(performance.now() - s);
    }
    times.sort((a, b) => a - b);
    return [
      { name: 'first enrollment (creates and persists the AK)', value: first, unit: 'ms' },
      { name: `enrollment, AK persisted (p50 of ${trials})`, value: percentile(times, 50), unit: 'ms' },
      { name: `enrollment, AK persisted (p99 of ${trials})`, value: percentile(times, 99), unit: 'ms' },
    ];
  } finally {
    await fleet.stop();
    await removeDir(root);
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  printResults(await benchEnroll());
}
