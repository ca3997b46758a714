/**
 * The backoff helper: ceilings double from the base up to the cap, and every delay is drawn
 * from [0, ceiling] by the injected random source (full jitter). No clocks involved.
 */
import t from 'tap';
import { Backoff, backoffCeilingMs, fullJitterDelayMs, type BackoffPolicy } from '../../lib/index.js';

const policy: BackoffPolicy = { baseMs: 250, capMs: 5000 };

/** A small deterministic PRNG (mulberry32), so the spread checks never flake. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

t.test('ceilings: base·2^attempt, capped', async (t) => {
  t.same([0, 1, 2, 3, 4, 5, 6].map((n) => backoffCeilingMs(policy, n)), [250, 500, 1000, 2000, 4000, 5000, 5000]);
  t.equal(backoffCeilingMs(policy, 10_000), 5000, 'a huge attempt count (2^n overflows) is the cap');
  t.equal(backoffCeilingMs(policy, -3), 250, 'a negative attempt counts as the first');
});

t.test('the delay is the random fraction of the ceiling, inclusive bounds', async (t) => {
  t.equal(fullJitterDelayMs(policy, 2, () => 0), 0, 'random 0: no wait at all');
  t.equal(fullJitterDelayMs(policy, 2, () => 0.999999999), 1000, 'random just under 1: the ceiling');
  t.equal(fullJitterDelayMs(policy, 2, () => 0.5), 500, 'random 0.5: half the window (floor(0.5·1001))');
  t.equal(fullJitterDelayMs(policy, 9, () => 0.999999999), 5000, 'never above the cap');
  t.equal(fullJitterDelayMs(policy, 2, () => 1), 1000, 'a source returning 1 is clamped to the ceiling');
  t.equal(fullJitterDelayMs(policy, 2, () => -5), 0, 'a negative one to 0');
  t.equal(fullJitterDelayMs(policy, 2, () => Number.NaN), 0, 'NaN to 0');
});

t.test('every draw stays in [0, ceiling] and the draws spread over the window', async (t) => {
  const random = seeded(42);
  for (let attempt = 0; attempt < 12; attempt++) {
    const ceiling = backoffCeilingMs(policy, attempt);
    const draws = Array.from({ length: 500 }, () => fullJitterDelayMs(policy, attempt, random));
    t.ok(draws.every((d) => Number.isInteger(d) && d >= 0 && d <= ceiling), `attempt ${attempt}: 500 draws within [0, ${ceiling}]`);
    // Full jitter covers the whole window: some draws land in its lowest and highest tenth.
    t.ok(draws.some((d) => d <= ceiling / 10) && draws.some((d) => d >= (ceiling * 9) / 10), `attempt ${attempt}: draws reach both ends of the window`);
  }
});

t.test('two clients that failed together wait different times', async (t) => {
  const a = new Backoff(policy, seeded(1));
  const b = new Backoff(policy, seeded(2));
  const waitsA = Array.from({ length: 6 }, () => a.next().delayMs);
  const waitsB = Array.from({ length: 6 }, () => b.next().delayMs);
  t.not(waitsA.join(','), waitsB.join(','), `not in lockstep (${waitsA.join(',')} vs ${waitsB.join(',')})`);
});

t.test('Backoff counts attempts and starts over after reset', async (t) => {
  const b = new Backoff({ baseMs: 100, capMs: 1000 }, () => 0.999999999);
  t.same(
    [b.next(), b.next(), b.next()],
    [
      { attempt: 0, ceilingMs: 100, delayMs: 100 },
      { attempt: 1, ceilingMs: 200, delayMs: 200 },
      { attempt: 2, ceilingMs: 400, delayMs: 400 },
    ],
  );
  t.equal(b.attempt, 3);
  b.reset();
  t.equal(b.attempt, 0);
  t.same(b.next(), { attempt: 0, ceilingMs: 100, delayMs: 100 }, 'the first wait again');
});

t.test('a policy without a positive base below its cap is refused', async (t) => {
  t.throws(() => new Backoff({ baseMs: 0, capMs: 100 }), { code: 'CONFIG_INVALID' });
  t.throws(() => new Backoff({ baseMs: 200, capMs: 100 }), { code: 'CONFIG_INVALID' });
  t.throws(() => backoffCeilingMs({ baseMs: Number.NaN, capMs: 100 }, 0), { code: 'CONFIG_INVALID' });
});
