/** bulwark-controller and bulwarkctl: the public surface of controller/. */
export { Controller, loadCaBundle, jsonLogger, ERROR_HEADER, type Logger } from './controller.js';
export { parseControllerConfig, loadControllerConfig, CONTROLLER_DEFAULTS, type ControllerConfig } from './config.js';
export { ControllerStore, BUCKETS, AUDIT_STREAM, type StoredNode, type NonceCheck, type NonceEntry } from './store.js';
export { Registrar, type RegistrarOptions } from './registrar.js';
export { Verifier, type VerifierOptions } from './verifier.js';
export { TrustEvents } from './trust-events.js';
export { KvLease } from './lease.js';
export { GrpcApi, nodeRecordToMsg, type ApiDeps } from './grpc-server.js';
export { NatsServerProcess, type NatsServerOptions } from './nats-server.js';
export { runCtl, formatTable, CTL_HELP, type CtlIo } from './ctl.js';
export { PolicyStore, POLICY_BUCKET, type PolicyKind, type PolicySummary, type StoredPolicy } from './policy-store.js';
export { appraisalInputs, type Appraiser, type AppraisalContext, type AppraisalResult, type ReplyPatch } from './appraiser.js';
export { createAppraisers, type AppraiserDeps } from './appraisers.js';
export { NomadHttpClient, NomadReconciler, type NomadApi, type NomadReconcilerOptions, type TrustSource, type AppliedAction } from './nomad/index.js';
