/**
 * An X.509 v3 certificate builder (RFC 5280, 4.1): node:crypto verifies and parses
 * certificates but cannot make them, so the controller's CA encodes TBSCertificate here
 * and signs it with node:crypto. Signatures: ECDSA P-256 with SHA-256 and P-384 with
 * SHA-384 (RFC 5758, 3.2) and Ed25519 (RFC 8410). Only the extensions Bulwark needs are
 * named; anything else goes in as a pre-encoded extra extension.
 */
import { createHash, createPublicKey, randomBytes, sign, type KeyObject } from 'node:crypto';
import { toHex } from '../bytes.js';
import { BulwarkError } from '../errors.js';
import { DER_TAG, DerReader, DerWriter } from './der.js';

/** OIDs of the algorithms, name attributes and extensions written here. */
export const PKI_OID = {
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  ecdsaWithSha384: '1.2.840.10045.4.3.3',
  ed25519: '1.3.101.112',
  commonName: '2.5.4.3',
  organizationName: '2.5.4.10',
  organizationalUnitName: '2.5.4.11',
  subjectKeyIdentifier: '2.5.29.14',
  keyUsage: '2.5.29.15',
  subjectAltName: '2.5.29.17',
  basicConstraints: '2.5.29.19',
  authorityKeyIdentifier: '2.5.29.35',
  extKeyUsage: '2.5.29.37',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
} as const;

/** KeyUsage bit names in bit order (RFC 5280, 4.2.1.3). */
export const KEY_USAGE_BITS = [
  'digitalSignature',
  'nonRepudiation',
  'keyEncipherment',
  'dataEncipherment',
  'keyAgreement',
  'keyCertSign',
  'cRLSign',
  'encipherOnly',
  'decipherOnly',
] as const;
export type KeyUsage = (typeof KEY_USAGE_BITS)[number];

/** Extended key usages Bulwark issues (RFC 5280, 4.2.1.12). */
export type ExtKeyUsage = 'serverAuth' | 'clientAuth';

/** One subject alternative name (RFC 5280, 4.2.1.6): dNSName, iPAddress or uniformResourceIdentifier. */
export type SubjectAltName =
  | { readonly kind: 'dns'; readonly value: string }
  | { readonly kind: 'ip'; readonly value: string }
  | { readonly kind: 'uri'; readonly value: string };

/**
 * A distinguished name of at most these three attributes, written in this order (O, OU,
 * CN), each as a UTF8String in its own RDN (RFC 5280, 4.1.2.4 and 4.1.2.6).
 */
export interface DistinguishedName {
  readonly organization?: string;
  readonly organizationalUnit?: string;
  readonly commonName?: string;
}

/** An extension given already encoded (its extnValue contents). */
export interface ExtraExtension {
  readonly oid: string;
  readonly critical: boolean;
  readonly value: Uint8Array;
}

/** Everything a certificate says; see `createCertificate`. */
export interface CertificateTemplate {
  readonly subject: DistinguishedName;
  /** The issuer's name, or its encoded Name taken verbatim from the issuer's certificate (so the bytes match exactly). */
  readonly issuer: DistinguishedName | { readonly der: Uint8Array };
  /** The serial number's big-endian magnitude: positive, at most 20 octets (RFC 5280, 4.1.2.2). */
  readonly serial: Uint8Array;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly publicKey: KeyObject;
  /** The issuer's private key (the subject's own for a self-signed certificate). */
  readonly signingKey: KeyObject;
  readonly isCa: boolean;
  /** pathLenConstraint, CA certificates only (RFC 5280, 4.2.1.9). */
  readonly pathLen?: number;
  readonly keyUsage: readonly KeyUsage[];
  readonly extKeyUsage?: readonly ExtKeyUsage[];
  readonly subjectAltNames?: readonly SubjectAltName[];
  /** Default: the SHA-1 of the subjectPublicKey bits (RFC 5280, 4.2.1.2, method 1). */
  readonly subjectKeyId?: Uint8Array;
  /** Default: the subject key identifier method applied to the signing key's public half. */
  readonly authorityKeyId?: Uint8Array;
  readonly extraExtensions?: readonly ExtraExtension[];
}

/** An issued certificate: DER, PEM, and its serial as lowercase hex. */
export interface IssuedCertificate {
  readonly der: Uint8Array;
  readonly pem: string;
  readonly serial: string;
}

