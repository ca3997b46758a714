/**
 * What the controller keeps per node, durably (JetStream KV `bulwark_nodes`). The record
 * is read back from storage that other replicas (or anyone with NATS write access) can
 * touch, so it is validated on every read like any other input: one schema, through the
 * schema layer, every failure a STORE_CORRUPT naming the JSON path.
 *
 * Versions: `version` is 1. A later release that changes the shape writes 2 and
 * dispatches on the field here; a record without `version` reads as 1.
 */
import { Type, type Static } from '@sinclair/typebox';
import { BulwarkError, ERROR_CODES } from '../errors.js';
import { validateHostFacts, type HostFacts } from '../facts/index.js';
import { defineDocument, keyOfTable, literalUnion } from '../schema/index.js';
import { FINDING_CODES, TRUST_STATES, finding, type Finding } from '../verdict.js';

/** The KV bucket node records live in (for messages). */
const BUCKET = 'bulwark_nodes';

const Text = (maxLength: number) => Type.String({ maxLength });
const NullableText = (maxLength: number) => Type.Union([Type.String({ maxLength }), Type.Null()]);
const Hex = (maxLength: number) => Type.String({ pattern: '^([0-9a-f]{2})*$', maxLength });
/** TPM counters (u32) and unset (null) before the first quote. */
const Counter = Type.Union([Type.Integer({ minimum: 0, maximum: 0xffffffff }), Type.Null()]);

/** A finding as stored: its code is one this version knows (a stored unknown code is corruption, not a string to pass on). */
export const StoredFindingSchema = Type.Object(
  {
    code: keyOfTable({ ...ERROR_CODES, ...FINDING_CODES }),
    message: Text(4096),
    details: Type.Optional(
      Type.Record(Type.String({ maxLength: 128 }), Type.Union([Type.String({ maxLength: 4096 }), Type.Number(), Type.Boolean(), Type.Array(Type.Number(), { maxItems: 64 })]), {
        maxProperties: 64,
      }),
    ),
  },
  { additionalProperties: false },
);

/** TPM state seen in the last verified quote; null fields before the first one. */
export const AttestationStateSchema = Type.Object(
  {
    resetCount: Counter,
    restartCount: Counter,
    /** TPMS_CLOCK_INFO.clock as a decimal string (a u64). */
    clock: Type.Union([Type.String({ pattern: '^[0-9]{1,20}$' }), Type.Null()]),
    bootId: NullableText(128),
    /** Boot PCR values (index → hex) fixed at the first quote of this boot. */
    bootPcrs: Type.Union([Type.Record(Type.String({ pattern: '^[0-9]{1,2}$' }), Type.String({ pattern: '^[0-9a-f]{40,128}$' }), { additionalProperties: false }), Type.Null()]),
  },
  { additionalProperties: false },
);

export type AttestationState = Static<typeof AttestationStateSchema>;

export const EMPTY_ATTESTATION: AttestationState = { resetCount: null, restartCount: null, clock: null, bootId: null, bootPcrs: null };

/** One node as stored: identity, keys, trust state with reasons, and attestation progress. */
export const NodeRecordSchema = Type.Object(
  {
    /** Missing in no record this project wrote, but read as 1 like every other stored kind. */
    version: Type.Optional(Type.Literal(1)),
    nodeId: Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$' }),
    state: literalUnion(TRUST_STATES),
    reasons: Type.Array(StoredFindingSchema, { maxItems: 1024 }),
    stateSince: Text(64),
    enrolledAt: Text(64),
    ekType: literalUnion(['rsa', 'ecc']),
    /** Hex of the EK TPMT_PUBLIC; a re-enrollment must present the same EK. */
    ekPublic: Hex(8192),
    ekCertificateSubject: Text(4096),
    /** Hex of the AK TPMT_PUBLIC and its TPM Name. */
    akPublic: Hex(8192),
    akName: Hex(256),
    /** Host facts: checked by validateHostFacts after the schema (exact keys, caps). */
    facts: Type.Union([Type.Record(Type.String(), Type.Unknown()), Type.Null()]),
    factsDigest: Text(128),
    lastEvidenceAt: NullableText(64),
    lastVerdictAt: NullableText(64),
    attestation: AttestationStateSchema,
    /** Set by findings that the next good quote must not clear (hidden reboot, boot PCR change). */
    requiresReenrollment: Type.Boolean(),
    /** Set by an operator to let a node with `requiresReenrollment` enroll again. */
    reenrollApproved: Type.Boolean(),
    /** The Nomad client (node name or ID) this host runs, as its agent claimed at enrollment; null: the node id. */
    nomadNode: NullableText(256),
    /**
     * The node's NATS identity: the public half of the nkey its agent generated at
     * enrollment. Absent in records written before NATS authentication (such a node has no
     * NATS access until it enrolls again).
     */
    natsPublicKey: Type.Optional(Type.String({ pattern: '^U[A-Z2-7]{55}$' })),
    /** Non-failing notes on the last verdict (an accept-all measured-boot policy in force); absent: none. */
    notes: Type.Optional(Type.Array(Text(512), { maxItems: 16 })),
  },
  { additionalProperties: false },
);

