/**
 * The pure core's leaf modules (no I/O: only node:crypto): bytes, errors, findings and
 * facts. Each concept folder of lib/ (tpm/, eventlog/, ima/, attestation/, nomad/, schema/)
 * has an index.ts of its own.
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
export { FINDING_CODES, TRUST_STATES, finding, type Finding, type FindingCode, type TrustState, type Verdict } from './verdict.js';
export { Backoff, backoffCeilingMs, fullJitterDelayMs, type BackoffPolicy, type BackoffStep, type RandomSource } from './backoff.js';
export { TokenBuckets, type TokenBucketOptions } from './token-bucket.js';
