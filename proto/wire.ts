/**
 * Codecs for the messages in proto/bulwark/v1, shared by agent, controller and bulwarkctl.
 * The .proto files are the only wire contract; every decoded message is checked field by
 * field here (types, sizes) before anything else sees it, because anyone on NATS or gRPC
 * can send bytes.
 */
import protobuf from 'protobufjs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { existsSync } from 'node:fs';
import { BulwarkError } from '../lib/index.js';
import type { Finding, TrustState } from '../lib/index.js';
import type { HostFacts } from '../lib/index.js';

/** The folder holding bulwark/v1/*.proto, from source (proto/) or from the build (dist/proto/). */
export const PROTO_DIR: string = (() => {
  const here = dirname(fileURLToPath(import.meta.url));
  for (const candidate of [here, join(here, '..', '..', 'proto')]) {
    if (existsSync(join(candidate, 'bulwark', 'v1', 'common.proto'))) return candidate;
  }
  return here;
})();

export const PROTO_FILES = [
  'bulwark/v1/common.proto',
  'bulwark/v1/registrar.proto',
  'bulwark/v1/attestation.proto',
  'bulwark/v1/evidence.proto',
  'bulwark/v1/policies.proto',
  'bulwark/v1/placement.proto',
  'grpc/health/v1/health.proto',
] as const;

/** NATS subjects, versioned. */
export const SUBJECTS = {
  nonce: 'bulwark.v1.nonce',
  evidence: 'bulwark.v1.evidence',
  challenge: (nodeId: string) => `bulwark.v1.challenge.${nodeId}`,
  trust: (nodeId: string) => `bulwark.v1.trust.${nodeId}`,
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
  eventLog: 768 * 1024,
  /** IMA bytes in one round; an agent sends a longer backlog over several rounds. */
  imaChunk: 768 * 1024,
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
// Field readers over decoded plain objects.

type Obj = Readonly<Record<string, unknown>>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

function asObj(v: unknown, what: string): Obj {
  if (!isObj(v)) throw new BulwarkError('WIRE_MALFORMED', `${what} is not a message`);
  return v;
}

function str(o: Obj, key: string, cap: number = WIRE_LIMITS.string): string {
  const v = o[key];
  if (v === undefined || v === null) return '';
  if (typeof v !== 'string') throw new BulwarkError('WIRE_MALFORMED', `field ${key} is not a string`);
  if (v.length > cap) throw new BulwarkError('WIRE_MALFORMED', `field ${key} is longer than ${cap} characters`, { length: v.length });
  return v;
}

function bytes(o: Obj, key: string, cap: number = WIRE_LIMITS.tpmBlob): Uint8Array {
  const v = o[key];
  if (v === undefined || v === null) return new Uint8Array(0);
  if (!(v instanceof Uint8Array)) throw new BulwarkError('WIRE_MALFORMED', `field ${key} is not bytes`);
  if (v.length > cap) throw new BulwarkError('WIRE_MALFORMED', `field ${key} is larger than ${cap} bytes`, { length: v.length });
  return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
}

function num(o: Obj, key: string): number {
  const v = o[key];
  if (v === undefined || v === null) return 0;
  const n = typeof v === 'string' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) throw new BulwarkError('WIRE_MALFORMED', `field ${key} is not a non-negative integer`);
  return n;
}

function bool(o: Obj, key: string): boolean {
  const v = o[key];
  if (v === undefined || v === null) return false;
  if (typeof v !== 'boolean') throw new BulwarkError('WIRE_MALFORMED', `field ${key} is not a boolean`);
  return v;
}

function list<T>(o: Obj, key: string, each: (v: unknown) => T): T[] {
  const v = o[key];
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw new BulwarkError('WIRE_MALFORMED', `field ${key} is not a list`);
  if (v.length > WIRE_LIMITS.list) throw new BulwarkError('WIRE_MALFORMED', `field ${key} has more than ${WIRE_LIMITS.list} items`);
  return v.map(each);
}

function strList(v: unknown): string {
  if (typeof v !== 'string' || v.length > WIRE_LIMITS.string) throw new BulwarkError('WIRE_MALFORMED', 'list item is not a string');
  return v;
}