/** A node record after decoding: version fixed to 1, facts checked, reasons as findings. */
export type NodeRecord = Omit<Static<typeof NodeRecordSchema>, 'version' | 'facts' | 'reasons'> & {
  readonly version: 1;
  readonly facts: HostFacts | null;
  readonly reasons: readonly Finding[];
};

const NODE_RECORD = defineDocument(NodeRecordSchema, 'stored node record', 'STORE_CORRUPT');

/**
 * Decodes a stored record (JSON text or the KV value's bytes). `key` is the KV key it was
 * read under: the record must name that node. Anything else is STORE_CORRUPT with
 * `details.path` (a JSON pointer) and `details.source` (bucket/key).
 */
export function decodeNodeRecord(data: string | Uint8Array, key?: string): NodeRecord {
  const source = key === undefined ? undefined : `${BUCKET}/${key}`;
  const doc = NODE_RECORD.parseJson(data, source);
  const at = source === undefined ? '' : ` (${source})`;
  if (key !== undefined && doc.nodeId !== key) {
    throw new BulwarkError('STORE_CORRUPT', `stored node record${at} is invalid at /nodeId: it names node ${doc.nodeId}`, { path: '/nodeId', source: source ?? '' });
  }
  let facts: HostFacts | null = null;
  if (doc.facts !== null) {
    try {
      facts = validateHostFacts(doc.facts);
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      throw new BulwarkError('STORE_CORRUPT', `stored node record${at} is invalid at /facts: ${reason}`, { path: '/facts', source: source ?? '' }, { cause: err });
    }
  }
  return { ...doc, version: 1, facts };
}

export function encodeNodeRecord(r: NodeRecord): string {
  return JSON.stringify(r);
}

/**
 * The stand-in for a node whose stored record does not decode (trust level: none). It is
 * untrusted with STATE_CORRUPT and must re-enroll, so listings, sweeps and the Nomad gate
 * treat it like any untrusted node; it carries no keys, so no evidence can verify against
 * it. It is a view, never written back: the corrupt bytes stay for an operator to look at
 * until one approves the node (which removes them) and the host enrolls again.
 */
export function corruptNodeRecord(nodeId: string, error: BulwarkError, writtenAt: string): NodeRecord {
  const path = corruptPath(error);
  return {
    version: 1,
    nodeId,
    state: 'untrusted',
    reasons: [finding('STATE_CORRUPT', `the stored node record does not decode: ${error.message}`, { path })],
    stateSince: writtenAt,
    enrolledAt: '',
    ekType: 'rsa',
    ekPublic: '',
    ekCertificateSubject: '',
    akPublic: '',
    akName: '',
    facts: null,
    factsDigest: '',
    lastEvidenceAt: null,
    lastVerdictAt: null,
    attestation: EMPTY_ATTESTATION,
    requiresReenrollment: true,
    reenrollApproved: false,
    nomadNode: null,
  };
}

/** The JSON pointer a decode error names ("/" for the whole document), for findings and log lines. */
export function corruptPath(error: BulwarkError): string {
  const path = error.details['path'];
  return typeof path === 'string' && path !== '' ? path : '/';
}
