/**
 * A digest-keyed memo of parsed and replayed event logs, so the controller does not parse
 * and replay an unchanged log on every quote. The agent sends the log only when its hash
 * changed (DESIGN.md); between boots every round repeats the same bytes and the same boot
 * PCR values, so a round costs one SHA-256 over the log (or nothing, when the caller keeps
 * the digest) plus a comparison of the compared PCRs with the quote.
 *
 * What is memoized, all keyed by SHA-256 of the log bytes:
 * - the parse (or the BulwarkError it raised, so hostile input is not parsed again),
 * - the replayed PCR values of every bank,
 * - per quoted value set of the *compared* PCRs (PCR 10, which IMA extends every round,
 *   is not part of the key) and per policy object, the result.
 * A memo hit needs the same compared PCR values byte for byte, so it proves exactly what
 * a fresh replay would. Entries are evicted least-recently-used by count and bytes.
 */
import { createHash } from 'node:crypto';
import { toHex } from '../bytes.js';
import { BulwarkError, isBulwarkError } from '../errors.js';
import type { QuotedPcrs } from '../tpm/index.js';
import { evaluateMeasuredBootPolicy, replayFailure, type MeasuredBootResult } from './evaluate.js';
import { parseEventLog, type EventLog } from './parse.js';
import type { MeasuredBootPolicy } from './policy.js';
import { comparedPcrs, extendedPcrs, replayPcrs, verifyReplay, type EventLogReplayResult, type ReplayOptions } from './replay.js';
import type { PcrBanks } from '../tpm/index.js';

export interface EventLogCacheOptions {
  /** Most logs kept (default 1024: one per node of a large fleet, logs are 10–100 KiB). */
  readonly maxEntries?: number;
  /** Most log bytes kept (default 128 MiB). */
  readonly maxBytes?: number;
}

/** Results memoized per log for different quoted values (a node's boot PCRs change only on reboot). */
const MAX_RESULTS_PER_ENTRY = 8;

interface Entry {
  readonly digest: string;
  readonly size: number;
  readonly parsed: { readonly log: EventLog; readonly replayed: PcrBanks; readonly extended: ReadonlySet<number> } | { readonly error: BulwarkError };
  readonly replays: Map<string, EventLogReplayResult>;
  readonly results: WeakMap<MeasuredBootPolicy, Map<string, MeasuredBootResult>>;
}

