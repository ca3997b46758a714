/**
 * Who a client certificate of the controller's CA names. People carry a role — subject
 * OU=<role> and the URI SANs `bulwark:user:<name>` and `bulwark:role:<role>`; enrolled
 * nodes carry OU=node and `bulwark:node:<nodeId>` and `bulwark:ak:<AK name hex>`. The
 * URI SANs are the identity; the subject repeats it for people reading logs and must
 * agree. A certificate naming both kinds, or neither, names nobody.
 */
import type { X509Certificate } from 'node:crypto';
import { BulwarkError } from '../errors.js';
import { PKI_OID, type SubjectAltName } from './certificate.js';
import { decodeCertificate, nameValues, type DecodedCertificate } from './decode.js';

/** Roles a person's credential carries, least to most privileged. */
export const ROLES = ['viewer', 'operator', 'admin'] as const;
export type Role = (typeof ROLES)[number];

/** The subject OU of node certificates. */
export const NODE_UNIT = 'node';

/** The organization name in every subject the CA issues. */
export const BULWARK_ORGANIZATION = 'Bulwark';

/** URI SAN prefixes; `bulwark:` URIs other than these make a certificate unusable as a client identity. */
export const IDENTITY_URI = {
  user: 'bulwark:user:',
  role: 'bulwark:role:',
  node: 'bulwark:node:',
  ak: 'bulwark:ak:',
} as const;

/** A person's user name: a letter or digit, then letters, digits, ".", "_", "-", "@", at most 64. */
const USER_NAME = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/;
/** A node id as the wire layer accepts it (proto/wire.ts), at most 128. */
const NODE_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
/** A TPM object name (TPM 2.0 Part 1, 16): a 2-octet name algorithm and a digest of 20 to 64 octets, lowercase hex. */
const AK_NAME = /^(?:[0-9a-f]{2}){22,66}$/;

export function isRole(value: string): value is Role {
  return ROLES.some((r) => r === value);
}

/** A caller as its verified client certificate names it. */
export type ClientIdentity =
  | { readonly kind: 'person'; readonly name: string; readonly role: Role; readonly serial: string; readonly notAfter: number }
  | { readonly kind: 'node'; readonly nodeId: string; readonly akName: string; readonly serial: string; readonly notAfter: number };

function refuse(message: string, details: Record<string, string | number> = {}): BulwarkError {
  return new BulwarkError('PKI_IDENTITY_INVALID', message, details);
}

/** Checks a user name for a person's credential; PKI_TEMPLATE_INVALID otherwise. */
export function checkUserName(name: string): void {
  if (!USER_NAME.test(name)) throw new BulwarkError('PKI_TEMPLATE_INVALID', `"${name.slice(0, 80)}" is not a user name (letters, digits, ".", "_", "-", "@"; at most 64)`);
}

/** Checks a node id and AK name (lowercase hex) for a node certificate; PKI_TEMPLATE_INVALID otherwise. */
export function checkNodeNames(nodeId: string, akNameHex: string): void {
  if (!NODE_ID.test(nodeId)) throw new BulwarkError('PKI_TEMPLATE_INVALID', `"${nodeId.slice(0, 140)}" is not a node id`);
  if (!AK_NAME.test(akNameHex)) throw new BulwarkError('PKI_TEMPLATE_INVALID', 'the AK name is not a TPM name in lowercase hex');
}

/** The URI SANs of a person's certificate. */
export function personAltNames(name: string, role: Role): SubjectAltName[] {
  return [
    { kind: 'uri', value: `${IDENTITY_URI.user}${name}` },
    { kind: 'uri', value: `${IDENTITY_URI.role}${role}` },
  ];
}

/** The URI SANs of a node's certificate. */
export function nodeAltNames(nodeId: string, akNameHex: string): SubjectAltName[] {
  return [
    { kind: 'uri', value: `${IDENTITY_URI.node}${nodeId}` },
    { kind: 'uri', value: `${IDENTITY_URI.ak}${akNameHex}` },
  ];
}

