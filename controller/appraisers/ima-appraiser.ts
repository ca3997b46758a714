/**
 * Runtime integrity in the evidence flow. Per node the controller keeps, durably in KV
 * `bulwark_ima`, where IMA replay stands (entry count, byte offset, PCR 10 per bank) for
 * the current boot (resetCount). Each round carries only the entries after that point;
 * they must replay from the stored PCR 10 to the quoted one (entries past the quote wait
 * for the next round), and every verified entry is judged against the node's runtime
 * policy. A controller restart resumes from the stored state and asks for nothing it
 * has verified. The last `selinux-state` and `selinux-policy-hash` buffers (ima-buf
 * critical data the kernel measured) of the boot are kept with it, for the baseline
 * appraiser: what the kernel measured wins over what a host reports.
 *
 * A backlog larger than one round (a boot-time list of tens of MB) arrives over several
 * rounds: the quote is ahead of each chunk, so the entries are replayed from the stored
 * state into a running PCR 10 (`pending`, unproven) that is kept between rounds, and the
 * node stays untrusted (IMA_LOG_INCOMPLETE, with the progress) until a round's chunk
 * carries the running value to its quoted PCR 10: then the whole chain, every earlier
 * chunk included, is proven by that quote and judged at once. A chunk that does not follow
 * on, a restart of either side or a state that does not decode continues from what is
 * stored or starts over from the last proven point; nothing unproven is ever judged.
 *
 * Re-judging: the distinct measurements of the boot (what a runtime policy looks at) are
 * kept in KV `bulwark_ima_seen` in segments, with the findings of the policy they were last
 * judged under (its digest). A round under the same policy judges only its new entries; a
 * policy change (a push or an assignment, or the next round) judges every kept measurement
 * again, so a digest removed from the policy makes a node that ran it untrusted and one
 * added clears the finding. The findings name the policy revision. Findings on verified
 * entries therefore last for the boot (a clean round does not undo what already ran) but
 * are not sticky across an approval; a list that no longer replays stays sticky.
 */
import { Type, type Static } from '@sinclair/typebox';
import { createHash } from 'node:crypto';
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { StorageType, type JetStreamClient, type KV } from 'nats';
import { BulwarkError, isBulwarkError, toBulwarkError } from '../../lib/index.js';
import {
  checkBootAggregate,
  decodeImaReplayState,
  decodeRecordedImaEntries,
  encodeImaReplayState,
  encodeRecordedImaEntries,
  joinRecordedImaEntries,
  evaluateImaEntries,
  evaluateRecordedImaEntries,
  evaluateUnverifiedImaEntries,
  initialImaReplayState,
  parseImaAscii,
  parseImaBinary,
  parseRuntimePolicy,
  replayImaBacklog,
  type ImaEntry,
  type ImaReplayState,
  type RecordedImaEntries,
  type RuntimePolicy,
} from '../../lib/ima/index.js';
import { IMA_FORMATS, StoredFindingSchema, corruptPath, imaFormatOf, type ImaFormat, type NodeRecord, type PolicyKindName } from '../../lib/attestation/index.js';
import { defineDocument, literalUnion } from '../../lib/schema/index.js';
import { TPM_ALG } from '../../lib/tpm/index.js';
import { finding, fromHex, toHex, type Finding } from '../../lib/index.js';
import { resolvePolicy, type AppraisalContext, type AppraisalResult, type Appraiser } from './appraiser.js';
import { silentLogger, type Logger } from '../../daemon/index.js';
import { STREAM_LIMITS, enforceStreamLimits, kvLimits } from '../state/index.js';
import type { PolicyKind, PolicyStore, StoredPolicy } from '../policies/index.js';

export const IMA_BUCKET = 'bulwark_ima' as const;
/** Segments of the distinct measurements of each node's boot (key `<node id>.<segment>`). */
export const IMA_SEEN_BUCKET = 'bulwark_ima_seen' as const;

/** Most list bytes received but not yet proven by a quote (a backlog past this is refused, not stored). */
export const IMA_BACKLOG_MAX_BYTES = 512 * 1024 * 1024;
/** Segments a node's record lists at most; past COMPACT_SEGMENTS they are merged into few. */
const MAX_SEGMENTS = 1024;
const COMPACT_SEGMENTS = 256;
/** Measurements per segment written by a compaction (well under the NATS payload once deflated). */
const MEASUREMENTS_PER_COMPACT_SEGMENT = 4000;
/** A segment inflated is at most this large (a round's chunk is at most WIRE_LIMITS.imaChunk). */
const MAX_SEGMENT_INFLATED = 16 * 1024 * 1024;
/** Findings a judgement keeps (the rest counted in IMA_FINDINGS_CAPPED), and would-be refusals a mismatch lists. */
const MAX_JUDGED_FINDINGS = 1000;
const MAX_WOULD_REFUSE = 20;