/** Longest attribute value written (ub-common-name and friends, RFC 5280 Appendix A.1). */
const MAX_NAME_ATTRIBUTE = 64;
/** Most subject alternative names in one certificate. */
const MAX_SUBJECT_ALT_NAMES = 64;
/** Longest dNSName or URI. */
const MAX_SAN_LENGTH = 255;

function invalid(message: string, details: Record<string, string | number> = {}): BulwarkError {
  return new BulwarkError('PKI_TEMPLATE_INVALID', message, details);
}

/** A fresh serial: 16 random octets, top bit clear and next bit set, so it is positive and always 16 octets long. */
export function newSerial(): Uint8Array {
  const b = new Uint8Array(randomBytes(16));
  b[0] = ((b[0] ?? 0) & 0x3f) | 0x40;
  return b;
}

/** A serial magnitude as Bulwark spells it everywhere: lowercase hex without leading zero octets. */
export function serialToHex(magnitude: Uint8Array): string {
  let start = 0;
  while (start < magnitude.length - 1 && magnitude[start] === 0) start += 1;
  return toHex(magnitude.subarray(start));
}

/** The signature algorithm for a private key: its OID and the digest node:crypto's sign() takes. */
function signatureAlgorithm(key: KeyObject): { oid: string; digest: string | null } {
  if (key.type !== 'private') throw new BulwarkError('KEY_INVALID', 'the signing key is not a private key');
  if (key.asymmetricKeyType === 'ed25519') return { oid: PKI_OID.ed25519, digest: null };
  if (key.asymmetricKeyType === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    if (curve === 'prime256v1') return { oid: PKI_OID.ecdsaWithSha256, digest: 'sha256' };
    if (curve === 'secp384r1') return { oid: PKI_OID.ecdsaWithSha384, digest: 'sha384' };
  }
  throw new BulwarkError('KEY_INVALID', `signing keys must be ECDSA P-256, P-384 or Ed25519, not ${key.asymmetricKeyType ?? 'unknown'}`);
}

/** Whether a public key is of a kind certificates are issued for (the same set as signing keys). */
export function checkSupportedPublicKey(key: KeyObject): void {
  if (key.type !== 'public') throw new BulwarkError('KEY_INVALID', 'the subject key is not a public key');
  const curve = key.asymmetricKeyDetails?.namedCurve;
  const ok = key.asymmetricKeyType === 'ed25519' || (key.asymmetricKeyType === 'ec' && (curve === 'prime256v1' || curve === 'secp384r1'));
  if (!ok) throw new BulwarkError('KEY_INVALID', `certificate keys must be ECDSA P-256, P-384 or Ed25519, not ${key.asymmetricKeyType ?? 'unknown'}`);
}

/** SubjectPublicKeyInfo DER of a public key. */
export function spkiOf(key: KeyObject): Uint8Array {
  return new Uint8Array(key.export({ type: 'spki', format: 'der' }));
}

/** RFC 5280, 4.2.1.2 method 1: SHA-1 of the BIT STRING subjectPublicKey (without tag, length and unused-bits octet). */
export function keyIdentifier(spki: Uint8Array): Uint8Array {
  const top = new DerReader(spki, 'KEY_INVALID');
  const seq = top.nested(DER_TAG.SEQUENCE, 'SubjectPublicKeyInfo');
  top.end('SubjectPublicKeyInfo');
  seq.expect(DER_TAG.SEQUENCE, 'algorithm');
  const bits = seq.expect(DER_TAG.BIT_STRING, 'subjectPublicKey');
  seq.end('SubjectPublicKeyInfo');
  if (bits[0] !== 0) throw new BulwarkError('KEY_INVALID', 'subjectPublicKey has unused bits');
  return new Uint8Array(createHash('sha1').update(bits.subarray(1)).digest());
}

/** Printable text without control characters, at most `max` characters. */
function checkText(text: string, what: string, max: number): void {
  if (text.length === 0 || text.length > max || /[\x00-\x1f\x7f]/.test(text)) {
    throw invalid(`${what} must be 1 to ${max} printable characters`, { what });
  }
}