/** SHA-256 of a log's bytes in hex: the key of EventLogCache and what the controller stores per node. */
export function eventLogDigest(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Parse, replay and policy results per log digest. Trust: as replayEventLog and evaluateMeasuredBootPolicy. */
export class EventLogCache {
  private readonly entries = new Map<string, Entry>();
  private bytes = 0;
  private readonly maxEntries: number;
  private readonly maxBytes: number;

  constructor(options: EventLogCacheOptions = {}) {
    this.maxEntries = options.maxEntries ?? 1024;
    this.maxBytes = options.maxBytes ?? 128 * 1024 * 1024;
  }

  /** Logs currently kept. */
  get size(): number {
    return this.entries.size;
  }

  private touch(entry: Entry): Entry {
    this.entries.delete(entry.digest);
    this.entries.set(entry.digest, entry);
    return entry;
  }

  private entryFor(bytes: Uint8Array, digest = eventLogDigest(bytes)): Entry {
    const hit = this.entries.get(digest);
    if (hit !== undefined) return this.touch(hit);
    // A private copy: the parse keeps views into it, and the caller's buffer may be larger or reused.
    const copy = bytes.slice();
    let parsed: Entry['parsed'];
    try {
      const log = parseEventLog(copy);
      parsed = { log, replayed: replayPcrs(log), extended: extendedPcrs(log) };
    } catch (err) {
      if (!isBulwarkError(err)) throw err;
      parsed = { error: err };
    }
    const entry: Entry = { digest, size: 'error' in parsed ? 0 : copy.length, parsed, replays: new Map(), results: new WeakMap() };
    this.entries.set(digest, entry);
    this.bytes += entry.size;
    this.evict();
    return entry;
  }

  private evict(): void {
    for (const [digest, entry] of this.entries) {
      if (this.entries.size <= this.maxEntries && this.bytes <= this.maxBytes) break;
      this.entries.delete(digest);
      this.bytes -= entry.size;
    }
  }

  private static logOf(entry: Entry): Extract<Entry['parsed'], { log: EventLog }> {
    if ('error' in entry.parsed) throw entry.parsed.error;
    return entry.parsed;
  }

  /** The values of the PCRs a replay compares, as a memo key (banks and PCRs in order). */
  private static quotedKey(entry: Entry, quoted: QuotedPcrs, options: ReplayOptions): string {
    const p = EventLogCache.logOf(entry);
    const { compare, missingBanks } = comparedPcrs(p.log, quoted, options, p.extended);
    let key = `${options.pcrs?.join(',') ?? '*'};${options.quirks?.join(',') ?? '*'};${missingBanks.join(',')}`;
    for (const [alg, pcrs] of [...compare].sort((a, b) => a[0] - b[0])) {
      key += `|${alg}`;
      for (const pcr of pcrs) {
        const v = quoted.get(alg)?.get(pcr);
        key += `:${pcr}=${v === undefined ? '-' : toHex(v)}`;
      }
    }
    return key;
  }

  /** The parsed log (parsed once per digest; a malformed log throws its BulwarkError each time). */
  parse(bytes: Uint8Array): { digest: string; log: EventLog } {
    const entry = this.entryFor(bytes);
    return { digest: entry.digest, log: EventLogCache.logOf(entry).log };
  }

  private replayEntry(entry: Entry, quoted: QuotedPcrs, options: ReplayOptions): { key: string; result: EventLogReplayResult } {
    const key = EventLogCache.quotedKey(entry, quoted, options);
    let result = entry.replays.get(key);
    if (result === undefined) {
      const p = EventLogCache.logOf(entry);
      result = verifyReplay(p.log, p.replayed, quoted, options, p.extended);
      if (entry.replays.size >= MAX_RESULTS_PER_ENTRY) entry.replays.clear();
      entry.replays.set(key, result);
    }
    return { key, result };
  }

  /** replayEventLog, memoized. Malformed logs throw (EVENTLOG_TRUNCATED / EVENTLOG_MALFORMED). */
  replay(bytes: Uint8Array, quoted: QuotedPcrs, options: ReplayOptions = {}): EventLogReplayResult {
    return this.replayEntry(this.entryFor(bytes), quoted, options).result;
  }

  private evaluateEntry(entry: Entry, quoted: QuotedPcrs, policy: MeasuredBootPolicy, options: ReplayOptions): MeasuredBootResult {
    const { key, result: replay } = this.replayEntry(entry, quoted, options);
    let perPolicy = entry.results.get(policy);
    if (perPolicy === undefined) {
      perPolicy = new Map();
      entry.results.set(policy, perPolicy);
    }
    let result = perPolicy.get(key);
    if (result === undefined) {
      result = replay.ok ? evaluateMeasuredBootPolicy(policy, replay.log) : replayFailure(policy, replay.findings, EventLogCache.logOf(entry).log);
      if (perPolicy.size >= MAX_RESULTS_PER_ENTRY) perPolicy.clear();
      perPolicy.set(key, result);
    }
    return result;
  }

  /**
   * evaluateEventLog, memoized: replay against the quote, then the policy. `policy` is
   * memoized by identity (keep the parsed policy object). Malformed logs throw.
   */
  evaluate(bytes: Uint8Array, quoted: QuotedPcrs, policy: MeasuredBootPolicy, options: ReplayOptions = {}): MeasuredBootResult {
    return this.evaluateEntry(this.entryFor(bytes), quoted, policy, options);
  }

  /**
   * As evaluate, for a log the cache already holds under `digest` (eventLogDigest of the
   * bytes the controller received earlier): no hashing of the log at all. Undefined when the
   * digest is not (or no longer) cached; the caller then passes the bytes to evaluate.
   */
  evaluateCached(digest: string, quoted: QuotedPcrs, policy: MeasuredBootPolicy, options: ReplayOptions = {}): MeasuredBootResult | undefined {
    const entry = this.entries.get(digest);
    if (entry === undefined) return undefined;
    return this.evaluateEntry(this.touch(entry), quoted, policy, options);
  }
}