/** The codes a runtime policy's judgement of the kept measurements gives: replaced as a whole when it is judged again. */
export const IMA_JUDGED_CODES: ReadonlySet<string> = new Set(['IMA_DIGEST_NOT_ALLOWED', 'IMA_SIGNATURE_INVALID', 'IMA_BUF_UNEXPECTED', 'IMA_VIOLATION', 'IMA_FINDINGS_CAPPED']);

/** The runtime policy kind (Bulwark's format; `bulwarkctl policy import-keylime` converts Keylime's). */
export const RUNTIME_POLICY: PolicyKind<RuntimePolicy, Extract<PolicyKindName, 'runtime'>> = {
  kind: 'runtime',
  parse: (document: unknown) => parseRuntimePolicy(document),
  parsed: new Map(),
};

/** ImaReplayStateJson: the bank names and PCR 10 lengths are checked by decodeImaReplayState. */
const ReplayStateSchema = Type.Object(
  {
    entryCount: Type.Integer({ minimum: 0 }),
    byteOffset: Type.Integer({ minimum: 0 }),
    pcr10: Type.Record(Type.String({ maxLength: 16 }), Type.String({ pattern: '^[0-9a-f]{1,256}$' }), { maxProperties: 8 }),
  },
  { additionalProperties: false },
);

const SHA256_HEX = Type.String({ pattern: '^[0-9a-f]{64}$' });