/** Name ::= SEQUENCE OF RelativeDistinguishedName, one AttributeTypeAndValue per RDN (RFC 5280, 4.1.2.4). */
export function encodeName(name: DistinguishedName): Uint8Array {
  const attributes: Array<[string, string | undefined, string]> = [
    [PKI_OID.organizationName, name.organization, 'organization'],
    [PKI_OID.organizationalUnitName, name.organizationalUnit, 'organizationalUnit'],
    [PKI_OID.commonName, name.commonName, 'commonName'],
  ];
  const w = new DerWriter();
  w.sequence((seq) => {
    for (const [oid, value, what] of attributes) {
      if (value === undefined) continue;
      checkText(value, what, MAX_NAME_ATTRIBUTE);
      seq.setOf([(atv) => atv.sequence((s) => s.oid(oid).utf8String(value))]);
    }
  });
  return w.finish();
}

/** iPAddress octets (RFC 5280, 4.2.1.6): 4 for IPv4, 16 for IPv6. */
export function encodeIpAddress(text: string): Uint8Array {
  const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text);
  if (v4 !== null) {
    const octets = v4.slice(1).map(Number);
    if (octets.some((o) => o > 255)) throw invalid(`"${text}" is not an IPv4 address`);
    return Uint8Array.from(octets);
  }
  if (!/^[0-9a-fA-F:]{2,39}$/.test(text)) throw invalid(`"${text}" is not an IP address`);
  const halves = text.split('::');
  if (halves.length > 2) throw invalid(`"${text}" has more than one "::"`);
  const groups = (part: string | undefined): number[] => {
    if (part === undefined || part === '') return [];
    return part.split(':').map((g) => {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) throw invalid(`"${text}" is not an IPv6 address`);
      return parseInt(g, 16);
    });
  };
  const head = groups(halves[0]);
  const tail = groups(halves[1]);
  const missing = 8 - head.length - tail.length;
  if ((halves.length === 1 && missing !== 0) || (halves.length === 2 && missing < 1)) throw invalid(`"${text}" is not an IPv6 address`);
  const all = [...head, ...new Array<number>(halves.length === 2 ? missing : 0).fill(0), ...tail];
  return Uint8Array.from(all.flatMap((g) => [g >> 8, g & 0xff]));
}

