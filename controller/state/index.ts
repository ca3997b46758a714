/** controller/state/: the public surface of this folder. */
export { NatsServerProcess, type NatsServerOptions } from './embedded-nats.js';
export { KvLease, LeaseRecordSchema, decodeLease, type LeaseRecord } from './lease.js';
export { AUDIT_STREAM, BUCKETS, ControllerStore, NonceEntrySchema, type NonceCheck, type NonceEntry, type StoredNode, type StoreOptions } from './store.js';
export { TrustEvents } from './trust-events.js';
export { STREAM_LIMITS, enforceStreamLimits, kvLimits, type LimitedStreamName, type StreamLimits } from './limits.js';
export { ADMIN_ACTIONS, AdminAudit, AdminAuditRecordSchema, decodeAdminAuditRecord, type AdminAction, type AdminAuditRecord } from './admin-audit.js';
export { bucketKeys } from './kv-keys.js';
