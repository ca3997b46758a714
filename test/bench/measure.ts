/**
 * Rates for the benchmarks: operations per second of a function, and a candidate measured
 * against its baseline in interleaved rounds (medians), so a load that comes and goes hits
 * both sides alike. Test code.
 */

/** Wall time in milliseconds. */
export const wallMs = (): number => performance.now();

/** CPU time of this process in milliseconds: on a shared, loaded machine, time spent descheduled is not counted against either side. */
export function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

export interface MeasureOptions {
  /** Calls between two clock reads. Default 1. */
  readonly batch?: number;
  /** Default wall time. */
  readonly clock?: () => number;
  readonly warmupMs?: number;
  readonly measureMs?: number;
  readonly rounds?: number;
}

export interface PairRates {
  readonly base: number;
  readonly cand: number;
  /** Median of the per-round ratios cand / base. */
  readonly ratio: number;
}

export function median(xs: readonly number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

/** Operations per second of `op` over about `ms` milliseconds of `clock`, timed in batches. */
export function opsPerSecond(op: () => void, ms: number, options: MeasureOptions = {}): number {
  const batch = options.batch ?? 1;
  const clock = options.clock ?? wallMs;
  let count = 0;
  const start = clock();
  let now = start;
  while (now - start < ms) {
    for (let i = 0; i < batch; i++) op();
    count += batch;
    now = clock();
  }
  return (count * 1000) / (now - start);
}

/** The same for an operation that returns a promise (awaited one after another). */
export async function opsPerSecondAsync(op: () => Promise<unknown> | unknown, ms: number, options: MeasureOptions = {}): Promise<number> {
  const batch = options.batch ?? 1;
  const clock = options.clock ?? wallMs;
  let count = 0;
  const start = clock();
  let now = start;
  while (now - start < ms) {
    for (let i = 0; i < batch; i++) await op();
    count += batch;
    now = clock();
  }
  return (count * 1000) / (now - start);
}

function settings(options: MeasureOptions): { warmupMs: number; roundMs: number; rounds: number } {
  const rounds = options.rounds ?? 10;
  return { warmupMs: options.warmupMs ?? 300, roundMs: (options.measureMs ?? 1500) / rounds, rounds };
}

/** Interleaved measurement of a baseline and a candidate: median rates and median paired ratio. */
export function measurePair(baseline: () => void, candidate: () => void, options: MeasureOptions = {}): PairRates {
  const { warmupMs, roundMs, rounds } = settings(options);
  opsPerSecond(baseline, warmupMs, options);
  opsPerSecond(candidate, warmupMs, options);
  const base: number[] = [];
  const cand: number[] = [];
  const ratios: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const b = opsPerSecond(baseline, roundMs, options);
    const c = opsPerSecond(candidate, roundMs, options);
    base.push(b);
    cand.push(c);
    ratios.push(c / b);
  }
  return { base: median(base), cand: median(cand), ratio: median(ratios) };
}

/** measurePair for operations that return promises. */
export async function measurePairAsync(baseline: () => Promise<unknown> | unknown, candidate: () => Promise<unknown> | unknown, options: MeasureOptions = {}): Promise<PairRates> {
  const { warmupMs, roundMs, rounds } = settings(options);
  await opsPerSecondAsync(baseline, warmupMs, options);
  await opsPerSecondAsync(candidate, warmupMs, options);
  const base: number[] = [];
  const cand: number[] = [];
  const ratios: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const b = await opsPerSecondAsync(baseline, roundMs, options);
    const c = await opsPerSecondAsync(candidate, roundMs, options);
    base.push(b);
    cand.push(c);
    ratios.push(c / b);
  }
  return { base: median(base), cand: median(cand), ratio: median(ratios) };
}
