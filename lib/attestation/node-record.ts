/**
 * What the controller keeps per node, durably (JetStream KV `bulwark_nodes`). The record
 * is read back from storage that other replicas (or anyone with NATS write access) can
 * touch, so it is validated on every read like any other input.
 */
import { BulwarkError } from '../errors.js';
import { validateHostFacts, type HostFacts } from '../facts.js';
import type { Finding, TrustState } from '../verdict.js';

/** TPM state seen in the last verified quote; null fields before the first one. */
export interface AttestationState {
  readonly resetCount: number | null;
  readonly restartCount: number | null;
  /** TPMS_CLOCK_INFO.clock as a decimal string (a u64). */
  readonly clock: string | null;
  readonly bootId: string | null;
  /** Boot PCR values (index → hex) fixed at the first quote of this boot. */
  readonly bootPcrs: Readonly<Record<string, string>> | null;
}

export const EMPTY_ATTESTATION: AttestationState = { resetCount: null, restartCount: null, clock: null, bootId: null, bootPcrs: null };

/** One node as stored: identity, keys, trust state with reasons, and attestation progress. */
export interface NodeRecord {
  readonly version: 1;
  readonly nodeId: string;
  readonly state: TrustState;
  readonly reasons: readonly Finding[];
  readonly stateSince: string;
  readonly enrolledAt: string;
  readonly ekType: 'rsa' | 'ecc';
  /** Hex of the EK TPMT_PUBLIC; a re-enrollment must present the same EK. */
  readonly ekPublic: string;
  readonly ekCertificateSubject: string;
  /** Hex of the AK TPMT_PUBLIC and its TPM Name. */
  readonly akPublic: string;
  readonly akName: string;
  readonly facts: HostFacts | null;
  readonly factsDigest: string;
  readonly lastEvidenceAt: string | null;
  readonly lastVerdictAt: string | null;
  readonly attestation: AttestationState;
  /** Set by findings that the next good quote must not clear (hidden reboot, boot PCR change). */
  readonly requiresReenrollment: boolean;
  /** Set by an operator to let a node with `requiresReenrollment` enroll again. */
  readonly reenrollApproved: boolean;
  /** The Nomad client (node name or ID) this host runs, as its agent claimed at enrollment; null: the node id. */
  readonly nomadNode: string | null;
}

const STATES: ReadonlySet<string> = new Set(['unknown', 'enrolled', 'trusted', 'untrusted', 'stale']);

type Obj = Readonly<Record<string, unknown>>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function fail(field: string): never {
  throw new BulwarkError('STORE_CORRUPT', `stored node record has an invalid ${field}`, { field });
}

function s(o: Obj, k: string): string {
  const v = o[k];
  return typeof v === 'string' ? v : fail(k);
}

function sn(o: Obj, k: string): string | null {
  const v = o[k];
  return v === null || v === undefined ? null : typeof v === 'string' ? v : fail(k);
}

function nn(o: Obj, k: string): number | null {
  const v = o[k];
  return v === null || v === undefined ? null : typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : fail(k);
}

function b(o: Obj, k: string): boolean {
  const v = o[k];
  return typeof v === 'boolean' ? v : fail(k);
}

function trustState(v: unknown): TrustState {
  if (typeof v !== 'string' || !STATES.has(v)) fail('state');
  switch (v) {
    case 'unknown':
    case 'enrolled':
    case 'trusted':
    case 'untrusted':
    case 'stale':
      return v;
    default:
      return fail('state');
  }
}

function findings(v: unknown): Finding[] {
  if (!Array.isArray(v)) fail('reasons');
  return v.map((f: unknown) => {
    if (!isObj(f) || typeof f['code'] !== 'string' || typeof f['message'] !== 'string') fail('reasons');
    const details = f['details'];
    if (details !== undefined && !isObj(details)) fail('reasons');
    const clean: Record<string, string | number | boolean> = {};
    for (const [k, val] of Object.entries(details ?? {})) {
      if (typeof val === 'string' || typeof val === 'number' || typeof val === 'boolean') clean[k] = val;
    }
    // Codes are stored as written by this version; unknown ones stay readable as strings.
    return { code: f['code'] as Finding['code'], message: f['message'], details: clean };
  });
}

function pcrMap(v: unknown): Record<string, string> | null {
  if (v === null || v === undefined) return null;
  if (!isObj(v)) fail('attestation.bootPcrs');
  const out: Record<string, string> = {};
  for (const [k, val] of Object.entries(v)) {
    if (!/^\d{1,2}$/.test(k) || typeof val !== 'string' || !/^[0-9a-f]{40,128}$/.test(val)) fail('attestation.bootPcrs');
    out[k] = val;
  }
  return out;
}

/**
 * Validates a stored record field by field (facts included); anything else is STORE_CORRUPT.
 */
export function decodeNodeRecord(text: string): NodeRecord {
  let o: unknown;
  try {
    o = JSON.parse(text);
  } catch (err) {
    throw new BulwarkError('STORE_CORRUPT', 'stored node record is not JSON', {}, { cause: err });
  }
  if (!isObj(o) || o['version'] !== 1) fail('version');
  const a = o['attestation'];
  if (!isObj(a)) fail('attestation');
  const ekType = o['ekType'];
  if (ekType !== 'rsa' && ekType !== 'ecc') fail('ekType');
  const facts = o['facts'];
  if (facts !== null && !isObj(facts)) fail('facts');
  return {
    version: 1,
    nodeId: s(o, 'nodeId'),
    state: trustState(o['state']),
    reasons: findings(o['reasons']),
    stateSince: s(o, 'stateSince'),
    enrolledAt: s(o, 'enrolledAt'),
    ekType,
    ekPublic: s(o, 'ekPublic'),
    ekCertificateSubject: s(o, 'ekCertificateSubject'),
    akPublic: s(o, 'akPublic'),
    akName: s(o, 'akName'),
    facts: facts === null ? null : validateHostFacts(facts),
    factsDigest: s(o, 'factsDigest'),
    lastEvidenceAt: sn(o, 'lastEvidenceAt'),
    lastVerdictAt: sn(o, 'lastVerdictAt'),
    attestation: {
      resetCount: nn(a, 'resetCount'),
      restartCount: nn(a, 'restartCount'),
      clock: sn(a, 'clock'),
      bootId: sn(a, 'bootId'),
      bootPcrs: pcrMap(a['bootPcrs']),
    },
    requiresReenrollment: b(o, 'requiresReenrollment'),
    reenrollApproved: b(o, 'reenrollApproved'),
    nomadNode: sn(o, 'nomadNode'),
  };
}

export function encodeNodeRecord(r: NodeRecord): string {
  return JSON.stringify(r);
}
