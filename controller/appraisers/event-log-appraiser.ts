/**
 * Measured boot in the evidence flow: every verified quote is matched against the node's
 * UEFI event log (replayed into the quoted PCRs) and the log against the node's
 * measured-boot policy. The controller keeps each node's last log (KV `bulwark_eventlogs`),
 * so an agent sends a log only when it changed (after a reboot), and a controller restart
 * does not need it again. Parse, replay and policy results are memoized by log digest and
 * quoted PCR values: an unchanged log costs one map lookup per round. A UKI host also sends
 * systemd's measurement log every round, replayed with the firmware log into PCRs 11-15.
 */
import { createHash } from 'node:crypto';
import { StorageType, type JetStreamClient, type KV } from 'nats';
import { isBulwarkError, toBulwarkError } from '../../lib/index.js';
import { EventLogCache, evaluateBootLogs, parseSystemdLog, replayBootLogs, validateMeasuredBootPolicy, type MeasuredBootPolicy } from '../../lib/eventlog/index.js';
import { finding, type Finding } from '../../lib/index.js';
import type { PolicyKindName } from '../../lib/attestation/index.js';
import { WIRE_LIMITS } from '../../proto/index.js';
import { resolvePolicy, type AppraisalContext, type AppraisalResult, type Appraiser } from './appraiser.js';
import { silentLogger, type Logger } from '../../daemon/index.js';
import { STREAM_LIMITS, enforceStreamLimits, kvLimits } from '../state/index.js';
import type { PolicyKind, PolicyStore, StoredPolicy } from '../policies/index.js';

export const EVENTLOG_BUCKET = 'bulwark_eventlogs' as const;

/** The measured-boot policy kind (policies/measured-boot/schema.json). */
export const MEASURED_BOOT_POLICY: PolicyKind<MeasuredBootPolicy, Extract<PolicyKindName, 'measured-boot'>> = {
  kind: 'measured-boot',
  parse: (document: unknown) => validateMeasuredBootPolicy(document),
  parsed: new Map(),
  acceptsAll: (policy) => policy.acceptAll,
};

/** The note every verdict under an accept-all measured-boot policy carries. */
export function acceptAllNote(name: string): string {
  return `accept-all measured-boot policy "${name}" in force`;
}

export class EventLogAppraiser implements Appraiser {
  readonly name = 'event-log';
  private readonly kv: KV;
  private readonly policies: PolicyStore;
  private readonly log: Logger;
  private readonly cache = new EventLogCache();
  /** The baseline PCR, left out of the systemd replay (Bulwark's own chain extends it); null: none. */
  private readonly baselinePcr: number | null;
  /** Stored logs read back this process's lifetime, by node: digest and bytes. */
  private readonly held = new Map<string, { digest: string; bytes: Uint8Array }>();

  private constructor(kv: KV, policies: PolicyStore, log: Logger, baselinePcr: number | null) {
    this.baselinePcr = baselinePcr;
    this.log = log;
    this.kv = kv;
    this.policies = policies;
  }

  static async open(js: JetStreamClient, policies: PolicyStore, log: Logger = silentLogger(), baselinePcr: number | null = null): Promise<EventLogAppraiser> {
    policies.register(MEASURED_BOOT_POLICY);
    try {
      const kv = await js.views.kv(EVENTLOG_BUCKET, { history: 1, storage: StorageType.File, maxValueSize: WIRE_LIMITS.eventLog, ...kvLimits(EVENTLOG_BUCKET) });
      await enforceStreamLimits(await js.jetstreamManager(), `KV_${EVENTLOG_BUCKET}`, STREAM_LIMITS[EVENTLOG_BUCKET]);
      return new EventLogAppraiser(kv, policies, log, baselinePcr);
    } catch (err) {
      throw toBulwarkError(err, 'NATS_FAILED', 'cannot open the event log bucket');
    }
  }

  /** The log the controller holds for a node, if its digest is `digest`. */
  private async stored(nodeId: string, digest: string): Promise<Uint8Array | null> {
    const held = this.held.get(nodeId);
    if (held !== undefined && held.digest === digest) return held.bytes;
    const entry = await this.kv.get(nodeId);
    if (entry === null || entry.operation !== 'PUT' || entry.value.length === 0) return null;
    const storedDigest = createHash('sha256').update(entry.value).digest('hex');
    if (this.held.size > 10_000) this.held.clear();
    this.held.set(nodeId, { digest: storedDigest, bytes: entry.value });
    return storedDigest === digest ? entry.value : null;
  }

