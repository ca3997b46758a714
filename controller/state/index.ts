/** controller/state/: the public surface of this folder. */
export { NatsServerProcess, type NatsServerOptions } from './embedded-nats.js';
export { KvLease } from './lease.js';
export { AUDIT_STREAM, BUCKETS, ControllerStore, type NonceCheck, type NonceEntry, type StoredNode, type StoreOptions } from './store.js';
export { TrustEvents } from './trust-events.js';
