/**
 * The controller's certificate authority as values: a self-signed root that issues the
 * controller's server certificate, people's credentials (with a role) and enrolled nodes'
 * certificates (for a public key the node generated; only its SubjectPublicKeyInfo
 * travels). No I/O: keys and certificates in, certificates out.
 */
import { createPublicKey, generateKeyPairSync, X509Certificate, type KeyObject } from 'node:crypto';
import { bytesEqual, toHex } from '../bytes.js';
import { BulwarkError } from '../errors.js';
import {
  checkSupportedPublicKey,
  createCertificate,
  keyIdentifier,
  newSerial,
  spkiOf,
  type CertificateTemplate,
  type IssuedCertificate,
  type SubjectAltName,
} from './certificate.js';
import { decodeCertificate } from './decode.js';
import { BULWARK_ORGANIZATION, NODE_UNIT, checkNodeNames, checkUserName, isRole, nodeAltNames, personAltNames, type Role } from './identity.js';

/** How far notBefore lies before the moment of issue, for clocks that run a little behind the controller's. */
export const BACKDATE_MS = 5 * 60 * 1000;

/** Key types the CA generates and accepts. */
export type KeyKind = 'p256' | 'ed25519';

/** A fresh key pair: ECDSA P-256 (the default) or Ed25519. */
export function generateKeyPair(kind: KeyKind = 'p256'): { privateKey: KeyObject; publicKey: KeyObject } {
  return kind === 'ed25519' ? generateKeyPairSync('ed25519') : generateKeyPairSync('ec', { namedCurve: 'P-256' });
}

/** A validity period starting BACKDATE_MS before `now` and ending `validForMs` after it. */
export interface Validity {
  readonly notBefore: Date;
  readonly notAfter: Date;
}

export function validityFor(now: Date, validForMs: number): Validity {
  if (!Number.isSafeInteger(validForMs) || validForMs <= 0) throw new BulwarkError('PKI_TEMPLATE_INVALID', 'validity must be a positive number of milliseconds');
  return { notBefore: new Date(now.getTime() - BACKDATE_MS), notAfter: new Date(now.getTime() + validForMs) };
}

/**
 * A CA that has been checked to be usable: a v3 CA certificate with keyCertSign, signed by
 * its own key, and the private key matching it. Only `createCertificateAuthority` and
 * `openCertificateAuthority` make one.
 */
export interface CertificateAuthority {
  readonly certificate: Uint8Array;
  readonly pem: string;
  readonly key: KeyObject;
  readonly subjectDer: Uint8Array;
  readonly keyId: Uint8Array;
  readonly notAfter: number;
}

/** Creates a self-signed root CA certificate (pathLen 0: it issues end-entity certificates only) for `key`. */
export function createCertificateAuthority(opts: { readonly key: KeyObject; readonly commonName: string; readonly validity: Validity }): CertificateAuthority {
  const publicKey = createPublicKey(opts.key);
  const name = { organization: BULWARK_ORGANIZATION, commonName: opts.commonName };
  const issued = createCertificate({
    subject: name,
    issuer: name,
    serial: newSerial(),
    notBefore: opts.validity.notBefore,
    notAfter: opts.validity.notAfter,
    publicKey,
    signingKey: opts.key,
    isCa: true,
    pathLen: 0,
    keyUsage: ['keyCertSign', 'cRLSign', 'digitalSignature'],
  });
  return openCertificateAuthority(issued.der, opts.key, opts.validity.notBefore);
}

/**
 * Checks a stored CA certificate and key before use: PKI_CA_INVALID when the certificate
 * is not a self-signed CA with keyCertSign or has expired at `now`, PKI_KEY_MISMATCH when
 * the key is not the certificate's, CERT_MALFORMED for bytes that are not a certificate.
 */
export function openCertificateAuthority(certificate: Uint8Array, key: KeyObject, now: Date = new Date()): CertificateAuthority {
  const decoded = decodeCertificate(certificate);
  if (!decoded.isCa || decoded.keyUsage === undefined || !decoded.keyUsage.includes('keyCertSign')) {
    throw new BulwarkError('PKI_CA_INVALID', 'the CA certificate is not a CA (basicConstraints cA and keyUsage keyCertSign)');
  }
  if (now.getTime() > decoded.notAfter) {
    throw new BulwarkError('PKI_CA_INVALID', `the CA certificate expired at ${new Date(decoded.notAfter).toISOString()}`, { notAfter: decoded.notAfter });
  }
  if (key.type !== 'private') throw new BulwarkError('KEY_INVALID', 'the CA key is not a private key');
  if (!bytesEqual(spkiOf(createPublicKey(key)), decoded.spki)) throw new BulwarkError('PKI_KEY_MISMATCH', 'the CA key does not belong to the CA certificate');
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(certificate);
  } catch (err) {
    throw new BulwarkError('CERT_MALFORMED', 'the CA certificate is not one node:crypto can parse', {}, { cause: err });
  }
  if (!bytesEqual(decoded.issuerDer, decoded.subjectDer) || !x509.verify(createPublicKey(key))) {
    throw new BulwarkError('PKI_CA_INVALID', 'the CA certificate is not self-signed');
  }
  return {
    certificate: certificate.slice(),
    pem: x509.toString(),
    key,
    subjectDer: decoded.subjectDer.slice(),
    keyId: decoded.subjectKeyId ?? keyIdentifier(decoded.spki),
    notAfter: decoded.notAfter,
  };
}

