/**
 * Linux IMA runtime integrity: the public surface of lib/ima.
 *
 * parse (untrusted entries) → replay against a quoted PCR 10 (verified entries, new state)
 * → evaluate against a runtime policy (findings).
 */
export { parseImaAscii, IMA_ASCII_LINE_MAX } from './ascii.js';
export { parseImaBinary } from './binary.js';
export {
  replayImaEntries,
  replayImaEntriesOffline,
  imaReplayKind,
  computeImaPcr10,
  initialImaReplayState,
  encodeImaReplayState,
  decodeImaReplayState,
  checkBootAggregate,
  type ImaReplayState,
  type ImaReplayStateJson,
  type ImaReplayOptions,
  type ImaReplayResult,
  type ImaOfflineReplayResult,
  type ImaReplayFailure,
  type ImaBankRule,
  type BootAggregateCheck,
} from './replay.js';
export {
  evaluateImaEntries,
  evaluateImaEntriesOffline,
  parseRuntimePolicy,
  formatRuntimePolicy,
  importKeylimeRuntimePolicy,
  exportKeylimeRuntimePolicy,
  loadRuntimePolicy,
  buildRuntimePolicy,
  isTemplateHashAlgorithm,
  RUNTIME_POLICY_KIND,
  RUNTIME_POLICY_VERSION,
  KEYLIME_POLICY_VERSION,
  RUNTIME_POLICY_LIMITS,
  RuntimePolicySchema,
  KeylimeRuntimePolicySchema,
  RuntimePolicyDocumentSchema,
  type RuntimePolicy,
  type RuntimePolicyJson,
  type RuntimePolicyKey,
  type KeylimeRuntimePolicy,
  type PolicyDigest,
  type MeasuredFile,
  type BuildRuntimePolicyOptions,
  type EvaluateImaOptions,
  type OfflineImaEvaluation,
} from './policy.js';
export {
  decodeImaSignature,
  encodeImaSignature,
  verifyImaSignature,
  computeImaKeyId,
  verifyEcdsaDigest,
  imaFileIdDigest,
  EVM_IMA_XATTR_TYPE,
  DIGSIG_VERSION_2,
  DIGSIG_VERSION_3,
  type ImaSignatureV2,
  type ImaSignatureCheck,
} from './signature.js';
export { decodeImaModsig, verifyImaModsig, type ImaModsigSignature, type ImaModsigCheck } from './modsig.js';
export { wouldImaMeasure, imaEventName, IMA_MEASURED_ROOTS, ELF_MAGIC } from './measured-files.js';
export {
  IMA_TEMPLATE_FIELDS,
  IMA_HASH_ALGOS,
  HASH_ALGO,
  IMA_LIMITS,
  IMA_PCR,
  BOOT_AGGREGATE_NAME,
  imaHashSize,
  isImaTemplateName,
  isImaHashAlgorithmName,
  isImaLogFormat,
  IMA_LOG_FORMATS,
  IMA_DIGEST_TYPES,
  type ImaDigestType,
  type ImaHashAlgorithmName,
  type ImaLogFormat,
  type ImaEntry,
  type ImaModsig,
  type ImaParseOptions,
  type ImaTemplateName,
  type ImaTemplateHashAlgorithm,
  type ParsedImaLog,
  type VerifiedImaEntries,
  type SelfReplayedImaEntries,
  type ImaReplayKind,
} from './types.js';
