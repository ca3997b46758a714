/**
 * TPM 2.0 structures and checks: the public surface of lib/tpm. Decoders return values
 * that are decoded but not trusted; only `verifyQuote` yields `QuotedPcrs`.
 */
export {
  TPM_ALG,
  TPM_ECC_CURVE,
  TPMA_OBJECT,
  TPM_GENERATED_VALUE,
  TPM_ST,
  HASH_ALGS,
  HASH_ALGS_BY_NAME,
  HASH_ALG_NAMES,
  HASH_ALG_TABLE,
  isHashAlgName,
  type HashAlgInfo,
  type HashAlgName,
  type SymDefObject,
  type SchemeWithHash,
  type RsaPublic,
  type EccPublic,
  type TpmtPublic,
  type PcrSelection,
  type ClockInfo,
  type QuoteAttest,
  type TpmtSignature,
  type PcrBanks,
  type QuotedPcrs,
} from './types.js';
export { decodeTpmtPublic, decodeTpm2bPublic, computeName, tpmtPublicToKeyObject, checkAkAttributes } from './public.js';
export { kdfa, kdfe, protectCredential, makeCredential } from './credential.js';
export { encodeTpm2ToolsCredential, decodeTpm2ToolsCredential, type CredentialBlob } from './credential-file.js';
export {
  decodeQuoteAttest,
  decodeTpmsPcrSelection,
  decodeTpmlPcrSelection,
  encodeTpmsPcrSelection,
  encodeTpmlPcrSelection,
  pcrsFromBitmap,
  pcrSelectionsEqual,
} from './attest.js';
export { decodeTpmtSignature, encodeTpmtSignature } from './signature.js';
export {
  decodeSerializedPcrFile,
  decodeSerializedPcrs,
  concatPcrValues,
  hashWithTpmAlg,
  computePcrDigest,
  parsePcrSelectionSpec,
  formatPcrSelectionSpec,
  type SerializedPcrs,
} from './pcrs.js';
export { verifyQuote, type QuoteExpectations, type QuoteResult } from './quote.js';
export { parseHandleList, parsePcrReadOutput, trimNvCertificate, summarizeToolStderr } from './tool-output.js';
export { verifyEkCertificate, parsePemBundle, type EkCertificateResult } from './ekcert.js';
