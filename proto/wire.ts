/**
 * The checked layer over the message types generated from proto/bulwark/v1 (proto/gen/,
 * by ts-proto): size caps, node ids and enums are checked field by field here before
 * anything else sees a message, because anyone on NATS or gRPC can send bytes. The
 * generated decoder only parses; a value that leaves this file has passed these checks.
 */
import { BulwarkError } from '../lib/index.js';
import type { Finding, TrustState } from '../lib/index.js';
import type { HostFacts } from '../lib/facts/index.js';
import * as attestation from './gen/bulwark/v1/attestation.js';
import * as common from './gen/bulwark/v1/common.js';
import * as evidence from './gen/bulwark/v1/evidence.js';
import * as placement from './gen/bulwark/v1/placement.js';
import * as policies from './gen/bulwark/v1/policies.js';
import * as registrar from './gen/bulwark/v1/registrar.js';

/**
 * NATS subjects, versioned, that only the controller publishes. What nodes publish and
 * receive (nonce and evidence requests, challenges) is node-scoped: lib/nats-auth NODE_SUBJECTS.
 */
export const SUBJECTS = {
  challenge: (nodeId: string) => `bulwark.v1.challenge.${nodeId}`,
  trust: (nodeId: string) => `bulwark.v1.trust.${nodeId}`,
  /** Admin actions and refusals in the audit stream (node ids never start with "_"). */
  auditAdmin: (action: string) => `bulwark.v1.audit._admin.${action}`,
  trustAll: 'bulwark.v1.trust.>',
  audit: (nodeId: string) => `bulwark.v1.audit.${nodeId}`,
  auditAll: 'bulwark.v1.audit.>',
} as const;

/** Caps on what a peer may send. */
export const WIRE_LIMITS = {
  nodeId: 128,
  string: 4096,
  tpmBlob: 16 * 1024,
  certificate: 16 * 1024,
  list: 256,
  /** A UEFI event log; real ones are 10-200 KiB. */
  eventLog: 736 * 1024,
  /**
   * systemd's measurement log (a boot logs 5-20 records of 200-400 octets); taken from the
   * event log's former 768 KiB so a full message stays under NATS's 2 MiB payload cap.
   */
  systemdLog: 32 * 1024,
  /** IMA bytes in one round; an agent sends a longer backlog over several rounds. */
  imaChunk: 768 * 1024,
  /**
   * Baseline report bytes in one round (each report carries the host's normalised ruleset);
   * with a full event log and IMA chunk the message stays under NATS's 2 MiB payload cap.
   */
  baselineChunk: 448 * 1024,
  /** A baseline document. */
  baseline: 64 * 1024,
  /** Key set envelopes in one reply (a longer chain of rotations arrives over several rounds). */
  keysets: 8,
  /** Their bytes together. */
  keysetChunk: 256 * 1024,
} as const;

const NODE_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** Node ids are used in NATS subjects and KV keys, so only a safe alphabet is allowed. */
export function checkNodeId(value: string): string {
  if (value.length === 0 || value.length > WIRE_LIMITS.nodeId || !NODE_ID_PATTERN.test(value)) {
    throw new BulwarkError('WIRE_MALFORMED', `node id ${JSON.stringify(value.slice(0, 64))} is not 1-128 characters of [A-Za-z0-9._-]`);
  }
  return value;
}

// ---------------------------------------------------------------------------------------
// Field checks over decoded (generated) messages.

/** A decoded string field, at most `cap` characters. */
export function checkText(value: string, field: string, cap: number = WIRE_LIMITS.string): string {
  if (value.length > cap) throw new BulwarkError('WIRE_MALFORMED', `field ${field} is longer than ${cap} characters`, { length: value.length });
  return value;
}

function blob(value: Uint8Array, field: string, cap: number = WIRE_LIMITS.tpmBlob): Uint8Array {
  if (value.length > cap) throw new BulwarkError('WIRE_MALFORMED', `field ${field} is larger than ${cap} bytes`, { length: value.length });
  // A plain view (gRPC hands the decoder a Buffer, whose subarrays are Buffers too).
  return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
}

function items<T, U>(values: readonly T[], field: string, each: (v: T) => U): U[] {
  if (values.length > WIRE_LIMITS.list) throw new BulwarkError('WIRE_MALFORMED', `field ${field} has more than ${WIRE_LIMITS.list} items`);
  return values.map(each);
}

// ---------------------------------------------------------------------------------------
// Messages.

/** A finding as it travels: checked when decoded (code ≤ 64, message and details capped). */
export interface FindingMsg {
  readonly code: string;
  readonly message: string;
  readonly details: Readonly<Record<string, string>>;
}

