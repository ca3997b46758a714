/**
 * Token buckets keyed by peer or node: each key may spend `burst` requests at once and
 * regains `ratePerSecond`. Pure (time is passed in) and bounded: at most `maxKeys` keys are
 * kept; past that, full (idle) buckets are dropped first, then the oldest.
 */

export interface TokenBucketOptions {
  /** Tokens regained per second. */
  readonly ratePerSecond: number;
  /** Most tokens a bucket holds (the burst a key may spend at once). */
  readonly burst: number;
  /** Most keys tracked (memory bound). */
  readonly maxKeys: number;
}

interface Bucket {
  tokens: number;
  at: number;
}

/** Per-key rate limits. Trust level: none needed (it only counts). */
export class TokenBuckets {
  private readonly opts: TokenBucketOptions;
  private readonly buckets = new Map<string, Bucket>();

  constructor(opts: TokenBucketOptions) {
    this.opts = opts;
  }

  /** Spends one token of `key`'s bucket: true when there was one (the request may go on). */
  take(key: string, now: number): boolean {
    let b = this.buckets.get(key);
    if (b === undefined) {
      this.makeRoom(now);
      b = { tokens: this.opts.burst, at: now };
      this.buckets.set(key, b);
    } else {
      b.tokens = Math.min(this.opts.burst, b.tokens + (Math.max(0, now - b.at) / 1000) * this.opts.ratePerSecond);
      b.at = now;
    }
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  /** Keys tracked now. */
  get size(): number {
    return this.buckets.size;
  }

  private makeRoom(now: number): void {
    if (this.buckets.size < this.opts.maxKeys) return;
    for (const [key, b] of this.buckets) {
      if (b.tokens + (Math.max(0, now - b.at) / 1000) * this.opts.ratePerSecond >= this.opts.burst) this.buckets.delete(key);
    }
    // Still full: forget the oldest keys (a forgotten key starts again with a full bucket).
    for (const key of this.buckets.keys()) {
      if (this.buckets.size < this.opts.maxKeys) break;
      this.buckets.delete(key);
    }
  }
}
