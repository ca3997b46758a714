/**
 * Attestation-bound artifact signatures (pure). A host signs an artifact only while the
 * controller vouches that the host is trusted, and the signature carries that voucher:
 *
 * 1. The agent hashes the artifact (sha256) and sends a signing request on its own NATS
 *    subject `bulwark.v1.attest-sign.<node>` (the server lets only that node publish there,
 *    so the node id is the subject's): the artifact's name and digest and the SPKI of the
 *    host key that will sign.
 * 2. The controller answers only when the node is trusted and its last verified quote is
 *    fresh. Its answer is the *attestation*: a DSSE envelope (payloadType
 *    application/vnd.in-toto+json) over an in-toto Statement v1 whose subject is the
 *    artifact digest and whose predicate (ATTESTATION_PREDICATE_TYPE) names the node, its
 *    AK name, the verdict `trusted`, the quote time, issuedAt, expiresAt (short-lived) and
 *    the sha256 of the host key's SPKI, signed with the controller's statement key.
 *    Anything else is a typed refusal (SIGN_STATEMENT_REFUSED) naming the finding codes.
 * 3. The host signs the *attested artifact* envelope: DSSE over an in-toto Statement v1 with
 *    the same subject, predicate ATTESTED_ARTIFACT_PREDICATE_TYPE holding the node id, the
 *    signing time (signedAt), the host key fingerprint and, embedded as JSON, the
 *    controller's attestation envelope. One file carries both signatures, and the host's
 *    signature covers the attestation it relies on (it cannot be swapped afterwards).
 *
 * verifyAttestedEnvelope checks, in order: the host signature (trusted host keys), the
 * embedded attestation's signature (controller keys), one subject in each with the same
 * sha256 (and the artifact's when given), the same node, the host key that verified is the
 * one the attestation names, the verdict is `trusted`, and signedAt lies within
 * [issuedAt, expiresAt]. An old attestation pasted onto a new artifact fails the digest
 * check; a signature made after the attestation expired fails the time check.
 *
 * What the attestation proves: the controller saw, at quote time, a verified quote from
 * this node's AK showing a trusted state, and at issuedAt the node (authenticated by its
 * NATS identity) asked to sign this digest with this key. signedAt is the host's own claim;
 * it cannot move the signature onto another digest or key, only within the short window.
 */
import { createHash, createPublicKey, type KeyObject } from 'node:crypto';
import { Type, type Static } from '@sinclair/typebox';
import { BulwarkError } from '../errors.js';
import { defineDocument } from '../schema/index.js';
import { toHex } from '../bytes.js';
import { encodeBase64 } from './base64.js';
import { decodeEnvelope, type DsseEnvelope } from './envelope.js';
import type { TrustedKey } from './keys.js';
import { PAYLOAD_TYPES, parseStatement, statement, type InTotoStatement, type StatementPayload } from './statement.js';
import { trustedKeySet, verifyEnvelope, type TrustedKeySet } from './verify.js';

/** predicateType of the controller's attestation (the statement it signs for a trusted host). */
export const ATTESTATION_PREDICATE_TYPE = 'https://bulwark.dev/attestation/v1';
/** predicateType of the host's statement about the artifact it signs. */
export const ATTESTED_ARTIFACT_PREDICATE_TYPE = 'https://bulwark.dev/attested-artifact/v1';

/** Longest validity the controller gives an attestation. */
export const MAX_ATTESTATION_VALIDITY_MS = 60 * 60_000;

const SHA256_HEX = '^[0-9a-f]{64}$';
/** RFC 3339 UTC timestamps as Date.toISOString() writes them. */
const TIMESTAMP = Type.String({ pattern: '^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}(\\.\\d{1,9})?Z$', maxLength: 40 });
const NODE_ID = Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$' });
const HOST_KEY = Type.Object({ sha256: Type.String({ pattern: SHA256_HEX }) }, { additionalProperties: false });

/** The controller's predicate: who was trusted, on what evidence, for how long, with which signing key. */
export const AttestationPredicateSchema = Type.Object(
  {
    nodeId: NODE_ID,
    /** Hex of the node's AK TPM Name. */
    akName: Type.String({ pattern: '^([0-9a-f]{2}){1,128}$' }),
    verdict: Type.Literal('trusted'),
    /** When the controller received the last verified evidence (the quote that made the verdict). */
    quoteTime: TIMESTAMP,
    issuedAt: TIMESTAMP,
    expiresAt: TIMESTAMP,
    /** sha256 of the DER SPKI of the host key allowed to sign the subject. */
    hostKey: HOST_KEY,
  },
  { additionalProperties: false },
);
export type AttestationPredicate = Static<typeof AttestationPredicateSchema>;

/** The host's predicate: its node id, when it signed, its key, and the controller's attestation (a DSSE envelope as JSON). */
export const AttestedArtifactPredicateSchema = Type.Object(
  {
    nodeId: NODE_ID,
    signedAt: TIMESTAMP,
    hostKey: HOST_KEY,
    attestation: Type.Unknown(),
  },
  { additionalProperties: false },
);
export type AttestedArtifactPredicate = Static<typeof AttestedArtifactPredicateSchema>;