/** A verdict's finding in its wire form (detail values as strings). */
export function findingToMsg(f: Finding): FindingMsg {
  const details: Record<string, string> = {};
  for (const [k, v] of Object.entries(f.details ?? {})) if (v !== undefined) details[k] = Array.isArray(v) ? v.join(',') : String(v);
  return { code: f.code, message: f.message, details };
}

function checkFinding(f: common.Finding): FindingMsg {
  const entries = Object.entries(f.details);
  if (entries.length > WIRE_LIMITS.list) throw new BulwarkError('WIRE_MALFORMED', 'too many finding details');
  const details: Record<string, string> = {};
  for (const [k, v] of entries) details[checkText(k, 'Finding.details')] = checkText(v, `Finding.details.${k.slice(0, 64)}`);
  return { code: checkText(f.code, 'code', 64), message: checkText(f.message, 'message'), details };
}

function findingToWire(f: FindingMsg): common.Finding {
  return { code: f.code, message: f.message, details: { ...f.details } };
}

function checkHostFacts(f: common.HostFacts): HostFacts {
  return {
    hostname: checkText(f.hostname, 'hostname', 255),
    osDistro: checkText(f.osDistro, 'os_distro'),
    osRelease: checkText(f.osRelease, 'os_release'),
    kernel: checkText(f.kernel, 'kernel'),
    arch: checkText(f.arch, 'arch'),
    cpu: checkText(f.cpu, 'cpu'),
    cpuCores: f.cpuCores,
    memoryBytes: f.memoryBytes,
    disks: items(f.disks, 'disks', (d) => ({ device: checkText(d.device, 'device'), type: checkText(d.type, 'type'), sizeBytes: d.sizeBytes, serial: checkText(d.serial, 'serial') })),
    interfaces: items(f.interfaces, 'interfaces', (i) => ({
      name: checkText(i.name, 'name'),
      mac: checkText(i.mac, 'mac'),
      addresses: items(i.addresses, 'addresses', (a) => checkText(a, 'addresses')),
    })),
    machineId: checkText(f.machineId, 'machine_id'),
    systemManufacturer: checkText(f.systemManufacturer, 'system_manufacturer'),
    systemModel: checkText(f.systemModel, 'system_model'),
    systemSerial: checkText(f.systemSerial, 'system_serial'),
    systemUuid: checkText(f.systemUuid, 'system_uuid'),
    boardManufacturer: checkText(f.boardManufacturer, 'board_manufacturer'),
    boardModel: checkText(f.boardModel, 'board_model'),
    boardSerial: checkText(f.boardSerial, 'board_serial'),
  };
}

function hostFactsToWire(f: HostFacts): common.HostFacts {
  return {
    ...f,
    disks: f.disks.map((d) => ({ ...d })),
    interfaces: f.interfaces.map((i) => ({ ...i, addresses: [...i.addresses] })),
  };
}

function optionalFacts(f: common.HostFacts | undefined): HostFacts | null {
  return f === undefined ? null : checkHostFacts(f);
}

/** The endorsement key's algorithm. */
export type EkType = 'rsa' | 'ecc';

/** Enroll request; from a peer it is checked (node id, EK type, blob caps) but its keys are not yet verified. */
export interface EnrollRequestMsg {
  readonly nodeId: string;
  readonly ekType: EkType;
  readonly ekPublic: Uint8Array;
  readonly ekCertificate: Uint8Array;
  readonly akPublic: Uint8Array;
  readonly facts: HostFacts | null;
  readonly nomadNode: string;
}

function checkEkType(v: registrar.EkType): EkType {
  if (v === registrar.EkType.EK_TYPE_RSA) return 'rsa';
  if (v === registrar.EkType.EK_TYPE_ECC) return 'ecc';
  throw new BulwarkError('WIRE_MALFORMED', 'ek_type must be EK_TYPE_RSA or EK_TYPE_ECC');
}

/** Checks a decoded EnrollRequest (untrusted peer input): node id, EK type, blob and string caps. */
export function checkEnrollRequest(m: registrar.EnrollRequest): EnrollRequestMsg {
  return {
    nodeId: checkNodeId(m.nodeId),
    ekType: checkEkType(m.ekType),
    ekPublic: blob(m.ekPublic, 'ek_public'),
    ekCertificate: blob(m.ekCertificate, 'ek_certificate', WIRE_LIMITS.certificate),
    akPublic: blob(m.akPublic, 'ak_public'),
    facts: optionalFacts(m.facts),
    nomadNode: checkText(m.nomadNode, 'nomad_node', 128),
  };
}

