/**
 * Host baselines in the evidence flow. The agent extends the sha256 of every baseline
 * report (its host's SELinux and nftables state, lib/baseline) into the baseline PCR before
 * it quotes, and sends the reports the controller does not hold yet. Per node the
 * controller keeps, durably in KV `bulwark_baselines`, where the chain of the current boot
 * stands (report count, the PCR value they replay to, the latest report) and replays each
 * round's new reports from there to the quoted PCR, like the IMA list: an edited, dropped
 * or reordered report no longer replays (BASELINE_REPLAY_MISMATCH) and nothing of that
 * round is stored. Every new report is judged against the node's baseline (a round that
 * carries a drift and its correction is untrusted; the next round without drift is
 * trusted again), or the latest report when none is new; SELinux as the kernel measured
 * it (IMA critical data, from the IMA appraiser) wins over what the host reports. The
 * corrections an agent reports (enforce mode) are written to the admin audit, once.
 */
import { createHash } from 'node:crypto';
import { Type, type Static } from '@sinclair/typebox';
import { StorageType, type JetStreamClient, type KV } from 'nats';
import { BulwarkError, finding, fromHex, isBulwarkError, toBulwarkError, toHex, type Finding } from '../../lib/index.js';
import { corruptPath, type PolicyKindName } from '../../lib/attestation/index.js';
import {
  decodeReport,
  judgeBaseline,
  kernelSelinuxFromImaBuf,
  MAX_REPORT_BYTES,
  replayReportChain,
  SELINUX_IMA_EVENTS,
  validateBaseline,
  type Baseline,
  type BaselineReport,
  type EnforcementAction,
  type KernelSelinux,
} from '../../lib/baseline/index.js';
import { defineDocument, literalUnion } from '../../lib/schema/index.js';
import { TPM_ALG } from '../../lib/tpm/index.js';
import { resolvePolicy, type AppraisalContext, type AppraisalResult, type Appraiser, type ReplyPatch } from './appraiser.js';
import type { KernelSelinuxBuffers } from './ima-appraiser.js';
import { silentLogger, type Logger } from '../../daemon/index.js';
import { STREAM_LIMITS, enforceStreamLimits, kvLimits, type AdminAudit } from '../state/index.js';
import type { KeySetStore, PolicyKind, PolicyStore, StoredPolicy } from '../policies/index.js';
import { WIRE_LIMITS } from '../../proto/index.js';

export const BASELINE_BUCKET = 'bulwark_baselines' as const;

/** The baseline policy kind (policies/baselines/schema.json). */
export const BASELINE_POLICY: PolicyKind<Baseline, Extract<PolicyKindName, 'baseline'>> = {
  kind: 'baseline',
  parse: (document: unknown) => validateBaseline(document),
  parsed: new Map(),
};

/** The note a verdict carries when no baseline applies and the controller does not require one. */
export const NO_BASELINE_NOTE = 'no baseline assigned';

const HEX64 = '^[0-9a-f]{64}$';
/** Base64 of the largest report decodeReport reads; a larger latest report is kept as its digest only. */
const MAX_REPORT_BASE64 = Math.ceil(MAX_REPORT_BYTES / 3) * 4;
/** Findings and enforcement actions kept per record. */
const MAX_KEPT = 256;

const StoredFindingSchema = Type.Object(
  { code: Type.String({ maxLength: 64 }), message: Type.String({ maxLength: 4096 }) },
  { additionalProperties: false },
);

const StoredActionSchema = Type.Object(
  {
    target: literalUnion(['nftables', 'selinux']),
    action: Type.String({ maxLength: 4096 }),
    changed: Type.String({ maxLength: 4096 }),
    ok: Type.Boolean(),
    error: Type.Optional(Type.String({ maxLength: 4096 })),
  },
  { additionalProperties: false },
);

