/** controller/audit/: the audit log's Merkle tree beside the audit stream, its signed checkpoints and their signer. */
export { AUDIT_EXPORT_MAX_RECORDS, AuditLog, CHECKPOINTS_BUCKET, StoredCheckpointSchema, type AuditCheckpointState, type AuditLogOptions, type StoredCheckpoint } from './audit-log.js';
export { DEFAULT_CHECKPOINT_KEY_FILE, keyObjectCheckpointSigner, loadCheckpointSigner, noteKeysOf, pemFileCheckpointSigner, pkcs11CheckpointSigner, type CheckpointSigner } from './signer.js';
