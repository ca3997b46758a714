/**
 * The pure core of Bulwark (no I/O: only node:crypto). Everything the agent, the
 * controller and bulwarkctl use from lib/ is listed here.
 */
export { ByteReader, ByteWriter, toHex, fromHex, bytesEqual, concatBytes } from './bytes.js';
export {
  BulwarkError,
  ERROR_CODES,
  EXIT_CODES,
  isBulwarkError,
  isErrorCode,
  grpcStatusFor,
  exitCodeFor,
  toBulwarkError,
  type ErrorCode,
  type ErrorDetails,
  type ErrorKind,
} from './errors.js';
export { FINDING_CODES, finding, type Finding, type FindingCode, type TrustState, type Verdict } from './verdict.js';
export { verifyEkCertificate, parsePemBundle, type EkCertificateResult } from './ekcert.js';
export { validateHostFacts, sanitizeFactText, factsDigest, FACTS_LIMITS, type HostFacts, type HostDisk, type HostNetworkInterface } from './facts.js';
export { decodeNodeRecord, encodeNodeRecord, EMPTY_ATTESTATION, type NodeRecord, type AttestationState } from './node-record.js';
export { signNodeIdentity, verifyNodeIdentity, type NodeIdentityClaims } from './node-identity.js';
export { judgeEvidence, BOOT_PCRS, type EvidenceRound, type JudgeInput, type Judgement } from './attestation.js';
export { injectTrustConstraint, hasTrustConstraint, TRUST_CONSTRAINT } from './apps.js';