/** The generated message for an enroll request. */
export function enrollRequestToWire(m: EnrollRequestMsg): registrar.EnrollRequest {
  return {
    nodeId: m.nodeId,
    ekType: m.ekType === 'rsa' ? registrar.EkType.EK_TYPE_RSA : registrar.EkType.EK_TYPE_ECC,
    ekPublic: m.ekPublic,
    ekCertificate: m.ekCertificate,
    akPublic: m.akPublic,
    ...(m.facts === null ? {} : { facts: hostFactsToWire(m.facts) }),
    nomadNode: m.nomadNode,
  };
}

/** The registrar's MakeCredential challenge. */
export interface EnrollResponseMsg {
  readonly challengeId: string;
  readonly idObject: Uint8Array;
  readonly encryptedSecret: Uint8Array;
}

/** Checks a decoded EnrollResponse: string and blob caps. */
export function checkEnrollResponse(m: registrar.EnrollResponse): EnrollResponseMsg {
  return { challengeId: checkText(m.challengeId, 'challenge_id', 128), idObject: blob(m.idObject, 'id_object'), encryptedSecret: blob(m.encryptedSecret, 'encrypted_secret') };
}

/** The agent's answer to the challenge, checked for size only. */
export interface ActivateRequestMsg {
  readonly challengeId: string;
  readonly secret: Uint8Array;
  /** SubjectPublicKeyInfo (DER) of the agent's node certificate key; empty: none asked for. */
  readonly nodePublicKey?: Uint8Array;
  /** The node's NATS nkey public key (checked by the registrar). */
  readonly natsPublicKey: string;
}

/** Checks a decoded ActivateCredentialRequest (untrusted peer input): size caps. */
export function checkActivateRequest(m: registrar.ActivateCredentialRequest): ActivateRequestMsg {
  return {
    challengeId: checkText(m.challengeId, 'challenge_id', 128),
    secret: blob(m.secret, 'secret', 1024),
    nodePublicKey: blob(m.nodePublicKey, 'node_public_key', 1024),
    natsPublicKey: checkText(m.natsPublicKey, 'nats_public_key', 64),
  };
}

/** What an enrolled agent is told: its node id, identity, NATS URL, PCR selection, interval. */
export interface ActivateResponseMsg {
  readonly nodeId: string;
  readonly nodeIdentity: string;
  readonly natsUrl: string;
  readonly pcrSelection: string;
  readonly intervalMs: number;
  /** The node certificate (PEM) for the key sent; empty when none was sent. */
  readonly nodeCertificate?: string;
  /** The controller CA (PEM) that issued it. */
  readonly controllerCa?: string;
}

/** Checks a decoded ActivateCredentialResponse: node id and string caps. */
export function checkActivateResponse(m: registrar.ActivateCredentialResponse): ActivateResponseMsg {
  return {
    nodeId: checkNodeId(m.nodeId),
    nodeIdentity: checkText(m.nodeIdentity, 'node_identity'),
    natsUrl: checkText(m.natsUrl, 'nats_url'),
    pcrSelection: checkText(m.pcrSelection, 'pcr_selection', 256),
    intervalMs: m.intervalMs,
    nodeCertificate: checkText(m.nodeCertificate, 'node_certificate', WIRE_LIMITS.certificate),
    controllerCa: checkText(m.controllerCa, 'controller_ca', WIRE_LIMITS.certificate),
  };
}

/** A challenge from the controller, checked for size; the nonce is single use. */
export interface ChallengeMsg {
  readonly nodeId: string;
  readonly nonce: Uint8Array;
  readonly pcrSelection: string;
}

function checkChallenge(m: evidence.Challenge): ChallengeMsg {
  return { nodeId: checkNodeId(m.nodeId), nonce: blob(m.nonce, 'nonce', 64), pcrSelection: checkText(m.pcrSelection, 'pcr_selection', 256) };
}

/** Evidence from an agent: checked for shape and size only; the quote in it is not verified yet. */
export interface EvidenceMsg {
  readonly nodeId: string;
  readonly nonce: Uint8Array;
  readonly attest: Uint8Array;
  readonly signature: Uint8Array;
  readonly pcrs: Uint8Array;
  readonly bootId: string;
  readonly facts: HostFacts | null;
  readonly factsDigest: string;
  readonly round: number;
  readonly eventLogSha256: string;
  readonly eventLog: Uint8Array;
  readonly imaFormat: string;
  readonly imaFromEntry: number;
  readonly imaFromOffset: number;
  readonly imaEntries: Uint8Array;
  readonly imaMore: boolean;
  readonly baselineFrom: number;
  readonly baselineReports: readonly Uint8Array[];
  readonly baselineSha256: string;
  readonly systemdLog: Uint8Array;
  /** Whether the agent pins baseline keys (only then is it sent key set rotations). */
  readonly baselineKeysPinned: boolean;
  /** The serial of the baseline key set the agent trusts (0: keys pinned as PEM). */
  readonly baselineKeysetSerial: number;
}

