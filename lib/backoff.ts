/**
 * Exponential backoff with full jitter ("Exponential Backoff And Jitter", AWS Architecture
 * Blog, 2015): the wait before retry number `attempt` (0-based) is drawn uniformly from
 * [0, min(cap, base·2^attempt)]. Clients that failed together (a fleet whose controller
 * restarted) spread their retries over the whole window instead of retrying in lockstep.
 * Pure: the random source is a parameter, so tests fix it.
 */
import { BulwarkError } from './errors.js';

/** Base and cap of an exponential backoff, in milliseconds. */
export interface BackoffPolicy {
  /** Ceiling of the first wait (attempt 0). */
  readonly baseMs: number;
  /** No wait is longer than this, however many attempts failed. */
  readonly capMs: number;
}

/** A uniform random number in [0, 1), like Math.random. */
export type RandomSource = () => number;

/** One computed wait: which attempt it was for, its ceiling and the jittered delay. */
export interface BackoffStep {
  readonly attempt: number;
  readonly ceilingMs: number;
  readonly delayMs: number;
}

function checkPolicy(policy: BackoffPolicy): void {
  const { baseMs, capMs } = policy;
  if (!Number.isFinite(baseMs) || !Number.isFinite(capMs) || baseMs <= 0 || capMs < baseMs) {
    throw new BulwarkError('CONFIG_INVALID', `backoff needs 0 < baseMs <= capMs (got ${baseMs}, ${capMs})`, { baseMs, capMs });
  }
}

/** min(cap, base·2^attempt), whole milliseconds; attempts below 0 count as 0. */
export function backoffCeilingMs(policy: BackoffPolicy, attempt: number): number {
  checkPolicy(policy);
  const n = Number.isFinite(attempt) ? Math.max(0, Math.floor(attempt)) : 0;
  // 2^n overflows to Infinity for large n; the cap bounds it either way.
  return Math.floor(Math.min(policy.capMs, policy.baseMs * 2 ** n));
}

/**
 * The full-jitter wait before retry `attempt`: an integer in [0, ceiling]. A random source
 * that strays outside [0, 1) is clamped, so the bounds hold whatever it returns.
 */
export function fullJitterDelayMs(policy: BackoffPolicy, attempt: number, random: RandomSource = Math.random): number {
  const ceiling = backoffCeilingMs(policy, attempt);
  const r = random();
  const u = Number.isFinite(r) ? Math.min(Math.max(r, 0), 1 - Number.EPSILON) : 0;
  return Math.min(ceiling, Math.floor(u * (ceiling + 1)));
}

/** Counts failed attempts of one retry loop and hands out the next wait; reset after a success. */
export class Backoff {
  private readonly policy: BackoffPolicy;
  private readonly random: RandomSource;
  private attempts = 0;

  constructor(policy: BackoffPolicy, random: RandomSource = Math.random) {
    checkPolicy(policy);
    this.policy = policy;
    this.random = random;
  }

  /** Failed attempts since the last reset. */
  get attempt(): number {
    return this.attempts;
  }

  /** The wait after one more failure (the first failure gets attempt 0). */
  next(): BackoffStep {
    const attempt = this.attempts;
    // Past 2^52 the ceiling is the cap anyway; keep the counter a safe integer.
    if (this.attempts < Number.MAX_SAFE_INTEGER) this.attempts++;
    return { attempt, ceilingMs: backoffCeilingMs(this.policy, attempt), delayMs: fullJitterDelayMs(this.policy, attempt, this.random) };
  }

  reset(): void {
    this.attempts = 0;
  }
}
