/**
 * Hostile-bytes property testing: a seeded PRNG, mutations of real captured bytes (every
 * prefix, bit flips, inflated sizes and DER lengths, splices, noise), and a probe that
 * accepts only a return or a BulwarkError with a known code. BULWARK_FUZZ_SEED=<n> reruns a
 * seed; every failure message names the seed, the mutation and the input.
 */
import type { Test } from 'tap';
import { performance } from 'node:perf_hooks';
import { toHex } from '../../lib/bytes.js';
import { BulwarkError, isErrorCode } from '../../lib/errors.js';

export const SEED = (() => {
  const env = process.env['BULWARK_FUZZ_SEED'];
  const parsed = env === undefined ? Number.NaN : Number(env);
  return Number.isSafeInteger(parsed) ? parsed >>> 0 : 0x5eedb01d;
})();

/** mulberry32: a small, fast, seedable PRNG (not for cryptography). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

export type Mutation = readonly [label: string, bytes: Uint8Array];

/** Every prefix, bit flips (all, or `flipSamples` random ones), random byte sets, inflated sizes, splices and noise. */
export function* mutations(
  seed: Uint8Array,
  rnd: () => number,
  opts: { flipSamples?: number; randomCount: number; derLengths?: boolean; sizes?: readonly number[] },
): Generator<Mutation> {
  const int = (n: number): number => Math.floor(rnd() * n);
  for (let n = 0; n < seed.length; n++) yield [`truncate ${n}`, seed.subarray(0, n)];
  const bits = seed.length * 8;
  const flips = opts.flipSamples === undefined ? bits : Math.min(bits, opts.flipSamples);
  for (let i = 0; i < flips; i++) {
    const bit = opts.flipSamples === undefined ? i : int(bits);
    const b = seed.slice();
    b[bit >> 3] = (b[bit >> 3] ?? 0) ^ (1 << (bit & 7));
    yield [`flip bit ${bit}`, b];
  }
  // A u16 (TPM2B size) or u32 overwritten with values at and just over every cap.
  for (let at = 0; at + 1 < seed.length; at++) {
    for (const v of opts.sizes ?? [0xffff, 0x8000, 0x0401, 0x0201, 0x0041]) {
      const b = seed.slice();
      b[at] = v >> 8;
      b[at + 1] = v & 0xff;
      yield [`u16 ${v.toString(16)} at ${at}`, b];
    }
  }
  if (opts.derLengths === true) {
    // A DER long-form length of up to 4 octets, huge or just past the end.
    for (let at = 1; at + 4 < seed.length; at++) {
      for (const len of [Uint8Array.of(0x84, 0x7f, 0xff, 0xff, 0xff), Uint8Array.of(0x80)]) {
        const b = seed.slice();
        b.set(len, at);
        yield [`DER length ${toHex(len)} at ${at}`, b];
      }
    }
  }
  for (let i = 0; i < opts.randomCount; i++) {
    const b = seed.slice();
    const k = 1 + int(6);
    for (let j = 0; j < k; j++) b[int(b.length)] = int(256);
    yield [`set ${k} random bytes #${i}`, b];
    const at = int(seed.length + 1);
    const cut = int(16);
    const insert = Uint8Array.from({ length: int(16) }, () => int(256));
    yield [`splice at ${at} -${cut} +${insert.length} #${i}`, Uint8Array.of(...seed.subarray(0, at), ...insert, ...seed.subarray(Math.min(seed.length, at + cut)))];
    yield [`noise #${i}`, Uint8Array.from({ length: int(seed.length + 64) }, () => int(256))];
  }
  yield ['seed plus trailing bytes', Uint8Array.of(...seed, 0, 0xff)];
}

export interface Stats {
  calls: number;
  returned: number;
  threw: number;
  maxMs: number;
  readonly failures: string[];
}

export function newStats(): Stats {
  return { calls: 0, returned: 0, threw: 0, maxMs: 0, failures: [] };
}

/** Runs one call: it must return, or throw a BulwarkError whose code is one of ERROR_CODES. */
export function probe(stats: Stats, target: string, label: string, input: Uint8Array, fn: () => void): void {
  const start = performance.now();
  stats.calls += 1;
  try {
    fn();
    stats.returned += 1;
  } catch (err) {
    stats.threw += 1;
    if (!(err instanceof BulwarkError) || !isErrorCode(err.code)) {
      const what = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
      stats.failures.push(`seed ${SEED} ${target} [${label}] threw ${what}; input ${toHex(input.subarray(0, 400))}`);
    }
  } finally {
    stats.maxMs = Math.max(stats.maxMs, performance.now() - start);
  }
}

export function report(t: Test, stats: Stats, minCalls: number): void {
  t.comment(`seed ${SEED}: ${stats.calls} calls, ${stats.returned} returned, ${stats.threw} threw a BulwarkError, slowest ${stats.maxMs.toFixed(1)} ms`);
  t.same(stats.failures.slice(0, 5), [], 'no exception other than a BulwarkError with a known code');
  t.ok(stats.calls >= minCalls, `at least ${minCalls} inputs`);
  t.ok(stats.returned > 0 && stats.threw > 0, 'both outcomes were exercised');
}