/** Evidence fields beyond the quote, empty: for evidence without event log, IMA or baseline reports. */
export const NO_LOGS = {
  eventLogSha256: '',
  eventLog: new Uint8Array(0),
  imaFormat: '',
  imaFromEntry: 0,
  imaFromOffset: 0,
  imaEntries: new Uint8Array(0),
  imaMore: false,
  baselineFrom: 0,
  baselineReports: [],
  baselineSha256: '',
  systemdLog: new Uint8Array(0),
  baselineKeysPinned: false,
  baselineKeysetSerial: 0,
} as const;

function imaFormat(v: string): string {
  if (v !== '' && v !== 'ascii' && v !== 'binary') throw new BulwarkError('WIRE_MALFORMED', 'ima_format must be "ascii", "binary" or empty');
  return v;
}

function checkEvidence(m: evidence.Evidence): EvidenceMsg {
  return {
    nodeId: checkNodeId(m.nodeId),
    nonce: blob(m.nonce, 'nonce', 64),
    attest: blob(m.attest, 'attest'),
    signature: blob(m.signature, 'signature'),
    pcrs: blob(m.pcrs, 'pcrs'),
    bootId: checkText(m.bootId, 'boot_id', 128),
    facts: optionalFacts(m.facts),
    factsDigest: checkText(m.factsDigest, 'facts_digest', 128),
    round: m.round,
    eventLogSha256: checkText(m.eventLogSha256, 'event_log_sha256', 64),
    eventLog: blob(m.eventLog, 'event_log', WIRE_LIMITS.eventLog),
    imaFormat: imaFormat(checkText(m.imaFormat, 'ima_format', 16)),
    imaFromEntry: m.imaFromEntry,
    imaFromOffset: m.imaFromOffset,
    imaEntries: blob(m.imaEntries, 'ima_entries', WIRE_LIMITS.imaChunk),
    imaMore: m.imaMore,
    baselineFrom: m.baselineFrom,
    baselineReports: baselineReports(m.baselineReports),
    baselineSha256: checkText(m.baselineSha256, 'baseline_sha256', 64),
    systemdLog: blob(m.systemdLog, 'systemd_log', WIRE_LIMITS.systemdLog),
    baselineKeysPinned: m.baselineKeysPinned,
    baselineKeysetSerial: m.baselineKeysetSerial,
  };
}

function baselineKeysets(envelopes: readonly Uint8Array[]): Uint8Array[] {
  if (envelopes.length > WIRE_LIMITS.keysets) throw new BulwarkError('WIRE_MALFORMED', `field baseline_keysets has more than ${WIRE_LIMITS.keysets} items`);
  let total = 0;
  for (const e of envelopes) total += e.length;
  if (total > WIRE_LIMITS.keysetChunk) throw new BulwarkError('WIRE_MALFORMED', `field baseline_keysets carries more than ${WIRE_LIMITS.keysetChunk} bytes`);
  return [...envelopes];
}

function baselineReports(reports: readonly Uint8Array[]): Uint8Array[] {
  if (reports.length > WIRE_LIMITS.list) throw new BulwarkError('WIRE_MALFORMED', `field baseline_reports has more than ${WIRE_LIMITS.list} items`);
  let total = 0;
  for (const r of reports) total += r.length;
  if (total > WIRE_LIMITS.baselineChunk) throw new BulwarkError('WIRE_MALFORMED', `field baseline_reports carries more than ${WIRE_LIMITS.baselineChunk} bytes`);
  return [...reports];
}

function evidenceToWire(m: EvidenceMsg): evidence.Evidence {
  const { facts, baselineReports, ...rest } = m;
  return { ...rest, baselineReports: [...baselineReports], ...(facts === null ? {} : { facts: hostFactsToWire(facts) }) };
}

/** The controller's verdict on one round of evidence. */
export interface EvidenceReplyMsg {
  readonly verdict: string;
  readonly findings: readonly FindingMsg[];
  readonly eventLogSha256: string;
  readonly imaEntry: number;
  readonly imaOffset: number;
  readonly baselineReports: number;
  readonly baselineSha256: string;
  readonly baseline: Uint8Array;
  /** Baseline key set envelopes after the agent's serial, oldest first (empty: none to send). */
  readonly baselineKeysets: readonly Uint8Array[];
}