// ---------------------------------------------------------------------------------------
// Messages.

export interface FindingMsg {
  readonly code: string;
  readonly message: string;
  readonly details: Readonly<Record<string, string>>;
}

export function findingToMsg(f: Finding): FindingMsg {
  const details: Record<string, string> = {};
  for (const [k, v] of Object.entries(f.details ?? {})) if (v !== undefined) details[k] = Array.isArray(v) ? v.join(',') : String(v);
  return { code: f.code, message: f.message, details };
}

function decodeFinding(v: unknown): FindingMsg {
  const o = asObj(v, 'Finding');
  const details: Record<string, string> = {};
  const d = o['details'];
  if (d !== undefined && d !== null) {
    const m = asObj(d, 'Finding.details');
    const keys = Object.keys(m);
    if (keys.length > WIRE_LIMITS.list) throw new BulwarkError('WIRE_MALFORMED', 'too many finding details');
    for (const k of keys) details[k] = str(m, k);
  }
  return { code: str(o, 'code', 64), message: str(o, 'message'), details };
}

function decodeHostFactsMsg(v: unknown): HostFacts {
  const o = asObj(v, 'HostFacts');
  return {
    hostname: str(o, 'hostname', 255),
    osDistro: str(o, 'os_distro'),
    osRelease: str(o, 'os_release'),
    kernel: str(o, 'kernel'),
    arch: str(o, 'arch'),
    cpu: str(o, 'cpu'),
    cpuCores: num(o, 'cpu_cores'),
    memoryBytes: num(o, 'memory_bytes'),
    disks: list(o, 'disks', (d) => {
      const x = asObj(d, 'Disk');
      return { device: str(x, 'device'), type: str(x, 'type'), sizeBytes: num(x, 'size_bytes'), serial: str(x, 'serial') };
    }),
    interfaces: list(o, 'interfaces', (d) => {
      const x = asObj(d, 'NetworkInterface');
      return { name: str(x, 'name'), mac: str(x, 'mac'), addresses: list(x, 'addresses', strList) };
    }),
    machineId: str(o, 'machine_id'),
    systemManufacturer: str(o, 'system_manufacturer'),
    systemModel: str(o, 'system_model'),
    systemSerial: str(o, 'system_serial'),
    systemUuid: str(o, 'system_uuid'),
    boardManufacturer: str(o, 'board_manufacturer'),
    boardModel: str(o, 'board_model'),
    boardSerial: str(o, 'board_serial'),
  };
}

export function hostFactsToMsg(f: HostFacts): Record<string, unknown> {
  return {
    hostname: f.hostname,
    os_distro: f.osDistro,
    os_release: f.osRelease,
    kernel: f.kernel,
    arch: f.arch,
    cpu: f.cpu,
    cpu_cores: f.cpuCores,
    memory_bytes: f.memoryBytes,
    disks: f.disks.map((d) => ({ device: d.device, type: d.type, size_bytes: d.sizeBytes, serial: d.serial })),
    interfaces: f.interfaces.map((i) => ({ name: i.name, mac: i.mac, addresses: [...i.addresses] })),
    machine_id: f.machineId,
    system_manufacturer: f.systemManufacturer,
    system_model: f.systemModel,
    system_serial: f.systemSerial,
    system_uuid: f.systemUuid,
    board_manufacturer: f.boardManufacturer,
    board_model: f.boardModel,
    board_serial: f.boardSerial,
  };
}

function optionalFacts(o: Obj, key: string): HostFacts | null {
  const v = o[key];
  return v === undefined || v === null ? null : decodeHostFactsMsg(v);
}

export type EkType = 'rsa' | 'ecc';

export interface EnrollRequestMsg {
  readonly nodeId: string;
  readonly ekType: EkType;
  readonly ekPublic: Uint8Array;
  readonly ekCertificate: Uint8Array;
  readonly akPublic: Uint8Array;
  readonly facts: HostFacts | null;
  readonly nomadNode: string;
}

