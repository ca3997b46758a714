/**
 * Measured boot: the TCG PC Client event log, its replay against a verified quote, Secure
 * Boot state, and measured-boot policies. The public surface, by trust level:
 *
 * - untrusted input → structure: parseEventLog, decodeEventData, decodeEfiDevicePath, ...
 * - structure + QuotedPcrs → evidence: replayEventLog (the only source of VerifiedEventLog)
 * - evidence + policy → verdict: evaluateMeasuredBootPolicy (accepts only VerifiedEventLog)
 * - forensics without a quote: replayEventLogUnquoted, evaluateMeasuredBootPolicyUnquoted
 * - steady state: EventLogCache
 * - interchange: encodeCelJson (TCG Canonical Event Log JSON of what was judged)
 */
export { readBootChain, type BootChain, type BootComponent, type KernelCmdline } from './boot-chain.js';
export {
  CEL_CONTENT_TYPE_PCCLIENT_STD,
  celHashAlgName,
  celRecords,
  encodeCelJson,
  type CelDigest,
  type CelExportable,
  type CelPcClientRecord,
} from './cel-export.js';
export { EventLogCache, eventLogDigest, type EventLogCacheOptions } from './cache.js';
export {
  DEVICE_PATH_SUBTYPE,
  DEVICE_PATH_TYPE,
  EFI_ACTION,
  EFI_GUID,
  GRUB_STRING_PREFIX,
  LINUX_EVENT_TAG_ID,
  SEPARATOR_VALUE,
  SPEC_ID_EVENT03_SIGNATURE,
  STARTUP_LOCALITY_SIGNATURE,
  TCG_DIGEST_SIZES,
  TCG_EVENT_TYPE,
  eventTypeName,
} from './constants.js';
export {
  MAX_KERNEL_CMDLINE,
  createReferencePolicy,
  evaluateEventLog,
  evaluateMeasuredBootPolicy,
  evaluateMeasuredBootPolicyUnquoted,
  replayFailure,
  type MeasuredBootResult,
  type ReferencePolicyOptions,
  type UnquotedMeasuredBootReport,
} from './evaluate.js';
export { decodeEventData, decodeEventText, linuxEventTagName, type EventData, type GrubStringKind, type UefiVariableData } from './event-data.js';
export {
  MAX_EVENT_DATA_SIZE,
  MAX_EVENT_LOG_SIZE,
  MAX_EVENT_PCR_INDEX,
  MAX_LOG_ALGORITHMS,
  decodeTcgEfiSpecIdEvent,
  parseEventLog,
  type EventDigest,
  type EventLog,
  type EventLogFormat,
  type LoggedEvent,
  type SpecIdAlgorithm,
  type TcgEfiSpecIdEvent,
} from './parse.js';
export {
  BOOT_STAGES,
  MAX_CMDLINE_PATTERN,
  MAX_POLICY_DOCUMENT_SIZE,
  MAX_POLICIES,
  MAX_POLICY_LIST,
  MeasuredBootPolicyBundleSchema,
  MeasuredBootPolicyDocumentSchema,
  MeasuredBootPolicySchema,
  compileCmdlinePattern,
  formatMeasuredBootPolicy,
  parseMeasuredBootPolicies,
  selectMeasuredBootPolicy,
  validateMeasuredBootPolicy,
  type BootStage,
  type MeasuredBootPolicy,
  type MeasuredBootPolicyJson,
  type SecureBootRequirement,
} from './policy.js';
export { FIRMWARE_QUIRKS, FIRMWARE_QUIRK_IDS, type FirmwareQuirk, type FirmwareQuirkId } from './quirks.js';
export {
  BOOT_LOG_PCRS,
  bankName,
  checkEventDataDigest,
  comparedPcrs,
  eventDigest,
  eventDigestRule,
  extendedPcrs,
  initialPcrValue,
  isPcrProven,
  replayEventLog,
  replayEventLogUnquoted,
  replayPcrs,
  replayableBanks,
  type EventDataDigestCheck,
  type EventDigestRule,
  type EventLogReplayResult,
  type PcrMismatch,
  type ReplayOptions,
  type ReplayedEvent,
  type ReplayedEventLog,
  type ReplayedEventLogBody,
  type SelfReplayedEventLog,
  type VerifiedEvent,
  type VerifiedEventLog,
} from './replay.js';
export { readSecureBootState, signatureEntry, type SecureBootAuthority, type SecureBootOptions, type SecureBootState, type SignatureEntry, type SignatureKind } from './secure-boot.js';
export {
  decodeChar16,
  decodeEfiDevicePath,
  decodeEfiGuid,
  decodeEfiLoadOption,
  decodeEfiSignatureLists,
  decodeUefiGptData,
  efiGuidName,
  encodeEfiGuid,
  type DevicePath,
  type DevicePathNode,
  type EfiLoadOption,
  type EfiSignatureData,
  type GptHeader,
  type GptPartition,
} from './uefi.js';
