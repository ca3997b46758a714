/**
 * The controller's certificate authority on disk: the CA, the gRPC server certificate and
 * credential sets (directories of ca.pem, cert.pem and key.pem), with their file modes
 * checked. The certificates themselves are made by lib/pki.
 */
export {
  ensureControllerCa,
  loadControllerCa,
  issueCredential,
  pkiPaths,
  PKI_DEFAULTS,
  type ControllerCa,
  type ControllerCaOptions,
  type IssuedCredential,
} from './controller-ca.js';
export {
  readCredentialSet,
  writeCredentialSet,
  readPrivateKeyFile,
  ensurePrivateKey,
  readCertificateFile,
  checkKeyMatches,
  issuedByCa,
  privateKeyToPem,
  CREDENTIAL_FILES,
  type CredentialSet,
  type CredentialSetFiles,
} from './files.js';
export { RevocationStore, REVOCATIONS_BUCKET, ISSUED_BUCKET } from './revocation-store.js';