const EK_TYPES: Readonly<Record<string, EkType>> = { EK_TYPE_RSA: 'rsa', EK_TYPE_ECC: 'ecc', '1': 'rsa', '2': 'ecc' };

export function decodeEnrollRequest(v: unknown): EnrollRequestMsg {
  const o = asObj(v, 'EnrollRequest');
  const ekTypeRaw = o['ek_type'];
  const ekType = EK_TYPES[String(ekTypeRaw)];
  if (ekType === undefined) throw new BulwarkError('WIRE_MALFORMED', 'ek_type must be EK_TYPE_RSA or EK_TYPE_ECC');
  return {
    nodeId: checkNodeId(str(o, 'node_id')),
    ekType,
    ekPublic: bytes(o, 'ek_public'),
    ekCertificate: bytes(o, 'ek_certificate', WIRE_LIMITS.certificate),
    akPublic: bytes(o, 'ak_public'),
    facts: optionalFacts(o, 'facts'),
    nomadNode: str(o, 'nomad_node', 128),
  };
}

export function enrollRequestToMsg(m: EnrollRequestMsg): Record<string, unknown> {
  return {
    node_id: m.nodeId,
    ek_type: m.ekType === 'rsa' ? 'EK_TYPE_RSA' : 'EK_TYPE_ECC',
    ek_public: m.ekPublic,
    ek_certificate: m.ekCertificate,
    ak_public: m.akPublic,
    ...(m.facts === null ? {} : { facts: hostFactsToMsg(m.facts) }),
    nomad_node: m.nomadNode,
  };
}

export interface EnrollResponseMsg {
  readonly challengeId: string;
  readonly idObject: Uint8Array;
  readonly encryptedSecret: Uint8Array;
}

export function decodeEnrollResponse(v: unknown): EnrollResponseMsg {
  const o = asObj(v, 'EnrollResponse');
  return { challengeId: str(o, 'challenge_id', 128), idObject: bytes(o, 'id_object'), encryptedSecret: bytes(o, 'encrypted_secret') };
}

export interface ActivateRequestMsg {
  readonly challengeId: string;
  readonly secret: Uint8Array;
}

export function decodeActivateRequest(v: unknown): ActivateRequestMsg {
  const o = asObj(v, 'ActivateCredentialRequest');
  return { challengeId: str(o, 'challenge_id', 128), secret: bytes(o, 'secret', 1024) };
}

export interface ActivateResponseMsg {
  readonly nodeId: string;
  readonly nodeIdentity: string;
  readonly natsUrl: string;
  readonly pcrSelection: string;
  readonly intervalMs: number;
}

export function decodeActivateResponse(v: unknown): ActivateResponseMsg {
  const o = asObj(v, 'ActivateCredentialResponse');
  return {
    nodeId: checkNodeId(str(o, 'node_id')),
    nodeIdentity: str(o, 'node_identity'),
    natsUrl: str(o, 'nats_url'),
    pcrSelection: str(o, 'pcr_selection', 256),
    intervalMs: num(o, 'interval_ms'),
  };
}

export interface ChallengeMsg {
  readonly nodeId: string;
  readonly nonce: Uint8Array;
  readonly pcrSelection: string;
}

export function decodeChallengeObj(v: unknown): ChallengeMsg {
  const o = asObj(v, 'Challenge');
  return { nodeId: checkNodeId(str(o, 'node_id')), nonce: bytes(o, 'nonce', 64), pcrSelection: str(o, 'pcr_selection', 256) };
}

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
}

/** Evidence fields beyond the quote, empty: for evidence without event log or IMA. */
export const NO_LOGS = {
  eventLogSha256: '',
  eventLog: new Uint8Array(0),
  imaFormat: '',
  imaFromEntry: 0,
  imaFromOffset: 0,
  imaEntries: new Uint8Array(0),
  imaMore: false,
} as const;

