/** bulwark-controller and bulwarkctl: the public surface of controller/. */
export { Controller, loadCaBundle, ERROR_HEADER } from './controller.js';
export { parseControllerConfig, loadControllerConfig, CONTROLLER_DEFAULTS, type ControllerConfig } from './config/index.js';
export { ControllerStore, BUCKETS, AUDIT_STREAM, type StoredNode, type NonceCheck, type NonceEntry } from './state/index.js';
export { Registrar, type RegistrarOptions } from './registrar/index.js';
export { Verifier, type VerifierOptions } from './verifier/index.js';
export { TrustEvents } from './state/index.js';
export { KvLease } from './state/index.js';
export { GrpcApi, nodeRecordToMsg, type ApiDeps } from './api/index.js';
export { NatsServerProcess, type NatsServerOptions } from './state/index.js';
export { PolicyStore, POLICY_BUCKET, type PolicyKind, type PolicySummary, type StoredPolicy } from './policies/index.js';
export { appraisalInputs, type Appraiser, type AppraisalContext, type AppraisalResult, type ReplyPatch } from './appraisers/index.js';
export { createAppraisers, type AppraiserDeps, type Appraisers } from './appraisers/index.js';
export { NomadHttpClient, NomadReconciler, type NomadApi, type NomadReconcilerOptions, type TrustSource, type AppliedAction } from './nomad/index.js';
