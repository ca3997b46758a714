/**
 * The audit log's tamper evidence, pure (only node:crypto): an RFC 6962 Merkle tree with
 * inclusion and consistency proofs and their RFC 9162 verifiers, C2SP signed notes and
 * checkpoints, C2SP tlog-proofs for one record, and the audit export bundle.
 */
export { MERKLE_HASH_SIZE, emptyRootHash, leafHash, nodeHash } from './hash.js';
export { MERKLE_TREE_MAX_SIZE, MerkleTree, splitPoint } from './tree.js';
export { MERKLE_MAX_PROOF_HASHES, consistencyProofLength, inclusionProofLength, verifyConsistency, verifyInclusion } from './verify.js';
export {
  NOTE_MAX_BYTES,
  NOTE_MAX_KEY_NAME,
  NOTE_MAX_SIGNATURES,
  NOTE_MAX_SIGNATURE_BYTES,
  NOTE_SIGNATURE_TYPES,
  VerifiedNote,
  formatSignedNote,
  noteKeyId,
  noteSignerFromKey,
  noteVerifierFromKey,
  parseNoteSignerKey,
  parseNoteVerifierKey,
  parseSignedNote,
  signNote,
  verifyNote,
  type NoteSignature,
  type NoteSignatureType,
  type NoteSigner,
  type NoteVerifier,
  type SignedNote,
} from './note.js';
export {
  CHECKPOINT_MAX_EXTENSIONS,
  CHECKPOINT_MAX_LINE,
  formatCheckpointText,
  parseCheckpointText,
  verifyCheckpoint,
  type Checkpoint,
  type VerifiedCheckpoint,
} from './checkpoint.js';
export { TLOG_PROOF_HEADER, TLOG_PROOF_MAX_EXTRA, formatTlogProof, parseTlogProof, verifyTlogProof, type TlogProof } from './tlog-proof.js';
export {
  AUDIT_RECORD_MAX_BYTES,
  AuditBundleSchema,
  auditBundleDocument,
  buildAuditBundle,
  parseAuditBundle,
  verifyBundle,
  type AuditBundle,
  type AuditBundleVerdict,
} from './bundle.js';
export { decodeBase64Strict, encodeBase64 } from './base64.js';