/** A node's baseline chain and its last judgement (KV `bulwark_baselines`, key: node id). */
export const StoredBaselineSchema = Type.Object(
  {
    version: Type.Literal(1),
    /** TPM resetCount and Linux boot id of the boot this chain belongs to (the PCR starts at zero each boot). */
    resetCount: Type.Integer({ minimum: 0, maximum: 0xffffffff }),
    bootId: Type.String({ maxLength: 128 }),
    /** Reports of this boot's chain the controller verified. */
    count: Type.Integer({ minimum: 0 }),
    /** The baseline PCR (sha256 bank) those reports replay to, hex. */
    pcr: Type.String({ pattern: HEX64 }),
    /** The latest report: its sha256, its bytes (base64; "" when larger than a report may be) and when it arrived; null before the first. */
    latest: Type.Union([
      Type.Object(
        {
          sha256: Type.String({ pattern: HEX64 }),
          bytes: Type.String({ maxLength: MAX_REPORT_BASE64, pattern: '^[A-Za-z0-9+/]*={0,2}$' }),
          receivedAt: Type.String({ maxLength: 64 }),
        },
        { additionalProperties: false },
      ),
      Type.Null(),
    ]),
    /** The last judgement: which baseline (null: none applied) and what it found. */
    judged: Type.Object(
      {
        at: Type.String({ maxLength: 64 }),
        baseline: Type.Union([Type.Object({ name: Type.String({ maxLength: 128 }), sha256: Type.String({ pattern: HEX64 }) }, { additionalProperties: false }), Type.Null()]),
        findings: Type.Array(StoredFindingSchema, { maxItems: MAX_KEPT }),
      },
      { additionalProperties: false },
    ),
    /** The last corrections the agent reported (any boot): report position, time, actions. */
    lastEnforcement: Type.Union([
      Type.Object(
        {
          at: Type.String({ maxLength: 64 }),
          bootId: Type.String({ maxLength: 128 }),
          seq: Type.Integer({ minimum: 0 }),
          actions: Type.Array(StoredActionSchema, { maxItems: MAX_KEPT }),
        },
        { additionalProperties: false },
      ),
      Type.Null(),
    ]),
  },
  { additionalProperties: false },
);

export type StoredBaseline = Static<typeof StoredBaselineSchema>;

const STORED_BASELINE = defineDocument(StoredBaselineSchema, 'stored baseline chain', 'STORE_CORRUPT');

/** Decodes a node's stored baseline chain: STORE_CORRUPT naming the JSON path when it does not. */
export function decodeStoredBaseline(bytes: Uint8Array, nodeId: string): StoredBaseline {
  return STORED_BASELINE.parseJson(bytes, `${BASELINE_BUCKET}/${nodeId}`);
}

/** Where the kernel's own SELinux measurements of a boot come from (the IMA appraiser). */
export interface KernelSelinuxSource {
  kernelSelinux(nodeId: string, resetCount: number): Promise<KernelSelinuxBuffers>;
}

export interface BaselineAppraiserOptions {
  /** The PCR the reports are extended into (config baselinePcr). */
  readonly pcr: number;
  /** No baseline assigned: POLICY_MISSING (true) or a note (false). */
  readonly requireBaseline: boolean;
  readonly kernel: KernelSelinuxSource;
  /** Where reported corrections are recorded; none: not recorded (tests of other parts). */
  readonly audit?: AdminAudit | null;
  /** The trusted key sets: an agent pinning baseline keys is sent the rotations after its serial (none: nothing sent). */
  readonly keysets?: KeySetStore | null;
  readonly log?: Logger;
}

/** A node's baseline as `bulwarkctl baseline show` sees it: the stored chain, the latest report decoded. */
export interface BaselineStatus {
  readonly nodeId: string;
  /** The baseline that applies now (null: none). */
  readonly baseline: { readonly name: string; readonly sha256: string; readonly mode: Baseline['mode'] } | null;
  readonly stored: StoredBaseline | null;
  /** The latest report, or null (none, or it does not decode: `reportError`). */
  readonly latest: BaselineReport | null;
  readonly reportError: string | null;
}

/** One report of a round, in chain position. */
interface Arrived {
  readonly index: number;
  readonly bytes: Uint8Array;
}

const ZERO_PCR = new Uint8Array(32);
const enc = new TextEncoder();

