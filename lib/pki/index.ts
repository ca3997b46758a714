/**
 * The controller's own certificate authority, pure (node:crypto only): a DER writer and
 * reader, an X.509 v3 certificate builder and decoder, the CA's issuing functions, the
 * client identities certificates carry (people with a role, nodes with an AK name) and
 * the revocation list as a value. File handling lives in controller/pki.
 */
export { DerWriter, DerReader, DER_TAG, contextTag, encodeOid, decodeOid, decodeTime, decodeUnsignedInteger, type Tlv } from './der.js';
export {
  createCertificate,
  certificateToPem,
  certificateFromPem,
  encodeName,
  encodeIpAddress,
  keyIdentifier,
  newSerial,
  serialToHex,
  spkiOf,
  checkSupportedPublicKey,
  checkSubjectAltName,
  PKI_OID,
  KEY_USAGE_BITS,
  type CertificateTemplate,
  type DistinguishedName,
  type ExtKeyUsage,
  type ExtraExtension,
  type IssuedCertificate,
  type KeyUsage,
  type SubjectAltName,
} from './certificate.js';
export {
  decodeCertificate,
  formatIpAddress,
  nameValues,
  MAX_CERTIFICATE_BYTES,
  type DecodedCertificate,
  type DecodedExtension,
  type NameAttribute,
  type OtherGeneralName,
} from './decode.js';
export {
  ROLES,
  NODE_UNIT,
  BULWARK_ORGANIZATION,
  IDENTITY_URI,
  isRole,
  checkUserName,
  checkNodeNames,
  personAltNames,
  nodeAltNames,
  parseClientIdentity,
  identityOf,
  type ClientIdentity,
  type Role,
} from './identity.js';
export {
  BACKDATE_MS,
  generateKeyPair,
  validityFor,
  createCertificateAuthority,
  openCertificateAuthority,
  issueServerCertificate,
  issuePersonCertificate,
  issueNodeCertificate,
  publicKeyFromSpki,
  type CertificateAuthority,
  type KeyKind,
  type Validity,
} from './authority.js';
export {
  MAX_REVOKED,
  emptyRevocationList,
  normalizeSerial,
  revokeCertificate,
  isRevoked,
  checkNotRevoked,
  mergeRevocationLists,
  pruneRevocationList,
  type RevocationList,
  type RevokedCertificate,
} from './revocation.js';
