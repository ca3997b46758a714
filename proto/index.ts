/** proto/: the public surface of this folder. Generated code (proto/gen/) is reached only through here. */
export { CONTROLLER_SERVICE_NAMES, REFLECTION_SERVICE_NAMES, checkControllerStatus, controllerReflection, type ControllerStatusMsg } from './grpc.js';
export { APPS_SERVICE, ATTESTATION_SERVICE, AUDIT_SERVICE, type AuditCheckpointMsg, CREDENTIALS_SERVICE, ControllerClient, clientCredentials, type ClientTls, type IssuedCredentialMsg, ERROR_CODE_METADATA, HEALTH_SERVICE, PLACEMENT_SERVICE, POLICIES_SERVICE, REGISTRAR_SERVICE } from './grpc.js';
export {
  NO_LOGS, EMPTY_REPLY_STATE,
  SUBJECTS,
  WIRE_LIMITS,
  appStatusToWire,
  baselineStatusToWire,
  checkBaselineStatus,
  checkActivateRequest,
  checkActivateResponse,
  checkAppStatus,
  checkAppSummary,
  checkEnrollRequest,
  checkEnrollResponse,
  checkHeldEnrollment,
  checkList,
  checkNode,
  checkNodeId,
  checkPolicyInfo,
  checkKeySetInfo,
  keySetInfoToWire,
  type KeySetInfoMsg,
  checkText,
  checkTrustEvent,
  decodeMessage,
  enrollRequestToWire,
  findingToMsg,
  nodeToWire,
  policyInfoToWire,
  trustEventToWire,
  wire,
  type ActivateRequestMsg,
  type ActivateResponseMsg,
  type AppAllocationMsg,
  type AppStatusMsg,
  type AppSummaryMsg,
  type BaselineStatusMsg,
  type PortRangeMsg,
  type ChallengeMsg,
  type Codec,
  type EkType,
  type EnrollRequestMsg,
  type EnrollResponseMsg,
  type EvidenceMsg,
  type EvidenceReplyMsg,
  type FindingMsg,
  type HeldEnrollmentMsg,
  type NodeMsg,
  type PolicyInfoMsg,
  type TrustEventMsg,
} from './wire.js';
export { HealthCheckResponse_ServingStatus as HealthServingStatus, type HealthServer } from './gen/grpc/health/v1/health.js';
export type { AttestationServer } from './gen/bulwark/v1/attestation.js';
export type { AppsServer, PlacementServer } from './gen/bulwark/v1/placement.js';
export type { PoliciesServer } from './gen/bulwark/v1/policies.js';
export type { RegistrarServer } from './gen/bulwark/v1/registrar.js';
export type { CredentialsServer } from './gen/bulwark/v1/credentials.js';
export type { AuditServer } from './gen/bulwark/v1/audit.js';
