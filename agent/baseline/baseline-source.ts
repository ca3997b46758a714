/**
 * The host baseline as evidence: before each quote the agent reads SELinux and nftables,
 * writes a baseline report when the state changed (or at the boot's first round), corrects
 * drift first when the held baseline is in enforce mode, and extends every report's sha256
 * into the baseline PCR, so the quote that follows covers the chain of reports. Each round
 * then ships the reports the controller does not hold yet.
 *
 * Order that keeps the chain honest: a report is appended to the log (fsynced) and then
 * extended; the log is the only copy of what went into the PCR. At start the log is
 * replayed against the PCR: a report appended but not extended (the agent stopped between
 * the two) is extended then.
 *
 * The held baseline comes from the controller (reply.baseline, sent when the agent's
 * sha256 differs): the DSSE envelope the operator signed (a controller without signing
 * sends the bare document). Its bytes are kept as received in baseline.json so their
 * sha256 is the controller's. With pinned keys (config baselineKeySet, or baselineKeys)
 * the agent verifies the envelope itself against the baseline key set in force
 * (key-trust.ts: the pinned root and the rotations the controller sent, walked by TUF's
 * rules) and refuses anything else (a bare document, another payloadType, a signature of
 * another key, a changed byte), keeping the baseline it held; without pinned keys nothing
 * it receives can be verified, so it is held and reported against but never enforced. A
 * rotation that drops the keys the held baseline was signed by stops its enforcement until
 * the controller sends one signed by the new set.
 */
