/**
 * NATS identities and permissions, pure (no I/O): node ids safe in subjects, the
 * node-scoped subject scheme, the permission model (controller: everything; node: its own
 * subjects only) and the nats-server config rendered from it.
 */
export { NATS_NODE_ID_MAX_LENGTH, NATS_NODE_ID_PATTERN, parseNatsNodeId, type NatsNodeId } from './node-id.js';
export { NODE_SUBJECTS, SUBJECT_PREFIX, checkBodyNodeId, nodeIdFromSubject, type NodeSubjectKind } from './subjects.js';
export {
  NODE_DENIED_SUBJECTS,
  controllerPermissions,
  nodePermissions,
  type AllowResponses,
  type NatsPermissions,
  type SubjectPermissions,
} from './permissions.js';
export {
  NATS_SERVER_DEFAULTS,
  checkNatsPassword,
  renderNatsServerConfig,
  resolveNatsLimits,
  type ControllerNatsAuth,
  type NatsAccountLimits,
  type NatsServerConfigSpec,
  type NatsServerLimits,
  type NatsTlsSpec,
  type NodeNatsIdentity,
} from './server-config.js';
export { checkNkeyUserPublicKey, createNkeyUser, crc16Xmodem, nkeyUserFromRawSeed, parseNkeyUserSeed, type NkeyUser } from './nkeys.js';