/** The reply fields that say what the controller holds, all empty (a refused round). */
export const EMPTY_REPLY_STATE = {
  eventLogSha256: '',
  imaEntry: 0,
  imaOffset: 0,
  baselineReports: 0,
  baselineSha256: '',
  baseline: new Uint8Array(0),
  baselineKeysets: [],
} as const;

function checkEvidenceReply(m: evidence.EvidenceReply): EvidenceReplyMsg {
  return {
    verdict: checkText(m.verdict, 'verdict', 32),
    findings: items(m.findings, 'findings', checkFinding),
    eventLogSha256: checkText(m.eventLogSha256, 'event_log_sha256', 64),
    imaEntry: m.imaEntry,
    imaOffset: m.imaOffset,
    baselineReports: m.baselineReports,
    baselineSha256: checkText(m.baselineSha256, 'baseline_sha256', 64),
    baseline: blob(m.baseline, 'baseline', WIRE_LIMITS.baseline),
    baselineKeysets: baselineKeysets(m.baselineKeysets),
  };
}

/** Wire values of the TrustState enum by state. */
const TRUST_STATE_WIRE: Readonly<Record<TrustState, attestation.TrustState>> = {
  unknown: attestation.TrustState.TRUST_STATE_UNKNOWN,
  enrolled: attestation.TrustState.TRUST_STATE_ENROLLED,
  trusted: attestation.TrustState.TRUST_STATE_TRUSTED,
  untrusted: attestation.TrustState.TRUST_STATE_UNTRUSTED,
  stale: attestation.TrustState.TRUST_STATE_STALE,
};

function checkTrustState(v: attestation.TrustState, field: string): TrustState {
  switch (v) {
    case attestation.TrustState.TRUST_STATE_UNKNOWN:
      return 'unknown';
    case attestation.TrustState.TRUST_STATE_ENROLLED:
      return 'enrolled';
    case attestation.TrustState.TRUST_STATE_TRUSTED:
      return 'trusted';
    case attestation.TrustState.TRUST_STATE_UNTRUSTED:
      return 'untrusted';
    case attestation.TrustState.TRUST_STATE_STALE:
      return 'stale';
    default:
      // The generated decoder keeps an unknown enum value as its number.
      throw new BulwarkError('WIRE_MALFORMED', `field ${field} is not a trust state`, { value: Number(v) });
  }
}

/** A node as the API reports it (checked for shape and size when decoded). */
export interface NodeMsg {
  readonly nodeId: string;
  readonly state: TrustState;
  readonly reasons: readonly FindingMsg[];
  readonly enrolledAt: string;
  readonly stateSince: string;
  readonly lastEvidenceAt: string;
  readonly lastVerdictAt: string;
  readonly akName: string;
  readonly ekCertificateSubject: string;
  readonly resetCount: number;
  readonly restartCount: number;
  readonly facts: HostFacts | null;
  readonly requiresReenrollment: boolean;
  /** Non-failing notes on the verdict (an accept-all policy in force). */
  readonly notes: readonly string[];
}

/** Checks a decoded Node: node id, trust state enum, caps on every string and list. */
export function checkNode(m: attestation.Node): NodeMsg {
  return {
    nodeId: checkNodeId(m.nodeId),
    state: checkTrustState(m.state, 'state'),
    reasons: items(m.reasons, 'reasons', checkFinding),
    enrolledAt: checkText(m.enrolledAt, 'enrolled_at', 64),
    stateSince: checkText(m.stateSince, 'state_since', 64),
    lastEvidenceAt: checkText(m.lastEvidenceAt, 'last_evidence_at', 64),
    lastVerdictAt: checkText(m.lastVerdictAt, 'last_verdict_at', 64),
    akName: checkText(m.akName, 'ak_name', 256),
    ekCertificateSubject: checkText(m.ekCertificateSubject, 'ek_certificate_subject'),
    resetCount: m.resetCount,
    restartCount: m.restartCount,
    facts: optionalFacts(m.facts),
    requiresReenrollment: m.requiresReenrollment,
    notes: items(m.notes, 'notes', (n) => checkText(n, 'notes', 512)),
  };
}

/** The generated message for a node. */
export function nodeToWire(n: NodeMsg): attestation.Node {
  const { facts, ...rest } = n;
  return {
    ...rest,
    state: TRUST_STATE_WIRE[n.state],
    reasons: n.reasons.map(findingToWire),
    notes: [...n.notes],
    ...(facts === null ? {} : { facts: hostFactsToWire(facts) }),
  };
}