export function decodeEvidenceObj(v: unknown): EvidenceMsg {
  const o = asObj(v, 'Evidence');
  return {
    nodeId: checkNodeId(str(o, 'node_id')),
    nonce: bytes(o, 'nonce', 64),
    attest: bytes(o, 'attest'),
    signature: bytes(o, 'signature'),
    pcrs: bytes(o, 'pcrs'),
    bootId: str(o, 'boot_id', 128),
    facts: optionalFacts(o, 'facts'),
    factsDigest: str(o, 'facts_digest', 128),
    round: num(o, 'round'),
    eventLogSha256: str(o, 'event_log_sha256', 64),
    eventLog: bytes(o, 'event_log', WIRE_LIMITS.eventLog),
    imaFormat: imaFormat(str(o, 'ima_format', 16)),
    imaFromEntry: num(o, 'ima_from_entry'),
    imaFromOffset: num(o, 'ima_from_offset'),
    imaEntries: bytes(o, 'ima_entries', WIRE_LIMITS.imaChunk),
    imaMore: bool(o, 'ima_more'),
  };
}

function imaFormat(v: string): string {
  if (v !== '' && v !== 'ascii' && v !== 'binary') throw new BulwarkError('WIRE_MALFORMED', 'ima_format must be "ascii", "binary" or empty');
  return v;
}

export function evidenceToMsg(m: EvidenceMsg): Record<string, unknown> {
  return {
    node_id: m.nodeId,
    nonce: m.nonce,
    attest: m.attest,
    signature: m.signature,
    pcrs: m.pcrs,
    boot_id: m.bootId,
    ...(m.facts === null ? {} : { facts: hostFactsToMsg(m.facts) }),
    facts_digest: m.factsDigest,
    round: m.round,
    event_log_sha256: m.eventLogSha256,
    event_log: m.eventLog,
    ima_format: m.imaFormat,
    ima_from_entry: m.imaFromEntry,
    ima_from_offset: m.imaFromOffset,
    ima_entries: m.imaEntries,
    ima_more: m.imaMore,
  };
}

export interface EvidenceReplyMsg {
  readonly verdict: string;
  readonly findings: readonly FindingMsg[];
  readonly eventLogSha256: string;
  readonly imaEntry: number;
  readonly imaOffset: number;
}

export function decodeEvidenceReplyObj(v: unknown): EvidenceReplyMsg {
  const o = asObj(v, 'EvidenceReply');
  return {
    verdict: str(o, 'verdict', 32),
    findings: list(o, 'findings', decodeFinding),
    eventLogSha256: str(o, 'event_log_sha256', 64),
    imaEntry: num(o, 'ima_entry'),
    imaOffset: num(o, 'ima_offset'),
  };
}

export const TRUST_STATE_ENUM: Readonly<Record<TrustState, string>> = {
  unknown: 'TRUST_STATE_UNKNOWN',
  enrolled: 'TRUST_STATE_ENROLLED',
  trusted: 'TRUST_STATE_TRUSTED',
  untrusted: 'TRUST_STATE_UNTRUSTED',
  stale: 'TRUST_STATE_STALE',
};

const TRUST_STATE_BY_ENUM: ReadonlyMap<string, TrustState> = new Map([
  ...Object.entries(TRUST_STATE_ENUM).map(([k, v]): [string, TrustState] => [v, toTrustState(k)]),
  ['0', 'unknown'],
  ['1', 'enrolled'],
  ['2', 'trusted'],
  ['3', 'untrusted'],
  ['4', 'stale'],
]);

function toTrustState(s: string): TrustState {
  switch (s) {
    case 'unknown':
    case 'enrolled':
    case 'trusted':
    case 'untrusted':
    case 'stale':
      return s;
    default:
      throw new BulwarkError('WIRE_MALFORMED', `unknown trust state ${s}`);
  }
}

function trustState(o: Obj, key: string): TrustState {
  const v = o[key];
  if (v === undefined || v === null) return 'unknown';
  const s = TRUST_STATE_BY_ENUM.get(String(v));
  if (s === undefined) throw new BulwarkError('WIRE_MALFORMED', `field ${key} is not a trust state`);
  return s;
}

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
}