function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export class BaselineAppraiser implements Appraiser {
  readonly name = 'baseline';
  private readonly kv: KV;
  private readonly policies: PolicyStore;
  private readonly opts: BaselineAppraiserOptions;
  private readonly log: Logger;
  /** The assigned document as sent to agents, by stored policy digest. */
  private readonly documents = new Map<string, { readonly bytes: Uint8Array; readonly sha256: string }>();
  /** Decoded reports by sha256 (the latest report is judged again every round without a new one). */
  private readonly decoded = new Map<string, BaselineReport>();

  private constructor(kv: KV, policies: PolicyStore, opts: BaselineAppraiserOptions) {
    this.kv = kv;
    this.policies = policies;
    this.opts = opts;
    this.log = opts.log ?? silentLogger();
  }

  static async open(js: JetStreamClient, policies: PolicyStore, opts: BaselineAppraiserOptions): Promise<BaselineAppraiser> {
    policies.register(BASELINE_POLICY);
    try {
      const kv = await js.views.kv(BASELINE_BUCKET, { history: 1, storage: StorageType.File, maxValueSize: MAX_REPORT_BASE64 + 256 * 1024, ...kvLimits(BASELINE_BUCKET) });
      await enforceStreamLimits(await js.jetstreamManager(), `KV_${BASELINE_BUCKET}`, STREAM_LIMITS[BASELINE_BUCKET]);
      return new BaselineAppraiser(kv, policies, opts);
    } catch (err) {
      throw toBulwarkError(err, 'NATS_FAILED', 'cannot open the baseline bucket');
    }
  }

  /**
   * What agents are sent for a stored baseline and their sha256: the DSSE envelope it was
   * pushed as (the agent verifies it before enforcing), else (a store without signing) its
   * canonical JSON bytes.
   */
  private document(policy: StoredPolicy<Baseline>): { bytes: Uint8Array; sha256: string } {
    let doc = this.documents.get(policy.sha256);
    if (doc === undefined) {
      const bytes = enc.encode(policy.envelope ?? JSON.stringify(policy.policy));
      doc = { bytes, sha256: sha256Hex(bytes) };
      if (this.documents.size > 256) this.documents.clear();
      this.documents.set(policy.sha256, doc);
    }
    return doc;
  }

  /**
   * The baseline key set rotations an agent has not walked yet (it pins keys and reported
   * an older serial), oldest first, as many as one reply carries. A store that cannot be
   * read sends none this round (the agent keeps the set it trusts).
   */
  private async keySetChain(nodeId: string, pinned: boolean, serial: number): Promise<Uint8Array[]> {
    const keysets = this.opts.keysets ?? null;
    if (keysets === null || !pinned) return [];
    try {
      return await keysets.chainAfter('baseline', serial, WIRE_LIMITS.keysets, WIRE_LIMITS.keysetChunk);
    } catch (err) {
      this.log.warn({ node: nodeId, code: isBulwarkError(err) ? err.code : 'INTERNAL', error: err instanceof Error ? err.message : String(err) }, 'cannot read the baseline key sets: no rotation sent this round');
      return [];
    }
  }

  /** A report decoded (cached by digest); a BulwarkError for one that does not decode. */
  private decode(bytes: Uint8Array, digest: string = sha256Hex(bytes)): BaselineReport {
    let report = this.decoded.get(digest);
    if (report === undefined) {
      report = decodeReport(bytes);
      if (this.decoded.size > 1024) this.decoded.clear();
      this.decoded.set(digest, report);
    }
    return report;
  }

  /** The stored chain of a node, or null (none, or corrupt: then also the finding). */
  private async stored(nodeId: string): Promise<{ readonly stored: StoredBaseline | null; readonly findings: readonly Finding[] }> {
    const entry = await this.kv.get(nodeId);
    if (entry === null || entry.operation !== 'PUT' || entry.value.length === 0) return { stored: null, findings: [] };
    try {
      return { stored: decodeStoredBaseline(entry.value, nodeId), findings: [] };
    } catch (err) {
      if (!isBulwarkError(err)) throw err;
      // The chain position cannot be trusted: it starts again from report 0 (the agent
      // resends the whole chain, which must replay from zero), and this round is untrusted.
      const path = corruptPath(err);
      this.log.warn({ node: nodeId, path, error: err.message }, 'stored baseline chain is corrupt: replaying from report 0');
      return { stored: null, findings: [finding('STATE_CORRUPT', `the stored baseline chain does not decode (${err.message}); replaying the reports from 0`, { path })] };
    }
  }

  async appraise(ctx: AppraisalContext): Promise<AppraisalResult> {
    const { evidence: ev, record } = ctx;
    const nodeId = record.nodeId;
    const resolved = await resolvePolicy(this.policies, BASELINE_POLICY, nodeId, this.log);
    const policy = resolved.policy;
    const doc = policy === null ? null : this.document(policy);
    const assigned: ReplyPatch = {
      baselineSha256: doc?.sha256 ?? '',
      baseline: doc !== null && ev.baselineSha256 !== doc.sha256 ? doc.bytes : new Uint8Array(0),
      baselineKeysets: await this.keySetChain(nodeId, ev.baselineKeysPinned, ev.baselineKeysetSerial),
    };
    const read = await this.stored(nodeId);
    const findings: Finding[] = [...resolved.findings, ...read.findings];
    const before = read.stored;
    // A new boot (or a chain of another boot) starts from zero reports and a zero PCR.
    const sameBoot = before !== null && !ctx.newBoot && before.resetCount === ctx.clockInfo.resetCount && before.bootId === ev.bootId;
    const heldCount = sameBoot ? before.count : 0;
    const heldPcr = sameBoot ? fromHex(before.pcr) : ZERO_PCR;

    // Where this round's reports start: from 0 (an agent's first round after its start), or
    // where the controller's chain stands. Anything else skips reports nobody verified.
    if (ev.baselineFrom !== 0 && ev.baselineFrom !== heldCount) {
      findings.push(
        finding('BASELINE_REPORT_MISSING', `the agent sent baseline reports from ${ev.baselineFrom}, the controller verified ${heldCount}; it sends the rest next round`, {
          from: ev.baselineFrom,
          held: heldCount,
        }),
      );
      return { findings, reply: { ...assigned, baselineReports: heldCount } };
    }
    const quoted = ctx.quoted.get(TPM_ALG.SHA256)?.get(this.opts.pcr);
    const replay = quoted === undefined ? null : replayReportChain(ev.baselineFrom === 0 ? ZERO_PCR : heldPcr, ev.baselineReports, quoted);
    if (replay === null || !replay.ok) {
      // Not committed: the chain stays where it was verified last.
      findings.push(
        replay === null
          ? finding('BASELINE_REPLAY_MISMATCH', `the quote does not cover the baseline PCR ${this.opts.pcr} (sha256)`, { pcr: this.opts.pcr })
          : finding(replay.finding.code, `PCR ${this.opts.pcr}, reports from ${ev.baselineFrom}: ${replay.finding.message}`, { ...replay.finding.details, pcr: this.opts.pcr, from: ev.baselineFrom }),
      );
      return { findings, reply: { ...assigned, baselineReports: heldCount } };
    }
    const pcr = replay.value;
    const count = ev.baselineFrom + ev.baselineReports.length;
    // Reports resent from 0 that the controller verified before are not new.
    const fresh: Arrived[] = ev.baselineReports.map((bytes, i) => ({ index: ev.baselineFrom + i, bytes })).filter((r) => r.index >= heldCount);
    const latestArrived = fresh.at(-1);
    const now = new Date(ctx.now).toISOString();
    const latest =
      latestArrived !== undefined
        ? {
            sha256: sha256Hex(latestArrived.bytes),
            bytes: latestArrived.bytes.length > MAX_REPORT_BYTES ? '' : Buffer.from(latestArrived.bytes).toString('base64'),
            receivedAt: now,
          }
        : sameBoot
          ? before.latest
          : null;

    // Every new report is judged (so drift corrected within one round still shows), else the latest.
    const reports: BaselineReport[] = [];
    const judged: Arrived[] = fresh.length > 0 ? fresh : latest === null ? [] : [{ index: count - 1, bytes: Buffer.from(latest.bytes, 'base64') }];
    for (const r of judged) {
      try {
        reports.push(this.checkedReport(r, nodeId));
      } catch (err) {
        if (!isBulwarkError(err)) throw err;
        findings.push(finding('BASELINE_REPORT_INVALID', `baseline report ${r.index} is invalid: ${err.message}`, { ...err.details, report: r.index, code: err.code }));
      }
    }
    const notes: string[] = [];
    if (policy === null) {
      if (resolved.findings.length === 0) {
        if (this.opts.requireBaseline) {
          findings.push(finding('POLICY_MISSING', 'no baseline is assigned to this node, its group or as the default (bulwarkctl policy assign baseline NAME)', { kind: 'baseline' }));
        } else notes.push(NO_BASELINE_NOTE);
      }
    } else if (count === 0) {
      findings.push(finding('BASELINE_REPORT_MISSING', `baseline ${policy.name} applies, but the host has reported no baseline state this boot`, { held: 0 }));
    } else if (reports.length > 0) {
      const kernel = await this.kernelSelinux(nodeId, ctx.clockInfo.resetCount, findings);
      findings.push(...judgeBaseline({ baseline: policy.policy, baselineSha256: doc?.sha256 ?? '', reports, kernel }));
    }

    const enforced = reports.filter((r) => fresh.some((f) => f.index === r.seq) && r.enforcement.length > 0);
    const lastEnforced = enforced.at(-1);
    const next: StoredBaseline = {
      version: 1,
      resetCount: ctx.clockInfo.resetCount,
      bootId: ev.bootId,
      count,
      pcr: toHex(pcr),
      latest,
      judged: {
        at: now,
        baseline: policy === null || doc === null ? null : { name: policy.name, sha256: doc.sha256 },
        findings: findings.slice(0, MAX_KEPT).map((f) => ({ code: f.code, message: f.message.slice(0, 4096) })),
      },
      lastEnforcement:
        lastEnforced === undefined
          ? (before?.lastEnforcement ?? null)
          : { at: now, bootId: ev.bootId, seq: lastEnforced.seq, actions: lastEnforced.enforcement.slice(0, MAX_KEPT).map(storedAction) },
    };
    const changed = !sameBoot || count !== heldCount || !sameJudgement(before.judged, next.judged);
    return {
      findings,
      notes,
      reply: { ...assigned, baselineReports: count },
      ...(changed
        ? {
            commit: async () => {
              // Audited before the chain moves on: a record that cannot be written is tried again next round.
              for (const r of enforced) await this.auditEnforcement(nodeId, ev.bootId, r, policy);
              await this.kv.put(nodeId, enc.encode(JSON.stringify(next)));
            },
          }
        : {}),
    };
  }

  /** SELinux as the kernel measured it this boot (IMA critical data), null when it measured nothing; a buffer that does not read is a finding. */
  private async kernelSelinux(nodeId: string, resetCount: number, findings: Finding[]): Promise<KernelSelinux | null> {
    const buffers = await this.opts.kernel.kernelSelinux(nodeId, resetCount);
    const entries = [
      ...(buffers.state === null ? [] : [{ name: SELINUX_IMA_EVENTS.state, data: buffers.state }]),
      ...(buffers.policyHash === null ? [] : [{ name: SELINUX_IMA_EVENTS.policyHash, data: buffers.policyHash }]),
    ];
    if (entries.length === 0) return null;
    try {
      return kernelSelinuxFromImaBuf(entries);
    } catch (err) {
      if (!isBulwarkError(err)) throw err;
      findings.push(finding(err.code, `the kernel's SELinux measurement does not read: ${err.message}`, err.details));
      return null;
    }
  }

  /** A report decoded and checked against its place in the chain (node, position). */
  private checkedReport(r: Arrived, nodeId: string): BaselineReport {
    const report = this.decode(r.bytes);
    if (report.node !== nodeId) throw new BulwarkError('BASELINE_REPORT_INVALID', `it names node ${JSON.stringify(report.node.slice(0, 128))}`, { node: report.node.slice(0, 128) });
    if (report.seq !== r.index) throw new BulwarkError('BASELINE_REPORT_INVALID', `it says it is report ${report.seq} of the chain`, { seq: report.seq });
    return report;
  }

  private async auditEnforcement(nodeId: string, bootId: string, report: BaselineReport, policy: StoredPolicy<Baseline> | null): Promise<void> {
    const details: Record<string, string | number | boolean> = {
      actor: `node:${nodeId}`,
      bootId: bootId.slice(0, 128),
      seq: report.seq,
      reportTime: report.time.slice(0, 64),
      baseline: report.baseline?.name ?? policy?.name ?? '',
      actions: report.enforcement.length,
      ok: report.enforcement.every((a) => a.ok),
    };
    report.enforcement.slice(0, 24).forEach((a, i) => {
      details[`action${i}`] = `${a.target}: ${a.action} (changed: ${a.changed})${a.ok ? '' : ` failed: ${a.error ?? ''}`}`.slice(0, 4096);
    });
    await this.opts.audit?.record('baseline.enforced', nodeId, details);
  }

  /** What `bulwarkctl baseline show` reports for a node. */
  async status(nodeId: string): Promise<BaselineStatus> {
    const resolved = await resolvePolicy(this.policies, BASELINE_POLICY, nodeId, this.log);
    const policy = resolved.policy;
    const baseline = policy === null ? null : { name: policy.name, sha256: this.document(policy).sha256, mode: policy.policy.mode };
    const { stored } = await this.stored(nodeId);
    let latest: BaselineReport | null = null;
    let reportError: string | null = null;
    if (stored?.latest != null) {
      try {
        latest = this.decode(Buffer.from(stored.latest.bytes, 'base64'), stored.latest.sha256);
      } catch (err) {
        if (!isBulwarkError(err)) throw err;
        reportError = `${err.code}: ${err.message}`;
      }
    }
    return { nodeId, baseline, stored, latest, reportError };
  }

  async reset(nodeId: string): Promise<void> {
    await this.kv.delete(nodeId);
  }
}

function storedAction(a: EnforcementAction): Static<typeof StoredActionSchema> {
  return {
    target: a.target,
    action: a.action.slice(0, 4096),
    changed: a.changed.slice(0, 4096),
    ok: a.ok,
    ...(a.error === undefined ? {} : { error: a.error.slice(0, 4096) }),
  };
}

function sameJudgement(a: StoredBaseline['judged'], b: StoredBaseline['judged']): boolean {
  if (a.baseline?.sha256 !== b.baseline?.sha256 || a.findings.length !== b.findings.length) return false;
  return a.findings.every((f, i) => f.code === b.findings[i]?.code && f.message === b.findings[i]?.message);
}