/** An enrollment of an unknown TPM waiting for an admin (enrollment: approve). */
export interface HeldEnrollmentMsg {
  readonly nodeId: string;
  readonly ekName: string;
  readonly ekCertificateSubject: string;
  readonly nomadNode: string;
  readonly heldAt: string;
}

/** Checks a decoded HeldEnrollment: node id, caps. */
export function checkHeldEnrollment(m: attestation.HeldEnrollment): HeldEnrollmentMsg {
  return {
    nodeId: checkNodeId(m.nodeId),
    ekName: checkText(m.ekName, 'ek_name', 256),
    ekCertificateSubject: checkText(m.ekCertificateSubject, 'ek_certificate_subject'),
    nomadNode: checkText(m.nomadNode, 'nomad_node', 256),
    heldAt: checkText(m.heldAt, 'held_at', 64),
  };
}

/** Checks a decoded list against the list cap, each item with `each`. */
export function checkList<T, U>(values: readonly T[], field: string, each: (v: T) => U): U[] {
  return items(values, field, each);
}

/** One trust transition (NATS trust subjects, WatchTrust, History). */
export interface TrustEventMsg {
  readonly nodeId: string;
  readonly previous: TrustState;
  readonly state: TrustState;
  readonly reasons: readonly FindingMsg[];
  readonly at: string;
  readonly sequence: number;
}

/** Checks a decoded TrustEvent: node id, both trust states, caps. */
export function checkTrustEvent(m: attestation.TrustEvent): TrustEventMsg {
  return {
    nodeId: checkNodeId(m.nodeId),
    previous: checkTrustState(m.previous, 'previous'),
    state: checkTrustState(m.state, 'state'),
    reasons: items(m.reasons, 'reasons', checkFinding),
    at: checkText(m.at, 'at', 64),
    sequence: m.sequence,
  };
}

/** The generated message for a trust event. */
export function trustEventToWire(e: TrustEventMsg): attestation.TrustEvent {
  return { ...e, previous: TRUST_STATE_WIRE[e.previous], state: TRUST_STATE_WIRE[e.state], reasons: e.reasons.map(findingToWire) };
}

/** An inclusive port range. */
export interface PortRangeMsg {
  readonly from: number;
  readonly to: number;
}

/** A node's host baseline as the API reports it (GetBaseline), checked for shape and size when decoded. */
export interface BaselineStatusMsg {
  readonly nodeId: string;
  readonly baselineName: string;
  readonly baselineSha256: string;
  readonly baselineMode: string;
  readonly chainLength: number;
  readonly bootId: string;
  readonly latestReportAt: string;
  readonly latestReceivedAt: string;
  readonly reportBaselineSha256: string;
  readonly exposureKnown: boolean;
  readonly tcp: readonly PortRangeMsg[];
  readonly udp: readonly PortRangeMsg[];
  readonly conditional: readonly { readonly protocol: string; readonly ports: PortRangeMsg; readonly condition: string }[];
  readonly otherProtocols: boolean;
  readonly forwardOpen: boolean;
  readonly selinuxMode: string;
  readonly changes: readonly string[];
  readonly findings: readonly FindingMsg[];
  readonly judgedAt: string;
  readonly enforcement: readonly { readonly target: string; readonly action: string; readonly changed: string; readonly ok: boolean; readonly error: string }[];
  readonly enforcedAt: string;
  readonly reportError: string;
}

function checkPortRange(p: attestation.PortRange | undefined, field: string): PortRangeMsg {
  if (p === undefined || p.from > 65535 || p.to > 65535 || p.from > p.to) throw new BulwarkError('WIRE_MALFORMED', `field ${field} is not a port range`);
  return { from: p.from, to: p.to };
}

