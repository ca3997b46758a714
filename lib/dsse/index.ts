/**
 * DSSE (Dead Simple Signing Envelope, secure-systems-lab/dsse v1.0) for Bulwark's signed
 * documents (pure: node:crypto only). parseEnvelope() gives an untrusted envelope; only
 * verifyEnvelope() gives a VerifiedEnvelope, whose payload is what the signatures cover.
 */
export { pae } from './pae.js';
export { decodeBase64, encodeBase64 } from './base64.js';
export {
  decodeEnvelope,
  encodeEnvelope,
  parseEnvelope,
  DsseEnvelopeJsonSchema,
  MAX_ENVELOPE_BYTES,
  MAX_ENVELOPE_SIGNATURES,
  MAX_KEYID_LENGTH,
  MAX_PAYLOAD_TYPE_LENGTH,
  MAX_SIGNATURE_BASE64_LENGTH,
  type DsseEnvelope,
  type DsseSignature,
} from './envelope.js';
export { prepareTrustedKeys, MIN_RSA_BITS, SIGNATURE_SCHEMES, type PreparedKey, type SignatureScheme, type TrustedKey } from './keys.js';
export { trustedKeySet, verifyEnvelope, type TrustedKeySet, type VerifiedEnvelope, type VerifiedKey, type VerifyEnvelopeOptions } from './verify.js';
export { keySigner, signEnvelope, type DsseSigner, type KeySignerOptions } from './sign.js';
export {
  IN_TOTO_STATEMENT_TYPE,
  InTotoStatementSchema,
  PAYLOAD_TYPES,
  parseStatement,
  statement,
  type InTotoStatement,
  type PayloadTypeName,
  type StatementPayload,
} from './statement.js';
export {
  ATTESTATION_PREDICATE_TYPE,
  ATTESTED_ARTIFACT_PREDICATE_TYPE,
  AttestationPredicateSchema,
  AttestedArtifactPredicateSchema,
  MAX_ATTESTATION_VALIDITY_MS,
  SignRequestSchema,
  attestationStatement,
  attestedArtifactStatement,
  encodeSignRequest,
  envelopeJson,
  hostKeyFingerprint,
  parseSignRequest,
  verifyAttestedEnvelope,
  type AttestationPredicate,
  type AttestedArtifactPredicate,
  type SignRequest,
  type VerifiedAttestedArtifact,
  type VerifyAttestedOptions,
} from './attested.js';
