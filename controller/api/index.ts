/** controller/api/: the public surface of this folder. */
export { GrpcApi, nodeRecordToMsg, type ApiDeps } from './grpc-server.js';