/** Checks a decoded BaselineStatus: node id, port ranges, caps on every string and list. */
export function checkBaselineStatus(m: attestation.BaselineStatus): BaselineStatusMsg {
  return {
    nodeId: checkNodeId(m.nodeId),
    baselineName: checkText(m.baselineName, 'baseline_name', 128),
    baselineSha256: checkText(m.baselineSha256, 'baseline_sha256', 64),
    baselineMode: checkText(m.baselineMode, 'baseline_mode', 16),
    chainLength: m.chainLength,
    bootId: checkText(m.bootId, 'boot_id', 128),
    latestReportAt: checkText(m.latestReportAt, 'latest_report_at', 64),
    latestReceivedAt: checkText(m.latestReceivedAt, 'latest_received_at', 64),
    reportBaselineSha256: checkText(m.reportBaselineSha256, 'report_baseline_sha256', 64),
    exposureKnown: m.exposureKnown,
    tcp: items(m.tcp, 'tcp', (p) => checkPortRange(p, 'tcp')),
    udp: items(m.udp, 'udp', (p) => checkPortRange(p, 'udp')),
    conditional: items(m.conditional, 'conditional', (c) => ({
      protocol: checkText(c.protocol, 'conditional.protocol', 8),
      ports: checkPortRange(c.ports, 'conditional.ports'),
      condition: checkText(c.condition, 'conditional.condition'),
    })),
    otherProtocols: m.otherProtocols,
    forwardOpen: m.forwardOpen,
    selinuxMode: checkText(m.selinuxMode, 'selinux_mode', 16),
    changes: items(m.changes, 'changes', (c) => checkText(c, 'changes')),
    findings: items(m.findings, 'findings', checkFinding),
    judgedAt: checkText(m.judgedAt, 'judged_at', 64),
    enforcement: items(m.enforcement, 'enforcement', (e) => ({
      target: checkText(e.target, 'enforcement.target', 16),
      action: checkText(e.action, 'enforcement.action'),
      changed: checkText(e.changed, 'enforcement.changed'),
      ok: e.ok,
      error: checkText(e.error, 'enforcement.error'),
    })),
    enforcedAt: checkText(m.enforcedAt, 'enforced_at', 64),
    reportError: checkText(m.reportError, 'report_error'),
  };
}

/** The generated message for a node's baseline status. */
export function baselineStatusToWire(s: BaselineStatusMsg): attestation.BaselineStatus {
  return {
    ...s,
    tcp: s.tcp.map((p) => ({ ...p })),
    udp: s.udp.map((p) => ({ ...p })),
    conditional: s.conditional.map((c) => ({ ...c, ports: { ...c.ports } })),
    changes: [...s.changes],
    findings: s.findings.map(findingToWire),
    enforcement: s.enforcement.map((e) => ({ ...e })),
  };
}

/** A stored policy's summary. */
export interface PolicyInfoMsg {
  readonly kind: string;
  readonly name: string;
  readonly sha256: string;
  readonly revision: number;
  readonly updatedAt: string;
  readonly assignedTo: readonly string[];
}

/** Checks a decoded PolicyInfo: caps on every string and the assignment list. */
export function checkPolicyInfo(m: policies.PolicyInfo): PolicyInfoMsg {
  return {
    kind: checkText(m.kind, 'kind', 64),
    name: checkText(m.name, 'name', 128),
    sha256: checkText(m.sha256, 'sha256', 64),
    revision: m.revision,
    updatedAt: checkText(m.updatedAt, 'updated_at', 64),
    assignedTo: items(m.assignedTo, 'assigned_to', (a) => checkText(a, 'assigned_to')),
  };
}

/** The generated message for a policy summary. */
export function policyInfoToWire(p: PolicyInfoMsg): policies.PolicyInfo {
  return { ...p, assignedTo: [...p.assignedTo] };
}

/** A trusted key set in force for a kind (Policies.GetKeySet / PutKeySet). */
export interface KeySetInfoMsg {
  readonly kind: string;
  readonly serial: number;
  readonly threshold: number;
  readonly keys: readonly { readonly keyid: string; readonly publicKeyPem: string; readonly scheme: string }[];
  readonly expires: string;
  readonly sha256: string;
  readonly envelope: string;
}

/** Checks a decoded KeySetInfo: caps on every string and the key list. */
export function checkKeySetInfo(m: policies.KeySetInfo): KeySetInfoMsg {
  return {
    kind: checkText(m.kind, 'kind', 64),
    serial: m.serial,
    threshold: m.threshold,
    keys: items(m.keys, 'keys', (k) => ({ keyid: checkText(k.keyid, 'keyid', 256), publicKeyPem: checkText(k.publicKeyPem, 'public_key_pem', 16384), scheme: checkText(k.scheme, 'scheme', 64) })),
    expires: checkText(m.expires, 'expires', 64),
    sha256: checkText(m.sha256, 'sha256', 64),
    envelope: checkText(m.envelope, 'envelope', 4 * 1024 * 1024),
  };
}

/** The generated message for a key set. */
export function keySetInfoToWire(k: KeySetInfoMsg): policies.KeySetInfo {
  return { ...k, keys: k.keys.map((x) => ({ ...x })) };
}