/** The agent's signing request (JSON on `bulwark.v1.attest-sign.<node>`). */
export const SignRequestSchema = Type.Object(
  {
    version: Type.Literal(1),
    nodeId: NODE_ID,
    artifact: Type.Object({ name: Type.String({ minLength: 1, maxLength: 4096 }), sha256: Type.String({ pattern: SHA256_HEX }) }, { additionalProperties: false }),
    /** Standard base64 of the DER SPKI of the host key that will sign. */
    hostKey: Type.String({ minLength: 1, maxLength: 8192, pattern: '^[A-Za-z0-9+/]+={0,2}$' }),
  },
  { additionalProperties: false },
);
export type SignRequest = Static<typeof SignRequestSchema>;

const ATTESTATION_PREDICATE = defineDocument(AttestationPredicateSchema, 'attestation predicate', 'STATEMENT_MALFORMED');
const ARTIFACT_PREDICATE = defineDocument(AttestedArtifactPredicateSchema, 'attested artifact predicate', 'STATEMENT_MALFORMED');
const SIGN_REQUEST = defineDocument(SignRequestSchema, 'signing request', 'SIGN_REQUEST_MALFORMED');

/** Parses a signing request (untrusted bytes from NATS); SIGN_REQUEST_MALFORMED otherwise. */
export function parseSignRequest(data: Uint8Array): SignRequest {
  return SIGN_REQUEST.parseJson(data);
}

/** The signing request as JSON bytes. */
export function encodeSignRequest(request: SignRequest): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(SIGN_REQUEST.parse(request)));
}

/** sha256 (hex) of a public key's DER SPKI: how statements name a host key. */
export function hostKeyFingerprint(key: KeyObject): string {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  return toHex(createHash('sha256').update(pub.export({ type: 'spki', format: 'der' })).digest());
}

/** The envelope as the JSON value embedded in a predicate (the same shape encodeEnvelope writes). */
export function envelopeJson(envelope: DsseEnvelope): Record<string, unknown> {
  return {
    payload: encodeBase64(envelope.payload),
    payloadType: envelope.payloadType,
    signatures: envelope.signatures.map((s) => (s.keyid === '' ? { sig: encodeBase64(s.sig) } : { keyid: s.keyid, sig: encodeBase64(s.sig) })),
  };
}

/** The controller's statement for one artifact digest (to sign with its statement key). */
export function attestationStatement(artifact: { name: string; sha256: string }, predicate: AttestationPredicate): StatementPayload {
  return statement([{ name: artifact.name, digest: { sha256: artifact.sha256 } }], ATTESTATION_PREDICATE_TYPE, ATTESTATION_PREDICATE.parse(predicate));
}

/** The host's statement about the artifact, embedding the controller's attestation envelope. */
export function attestedArtifactStatement(
  artifact: { name: string; sha256: string },
  host: { nodeId: string; signedAt: string; hostKeySha256: string },
  attestation: DsseEnvelope,
): StatementPayload {
  const predicate = ARTIFACT_PREDICATE.parse({ nodeId: host.nodeId, signedAt: host.signedAt, hostKey: { sha256: host.hostKeySha256 }, attestation: envelopeJson(attestation) });
  return statement([{ name: artifact.name, digest: { sha256: artifact.sha256 } }], ATTESTED_ARTIFACT_PREDICATE_TYPE, predicate);
}

/** An attested envelope that passed every check of verifyAttestedEnvelope. */
export interface VerifiedAttestedArtifact {
  readonly name: string;
  readonly sha256: string;
  readonly nodeId: string;
  readonly akName: string;
  readonly quoteTime: string;
  readonly issuedAt: string;
  readonly expiresAt: string;
  readonly signedAt: string;
  /** The host key that signed (keyid as the caller gave it). */
  readonly hostKeyId: string;
  readonly hostKeySha256: string;
  /** The controller key that signed the attestation. */
  readonly controllerKeyId: string;
}

export interface VerifyAttestedOptions {
  readonly hostKeys: readonly (KeyObject | TrustedKey)[];
  readonly controllerKeys: readonly (KeyObject | TrustedKey)[];
  /** The artifact's sha256 (hex) when the verifier holds the artifact. */
  readonly artifactSha256?: string;
}

function invalid(check: string, message: string, details: Record<string, string | number> = {}): BulwarkError {
  return new BulwarkError('ATTESTATION_INVALID', message, { check, ...details });
}

function onlySubject(s: InTotoStatement, what: string): { name: string; sha256: string } {
  const [first, second] = s.subject;
  if (first === undefined || second !== undefined) throw invalid('subject', `the ${what} must name exactly one subject, not ${s.subject.length}`);
  return { name: first.name, sha256: first.digest.sha256 };
}

function time(text: string, field: string): number {
  const ms = Date.parse(text);
  if (!Number.isFinite(ms)) throw new BulwarkError('STATEMENT_MALFORMED', `${field} is not a time: ${text}`, { field });
  return ms;
}

