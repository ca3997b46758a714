/** lib/attestation/: the public surface of this folder. */
export { BOOT_PCRS, judgeEvidence, type EvidenceRound, type JudgeInput, type Judgement } from './judge.js';
export { signNodeIdentity, verifyNodeIdentity, type NodeIdentityClaims } from './node-identity.js';
export {
  AttestationStateSchema,
  EMPTY_ATTESTATION,
  NodeRecordSchema,
  StoredFindingSchema,
  corruptNodeRecord,
  corruptPath,
  decodeNodeRecord,
  encodeNodeRecord,
  type AttestationState,
  type NodeRecord,
} from './node-record.js';
export { IMA_FORMATS, POLICY_KINDS, findingCodeOf, imaFormatOf, policyKindOf, verdictOf, type ImaFormat, type PolicyKindName } from './evidence-fields.js';