/** One Nomad allocation of an application. */
export interface AppAllocationMsg {
  readonly id: string;
  readonly nodeId: string;
  readonly nodeName: string;
  readonly taskGroup: string;
  readonly clientStatus: string;
  readonly desiredStatus: string;
}

/** An application's Nomad job and allocations. */
export interface AppStatusMsg {
  readonly name: string;
  readonly jobId: string;
  readonly status: string;
  readonly allocations: readonly AppAllocationMsg[];
  readonly evalId: string;
}

/** Checks a decoded AppStatus: caps on every string and the allocation list. */
export function checkAppStatus(m: placement.AppStatus): AppStatusMsg {
  return {
    name: checkText(m.name, 'name', 128),
    jobId: checkText(m.jobId, 'job_id', 256),
    status: checkText(m.status, 'status', 128),
    evalId: checkText(m.evalId, 'eval_id', 128),
    allocations: items(m.allocations, 'allocations', (a) => ({
      id: checkText(a.id, 'id', 64),
      nodeId: checkText(a.nodeId, 'node_id', 64),
      nodeName: checkText(a.nodeName, 'node_name', 256),
      taskGroup: checkText(a.taskGroup, 'task_group', 256),
      clientStatus: checkText(a.clientStatus, 'client_status', 64),
      desiredStatus: checkText(a.desiredStatus, 'desired_status', 64),
    })),
  };
}

/** The generated message for an application's status. */
export function appStatusToWire(a: AppStatusMsg): placement.AppStatus {
  return { ...a, allocations: a.allocations.map((x) => ({ ...x })) };
}

/** One application of the catalogue. */
export interface AppSummaryMsg {
  readonly name: string;
  readonly file: string;
  readonly deployed: boolean;
}

/** Checks a decoded AppSummary: string caps. */
export function checkAppSummary(m: placement.AppSummary): AppSummaryMsg {
  return { name: checkText(m.name, 'name', 128), file: checkText(m.file, 'file', 256), deployed: m.deployed };
}

// ---------------------------------------------------------------------------------------
// Binary codecs (NATS payloads) over the generated encoders.

/** Encodes/decodes one message type; decoding checks every field. */
export interface Codec<T> {
  encode(value: T): Uint8Array;
  decode(bytes: Uint8Array): T;
}

/** What the generated code offers for one message type. */
interface MessageFns<W> {
  encode(message: W): { finish(): Uint8Array };
  decode(input: Uint8Array): W;
}

/**
 * Parses `bytes` as a `typeName` with the generated decoder. Its errors (truncation,
 * a bad wire type, a 64-bit value past 2^53, nesting past 100) become WIRE_MALFORMED.
 */
export function decodeMessage<W>(fns: MessageFns<W>, typeName: string, bytes: Uint8Array): W {
  try {
    return fns.decode(bytes);
  } catch (err) {
    throw new BulwarkError('WIRE_MALFORMED', `not a ${typeName}: ${err instanceof Error ? err.message : String(err)}`, {}, { cause: err });
  }
}

function codec<T, W>(fns: MessageFns<W>, typeName: string, toWire: (v: T) => W, check: (m: W) => T): Codec<T> {
  return {
    encode: (value) => fns.encode(toWire(value)).finish(),
    decode: (bytes) => check(decodeMessage(fns, typeName, bytes)),
  };
}

/** NATS payload codecs: encode a checked value; decode untrusted bytes into a checked value or WIRE_MALFORMED. */
export const wire = {
  nonceRequest: codec<{ nodeId: string }, evidence.NonceRequest>(
    evidence.NonceRequest,
    'bulwark.v1.NonceRequest',
    (m) => ({ nodeId: m.nodeId }),
    (m) => ({ nodeId: checkNodeId(m.nodeId) }),
  ),
  challenge: codec<ChallengeMsg, evidence.Challenge>(evidence.Challenge, 'bulwark.v1.Challenge', (m) => ({ ...m }), checkChallenge),
  evidence: codec<EvidenceMsg, evidence.Evidence>(evidence.Evidence, 'bulwark.v1.Evidence', evidenceToWire, checkEvidence),
  evidenceReply: codec<EvidenceReplyMsg, evidence.EvidenceReply>(
    evidence.EvidenceReply,
    'bulwark.v1.EvidenceReply',
    (m) => ({ ...m, findings: m.findings.map(findingToWire), baselineKeysets: [...m.baselineKeysets] }),
    checkEvidenceReply,
  ),
  trustEvent: codec<TrustEventMsg, attestation.TrustEvent>(attestation.TrustEvent, 'bulwark.v1.TrustEvent', trustEventToWire, checkTrustEvent),
} as const;