export function decodeNodeObj(v: unknown): NodeMsg {
  const o = asObj(v, 'Node');
  return {
    nodeId: checkNodeId(str(o, 'node_id')),
    state: trustState(o, 'state'),
    reasons: list(o, 'reasons', decodeFinding),
    enrolledAt: str(o, 'enrolled_at', 64),
    stateSince: str(o, 'state_since', 64),
    lastEvidenceAt: str(o, 'last_evidence_at', 64),
    lastVerdictAt: str(o, 'last_verdict_at', 64),
    akName: str(o, 'ak_name', 256),
    ekCertificateSubject: str(o, 'ek_certificate_subject'),
    resetCount: num(o, 'reset_count'),
    restartCount: num(o, 'restart_count'),
    facts: optionalFacts(o, 'facts'),
    requiresReenrollment: bool(o, 'requires_reenrollment'),
  };
}

export function nodeToMsg(n: NodeMsg): Record<string, unknown> {
  return {
    node_id: n.nodeId,
    state: TRUST_STATE_ENUM[n.state],
    reasons: n.reasons.map((r) => ({ ...r, details: { ...r.details } })),
    enrolled_at: n.enrolledAt,
    state_since: n.stateSince,
    last_evidence_at: n.lastEvidenceAt,
    last_verdict_at: n.lastVerdictAt,
    ak_name: n.akName,
    ek_certificate_subject: n.ekCertificateSubject,
    reset_count: n.resetCount,
    restart_count: n.restartCount,
    ...(n.facts === null ? {} : { facts: hostFactsToMsg(n.facts) }),
    requires_reenrollment: n.requiresReenrollment,
  };
}

export interface TrustEventMsg {
  readonly nodeId: string;
  readonly previous: TrustState;
  readonly state: TrustState;
  readonly reasons: readonly FindingMsg[];
  readonly at: string;
  readonly sequence: number;
}

export function decodeTrustEventObj(v: unknown): TrustEventMsg {
  const o = asObj(v, 'TrustEvent');
  return {
    nodeId: checkNodeId(str(o, 'node_id')),
    previous: trustState(o, 'previous'),
    state: trustState(o, 'state'),
    reasons: list(o, 'reasons', decodeFinding),
    at: str(o, 'at', 64),
    sequence: num(o, 'sequence'),
  };
}

export function trustEventToMsg(e: TrustEventMsg): Record<string, unknown> {
  return {
    node_id: e.nodeId,
    previous: TRUST_STATE_ENUM[e.previous],
    state: TRUST_STATE_ENUM[e.state],
    reasons: e.reasons.map((r) => ({ ...r, details: { ...r.details } })),
    at: e.at,
    sequence: e.sequence,
  };
}

// ---------------------------------------------------------------------------------------
// Binary codecs (NATS payloads) over protobufjs.

const root = new protobuf.Root();
root.resolvePath = (_origin: string, target: string) => join(PROTO_DIR, target);
root.loadSync([...PROTO_FILES], { keepCase: true });

const TO_OBJECT: protobuf.IConversionOptions = { longs: Number, enums: String, bytes: Uint8Array, defaults: false, arrays: true, objects: true };

/** Encodes/decodes one message type; decoding checks every field. */
export interface Codec<T> {
  encode(value: T): Uint8Array;
  decode(bytes: Uint8Array): T;
}

function codec<T>(typeName: string, toMsg: (v: T) => Record<string, unknown>, fromObj: (v: unknown) => T): Codec<T> {
  const type = root.lookupType(typeName);
  return {
    encode(value: T): Uint8Array {
      return type.encode(type.fromObject(toMsg(value))).finish();
    },
    decode(bytes: Uint8Array): T {
      let obj: unknown;
      try {
        obj = type.toObject(type.decode(bytes), TO_OBJECT);
      } catch (err) {
        throw new BulwarkError('WIRE_MALFORMED', `not a ${typeName}: ${err instanceof Error ? err.message : String(err)}`, {}, { cause: err });
      }
      return fromObj(obj);
    },
  };
}