/**
 * Verifies an attested artifact envelope (see the file comment): throws SIGNATURE_INVALID /
 * PAYLOAD_TYPE_MISMATCH (either signature), ENVELOPE_MALFORMED / STATEMENT_MALFORMED, or
 * ATTESTATION_INVALID with details.check (subject, digest, artifact, node, host-key,
 * validity, signed-at).
 */
export function verifyAttestedEnvelope(envelope: DsseEnvelope | string | Uint8Array, options: VerifyAttestedOptions): VerifiedAttestedArtifact {
  const hostSet: TrustedKeySet = trustedKeySet(options.hostKeys);
  const host = verifyEnvelope(envelope, { trustedKeys: hostSet, payloadType: PAYLOAD_TYPES.inToto });
  const hostStatement = parseStatement(host.payload);
  if (hostStatement.predicateType !== ATTESTED_ARTIFACT_PREDICATE_TYPE) {
    throw invalid('predicate-type', `the envelope's statement is a ${hostStatement.predicateType.slice(0, 200)}, not an attested artifact (${ATTESTED_ARTIFACT_PREDICATE_TYPE})`);
  }
  const artifactPredicate = ARTIFACT_PREDICATE.parse(hostStatement.predicate ?? null);
  const ctlEnvelope = decodeEnvelope(artifactPredicate.attestation, '/predicate/attestation');
  const controllerSet = trustedKeySet(options.controllerKeys);
  const ctl = verifyEnvelope(ctlEnvelope, { trustedKeys: controllerSet, payloadType: PAYLOAD_TYPES.inToto });
  const ctlStatement = parseStatement(ctl.payload);
  if (ctlStatement.predicateType !== ATTESTATION_PREDICATE_TYPE) {
    throw invalid('predicate-type', `the embedded statement is a ${ctlStatement.predicateType.slice(0, 200)}, not an attestation (${ATTESTATION_PREDICATE_TYPE})`);
  }
  const attestation = ATTESTATION_PREDICATE.parse(ctlStatement.predicate ?? null);

  const artifact = onlySubject(hostStatement, 'host statement');
  const attested = onlySubject(ctlStatement, 'attestation');
  if (artifact.sha256 !== attested.sha256) {
    throw invalid('digest', `the host signed ${artifact.sha256} but the attestation is for ${attested.sha256}`, { signed: artifact.sha256, attested: attested.sha256 });
  }
  if (options.artifactSha256 !== undefined && options.artifactSha256 !== artifact.sha256) {
    throw invalid('artifact', `the artifact's sha256 is ${options.artifactSha256}, the envelope is for ${artifact.sha256}`, { artifact: options.artifactSha256, signed: artifact.sha256 });
  }
  if (artifactPredicate.nodeId !== attestation.nodeId) {
    throw invalid('node', `the host statement names ${artifactPredicate.nodeId}, the attestation ${attestation.nodeId}`);
  }
  // The attestation binds one host key: it must be one that verified the host signature.
  const signedBy = host.keys.map((k) => ({ keyid: k.keyid, sha256: fingerprintOf(hostSet, k.index) }));
  const bound = signedBy.find((k) => k.sha256 === attestation.hostKey.sha256);
  if (bound === undefined || artifactPredicate.hostKey.sha256 !== attestation.hostKey.sha256) {
    throw invalid('host-key', `the attestation names host key ${attestation.hostKey.sha256}, which did not sign the envelope`, { attestedKey: attestation.hostKey.sha256 });
  }
  const issuedAt = time(attestation.issuedAt, 'issuedAt');
  const expiresAt = time(attestation.expiresAt, 'expiresAt');
  const signedAt = time(artifactPredicate.signedAt, 'signedAt');
  if (expiresAt < issuedAt || expiresAt - issuedAt > MAX_ATTESTATION_VALIDITY_MS) {
    throw invalid('validity', `the attestation's validity ${attestation.issuedAt} .. ${attestation.expiresAt} is not a window of at most ${MAX_ATTESTATION_VALIDITY_MS} ms`);
  }
  if (signedAt < issuedAt || signedAt > expiresAt) {
    throw invalid('signed-at', `signed at ${artifactPredicate.signedAt}, outside the attestation's validity ${attestation.issuedAt} .. ${attestation.expiresAt} (expired or not yet valid)`, {
      signedAt: artifactPredicate.signedAt,
      expiresAt: attestation.expiresAt,
    });
  }
  const controllerKey = ctl.keys[0];
  return {
    name: artifact.name,
    sha256: artifact.sha256,
    nodeId: attestation.nodeId,
    akName: attestation.akName,
    quoteTime: attestation.quoteTime,
    issuedAt: attestation.issuedAt,
    expiresAt: attestation.expiresAt,
    signedAt: artifactPredicate.signedAt,
    hostKeyId: bound.keyid,
    hostKeySha256: bound.sha256,
    controllerKeyId: controllerKey?.keyid ?? '',
  };
}

function fingerprintOf(set: TrustedKeySet, index: number): string {
  const key = set.prepared.find((p) => p.index === index);
  if (key === undefined) throw new BulwarkError('INTERNAL', `verified key ${index} is not in the trusted set`);
  return toHex(createHash('sha256').update(key.spki).digest());
}