/** PKI_TEMPLATE_INVALID unless the name can be written as RFC 5280 requires (DNS host name, absolute URI, IPv4/IPv6 address). */
export function checkSubjectAltName(san: SubjectAltName): void {
  if (san.kind === 'dns') {
    // A preferred-name-syntax host name (RFC 5280, 4.2.1.6 refers to RFC 1034, 3.5), lowercase letters, digits and hyphens.
    if (san.value.length > MAX_SAN_LENGTH || !/^(?=.{1,253}$)([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$/.test(san.value)) {
      throw invalid(`"${san.value}" is not a DNS name`);
    }
  } else if (san.kind === 'uri') {
    // An absolute URI with a scheme (RFC 3986, 3.1); printable ASCII without spaces.
    if (san.value.length > MAX_SAN_LENGTH || !/^[a-zA-Z][a-zA-Z0-9+.-]*:[\x21-\x7e]+$/.test(san.value)) throw invalid(`"${san.value}" is not a URI`);
  } else {
    encodeIpAddress(san.value);
  }
}

/** Extension ::= SEQUENCE { extnID, critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING } (RFC 5280, 4.1). */
function writeExtension(w: DerWriter, oid: string, critical: boolean, value: Uint8Array): void {
  w.sequence((e) => {
    e.oid(oid);
    // DER omits a BOOLEAN equal to its DEFAULT (X.690, 11.5).
    if (critical) e.boolean(true);
    e.octetString(value);
  });
}

function encoded(body: (w: DerWriter) => void): Uint8Array {
  const w = new DerWriter();
  body(w);
  return w.finish();
}

/** KeyUsage ::= BIT STRING, named bits with trailing zero bits removed (X.690, 11.2.2). */
function encodeKeyUsage(usages: readonly KeyUsage[]): Uint8Array {
  let highest = -1;
  const octets = new Uint8Array(2);
  for (const u of usages) {
    const bit = KEY_USAGE_BITS.indexOf(u);
    octets[bit >> 3] = (octets[bit >> 3] ?? 0) | (0x80 >> (bit & 7));
    highest = Math.max(highest, bit);
  }
  if (highest < 0) throw invalid('keyUsage must name at least one usage (RFC 5280, 4.2.1.3)');
  const length = (highest >> 3) + 1;
  return encoded((w) => w.bitString(octets.subarray(0, length), 7 - (highest & 7)));
}

/**
 * Builds and signs an X.509 v3 certificate (RFC 5280, 4.1): version 3, the serial,
 * signature algorithm from the signing key, issuer, validity, subject, the public key's
 * SubjectPublicKeyInfo, and extensions — basicConstraints (critical; 4.2.1.9), keyUsage
 * (critical; 4.2.1.3), extKeyUsage (4.2.1.12), subjectAltName (4.2.1.6; critical when the
 * subject is empty), subjectKeyIdentifier (4.2.1.2), authorityKeyIdentifier (4.2.1.1),
 * then the extras. Throws PKI_TEMPLATE_INVALID or KEY_INVALID for a template it cannot
 * write faithfully. Trust: the output is what the template says, signed.
 */
export function createCertificate(t: CertificateTemplate): IssuedCertificate {
  const serial = t.serial;
  if (serial.length === 0 || serial.length > 20 || serial.every((b) => b === 0)) {
    throw invalid('serial must be a positive number of at most 20 octets (RFC 5280, 4.1.2.2)');
  }
  // Serials are magnitudes: a high bit gets a 0x00 sign octet, which then must still fit 20 octets.
  if (serial.length === 20 && ((serial[0] ?? 0) & 0x80) !== 0) throw invalid('serial must encode in at most 20 octets');
  if (!(t.notBefore.getTime() < t.notAfter.getTime())) throw invalid('notBefore must be before notAfter');
  if (t.pathLen !== undefined && (!t.isCa || !Number.isInteger(t.pathLen) || t.pathLen < 0 || t.pathLen > 16)) {
    throw invalid('pathLen is for CA certificates only, 0 to 16');
  }
  if (t.isCa && !t.keyUsage.includes('keyCertSign')) throw invalid('a CA certificate must assert keyCertSign (RFC 5280, 4.2.1.3)');
  if (!t.isCa && (t.keyUsage.includes('keyCertSign') || t.keyUsage.includes('cRLSign'))) throw invalid('only a CA certificate may assert keyCertSign or cRLSign');
  const sans = t.subjectAltNames ?? [];
  if (sans.length > MAX_SUBJECT_ALT_NAMES) throw invalid(`more than ${MAX_SUBJECT_ALT_NAMES} subject alternative names`);
  sans.forEach(checkSubjectAltName);
  const named = new Set<string>([
    PKI_OID.basicConstraints,
    PKI_OID.keyUsage,
    PKI_OID.extKeyUsage,
    PKI_OID.subjectAltName,
    PKI_OID.subjectKeyIdentifier,
    PKI_OID.authorityKeyIdentifier,
  ]);
  const extras = t.extraExtensions ?? [];
  const extraOids = new Set(extras.map((e) => e.oid));
  if (extraOids.size !== extras.length || extras.some((e) => named.has(e.oid))) {
    throw invalid('an extension may appear only once (RFC 5280, 4.2)');
  }

  checkSupportedPublicKey(t.publicKey);
  const alg = signatureAlgorithm(t.signingKey);
  const spki = spkiOf(t.publicKey);
  const subjectKeyId = t.subjectKeyId ?? keyIdentifier(spki);
  const authorityKeyId = t.authorityKeyId ?? keyIdentifier(spkiOf(createPublicKey(t.signingKey)));
  const subjectDer = encodeName(t.subject);
  const subjectEmpty = t.subject.commonName === undefined && t.subject.organization === undefined && t.subject.organizationalUnit === undefined;
  if (subjectEmpty && sans.length === 0) throw invalid('a certificate with an empty subject needs subject alternative names (RFC 5280, 4.1.2.6)');
  const issuerDer = 'der' in t.issuer ? t.issuer.der : encodeName(t.issuer);
  // AlgorithmIdentifier for ECDSA and Ed25519: the OID, parameters absent (RFC 5758, 3.2; RFC 8410, 3).
  const algorithmIdentifier = (w: DerWriter): void => {
    w.sequence((a) => a.oid(alg.oid));
  };

  const tbs = encoded((w) =>
    w.sequence((c) => {
      c.explicit(0, (v) => v.smallInteger(2)); // version v3
      c.unsignedInteger(serial);
      algorithmIdentifier(c);
      c.raw(issuerDer);
      c.sequence((v) => v.time(t.notBefore).time(t.notAfter));
      c.raw(subjectDer);
      c.raw(spki);
      c.explicit(3, (x) =>
        x.sequence((exts) => {
          writeExtension(
            exts,
            PKI_OID.basicConstraints,
            true,
            encoded((w) =>
              w.sequence((bc) => {
                if (t.isCa) bc.boolean(true);
                if (t.pathLen !== undefined) bc.smallInteger(t.pathLen);
              }),
            ),
          );
          writeExtension(exts, PKI_OID.keyUsage, true, encodeKeyUsage(t.keyUsage));
          if (t.extKeyUsage !== undefined && t.extKeyUsage.length > 0) {
            const usages = t.extKeyUsage;
            writeExtension(exts, PKI_OID.extKeyUsage, false, encoded((w) => w.sequence((s) => usages.forEach((u) => s.oid(PKI_OID[u])))));
          }
          if (sans.length > 0) {
            writeExtension(
              exts,
              PKI_OID.subjectAltName,
              subjectEmpty,
              encoded((w) =>
                w.sequence((s) => {
                  for (const san of sans) {
                    // GeneralName: [2] dNSName IA5String, [6] URI IA5String, [7] iPAddress OCTET STRING, all IMPLICIT.
                    if (san.kind === 'dns') s.implicit(2, new TextEncoder().encode(san.value));
                    else if (san.kind === 'uri') s.implicit(6, new TextEncoder().encode(san.value));
                    else s.implicit(7, encodeIpAddress(san.value));
                  }
                }),
              ),
            );
          }
          writeExtension(exts, PKI_OID.subjectKeyIdentifier, false, encoded((w) => w.octetString(subjectKeyId)));
          // AuthorityKeyIdentifier ::= SEQUENCE { keyIdentifier [0] IMPLICIT OCTET STRING OPTIONAL, ... } (4.2.1.1).
          writeExtension(exts, PKI_OID.authorityKeyIdentifier, false, encoded((w) => w.sequence((s) => s.implicit(0, authorityKeyId))));
          for (const e of extras) writeExtension(exts, e.oid, e.critical, e.value);
        }),
      );
    }),
  );

  let signature: Uint8Array;
  try {
    // ECDSA signatures are DER Ecdsa-Sig-Value, which node:crypto produces by default (RFC 5758, 3.2).
    signature = new Uint8Array(sign(alg.digest, tbs, t.signingKey));
  } catch (err) {
    throw new BulwarkError('KEY_INVALID', 'signing the certificate failed', {}, { cause: err });
  }
  const der = encoded((w) =>
    w.sequence((c) => {
      c.raw(tbs);
      algorithmIdentifier(c);
      c.bitString(signature);
    }),
  );
  return { der, pem: certificateToPem(der), serial: serialToHex(serial) };
}

/** PEM with the CERTIFICATE label, base64 in 64-character lines (RFC 7468, 5). */
export function certificateToPem(der: Uint8Array): string {
  const body = Buffer.from(der.buffer, der.byteOffset, der.byteLength).toString('base64');
  const lines = body.match(/.{1,64}/g) ?? [];
  return `-----BEGIN CERTIFICATE-----\n${lines.join('\n')}\n-----END CERTIFICATE-----\n`;
}

/** Largest PEM text accepted for one certificate. */
const MAX_PEM_TEXT = 64 * 1024;

/** The DER of the one certificate in a PEM text (RFC 7468 strict base64); CERT_MALFORMED otherwise. */
export function certificateFromPem(pem: string): Uint8Array {
  if (pem.length > MAX_PEM_TEXT) throw new BulwarkError('CERT_MALFORMED', `PEM text of ${pem.length} characters is larger than the cap of ${MAX_PEM_TEXT}`);
  const m = /^\s*-----BEGIN CERTIFICATE-----\r?\n([A-Za-z0-9+/=\r\n]+)-----END CERTIFICATE-----\s*$/.exec(pem);
  const body = m?.[1]?.replace(/[\r\n]/g, '');
  if (body === undefined || body.length === 0 || body.length % 4 !== 0 || !/^[A-Za-z0-9+/]+={0,2}$/.test(body)) {
    throw new BulwarkError('CERT_MALFORMED', 'not exactly one PEM CERTIFICATE');
  }
  return new Uint8Array(Buffer.from(body, 'base64'));
}
