/**
 * Size and age limits of every JetStream stream and KV bucket Bulwark creates, in one table
 * (the README lists them). A full bucket refuses new writes (KV streams discard new
 * messages); the audit stream drops its oldest entries. Buckets created by an older release
 * without limits get them on the next start (the stream config is updated in place).
 */
import { nanos, type JetStreamManager } from 'nats';
import { toBulwarkError } from '../../lib/index.js';

const MIB = 1024 * 1024;
const DAY_MS = 24 * 60 * 60 * 1000;

/** Limits of one stream or bucket. */
export interface StreamLimits {
  readonly maxBytes: number;
  readonly maxAgeMs: number;
}

/**
 * Defaults. Node records, event logs and IMA state are rewritten on every round of a live
 * node, so only a node silent for 400 days loses them (it then enrolls afresh). Policies
 * are kept for ten years (they are replaced, not aged). Nonces and pending enrollments
 * live an hour at most; leases a day.
 */
export const STREAM_LIMITS = {
  bulwark_nodes: { maxBytes: 256 * MIB, maxAgeMs: 400 * DAY_MS },
  bulwark_nonces: { maxBytes: 64 * MIB, maxAgeMs: 60 * 60 * 1000 },
  bulwark_enroll: { maxBytes: 64 * MIB, maxAgeMs: 60 * 60 * 1000 },
  bulwark_leases: { maxBytes: 1 * MIB, maxAgeMs: DAY_MS },
  bulwark_policies: { maxBytes: 256 * MIB, maxAgeMs: 3650 * DAY_MS },
  bulwark_eventlogs: { maxBytes: 1024 * MIB, maxAgeMs: 400 * DAY_MS },
  bulwark_ima: { maxBytes: 256 * MIB, maxAgeMs: 400 * DAY_MS },
  // The distinct IMA measurements of each node's boot (deflated segments), judged again when a runtime policy changes.
  bulwark_ima_seen: { maxBytes: 1024 * MIB, maxAgeMs: 400 * DAY_MS },
  // One record per node holding its latest baseline report (with the normalised ruleset).
  bulwark_baselines: { maxBytes: 1024 * MIB, maxAgeMs: 400 * DAY_MS },
  // One EK is one node for good, and a revocation must outlive every certificate it names:
  // these keep their entries as long as policies do.
  bulwark_ek: { maxBytes: 64 * MIB, maxAgeMs: 3650 * DAY_MS },
  bulwark_revocations: { maxBytes: 64 * MIB, maxAgeMs: 3650 * DAY_MS },
  bulwark_credentials: { maxBytes: 64 * MIB, maxAgeMs: 3650 * DAY_MS },
  // Signed audit checkpoints: kept as long as the audit records they cover can be asked about.
  bulwark_checkpoints: { maxBytes: 256 * MIB, maxAgeMs: 3650 * DAY_MS },
  // Trusted key sets (current and every accepted one, which stored envelopes are re-verified under): kept as long as policies.
  bulwark_keysets: { maxBytes: 64 * MIB, maxAgeMs: 3650 * DAY_MS },
  BULWARK_AUDIT: { maxBytes: 1024 * MIB, maxAgeMs: 400 * DAY_MS },
} as const satisfies Record<string, StreamLimits>;

/** The name of a bucket or stream with limits. */
export type LimitedStreamName = keyof typeof STREAM_LIMITS;

/** nats.js KV options (`max_bytes`, `ttl` in ms) for a bucket's limits. */
export function kvLimits(bucket: LimitedStreamName): { max_bytes: number; ttl: number } {
  const l = STREAM_LIMITS[bucket];
  return { max_bytes: l.maxBytes, ttl: l.maxAgeMs };
}

/**
 * Brings an existing stream (a KV bucket is the stream `KV_<bucket>`) to its limits when
 * an older release created it without them; a stream already at its limits is left alone.
 */
export async function enforceStreamLimits(jsm: JetStreamManager, stream: string, limits: StreamLimits, extra: { deny_delete?: boolean; deny_purge?: boolean } = {}): Promise<void> {
  try {
    const info = await jsm.streams.info(stream);
    const c = info.config;
    const want = { max_bytes: limits.maxBytes, max_age: nanos(limits.maxAgeMs) };
    const same = c.max_bytes === want.max_bytes && c.max_age === want.max_age
      && (extra.deny_delete === undefined || c.deny_delete === extra.deny_delete)
      && (extra.deny_purge === undefined || c.deny_purge === extra.deny_purge);
    if (!same) await jsm.streams.update(stream, { ...c, ...want, ...extra });
  } catch (err) {
    throw toBulwarkError(err, 'NATS_FAILED', `cannot set the limits of stream ${stream}`);
  }
}