  async appraise(ctx: AppraisalContext): Promise<AppraisalResult> {
    const resolved = await resolvePolicy(this.policies, MEASURED_BOOT_POLICY, ctx.record.nodeId, this.log);
    if (resolved.findings.length > 0) return { findings: resolved.findings };
    const policy = resolved.policy;
    const result = await this.judgeLog(ctx, policy);
    if (policy === null) {
      // Fail closed: a boot no policy judges is not trusted. The log is still replayed (and
      // kept), so assigning a policy later needs nothing more from the agent.
      const missing = finding('POLICY_MISSING', 'no measured-boot policy is assigned to this node, its group or as the default (bulwarkctl policy assign measured-boot NAME)');
      return { ...result, findings: [...result.findings, missing] };
    }
    return policy.policy.acceptAll ? { ...result, notes: [acceptAllNote(policy.name)] } : result;
  }

  private async judgeLog(ctx: AppraisalContext, policy: StoredPolicy<MeasuredBootPolicy> | null): Promise<AppraisalResult> {
    const { evidence: ev, record } = ctx;
    if (ev.eventLogSha256 === '') {
      // The host has no event log: nothing to replay. Without a policy, POLICY_MISSING
      // follows; an accept-all policy accepts every boot, this one too.
      return policy === null || policy.policy.acceptAll
        ? { findings: [] }
        : { findings: [finding('EVENTLOG_MISSING', `measured-boot policy ${policy.name} applies, but the host sent no event log`)] };
    }
    let bytes: Uint8Array | null = null;
    let received = false;
    if (ev.eventLog.length > 0) {
      const digest = createHash('sha256').update(ev.eventLog).digest('hex');
      if (digest !== ev.eventLogSha256) {
        return { findings: [finding('EVENTLOG_DIGEST_MISMATCH', 'the event log does not hash to the digest sent with it')], reply: { eventLogSha256: '' } };
      }
      bytes = ev.eventLog;
      received = true;
    } else {
      bytes = await this.stored(record.nodeId, ev.eventLogSha256);
    }
    if (bytes === null) {
      // We do not hold the log the agent thinks we have: ask for it; fail closed meanwhile.
      return { findings: [finding('EVENTLOG_MISSING', 'the controller does not hold this event log; the agent will send it')], reply: { eventLogSha256: '' } };
    }

    let findings: readonly Finding[];
    try {
      if (ev.systemdLog.length > 0 || policy?.policy.uki !== undefined) {
        // A UKI boot (or a policy that judges one): the firmware log and systemd's log replay
        // together into PCRs 11-15 (lib/eventlog evaluateBootLogs; no systemd log is
        // SYSTEMD_LOG_MISSING there); the systemd log is a few KiB, parsed every round.
        const firmware = this.cache.parse(bytes).log;
        const systemd = ev.systemdLog.length > 0 ? parseSystemdLog(ev.systemdLog) : null;
        const options = { excludePcrs: this.baselinePcr === null ? [] : [this.baselinePcr] };
        findings =
          policy === null
            ? replayFindings(replayBootLogs(firmware, systemd, ctx.quoted, options))
            : evaluateBootLogs(firmware, systemd, ctx.quoted, policy.policy, options).verdict.findings;
      } else {
        findings =
          policy === null
            ? replayFindings(this.cache.replay(bytes, ctx.quoted))
            : this.cache.evaluate(bytes, ctx.quoted, policy.policy).verdict.findings;
      }
    } catch (err) {
      if (!isBulwarkError(err)) throw err;
      findings = [finding(err.code, err.message, err.details)];
    }
    const logBytes = bytes;
    return {
      findings,
      reply: { eventLogSha256: ev.eventLogSha256 },
      ...(received
        ? {
            commit: async () => {
              await this.kv.put(record.nodeId, logBytes);
              this.held.set(record.nodeId, { digest: ev.eventLogSha256, bytes: logBytes });
            },
          }
        : {}),
    };
  }

  async reset(nodeId: string): Promise<void> {
    this.held.delete(nodeId);
    await this.kv.delete(nodeId);
  }
}

function replayFindings(result: { ok: true } | { ok: false; findings: readonly Finding[] }): readonly Finding[] {
  return result.ok ? [] : result.findings;
}