/** A leaf never outlives its CA: notAfter is cut at the CA's. */
function leafTemplate(
  ca: CertificateAuthority,
  validity: Validity,
): Pick<CertificateTemplate, 'issuer' | 'serial' | 'notBefore' | 'notAfter' | 'signingKey' | 'isCa' | 'authorityKeyId'> {
  const notAfter = Math.min(validity.notAfter.getTime(), ca.notAfter);
  return {
    issuer: { der: ca.subjectDer },
    serial: newSerial(),
    notBefore: validity.notBefore,
    notAfter: new Date(notAfter),
    signingKey: ca.key,
    isCa: false,
    authorityKeyId: ca.keyId,
  };
}

/** The controller's TLS server certificate: serverAuth, the given DNS names and IP addresses as SANs. */
export function issueServerCertificate(
  ca: CertificateAuthority,
  opts: { readonly publicKey: KeyObject; readonly commonName: string; readonly dnsNames: readonly string[]; readonly ipAddresses: readonly string[]; readonly validity: Validity },
): IssuedCertificate {
  const sans: SubjectAltName[] = [
    ...opts.dnsNames.map((value): SubjectAltName => ({ kind: 'dns', value })),
    ...opts.ipAddresses.map((value): SubjectAltName => ({ kind: 'ip', value })),
  ];
  if (sans.length === 0) throw new BulwarkError('PKI_TEMPLATE_INVALID', 'a server certificate needs at least one DNS name or IP address');
  return createCertificate({
    ...leafTemplate(ca, opts.validity),
    subject: { organization: BULWARK_ORGANIZATION, commonName: opts.commonName },
    publicKey: opts.publicKey,
    keyUsage: ['digitalSignature'],
    extKeyUsage: ['serverAuth'],
    subjectAltNames: sans,
  });
}

/** A person's client certificate: clientAuth, subject O=Bulwark OU=<role> CN=<name>, URI SANs for the user and the role. */
export function issuePersonCertificate(
  ca: CertificateAuthority,
  opts: { readonly name: string; readonly role: Role; readonly publicKey: KeyObject; readonly validity: Validity },
): IssuedCertificate {
  checkUserName(opts.name);
  if (!isRole(opts.role)) throw new BulwarkError('PKI_TEMPLATE_INVALID', `"${String(opts.role)}" is not a role`);
  return createCertificate({
    ...leafTemplate(ca, opts.validity),
    subject: { organization: BULWARK_ORGANIZATION, organizationalUnit: opts.role, commonName: opts.name },
    publicKey: opts.publicKey,
    keyUsage: ['digitalSignature'],
    extKeyUsage: ['clientAuth'],
    subjectAltNames: personAltNames(opts.name, opts.role),
  });
}

/** The public key in a SubjectPublicKeyInfo DER a node sent; KEY_INVALID unless it is a P-256, P-384 or Ed25519 key. */
export function publicKeyFromSpki(spki: Uint8Array): KeyObject {
  let key: KeyObject;
  try {
    key = createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' });
  } catch (err) {
    throw new BulwarkError('KEY_INVALID', 'the public key is not a SubjectPublicKeyInfo node:crypto can read', {}, { cause: err });
  }
  checkSupportedPublicKey(key);
  return key;
}

/**
 * An enrolled node's client certificate for the key it generated (only its SPKI DER
 * travels, no CSR): clientAuth, subject O=Bulwark OU=node CN=<nodeId> (CN left out when the
 * id is longer than 64), URI SANs for the node id and the AK name. Call only after the
 * TPM has proven the node (ActivateCredential): the certificate binds the key to both.
 */
export function issueNodeCertificate(
  ca: CertificateAuthority,
  opts: { readonly nodeId: string; readonly akName: Uint8Array; readonly spki: Uint8Array; readonly validity: Validity },
): IssuedCertificate {
  const akNameHex = toHex(opts.akName);
  checkNodeNames(opts.nodeId, akNameHex);
  return createCertificate({
    ...leafTemplate(ca, opts.validity),
    subject: { organization: BULWARK_ORGANIZATION, organizationalUnit: NODE_UNIT, ...(opts.nodeId.length <= 64 ? { commonName: opts.nodeId } : {}) },
    publicKey: publicKeyFromSpki(opts.spki),
    keyUsage: ['digitalSignature'],
    extKeyUsage: ['clientAuth'],
    subjectAltNames: nodeAltNames(opts.nodeId, akNameHex),
  });
}
