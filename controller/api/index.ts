/** controller/api/: the public surface of this folder. */
export { GrpcApi, baselineStatusToMsg, controllerServerCredentials, nodeRecordToMsg, type ApiDeps, type TlsCredentialFiles } from './grpc-server.js';
export { RPC_ACCESS, accessOf, authorize, describeCaller, verifyPeerCertificate, type Access, type Caller } from './access.js';
export { ACCESS_AUDIT_RECORD, ACCESS_AUDIT_SUBJECT, AccessAuditRecordSchema } from './access-audit.js';