export const wire = {
  nonceRequest: codec<{ nodeId: string }>(
    'bulwark.v1.NonceRequest',
    (m) => ({ node_id: m.nodeId }),
    (v) => ({ nodeId: checkNodeId(str(asObj(v, 'NonceRequest'), 'node_id')) }),
  ),
  challenge: codec<ChallengeMsg>('bulwark.v1.Challenge', (m) => ({ node_id: m.nodeId, nonce: m.nonce, pcr_selection: m.pcrSelection }), decodeChallengeObj),
  evidence: codec<EvidenceMsg>('bulwark.v1.Evidence', evidenceToMsg, decodeEvidenceObj),
  evidenceReply: codec<EvidenceReplyMsg>(
    'bulwark.v1.EvidenceReply',
    (m) => ({
      verdict: m.verdict,
      findings: m.findings.map((f) => ({ ...f, details: { ...f.details } })),
      event_log_sha256: m.eventLogSha256,
      ima_entry: m.imaEntry,
      ima_offset: m.imaOffset,
    }),
    decodeEvidenceReplyObj,
  ),
  trustEvent: codec<TrustEventMsg>('bulwark.v1.TrustEvent', trustEventToMsg, decodeTrustEventObj),
} as const;

export interface PolicyInfoMsg {
  readonly kind: string;
  readonly name: string;
  readonly sha256: string;
  readonly revision: number;
  readonly updatedAt: string;
  readonly assignedTo: readonly string[];
}

export function decodePolicyInfoObj(v: unknown): PolicyInfoMsg {
  const o = asObj(v, 'PolicyInfo');
  return {
    kind: str(o, 'kind', 64),
    name: str(o, 'name', 128),
    sha256: str(o, 'sha256', 64),
    revision: num(o, 'revision'),
    updatedAt: str(o, 'updated_at', 64),
    assignedTo: list(o, 'assigned_to', strList),
  };
}

export function policyInfoToMsg(p: PolicyInfoMsg): Record<string, unknown> {
  return { kind: p.kind, name: p.name, sha256: p.sha256, revision: p.revision, updated_at: p.updatedAt, assigned_to: [...p.assignedTo] };
}

/** Reads a string field of a request (gRPC handlers). */
export function requestString(v: unknown, key: string, cap: number = WIRE_LIMITS.string): string {
  return str(asObj(v, 'request'), key, cap);
}

export interface AppAllocationMsg {
  readonly id: string;
  readonly nodeId: string;
  readonly nodeName: string;
  readonly taskGroup: string;
  readonly clientStatus: string;
  readonly desiredStatus: string;
}

export interface AppStatusMsg {
  readonly name: string;
  readonly jobId: string;
  readonly status: string;
  readonly allocations: readonly AppAllocationMsg[];
  readonly evalId: string;
}

export function decodeAppStatus(v: unknown): AppStatusMsg {
  const o = asObj(v, 'AppStatus');
  return {
    name: str(o, 'name', 128),
    jobId: str(o, 'job_id', 256),
    status: str(o, 'status', 128),
    evalId: str(o, 'eval_id', 128),
    allocations: list(o, 'allocations', (a) => {
      const x = asObj(a, 'Allocation');
      return {
        id: str(x, 'id', 64),
        nodeId: str(x, 'node_id', 64),
        nodeName: str(x, 'node_name', 256),
        taskGroup: str(x, 'task_group', 256),
        clientStatus: str(x, 'client_status', 64),
        desiredStatus: str(x, 'desired_status', 64),
      };
    }),
  };
}

export function appStatusToMsg(a: AppStatusMsg): Record<string, unknown> {
  return {
    name: a.name,
    job_id: a.jobId,
    status: a.status,
    eval_id: a.evalId,
    allocations: a.allocations.map((x) => ({
      id: x.id,
      node_id: x.nodeId,
      node_name: x.nodeName,
      task_group: x.taskGroup,
      client_status: x.clientStatus,
      desired_status: x.desiredStatus,
    })),
  };
}

export function decodeAppSummary(v: unknown): { name: string; file: string; deployed: boolean } {
  const o = asObj(v, 'AppSummary');
  return { name: str(o, 'name', 128), file: str(o, 'file', 256), deployed: bool(o, 'deployed') };
}