import { createHash } from 'node:crypto';
import { canonicalJson } from '../../lib/schema/index.js';
import { open, readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { BulwarkError, isBulwarkError, toHex } from '../../lib/index.js';
import { verdictOf } from '../../lib/attestation/index.js';
import { TPM_ALG } from '../../lib/tpm/index.js';
import {
  decodeReport,
  describeNftChanges,
  encodeReport,
  extendReport,
  parseNftRuleset,
  describeSelinuxChanges,
  parseBaselineJson,
  type Baseline,
  type BaselineReport,
  type EnforcementAction,
} from '../../lib/baseline/index.js';
import { parseEnvelope, PAYLOAD_TYPES, type TrustedKeySet } from '../../lib/dsse/index.js';
import { pinnedKeySet, verifyWithKeySet, type KeySet } from '../../lib/signing/index.js';
import { BaselineKeyTrust } from './key-trust.js';
import { WIRE_LIMITS, type EvidenceReplyMsg } from '../../proto/index.js';
import type { Logger } from '../../daemon/index.js';
import type { EvidenceSource, RoundContext, SourceFields } from '../evidence-source.js';
import type { Tpm } from '../tpm.js';
import type { Nftables, NftMonitor } from './nft.js';
import { ReportLog } from './report-log.js';
import { BaselineEnforcer, isReportError, reportError, type HostState, type NftablesPart, type SelinuxPart } from './enforcer.js';

/** A report's `changes`: at most this many, each at most this long (lib/baseline/report.ts schema). */
const MAX_CHANGES = 1000;
const MAX_CHANGE_CHARS = 1000;
/** nft monitor output within this window after a trigger asks for one more round at its end, not one per line. */
const DEFAULT_DEBOUNCE_MS = 100;

export interface BaselineSourceOptions {
  readonly tpm: Pick<Tpm, 'extendPcr' | 'readPcrs'>;
  readonly nft: Nftables;
  /** Root of the SELinux tree ("/" on a host). */
  readonly selinuxRoot: string;
  /** The agent's data directory: baseline.json and baseline-reports/ live here. */
  readonly dataDir: string;
  /** The PCR reports are extended into (sha256 bank). */
  readonly pcr: number;
  readonly bootId: () => Promise<string>;
  readonly log: Logger;
  readonly now?: () => Date;
  readonly debounceMs?: number;
  /** The keys a baseline envelope must be signed by (config baselineKeys); null: none, baselines are never enforced. */
  readonly baselineKeys?: TrustedKeySet | null;
  /** How many distinct baselineKeys must have signed (config baselineKeyThreshold, default 1). */
  readonly baselineKeyThreshold?: number;
  /** The pinned root baseline key set (config baselineKeySet); wins over baselineKeys. */
  readonly baselineKeySet?: KeySet | null;
}

/** The baseline the agent holds: the document, its bytes as received and their sha256. */
export interface HeldBaseline {
  readonly baseline: Baseline;
  readonly bytes: Uint8Array;
  readonly sha256: string;
  /** Whether the agent verified the envelope's signatures itself (baselineKeys): only then is it enforced. */
  readonly verified?: boolean;
}

/** Reads a baseline document (JSON bytes) through the lib's validator; a BulwarkError names what is wrong. */
export function parseBaselineBytes(bytes: Uint8Array, what: string): HeldBaseline {
  if (bytes.length > WIRE_LIMITS.baseline) throw new BulwarkError('BASELINE_INVALID', `${what} is larger than ${WIRE_LIMITS.baseline} bytes`, { size: bytes.length });
  const baseline = parseBaselineJson(bytes, what);
  return { baseline, bytes: new Uint8Array(bytes), sha256: createHash('sha256').update(bytes).digest('hex') };
}

/**
 * Reads a baseline as the controller sends it. With `trust` (the baseline key set in
 * force): a DSSE envelope of the baseline payloadType signed by a threshold of its keys
 * (ENVELOPE_MALFORMED, PAYLOAD_TYPE_MISMATCH, SIGNATURE_INVALID, SIGNATURE_THRESHOLD_NOT_MET,
 * KEYSET_EXPIRED otherwise), whose payload is a baseline: verified. Without: an envelope's
 * payload or a bare document, unverified.
 */
export function parseReceivedBaseline(bytes: Uint8Array, what: string, trust: KeySet | null, now: number = Date.now()): HeldBaseline {
  if (bytes.length > WIRE_LIMITS.baseline) throw new BulwarkError('BASELINE_INVALID', `${what} is larger than ${WIRE_LIMITS.baseline} bytes`, { size: bytes.length });
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  if (trust !== null) {
    if (trust.document.kind !== 'baseline') throw new BulwarkError('USAGE', `a baseline is verified with the baseline key set, not the ${trust.document.kind} one`);
    const verified = verifyWithKeySet(bytes, trust, now);
    return { baseline: parseBaselineJson(verified.payload, `${what} (signed payload)`), bytes: new Uint8Array(bytes), sha256, verified: true };
  }
  let envelope: ReturnType<typeof parseEnvelope> | null = null;
  try {
    envelope = parseEnvelope(bytes);
  } catch {
    // Not an envelope: the bare document of a controller without signing.
  }
  if (envelope === null) return { ...parseBaselineBytes(bytes, what), verified: false };
  if (envelope.payloadType !== PAYLOAD_TYPES.baseline) {
    throw new BulwarkError('PAYLOAD_TYPE_MISMATCH', `${what}: envelope payloadType is not ${PAYLOAD_TYPES.baseline}`, { expected: PAYLOAD_TYPES.baseline });
  }
  return { baseline: parseBaselineJson(envelope.payload, `${what} (unverified payload)`), bytes: new Uint8Array(bytes), sha256, verified: false };
}

/** The part of a report that decides whether the state changed: SELinux, nftables digest and exposure (or errors), held baseline. */
function stateKey(report: Pick<BaselineReport, 'baseline' | 'selinux' | 'nftables'>): string {
  const nft = isReportError(report.nftables) ? report.nftables : { digest: report.nftables.digest, exposure: report.nftables.exposure };
  return canonicalJson({ baseline: report.baseline, selinux: report.selinux, nftables: nft });
}

function selinuxChanges(previous: BaselineReport['selinux'], current: SelinuxPart): string[] {
  if (isReportError(current)) return isReportError(previous) && previous.error.code === current.error.code ? [] : [`SELinux unreadable (${current.error.code}: ${current.error.message})`];
  if (isReportError(previous)) return ['SELinux readable again'];
  return describeSelinuxChanges(previous.state, current.state);
}

function describeNftablesChanges(previous: BaselineReport['nftables'], current: NftablesPart): string[] {
  if (isReportError(current)) return isReportError(previous) && previous.error.code === current.error.code ? [] : [`nftables: unreadable (${current.error.code}: ${current.error.message})`];
  if (isReportError(previous)) return ['nftables: readable again'];
  if (previous.digest === current.digest) return [];
  try {
    return describeNftChanges(parseNftRuleset({ value: previous.ruleset }), current.ruleset);
  } catch (err) {
    return [`nftables: ruleset changed (digest ${previous.digest.slice(0, 12)} → ${current.digest.slice(0, 12)}; the previous one does not parse: ${err instanceof Error ? err.message : String(err)})`];
  }
}

/** The baseline source of bulwark-agent (its reports are the agent's claims; the TPM binds their order and content). */
export class BaselineSource implements EvidenceSource {
  readonly name = 'baseline';
  private readonly opts: BaselineSourceOptions;
  /** Reads the host's state and corrects drift. */
  readonly enforcer: BaselineEnforcer;
  private reportLog: ReportLog | null = null;
  /** Records of the log extended into the PCR (the first `extended` ones). */
  private extended = 0;
  /** The last report of the chain, decoded (null: none this boot, or it does not decode). */
  private last: BaselineReport | null = null;
  /** Reports the controller holds for this boot; null until it says (the first round after start sends all). */
  private acked: number | null = null;
  private held: HeldBaseline | null = null;
  /** The pinned root key set (null: no keys pinned, nothing is verified). */
  private readonly root: KeySet | null;
  /** The set in force and its rotations, loaded with the held baseline. */
  private keyTrust: BaselineKeyTrust | null = null;
  private heldLoaded = false;
  /** A baseline being written to baseline.json. */
  private saving: Promise<void> = Promise.resolve();
  private monitor: NftMonitor | null = null;
  private trigger: (() => void) | null = null;
  private debounceTimer: NodeJS.Timeout | null = null;
  private changedInWindow = false;

  constructor(opts: BaselineSourceOptions) {
    this.opts = opts;
    const keys: TrustedKeySet | null = opts.baselineKeys ?? null;
    this.root = opts.baselineKeySet ?? (keys === null ? null : pinnedKeySet('baseline', keys, opts.baselineKeyThreshold ?? 1));
    this.enforcer = new BaselineEnforcer({ nft: opts.nft, selinuxRoot: opts.selinuxRoot, log: opts.log });
  }

  private get heldPath(): string {
    return join(this.opts.dataDir, 'baseline.json');
  }

  /** The baseline held now (null before the controller sent one). */
  get heldBaseline(): HeldBaseline | null {
    return this.held;
  }

  /** The baseline key set in force (null: no keys pinned); the pinned root until the rotations are loaded. */
  get baselineKeySet(): KeySet | null {
    return this.keyTrust?.keyset ?? this.root;
  }

  /** Resolves when the key set rotations accepted so far are on disk. */
  async keySetsSaved(): Promise<void> {
    await this.keyTrust?.saved();
  }

  /** Whether the held baseline is enforced: in enforce mode and verified by the agent (pinned keys). */
  get enforcing(): boolean {
    return this.held !== null && this.held.baseline.mode === 'enforce' && this.held.verified === true;
  }

  /** This boot's chain of encoded reports (extended ones only). */
  get reports(): readonly Uint8Array[] {
    return (this.reportLog?.records ?? []).slice(0, this.extended);
  }

  /** Loads baseline.json once; one that does not validate is ignored with a warn line. */
  async loadHeldBaseline(): Promise<HeldBaseline | null> {
    if (this.heldLoaded) return this.held;
    this.heldLoaded = true;
    if (this.root !== null && this.keyTrust === null) this.keyTrust = await BaselineKeyTrust.load(this.root, this.opts.dataDir, this.opts.log);
    let bytes: Uint8Array;
    try {
      bytes = await readFile(this.heldPath);
    } catch {
      return null;
    }
    try {
      this.held = parseReceivedBaseline(bytes, this.heldPath, this.baselineKeySet, this.nowMs());
      this.warnUnverified(this.held);
    } catch (err) {
      this.opts.log.warn({ path: this.heldPath, code: isBulwarkError(err) ? err.code : 'INTERNAL', error: err instanceof Error ? err.message : String(err) }, 'the held baseline does not validate: ignored until the controller sends one');
    }
    return this.held;
  }

  /** Opens this boot's log (a new boot starts a new chain) and, once per log, matches the PCR to it. */
  private async openLog(): Promise<ReportLog> {
    const boot = await this.opts.bootId();
    if (this.reportLog !== null && this.reportLog.bootId === boot) return this.reportLog;
    const { log, droppedTail } = await ReportLog.open(join(this.opts.dataDir, 'baseline-reports'), boot);
    if (droppedTail > 0) this.opts.log.warn({ bytes: droppedTail }, 'dropped a baseline report cut short at the end of the log (never extended)');
    if (this.reportLog !== null) this.acked = null;
    this.reportLog = log;
    this.extended = await this.replayedPrefix(log);
    const lastBytes = log.records[log.length - 1];
    this.last = null;
    if (lastBytes !== undefined) {
      try {
        this.last = decodeReport(lastBytes);
      } catch (err) {
        this.opts.log.warn({ code: isBulwarkError(err) ? err.code : 'INTERNAL' }, 'the last baseline report of the log does not decode: the next report is written as a first one');
      }
    }
    return log;
  }

  /**
   * How many of the log's records the PCR already holds: the longest prefix whose replay
   * from zero equals the PCR. All of them normally; one less when the agent stopped
   * between append and extend. None matching means something else extends this PCR:
   * said in an error line (the controller will find the chain does not replay).
   */
  private async replayedPrefix(log: ReportLog): Promise<number> {
    const banks = await this.opts.tpm.readPcrs(`sha256:${this.opts.pcr}`);
    const value = banks.get(TPM_ALG.SHA256)?.get(this.opts.pcr);
    if (value === undefined) throw new BulwarkError('TPM_PCR_BANK_UNAVAILABLE', `no sha256 value for PCR ${this.opts.pcr}`);
    const target = toHex(value);
    let pcr: Uint8Array = new Uint8Array(32);
    const prefixes = [toHex(pcr)];
    for (const record of log.records) {
      pcr = extendReport(pcr, record);
      prefixes.push(toHex(pcr));
    }
    const matched = prefixes.lastIndexOf(target);
    if (matched >= 0) return matched;
    this.opts.log.error({ pcr: this.opts.pcr, reports: log.length }, 'the baseline PCR does not replay from this boot\'s report log: something else extends it (set baselinePcr), or the log was lost');
    return log.length;
  }

  /** Extends the records appended but not extended yet. */
  private async extendPending(log: ReportLog): Promise<void> {
    while (this.extended < log.length) {
      const record = log.records[this.extended];
      if (record === undefined) break;
      await this.opts.tpm.extendPcr(this.opts.pcr, new Uint8Array(createHash('sha256').update(record).digest()));
      this.extended++;
    }
  }

  /** Builds and appends one report, and extends every report appended but not extended yet unless `extend` is false. */
  private async record(log: ReportLog, nodeId: string, state: HostState, enforcement: readonly EnforcementAction[], extend = true): Promise<void> {
    const held = this.held;
    const report: BaselineReport = {
      version: 1,
      node: nodeId,
      bootId: log.bootId,
      seq: log.length,
      time: (this.opts.now?.() ?? new Date()).toISOString(),
      baseline: held === null ? null : { name: held.baseline.name, sha256: held.sha256 },
      selinux: state.selinux,
      nftables: isReportError(state.nftables) ? state.nftables : { ruleset: state.nftables.ruleset.json, digest: state.nftables.digest, exposure: state.nftables.exposure },
      changes: this.changesSince(state, held),
      enforcement,
    };
    let bytes: Uint8Array;
    try {
      bytes = encodeReport(report);
    } catch (err) {
      // A ruleset too large (or too odd) for a report: the report says so instead of going missing.
      if (isReportError(report.nftables)) throw err;
      bytes = encodeReport({ ...report, nftables: reportError(err) });
    }
    await log.append(bytes);
    this.last = decodeReport(bytes);
    if (extend) await this.extendPending(log);
  }

  private changesSince(state: HostState, held: HeldBaseline | null): string[] {
    const last = this.last;
    if (last === null) return [];
    const out: string[] = [];
    const before = last.baseline;
    const after = held === null ? null : { name: held.baseline.name, sha256: held.sha256 };
    if (before?.sha256 !== after?.sha256) {
      out.push(`baseline: ${before === null ? 'none' : `${before.name} (${before.sha256.slice(0, 12)})`} → ${after === null ? 'none' : `${after.name} (${after.sha256.slice(0, 12)})`}`);
    }
    out.push(...selinuxChanges(last.selinux, state.selinux));
    out.push(...describeNftablesChanges(last.nftables, state.nftables));
    // The report schema's bounds: a flood of changes is summed up, not dropped silently.
    const capped = out.map((c) => (c.length > MAX_CHANGE_CHARS ? `${c.slice(0, MAX_CHANGE_CHARS - 1)}…` : c));
    return capped.length > MAX_CHANGES ? [...capped.slice(0, MAX_CHANGES - 1), `and ${capped.length - MAX_CHANGES + 1} more changes`] : capped;
  }

  /** Whether `state` (with the held baseline) differs from the last report's. */
  private changed(state: HostState): boolean {
    if (this.last === null) return true;
    const held = this.held;
    const current = {
      baseline: held === null ? null : { name: held.baseline.name, sha256: held.sha256 },
      selinux: state.selinux,
      nftables: isReportError(state.nftables) ? state.nftables : { ruleset: null, digest: state.nftables.digest, exposure: state.nftables.exposure },
    };
    return stateKey(current) !== stateKey(this.last);
  }

  /**
   * Before the quote: reads the state, enforces the held baseline when it is in enforce
   * mode and the state drifted (a drift report first, then the report after enforcement),
   * else writes a report when the state changed or none was written this boot. Never
   * throws: a failure is logged and the round goes on with the chain as it is.
   */
  async prepare(round: RoundContext): Promise<void> {
    try {
      await this.saving;
      await this.loadHeldBaseline();
      const log = await this.openLog();
      await this.extendPending(log);
      let state = await this.enforcer.readState();
      const held = this.held;
      const plan = held !== null && this.enforcing ? this.enforcer.plan(held.baseline, state) : null;
      if (plan !== null && (plan.nftables !== null || plan.selinux !== null)) {
        // The drift report is on disk (fsynced) before anything is corrected, and extended
        // with the report after the correction: the TPM extend is not waited for while the
        // host is exposed, and the log stays the order of the PCR (a stop in between is
        // extended at the next start, as any report appended but not extended).
        if (this.changed(state)) await this.record(log, round.nodeId, state, [], false);
        const actions = await this.enforcer.enforce(plan);
        state = await this.enforcer.readState();
        const repeated = canonicalJson(actions) === canonicalJson(this.last?.enforcement ?? []);
        // A correction that fails the same way every round is reported once, not once per round.
        if (this.changed(state) || !repeated) await this.record(log, round.nodeId, state, actions);
        await this.extendPending(log);
      } else if (this.changed(state)) {
        await this.record(log, round.nodeId, state, []);
      }
    } catch (err) {
      this.opts.log.error({ code: isBulwarkError(err) ? err.code : 'INTERNAL', error: err instanceof Error ? err.message : String(err) }, 'baseline report not written this round');
    }
  }

  /** The reports from the controller's acknowledged count on (all of them until it said), as many as one round carries. */
  async collect(): Promise<SourceFields> {
    const log = this.reportLog;
    if (log === null) return { baselineSha256: this.held?.sha256 ?? '', ...this.keyFields() };
    const chain = log.records.slice(0, this.extended);
    const from = this.acked !== null && this.acked <= chain.length ? this.acked : 0;
    const reports: Uint8Array[] = [];
    let bytes = 0;
    for (const record of chain.slice(from)) {
      // At least one report per round, however large; the rest waits for the next round.
      if (reports.length > 0 && (bytes + record.length > WIRE_LIMITS.baselineChunk || reports.length >= WIRE_LIMITS.list)) break;
      reports.push(record);
      bytes += record.length;
    }
    return { baselineFrom: from, baselineReports: reports, baselineSha256: this.held?.sha256 ?? '', ...this.keyFields() };
  }

  /** What the controller needs to send the rotations this agent has not walked: whether it pins keys, and the serial in force. */
  private keyFields(): SourceFields {
    const keyset = this.baselineKeySet;
    return { baselineKeysPinned: keyset !== null, baselineKeysetSerial: keyset?.document.serial ?? 0 };
  }

  private nowMs(): number {
    return (this.opts.now?.() ?? new Date()).getTime();
  }

  /**
   * Walks the key set rotations a reply carries (before a baseline in the same reply is
   * verified, with the set reached). A refused one is said in a warn line and changes
   * nothing; an accepted one re-verifies the held baseline, which stops being enforced when
   * the new set did not sign it.
   */
  private receiveKeySets(envelopes: readonly Uint8Array[]): void {
    const trust = this.keyTrust;
    if (trust === null || envelopes.length === 0) return;
    const before = trust.serial;
    const { changed, refused } = trust.receive(envelopes, this.nowMs());
    if (refused !== null) {
      this.opts.log.warn({ code: refused.code, error: refused.message, serial: trust.serial }, 'refused a baseline key set rotation the controller sent: keeping the key set in force');
    }
    if (!changed) return;
    this.opts.log.info({ from: before, serial: trust.serial, threshold: trust.keyset.document.threshold, keys: trust.keyset.document.keys.map((k) => k.keyid) }, 'baseline key set rotated');
    const held = this.held;
    if (held === null || held.verified !== true) return;
    try {
      parseReceivedBaseline(held.bytes, 'the held baseline', trust.keyset, this.nowMs());
    } catch (err) {
      this.held = { ...held, verified: false };
      this.opts.log.warn(
        { baseline: held.baseline.name, sha256: held.sha256, code: isBulwarkError(err) ? err.code : 'INTERNAL', serial: trust.serial },
        'the held baseline is not signed by the rotated baseline key set: reporting only, nothing is enforced until the controller sends one it signed',
      );
    }
  }

  /**
   * Records how many reports the controller holds (from a trusted or untrusted verdict:
   * a round it judged), asks for another round at once when reports are still unsent, and
   * adopts a baseline the reply carries once it validates.
   */
  acknowledge(reply: EvidenceReplyMsg, sent: SourceFields): void {
    const verdict = verdictOf(reply.verdict);
    if (sent.baselineReports !== undefined && (verdict === 'trusted' || verdict === 'untrusted')) {
      const available = this.extended;
      this.acked = reply.baselineReports <= available ? reply.baselineReports : null;
      const sentEnd = (sent.baselineFrom ?? 0) + sent.baselineReports.length;
      if (reply.baselineReports >= sentEnd && sentEnd < available) this.trigger?.();
    }
    this.receiveKeySets(reply.baselineKeysets);
    if (reply.baseline.length > 0) this.adopt(reply.baseline);
  }

  /** Validates a baseline from the controller; a valid one is held (and saved) and asks for a round, an invalid one is refused. */
  private adopt(bytes: Uint8Array): void {
    let next: HeldBaseline;
    try {
      next = parseReceivedBaseline(bytes, 'the baseline from the controller', this.baselineKeySet, this.nowMs());
    } catch (err) {
      this.opts.log.warn(
        { code: isBulwarkError(err) ? err.code : 'INTERNAL', error: err instanceof Error ? err.message : String(err), kept: this.held?.baseline.name ?? null, keptSha256: this.held?.sha256 ?? null },
        'refused the baseline the controller sent: it does not verify or validate; keeping the one held',
      );
      return;
    }
    if (next.sha256 === this.held?.sha256) return;
    this.held = next;
    this.heldLoaded = true;
    this.opts.log.info({ baseline: next.baseline.name, mode: next.baseline.mode, sha256: next.sha256, verified: next.verified === true }, 'holding a new baseline');
    this.warnUnverified(next);
    this.saving = this.saving.then(() => this.save(next)).catch((err: unknown) => {
      this.opts.log.warn({ error: err instanceof Error ? err.message : String(err) }, 'cannot save the held baseline: it is held in memory only');
    });
    this.trigger?.();
  }

  /** Says once per held baseline why one in enforce mode is not enforced. */
  private warnUnverified(held: HeldBaseline): void {
    if (held.baseline.mode !== 'enforce' || held.verified === true) return;
    if (this.root !== null) return;
    this.opts.log.warn({ baseline: held.baseline.name, sha256: held.sha256 }, 'the held baseline is in enforce mode, but baselineKeys is not set so its signature cannot be verified here: reporting only, nothing is enforced');
  }

  private async save(held: HeldBaseline): Promise<void> {
    const tmp = `${this.heldPath}.tmp`;
    const handle = await open(tmp, 'w', 0o600);
    try {
      await handle.write(held.bytes);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, this.heldPath);
  }

  reset(): void {
    this.acked = null;
  }

  /** Watches `nft monitor ruleset`: a change triggers a round at once; more output within the debounce window, one more at its end. */
  start(trigger: () => void): void {
    this.trigger = trigger;
    if (this.monitor !== null) return;
    const window = this.opts.debounceMs ?? DEFAULT_DEBOUNCE_MS;
    const fire = (): void => {
      if (this.debounceTimer !== null) {
        this.changedInWindow = true;
        return;
      }
      trigger();
      this.debounceTimer = setTimeout(() => {
        this.debounceTimer = null;
        if (this.changedInWindow) {
          this.changedInWindow = false;
          fire();
        }
      }, window);
    };
    this.monitor = this.opts.nft.monitor(fire, (reason) => this.opts.log.warn({ reason }, 'nft monitor ended: starting it again'));
  }

  /** The running monitor (tests wait for its subscription). */
  get nftMonitor(): NftMonitor | null {
    return this.monitor;
  }

  async stop(): Promise<void> {
    if (this.debounceTimer !== null) clearTimeout(this.debounceTimer);
    this.debounceTimer = null;
    const monitor = this.monitor;
    this.monitor = null;
    this.trigger = null;
    await monitor?.stop();
    await this.saving;
    await this.keyTrust?.saved();
  }
}