function only(values: readonly string[], what: string): string | undefined {
  if (values.length > 1) throw refuse(`the certificate names ${values.length} ${what}s`, { what });
  return values[0];
}

/**
 * The identity a client certificate names, from its DER (or an X509Certificate such as
 * `tlsSocket.getPeerX509Certificate()` returns). Requires an end-entity certificate with
 * extKeyUsage clientAuth, exactly one person (one user and one role, subject OU = the
 * role) or exactly one node (one node id and one AK name, subject OU = node), and no other
 * `bulwark:` URI. Throws CERT_MALFORMED for bytes that are not a certificate and
 * PKI_IDENTITY_INVALID for a certificate that names nobody, or more than one identity.
 * Trust: the identity is only as good as the chain check before it — call this on a
 * certificate TLS has verified against the controller's CA; it checks no signature,
 * validity period or revocation itself.
 */
export function parseClientIdentity(certificate: Uint8Array | X509Certificate): ClientIdentity {
  const der = certificate instanceof Uint8Array ? certificate : new Uint8Array(certificate.raw);
  return identityOf(decodeCertificate(der));
}

/** `parseClientIdentity` over an already decoded certificate. */
export function identityOf(cert: DecodedCertificate): ClientIdentity {
  if (cert.isCa) throw refuse('a CA certificate is not a client identity');
  if (cert.extKeyUsage === undefined || !cert.extKeyUsage.includes(PKI_OID.clientAuth)) {
    throw refuse('the certificate is not for TLS client authentication (extKeyUsage clientAuth)');
  }
  const uris = cert.subjectAltNames.flatMap((s) => (s.kind === 'uri' && s.value.startsWith('bulwark:') ? [s.value] : []));
  const take = (prefix: string): string[] => uris.filter((u) => u.startsWith(prefix)).map((u) => u.slice(prefix.length));
  const known = Object.values(IDENTITY_URI);
  const unknown = uris.find((u) => !known.some((p) => u.startsWith(p)));
  if (unknown !== undefined) throw refuse(`the certificate carries an unknown identity URI "${unknown.slice(0, 80)}"`);
  const user = only(take(IDENTITY_URI.user), 'user');
  const role = only(take(IDENTITY_URI.role), 'role');
  const nodeId = only(take(IDENTITY_URI.node), 'node');
  const akName = only(take(IDENTITY_URI.ak), 'AK name');
  const isPerson = user !== undefined || role !== undefined;
  const isNode = nodeId !== undefined || akName !== undefined;
  if (isPerson && isNode) throw refuse('the certificate names both a person and a node');
  const units = nameValues(cert.subject, PKI_OID.organizationalUnitName);
  const serial = cert.serial;
  const notAfter = cert.notAfter;
  if (isPerson) {
    if (user === undefined || role === undefined) throw refuse('a person certificate needs both a user and a role');
    if (!USER_NAME.test(user)) throw refuse('the certificate names an invalid user name');
    if (!isRole(role)) throw refuse(`"${role.slice(0, 40)}" is not a role`, { role: role.slice(0, 40) });
    if (units.length !== 1 || units[0] !== role) throw refuse('the subject OU does not repeat the role');
    return { kind: 'person', name: user, role, serial, notAfter };
  }
  if (isNode) {
    if (nodeId === undefined || akName === undefined) throw refuse('a node certificate needs both a node id and an AK name');
    if (!NODE_ID.test(nodeId)) throw refuse('the certificate names an invalid node id');
    if (!AK_NAME.test(akName)) throw refuse('the certificate names an invalid AK name');
    if (units.length !== 1 || units[0] !== NODE_UNIT) throw refuse('the subject OU of a node certificate is not "node"');
    return { kind: 'node', nodeId, akName, serial, notAfter };
  }
  throw refuse('the certificate names neither a person nor a node');
}