/** Where IMA replay stands for a node (KV `bulwark_ima`); written without `version` before it existed. */
export const StoredImaSchema = Type.Object(
  {
    version: Type.Optional(Type.Literal(1)),
    /** TPM resetCount of the boot this state belongs to. */
    resetCount: Type.Integer({ minimum: 0, maximum: 0xffffffff }),
    format: literalUnion(IMA_FORMATS),
    /** Replay proven by a quote: entries up to here are verified. */
    state: ReplayStateSchema,
    /** A backlog in progress: PCR 10 after every entry received so far, not yet proven by a quote. */
    pending: Type.Optional(ReplayStateSchema),
    /** Rounds the backlog in progress has taken. */
    pendingRounds: Type.Optional(Type.Integer({ minimum: 0 })),
    /** Segments of distinct measurements in KV bulwark_ima_seen, in list order; `toEntry` past state.entryCount: not yet proven. */
    segments: Type.Optional(
      Type.Array(Type.Object({ key: Type.Integer({ minimum: 0 }), toEntry: Type.Integer({ minimum: 0 }), sha256: SHA256_HEX }, { additionalProperties: false }), { maxItems: MAX_SEGMENTS }),
    ),
    /** The next free segment key. */
    nextSegment: Type.Optional(Type.Integer({ minimum: 0 })),
    /** The judgement of the proven measurements, and the digest of the runtime policy (null: none applied) it was made under. */
    judged: Type.Optional(
      Type.Object({ policySha256: Type.Union([SHA256_HEX, Type.Null()]), findings: Type.Array(StoredFindingSchema, { maxItems: MAX_JUDGED_FINDINGS + 1 }) }, { additionalProperties: false }),
    ),
    /** Whether boot_aggregate (entry 0) matched the quoted PCRs 0-9: its policy finding is then left out. */
    bootAggregateProven: Type.Optional(Type.Boolean()),
    /** The last selinux-state and selinux-policy-hash buffers verified in this boot (hex); absent before they were kept. */
    kernelSelinux: Type.Optional(
      Type.Object(
        {
          state: Type.Union([Type.String({ pattern: '^([0-9a-f]{2}){0,4096}$' }), Type.Null()]),
          policyHash: Type.Union([Type.String({ pattern: '^([0-9a-f]{2}){0,4096}$' }), Type.Null()]),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);

/** The kernel's own measurements of SELinux (IMA critical data, ima-buf entries) in one boot: the last buffer of each, or null. */
export interface KernelSelinuxBuffers {
  readonly state: Uint8Array | null;
  readonly policyHash: Uint8Array | null;
}

const NO_KERNEL_SELINUX: KernelSelinuxBuffers = { state: null, policyHash: null };

/** Critical-data buffers longer than this are not kept (the kernel's selinux-state is about 150 bytes, the policy hash 32). */
const MAX_KERNEL_SELINUX_BUFFER = 4096;

/** One stored segment of distinct measurements. */
interface Segment {
  readonly key: number;
  /** The entry count after the segment's last entry. */
  readonly toEntry: number;
  /** SHA-256 of the stored (deflated) bytes: a segment that does not match fails closed. */
  readonly sha256: string;
}

interface Judged {
  readonly policySha256: string | null;
  readonly findings: readonly Finding[];
}

interface StoredIma {
  readonly resetCount: number;
  readonly format: ImaFormat;
  readonly state: ImaReplayState;
  readonly kernelSelinux: KernelSelinuxBuffers;
  readonly pending: ImaReplayState | null;
  readonly pendingRounds: number;
  readonly segments: readonly Segment[];
  readonly nextSegment: number;
  readonly judged: Judged | null;
  readonly bootAggregateProven: boolean;
}

const STORED_IMA = defineDocument(StoredImaSchema, 'stored IMA replay state', 'STORE_CORRUPT');

const enc = new TextEncoder();

/** Decodes a node's stored IMA replay state: STORE_CORRUPT (or IMA_STATE_INVALID for its banks) when it does not. */
export function decodeStoredIma(bytes: Uint8Array, nodeId: string): StoredIma {
  const doc = STORED_IMA.parseJson(bytes, `${IMA_BUCKET}/${nodeId}`);
  const k = doc.kernelSelinux;
  const kernelSelinux = k === undefined ? NO_KERNEL_SELINUX : { state: k.state === null ? null : fromHex(k.state), policyHash: k.policyHash === null ? null : fromHex(k.policyHash) };
  return {
    resetCount: doc.resetCount,
    format: doc.format,
    state: decodeImaReplayState(doc.state),
    kernelSelinux,
    pending: doc.pending === undefined ? null : decodeImaReplayState(doc.pending),
    pendingRounds: doc.pendingRounds ?? 0,
    segments: doc.segments ?? [],
    nextSegment: doc.nextSegment ?? 0,
    judged: doc.judged ?? null,
    bootAggregateProven: doc.bootAggregateProven ?? false,
  };
}

function encodeStoredIma(s: StoredIma): Uint8Array {
  const k = s.kernelSelinux;
  const value: Static<typeof StoredImaSchema> = {
    version: 1,
    resetCount: s.resetCount,
    format: s.format,
    state: encodeImaReplayState(s.state),
    kernelSelinux: { state: k.state === null ? null : toHex(k.state), policyHash: k.policyHash === null ? null : toHex(k.policyHash) },
    ...(s.pending === null ? {} : { pending: encodeImaReplayState(s.pending), pendingRounds: s.pendingRounds }),
    segments: [...s.segments],
    nextSegment: s.nextSegment,
    ...(s.judged === null ? {} : { judged: { policySha256: s.judged.policySha256, findings: s.judged.findings.map(storedFinding) } }),
    bootAggregateProven: s.bootAggregateProven,
  };
  return enc.encode(JSON.stringify(value));
}

/** A finding as the stored schema bounds it (the judged findings are the appraiser's own, already within it). */
function storedFinding(f: Finding): Static<typeof StoredFindingSchema> {
  return f.details === undefined ? { code: f.code, message: f.message.slice(0, 4096) } : { code: f.code, message: f.message.slice(0, 4096), details: storedDetails(f.details) };
}

function storedDetails(d: NonNullable<Finding['details']>): Record<string, string | number | boolean | number[]> {
  const out: Record<string, string | number | boolean | number[]> = {};
  for (const [k, v] of Object.entries(d)) {
    if (v === undefined) continue;
    out[k] = typeof v === 'string' ? v.slice(0, 4096) : typeof v === 'object' ? v.slice(0, 64) : v;
  }
  return out;
}

/** The state of a boot nothing has arrived for yet. */
function freshIma(resetCount: number, format: ImaFormat, banks: number[], nextSegment: number): StoredIma {
  return {
    resetCount,
    format,
    state: initialImaReplayState(banks),
    kernelSelinux: NO_KERNEL_SELINUX,
    pending: null,
    pendingRounds: 0,
    segments: [],
    nextSegment,
    judged: null,
    bootAggregateProven: false,
  };
}

/** What a round or a re-judging read of a node's stored state: the state, or why it cannot be used. */
interface Loaded {
  readonly stored: StoredIma | null;
  readonly findings: readonly Finding[];
  readonly revision: number;
}

export class ImaAppraiser implements Appraiser {
  readonly name = 'ima';
  readonly rejudgeKind = 'runtime';
  readonly rejudgedCodes = IMA_JUDGED_CODES;
  private readonly kv: KV;
  private readonly seen: KV;
  private readonly policies: PolicyStore;
  private readonly log: Logger;
  /** Most list bytes kept unproven (IMA_BACKLOG_MAX_BYTES unless opened with less). */
  private readonly maxBacklogBytes: number;
  /** The kernel's SELinux measurements verified by this replica, per node and boot (the KV state has them too). */
  private readonly selinuxSeen = new Map<string, { readonly resetCount: number; readonly buffers: KernelSelinuxBuffers }>();

  private constructor(kv: KV, seen: KV, policies: PolicyStore, log: Logger, maxBacklogBytes: number) {
    this.log = log;
    this.maxBacklogBytes = maxBacklogBytes;
    this.kv = kv;
    this.seen = seen;
    this.policies = policies;
  }

  /**
   * The last selinux-state and selinux-policy-hash buffers the kernel measured in the boot
   * with `resetCount`, from entries that replayed to a quoted PCR 10 (this round's
   * included, once the IMA appraiser has run on it). Trust: proven by the TPM.
   */
  async kernelSelinux(nodeId: string, resetCount: number): Promise<KernelSelinuxBuffers> {
    const seen = this.selinuxSeen.get(nodeId);
    if (seen !== undefined && seen.resetCount === resetCount) return seen.buffers;
    const entry = await this.kv.get(nodeId);
    if (entry === null || entry.operation !== 'PUT' || entry.value.length === 0) return NO_KERNEL_SELINUX;
    try {
      const stored = decodeStoredIma(entry.value, nodeId);
      return stored.resetCount === resetCount ? stored.kernelSelinux : NO_KERNEL_SELINUX;
    } catch (err) {
      if (!isBulwarkError(err)) throw err;
      return NO_KERNEL_SELINUX; // the IMA appraiser reports the corrupt state itself
    }
  }

  static async open(
    js: JetStreamClient,
    policies: PolicyStore,
    log: Logger = silentLogger(),
    opts: { readonly maxBacklogBytes?: number } = {},
  ): Promise<ImaAppraiser> {
    policies.register(RUNTIME_POLICY);
    try {
      const kv = await js.views.kv(IMA_BUCKET, { history: 1, storage: StorageType.File, ...kvLimits(IMA_BUCKET) });
      await enforceStreamLimits(await js.jetstreamManager(), `KV_${IMA_BUCKET}`, STREAM_LIMITS[IMA_BUCKET]);
      const seen = await js.views.kv(IMA_SEEN_BUCKET, { history: 1, storage: StorageType.File, ...kvLimits(IMA_SEEN_BUCKET) });
      await enforceStreamLimits(await js.jetstreamManager(), `KV_${IMA_SEEN_BUCKET}`, STREAM_LIMITS[IMA_SEEN_BUCKET]);
      return new ImaAppraiser(kv, seen, policies, log, Math.min(opts.maxBacklogBytes ?? IMA_BACKLOG_MAX_BYTES, IMA_BACKLOG_MAX_BYTES));
    } catch (err) {
      throw toBulwarkError(err, 'NATS_FAILED', 'cannot open the IMA buckets');
    }
  }

  /** The node's stored state; a state that does not decode is reported (STATE_CORRUPT) and treated as none. */
  private async load(nodeId: string): Promise<Loaded> {
    const entry = await this.kv.get(nodeId);
    if (entry === null || entry.operation !== 'PUT' || entry.value.length === 0) return { stored: null, findings: [], revision: entry?.revision ?? 0 };
    try {
      return { stored: decodeStoredIma(entry.value, nodeId), findings: [], revision: entry.revision };
    } catch (err) {
      if (!isBulwarkError(err)) throw err;
      // The stored position cannot be trusted: the replay starts again from entry 0 (the
      // agent resends the list, which must replay to the quoted PCR 10 from the start, so
      // nothing unverified is accepted), and this round is untrusted with STATE_CORRUPT.
      const path = corruptPath(err);
      this.log.warn({ node: nodeId, path, error: err.message }, 'stored IMA replay state is corrupt: replaying from entry 0');
      return { stored: null, findings: [finding('STATE_CORRUPT', `the stored IMA replay state does not decode (${err.message}); replaying the list from entry 0`, { path })], revision: entry.revision };
    }
  }

  /** Reads segments (in order), checking each against its digest; measurements seen in an earlier one are left out. */
  private async readSegments(nodeId: string, segments: readonly Segment[], seen: Set<string>): Promise<RecordedImaEntries> {
    const out: RecordedImaEntries[] = [];
    for (const s of segments) {
      const entry = await this.seen.get(`${nodeId}.${s.key}`);
      if (entry === null || entry.operation !== 'PUT') throw new BulwarkError('STORE_CORRUPT', `IMA measurement segment ${s.key} of node ${nodeId} is missing`, { path: `${IMA_SEEN_BUCKET}/${nodeId}.${s.key}` });
      if (createHash('sha256').update(entry.value).digest('hex') !== s.sha256) {
        throw new BulwarkError('STORE_CORRUPT', `IMA measurement segment ${s.key} of node ${nodeId} does not match its digest`, { path: `${IMA_SEEN_BUCKET}/${nodeId}.${s.key}` });
      }
      let bytes: Uint8Array;
      try {
        bytes = inflateRawSync(entry.value, { maxOutputLength: MAX_SEGMENT_INFLATED });
      } catch (err) {
        throw new BulwarkError('STORE_CORRUPT', `IMA measurement segment ${s.key} of node ${nodeId} does not inflate`, { path: `${IMA_SEEN_BUCKET}/${nodeId}.${s.key}` }, { cause: err });
      }
      out.push(decodeRecordedImaEntries(bytes, seen));
    }
    return joinRecordedImaEntries(out);
  }

  /** Stores the distinct measurements among `entries` as a new segment (none when there are none). */
  private async writeSegment(nodeId: string, key: number, entries: readonly ImaEntry[], toEntry: number): Promise<Segment | null> {
    const encoded = encodeRecordedImaEntries(entries, new Set());
    if (encoded === null) return null;
    const bytes = deflateRawSync(encoded);
    await this.seen.put(`${nodeId}.${key}`, bytes);
    return { key, toEntry, sha256: createHash('sha256').update(bytes).digest('hex') };
  }

  private async dropSegments(nodeId: string, segments: readonly Segment[]): Promise<void> {
    for (const s of segments) {
      try {
        await this.seen.delete(`${nodeId}.${s.key}`);
      } catch (err) {
        // An orphaned segment is never read (only the listed keys are), and its key is not reused.
        this.log.warn({ node: nodeId, segment: s.key, error: err instanceof Error ? err.message : String(err) }, 'cannot delete an IMA measurement segment');
      }
    }
  }

  /** Writes a node's state: new segments first, the record last (it names them), then forgets what it no longer lists. */
  private async persist(nodeId: string, next: StoredIma, dropped: readonly Segment[]): Promise<void> {
    let state = next;
    if (state.pending === null && state.segments.length >= COMPACT_SEGMENTS) {
      // Many small segments (one per round that brought entries): merge them into few.
      const all = await this.readSegments(nodeId, state.segments, new Set());
      const merged: Segment[] = [];
      let key = state.nextSegment;
      for (let i = 0; i < all.length; i += MEASUREMENTS_PER_COMPACT_SEGMENT) {
        const part = all.slice(i, i + MEASUREMENTS_PER_COMPACT_SEGMENT);
        const seg = await this.writeSegment(nodeId, key++, part, state.state.entryCount);
        if (seg !== null) merged.push(seg);
      }
      dropped = [...dropped, ...state.segments];
      state = { ...state, segments: merged, nextSegment: key };
    }
    await this.kv.put(nodeId, encodeStoredIma(state));
    if (dropped.length > 0) await this.dropSegments(nodeId, dropped);
  }

  async appraise(ctx: AppraisalContext): Promise<AppraisalResult> {
    const { evidence: ev, record } = ctx;
    const nodeId = record.nodeId;
    const resolved = await resolvePolicy(this.policies, RUNTIME_POLICY, nodeId, this.log);
    if (resolved.findings.length > 0) return { findings: resolved.findings };
    const policy = resolved.policy;
    if (ev.imaFormat === '') {
      return policy === null ? { findings: [] } : { findings: [finding('IMA_LOG_MISSING', `runtime policy ${policy.name} applies, but the host sent no IMA log`)] };
    }
    const format = imaFormatOf(ev.imaFormat);
    if (format === null) {
      return { findings: [finding('WIRE_MALFORMED', `unknown IMA list format ${JSON.stringify(ev.imaFormat.slice(0, 16))}`)] };
    }
    const loaded = await this.load(nodeId);
    const stored = loaded.stored;
    const findings: Finding[] = [...loaded.findings];
    // A new boot (or a stored state of another boot or format) starts from entry 0.
    const sameBoot = stored !== null && stored.resetCount === ctx.clockInfo.resetCount && stored.format === format && !ctx.newBoot;
    const base = sameBoot && stored !== null ? stored : freshIma(ctx.clockInfo.resetCount, format, quotedBanks(ctx), stored?.nextSegment ?? 0);
    // Segments of another boot are forgotten once the new state is written.
    const otherBoot = stored !== null && !sameBoot ? stored.segments : [];
    const verified = base.state;
    // A backlog in progress continues from what was received; otherwise from what was proven.
    const head = base.pending ?? verified;
    const position = { imaEntry: head.entryCount, imaOffset: head.byteOffset };
    const provenPosition = { imaEntry: verified.entryCount, imaOffset: verified.byteOffset };
    const provenSegments = base.segments.filter((s) => s.toEntry <= verified.entryCount);
    const pendingSegments = base.segments.filter((s) => s.toEntry > verified.entryCount);
    /** Forgets a backlog in progress: the state as last proven. */
    const withoutPending = (): StoredIma => ({ ...base, pending: null, pendingRounds: 0, segments: provenSegments });
    const dropPending = base.pending === null ? {} : { commit: () => this.persist(nodeId, withoutPending(), [...otherBoot, ...pendingSegments]) };

    if (ev.imaFromEntry > head.entryCount || (ev.imaFromEntry === head.entryCount && ev.imaFromOffset !== head.byteOffset)) {
      // The agent skipped entries we have not received: PCR 10 cannot be proven this round.
      return {
        findings: [...findings, finding('IMA_LOG_DISCONTINUOUS', `the agent sent IMA entries from ${ev.imaFromEntry}, the controller has received up to ${head.entryCount}`)],
        reply: position,
      };
    }
    let entries: readonly ImaEntry[];
    try {
      const options = { fromEntry: ev.imaFromEntry, fromOffset: ev.imaFromOffset, allowIncompleteTail: true };
      entries = (format === 'binary' ? parseImaBinary(ev.imaEntries, options) : parseImaAscii(ev.imaEntries, options)).entries;
    } catch (err) {
      if (!isBulwarkError(err)) throw err;
      return { findings: [...findings, finding(err.code, err.message, err.details)], reply: position };
    }
    // Entries the controller received before (the agent resent from an older position).
    const fresh = entries.filter((e) => e.index >= head.entryCount);
    const first = fresh[0];
    if (first !== undefined && (first.index !== head.entryCount || first.offset !== head.byteOffset)) {
      return {
        findings: [...findings, finding('IMA_LOG_DISCONTINUOUS', `IMA entry ${first.index} at offset ${first.offset} does not continue the received list (${head.entryCount} at ${head.byteOffset})`)],
        reply: position,
      };
    }

    const replay = replayImaBacklog(head, fresh, ctx.quoted);
    if (!replay.ok && !('reached' in replay)) {
      // A gap, an edited entry or a foreign bank: the chain is broken; what was received unproven goes.
      return { findings: [...findings, ...replay.findings], sticky: true, reply: provenPosition, ...dropPending };
    }
    if (!replay.ok) {
      if (ev.imaMore) {
        // The quote is ahead of what arrived and more is to come: keep the running PCR 10.
        const received = replay.running.byteOffset - verified.byteOffset;
        if (received > this.maxBacklogBytes) {
          return {
            findings: [...findings, finding('IMA_BACKLOG_TOO_LARGE', `the IMA backlog passed ${this.maxBacklogBytes} bytes without reaching the quoted PCR 10`, { receivedBytes: received })],
            sticky: true,
            reply: provenPosition,
            ...dropPending,
          };
        }
        const rounds = base.pendingRounds + 1;
        return {
          findings: [
            ...findings,
            finding(
              'IMA_LOG_INCOMPLETE',
              `IMA backlog in progress: ${replay.running.entryCount} entries (${received} bytes since the last proven entry) received over ${rounds} rounds, ${verified.entryCount} proven; the node is judged once the list reaches the quoted PCR 10`,
              { verifiedEntries: verified.entryCount, receivedEntries: replay.running.entryCount, receivedBytes: received, rounds },
            ),
          ],
          reply: { imaEntry: replay.running.entryCount, imaOffset: replay.running.byteOffset },
          commit: async () => {
            const seg = await this.writeSegment(nodeId, base.nextSegment, fresh, replay.running.entryCount);
            const next: StoredIma = {
              ...base,
              pending: replay.running,
              pendingRounds: rounds,
              segments: seg === null ? base.segments : [...base.segments, seg],
              nextSegment: base.nextSegment + 1,
            };
            await this.persist(nodeId, next, otherBoot);
          },
        };
      }
      // Nothing more to come and the quote is not reached: the list does not replay. Tell the
      // analyst what the policy would refuse among the entries no quote proved.
      let details: Record<string, string | number | readonly number[]> = {};
      if (policy !== null) {
        let unproven: readonly ImaEntry[] = fresh;
        try {
          unproven = [...(await this.readSegments(nodeId, pendingSegments, new Set())), ...fresh];
        } catch (err) {
          if (!isBulwarkError(err)) throw err;
        }
        // boot_aggregate is judged against the quoted PCRs 0-9, which prove it whatever PCR 10 says.
        const aggregate = unproven.find((e) => e.index === 0 && e.path === 'boot_aggregate');
        const aggregateMatches = aggregate !== undefined && checkBootAggregate(aggregate, ctx.quoted).status === 'match';
        const judged = evaluateUnverifiedImaEntries(policy.policy, unproven, { maxFindings: MAX_WOULD_REFUSE }).filter((f) => !(aggregateMatches && isBootAggregateFinding(f)));
        const refused = judged.filter((f) => f.code !== 'IMA_FINDINGS_CAPPED');
        const omitted = judged.find((f) => f.code === 'IMA_FINDINGS_CAPPED')?.details?.['omitted'];
        details = {
          wouldRefuseCount: refused.length + (typeof omitted === 'number' ? omitted : 0),
          wouldRefuseEntries: refused.map((f) => Number(f.details?.['entry'] ?? -1)),
          wouldRefuse: refused.map((f) => `${String(f.details?.['entry'])} ${String(f.details?.['path'])} ${String(f.details?.['digest'] ?? '')} (${f.code})`).join('; ').slice(0, 4000),
          wouldRefusePolicy: `${policy.name}@${policy.revision}`,
        };
      }
      const mismatch = replay.findings.map((f) => finding(f.code, f.message, { ...f.details, ...details }));
      return { findings: [...findings, ...mismatch], sticky: true, reply: provenPosition, ...dropPending };
    }

    // The quote is reached: every entry received for the backlog and this round's first
    // `consumed` are proven by this quote.
    let promoted = joinRecordedImaEntries([]);
    let proven = joinRecordedImaEntries([]);
    const judgedSha = policy?.sha256 ?? null;
    const rejudge = base.judged === null || base.judged.policySha256 !== judgedSha;
    try {
      const seen = new Set<string>();
      if (rejudge && policy !== null) proven = await this.readSegments(nodeId, provenSegments, seen);
      promoted = await this.readSegments(nodeId, pendingSegments, seen);
    } catch (err) {
      if (!isBulwarkError(err)) throw err;
      return this.restart(nodeId, err, findings);
    }
    const newly = [...promoted, ...replay.verified];
    let aggregateProven = base.bootAggregateProven;
    const sticky: Finding[] = [];
    for (const e of newly) {
      if (e.index !== 0 || e.path !== 'boot_aggregate') continue;
      const check = checkBootAggregate(e, ctx.quoted);
      if (check.status === 'mismatch') sticky.push(check.finding);
      aggregateProven = check.status === 'match';
    }
    let judged: Finding[] = [];
    if (policy !== null) {
      const parts = [
        ...(rejudge ? [] : base.judged?.findings ?? []),
        ...evaluateRecordedImaEntries(policy.policy, joinRecordedImaEntries([proven, promoted])),
        ...evaluateImaEntries(policy.policy, replay.verified),
      ];
      judged = capFindings(named(policy, parts.filter((f) => !(aggregateProven && isBootAggregateFinding(f)))));
    }
    const kernelSelinux = kernelSelinuxOf(newly, sameBoot ? (stored?.kernelSelinux ?? NO_KERNEL_SELINUX) : NO_KERNEL_SELINUX);
    if (this.selinuxSeen.size > 100_000) this.selinuxSeen.clear();
    this.selinuxSeen.set(nodeId, { resetCount: ctx.clockInfo.resetCount, buffers: kernelSelinux });
    const advanced = replay.state.entryCount !== verified.entryCount || stored === null || !sameBoot || base.pending !== null;
    return {
      findings: [...findings, ...sticky, ...judged],
      // A list that replays but a boot_aggregate that does not match the quoted PCRs: sticky.
      // The policy's judgement is not: it is kept for the boot and judged again on a change.
      sticky: sticky.length > 0,
      reply: { imaEntry: replay.state.entryCount, imaOffset: replay.state.byteOffset },
      ...(advanced || rejudge
        ? {
            commit: async () => {
              const seg = await this.writeSegment(nodeId, base.nextSegment, replay.verified, replay.state.entryCount);
              const next: StoredIma = {
                ...base,
                state: replay.state,
                kernelSelinux,
                pending: null,
                pendingRounds: 0,
                segments: seg === null ? base.segments : [...base.segments, seg],
                nextSegment: base.nextSegment + 1,
                judged: { policySha256: judgedSha, findings: judged },
                bootAggregateProven: aggregateProven,
              };
              await this.persist(nodeId, next, otherBoot);
            },
          }
        : {}),
    };
  }

  /** A kept segment is missing or altered: fail closed, forget the node's IMA state and replay its list from entry 0. */
  private restart(nodeId: string, err: BulwarkError, findings: readonly Finding[]): AppraisalResult {
    const path = corruptPath(err);
    this.log.warn({ node: nodeId, path, error: err.message }, 'stored IMA measurements are corrupt: replaying from entry 0');
    return {
      findings: [...findings, finding('STATE_CORRUPT', `the stored IMA measurements cannot be read (${err.message}); replaying the list from entry 0`, { path })],
      reply: { imaEntry: 0, imaOffset: 0 },
      commit: async () => {
        await this.kv.delete(nodeId);
      },
    };
  }

  /**
   * Judges the node's kept measurements again under the runtime policy that applies now (a
   * policy was pushed or assigned): the findings that replace its IMA_JUDGED_CODES findings,
   * or null when nothing changed (same policy, no state, or a round is writing meanwhile).
   * Trust: the measurements were proven by quotes when kept; the policy is the store's.
   */
  async rejudge(record: NodeRecord): Promise<readonly Finding[] | null> {
    const nodeId = record.nodeId;
    const resolved = await resolvePolicy(this.policies, RUNTIME_POLICY, nodeId, this.log);
    if (resolved.findings.length > 0) return resolved.findings;
    const policy = resolved.policy;
    const loaded = await this.load(nodeId);
    const stored = loaded.stored;
    if (stored === null) return loaded.findings.length > 0 ? loaded.findings : null;
    const sha = policy?.sha256 ?? null;
    if (stored.judged !== null && stored.judged.policySha256 === sha) return null;
    let judged: Finding[] = [];
    if (policy !== null) {
      let kept: RecordedImaEntries;
      try {
        kept = await this.readSegments(nodeId, stored.segments.filter((s) => s.toEntry <= stored.state.entryCount), new Set());
      } catch (err) {
        if (!isBulwarkError(err)) throw err;
        return [finding('STATE_CORRUPT', `the stored IMA measurements cannot be read (${err.message}); the next round replays the list from entry 0`, { path: corruptPath(err) })];
      }
      const all = evaluateRecordedImaEntries(policy.policy, kept);
      judged = capFindings(named(policy, all.filter((f) => !(stored.bootAggregateProven && isBootAggregateFinding(f)))));
    }
    try {
      await this.kv.update(nodeId, encodeStoredIma({ ...stored, judged: { policySha256: sha, findings: judged } }), loaded.revision);
    } catch (err) {
      // A round wrote meanwhile: it judged under the policy in force itself.
      this.log.debug({ node: nodeId, error: err instanceof Error ? err.message : String(err) }, 'IMA re-judging skipped: the state changed meanwhile');
      return null;
    }
    return judged;
  }

  async reset(nodeId: string): Promise<void> {
    const loaded = await this.load(nodeId);
    await this.kv.delete(nodeId);
    if (loaded.stored !== null) await this.dropSegments(nodeId, loaded.stored.segments);
  }
}

function isBootAggregateFinding(f: Finding): boolean {
  return f.details?.['entry'] === 0 && f.details['path'] === 'boot_aggregate';
}

/** The findings of a judgement, each naming the policy and revision it was made under. */
function named(policy: StoredPolicy<RuntimePolicy>, findings: readonly Finding[]): Finding[] {
  return findings.map((f) => ({
    ...f,
    message: f.code === 'IMA_FINDINGS_CAPPED' ? f.message : `${f.message} (runtime policy ${policy.name} revision ${policy.revision})`,
    details: { ...f.details, policy: policy.name, policyRevision: policy.revision, policySha256: policy.sha256 },
  }));
}

/** At most MAX_JUDGED_FINDINGS findings, the rest counted in one IMA_FINDINGS_CAPPED. */
function capFindings(findings: readonly Finding[]): Finding[] {
  let omitted = 0;
  const out: Finding[] = [];
  let capped: Finding | null = null;
  for (const f of findings) {
    if (f.code === 'IMA_FINDINGS_CAPPED') {
      const n = f.details?.['omitted'];
      omitted += typeof n === 'number' ? n : 0;
      capped = f;
    } else if (out.length < MAX_JUDGED_FINDINGS) out.push(f);
    else omitted++;
  }
  if (omitted > 0) out.push(finding('IMA_FINDINGS_CAPPED', `${omitted} more IMA findings were left out`, { ...capped?.details, omitted }));
  return out;
}

/** `before`, with the last selinux-state / selinux-policy-hash ima-buf buffers among `verified` in place of its own. */
function kernelSelinuxOf(verified: readonly ImaEntry[], before: KernelSelinuxBuffers): KernelSelinuxBuffers {
  let { state, policyHash } = before;
  for (const e of verified) {
    if (e.template !== 'ima-buf' || e.buffer === null || e.buffer.length > MAX_KERNEL_SELINUX_BUFFER) continue;
    if (e.path === 'selinux-state') state = e.buffer;
    else if (e.path === 'selinux-policy-hash') policyHash = e.buffer;
  }
  return { state, policyHash };
}

/** The banks whose PCR 10 the quote proves (SHA-256 by default). */
function quotedBanks(ctx: AppraisalContext): number[] {
  const banks = [...ctx.quoted.entries()].filter(([, pcrs]) => pcrs.has(10)).map(([alg]) => alg);
  return banks.length > 0 ? banks : [TPM_ALG.SHA256];
}
