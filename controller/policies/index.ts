/** controller/policies/: the public surface of this folder. */
export { POLICY_BUCKET, PolicyEnvelopeSchema, PolicyStore, decodeStoredPolicy, type PolicyAuditSink, type PolicyKind, type PolicySummary, type StoredPolicy } from './policy-store.js';
export { KEYSET_BUCKET, KeySetStore, checkKeySetKind, type CurrentKeySet } from './keyset-store.js';
