/**
 * The parsing side of the controller's certificates: a DER walk of Certificate →
 * TBSCertificate (RFC 5280, 4.1) that returns the fields Bulwark decides on (serial,
 * names, validity, key, basicConstraints, keyUsage, extKeyUsage, subjectAltName). It
 * checks structure only, never a signature: callers use it on certificates that TLS or
 * X509Certificate.verify has already checked, or to inspect their own files.
 */
import { BulwarkError } from '../errors.js';
import { DER_TAG, DerReader, contextTag, decodeOid, decodeTime, decodeUnsignedInteger } from './der.js';
import { KEY_USAGE_BITS, PKI_OID, serialToHex, type KeyUsage, type SubjectAltName } from './certificate.js';

/** Largest DER certificate accepted (Bulwark's certificates are well under 2 KiB). */
export const MAX_CERTIFICATE_BYTES = 16384;
/** Most extensions in one certificate. */
const MAX_EXTENSIONS = 64;
/** Most RDNs in a name, and attributes in one RDN. */
const MAX_RDNS = 32;
/** Most GeneralNames in subjectAltName, and OIDs in extKeyUsage. */
const MAX_LIST = 64;

const CODE = 'CERT_MALFORMED';

/** One attribute of a name; `value` is undefined for string types other than UTF8String, PrintableString and IA5String. */
export interface NameAttribute {
  readonly oid: string;
  readonly value: string | undefined;
}

export interface DecodedExtension {
  readonly oid: string;
  readonly critical: boolean;
  readonly value: Uint8Array;
}

/** A GeneralName Bulwark does not use (otherName, rfc822Name, directoryName, ...), kept as its tag. */
export interface OtherGeneralName {
  readonly kind: 'other';
  readonly tag: number;
}

/** A certificate's fields as encoded: structure checked, signature NOT checked. */
export interface DecodedCertificate {
  /** Lowercase hex magnitude without leading zero octets. */
  readonly serial: string;
  /** The issuer and subject Name encodings, verbatim. */
  readonly issuerDer: Uint8Array;
  readonly subjectDer: Uint8Array;
  readonly subject: readonly NameAttribute[];
  readonly notBefore: number;
  readonly notAfter: number;
  readonly spki: Uint8Array;
  readonly extensions: readonly DecodedExtension[];
  readonly isCa: boolean;
  readonly pathLen: number | undefined;
  /** Undefined when the extension is absent (every usage allowed, RFC 5280, 4.2.1.3). */
  readonly keyUsage: readonly KeyUsage[] | undefined;
  /** OIDs; undefined when the extension is absent. */
  readonly extKeyUsage: readonly string[] | undefined;
  readonly subjectAltNames: ReadonlyArray<SubjectAltName | OtherGeneralName>;
  readonly subjectKeyId: Uint8Array | undefined;
  readonly authorityKeyId: Uint8Array | undefined;
}

function fail(message: string): BulwarkError {
  return new BulwarkError(CODE, message);
}

function decodeString(tag: number, value: Uint8Array): string | undefined {
  if (tag === DER_TAG.UTF8_STRING) {
    try {
      return new TextDecoder('utf-8', { fatal: true }).decode(value);
    } catch (err) {
      throw new BulwarkError(CODE, 'UTF8String is not UTF-8', {}, { cause: err });
    }
  }
  if (tag === DER_TAG.PRINTABLE_STRING || tag === DER_TAG.IA5_STRING) return ascii(value, 'name attribute');
  return undefined;
}

function ascii(value: Uint8Array, what: string): string {
  if (value.some((b) => b > 0x7f)) throw fail(`${what} holds a byte outside ASCII`);
  return Buffer.from(value).toString('latin1');
}

/** Name ::= SEQUENCE OF SET OF AttributeTypeAndValue (RFC 5280, 4.1.2.4). */
function decodeName(value: Uint8Array): NameAttribute[] {
  const rdns = new DerReader(value, CODE);
  const out: NameAttribute[] = [];
  let count = 0;
  while (!rdns.atEnd) {
    if (++count > MAX_RDNS) throw rdns.fail(`name has more than ${MAX_RDNS} RDNs`);
    const set = rdns.nested(DER_TAG.SET, 'RelativeDistinguishedName');
    if (set.atEnd) throw set.fail('empty RelativeDistinguishedName');
    let inSet = 0;
    while (!set.atEnd) {
      if (++inSet > MAX_RDNS) throw set.fail(`RDN has more than ${MAX_RDNS} attributes`);
      const atv = set.nested(DER_TAG.SEQUENCE, 'AttributeTypeAndValue');
      const oid = decodeOid(atv.expect(DER_TAG.OID, 'attribute type'), CODE);
      const v = atv.tlv('attribute value');
      atv.end('AttributeTypeAndValue');
      out.push({ oid, value: decodeString(v.tag, v.value) });
    }
  }
  return out;
}

/** BasicConstraints ::= SEQUENCE { cA BOOLEAN DEFAULT FALSE, pathLenConstraint INTEGER (0..MAX) OPTIONAL } (4.2.1.9). */
function decodeBasicConstraints(value: Uint8Array): { isCa: boolean; pathLen: number | undefined } {
  const outer = new DerReader(value, CODE);
  const seq = outer.nested(DER_TAG.SEQUENCE, 'basicConstraints');
  outer.end('basicConstraints');
  let isCa = false;
  let pathLen: number | undefined;
  if (seq.peekTag() === DER_TAG.BOOLEAN) {
    const b = seq.expect(DER_TAG.BOOLEAN, 'cA');
    if (b.length !== 1) throw seq.fail('basicConstraints cA is not one octet');
    isCa = b[0] !== 0;
  }
  if (seq.peekTag() === DER_TAG.INTEGER) {
    const n = decodeUnsignedInteger(seq.expect(DER_TAG.INTEGER, 'pathLenConstraint'), CODE, 'pathLenConstraint');
    if (n.length > 2) throw seq.fail('pathLenConstraint is too large');
    pathLen = n.reduce((acc, b) => acc * 256 + b, 0);
  }
  seq.end('basicConstraints');
  return { isCa, pathLen };
}

/** KeyUsage ::= BIT STRING (4.2.1.3). */
function decodeKeyUsage(value: Uint8Array): KeyUsage[] {
  const outer = new DerReader(value, CODE);
  const bits = outer.expect(DER_TAG.BIT_STRING, 'keyUsage');
  outer.end('keyUsage');
  const unused = bits[0];
  if (unused === undefined || unused > 7 || bits.length > 3 || (bits.length === 1 && unused !== 0)) throw fail('keyUsage is not a valid BIT STRING');
  const out: KeyUsage[] = [];
  KEY_USAGE_BITS.forEach((name, bit) => {
    if ((((bits[1 + (bit >> 3)] ?? 0) >> (7 - (bit & 7))) & 1) === 1) out.push(name);
  });
  return out;
}

/** ExtKeyUsageSyntax ::= SEQUENCE SIZE (1..MAX) OF KeyPurposeId (4.2.1.12). */
function decodeExtKeyUsage(value: Uint8Array): string[] {
  const outer = new DerReader(value, CODE);
  const seq = outer.nested(DER_TAG.SEQUENCE, 'extKeyUsage');
  outer.end('extKeyUsage');
  const out: string[] = [];
  while (!seq.atEnd) {
    if (out.length >= MAX_LIST) throw seq.fail(`extKeyUsage has more than ${MAX_LIST} purposes`);
    out.push(decodeOid(seq.expect(DER_TAG.OID, 'KeyPurposeId'), CODE));
  }
  if (out.length === 0) throw fail('extKeyUsage is empty');
  return out;
}

/** iPAddress octets as text: dotted IPv4, or IPv6 as eight lowercase groups (no "::" compression). */
export function formatIpAddress(octets: Uint8Array): string {
  if (octets.length === 4) return Array.from(octets).join('.');
  if (octets.length === 16) {
    const groups: string[] = [];
    for (let i = 0; i < 16; i += 2) groups.push((((octets[i] ?? 0) << 8) | (octets[i + 1] ?? 0)).toString(16));
    return groups.join(':');
  }
  throw fail(`iPAddress of ${octets.length} octets`);
}

/** GeneralNames ::= SEQUENCE SIZE (1..MAX) OF GeneralName (4.2.1.6). */
function decodeSubjectAltNames(value: Uint8Array): Array<SubjectAltName | OtherGeneralName> {
  const outer = new DerReader(value, CODE);
  const seq = outer.nested(DER_TAG.SEQUENCE, 'subjectAltName');
  outer.end('subjectAltName');
  const out: Array<SubjectAltName | OtherGeneralName> = [];
  while (!seq.atEnd) {
    if (out.length >= MAX_LIST) throw seq.fail(`subjectAltName has more than ${MAX_LIST} names`);
    const gn = seq.tlv('GeneralName');
    if (gn.tag === contextTag(2, false)) out.push({ kind: 'dns', value: ascii(gn.value, 'dNSName') });
    else if (gn.tag === contextTag(6, false)) out.push({ kind: 'uri', value: ascii(gn.value, 'uniformResourceIdentifier') });
    else if (gn.tag === contextTag(7, false)) out.push({ kind: 'ip', value: formatIpAddress(gn.value) });
    else if ((gn.tag & 0xc0) === 0x80) out.push({ kind: 'other', tag: gn.tag & 0x1f });
    else throw seq.fail(`GeneralName with tag 0x${gn.tag.toString(16)}`);
  }
  if (out.length === 0) throw fail('subjectAltName is empty');
  return out;
}

/** AuthorityKeyIdentifier ::= SEQUENCE { keyIdentifier [0] IMPLICIT OPTIONAL, authorityCertIssuer [1], authorityCertSerialNumber [2] } (4.2.1.1). */
function decodeAuthorityKeyId(value: Uint8Array): Uint8Array | undefined {
  const outer = new DerReader(value, CODE);
  const seq = outer.nested(DER_TAG.SEQUENCE, 'authorityKeyIdentifier');
  outer.end('authorityKeyIdentifier');
  let keyId: Uint8Array | undefined;
  if (seq.peekTag() === contextTag(0, false)) keyId = seq.expect(contextTag(0, false), 'keyIdentifier');
  while (!seq.atEnd) {
    const t = seq.tlv('authorityKeyIdentifier field');
    if (t.tag !== contextTag(1, true) && t.tag !== contextTag(2, false)) throw seq.fail(`authorityKeyIdentifier field with tag 0x${t.tag.toString(16)}`);
  }
  return keyId;
}

function octetStringIn(value: Uint8Array, what: string): Uint8Array {
  const outer = new DerReader(value, CODE);
  const v = outer.expect(DER_TAG.OCTET_STRING, what);
  outer.end(what);
  return v;
}

/**
 * Decodes one DER certificate (RFC 5280, 4.1): v3 only, each extension at most once
 * (4.2), and the extensions Bulwark reads decoded. Throws CERT_MALFORMED (never another
 * exception) for anything else. Trust: none — structure only, the signature is not checked.
 */
export function decodeCertificate(der: Uint8Array): DecodedCertificate {
  if (der.length > MAX_CERTIFICATE_BYTES) throw new BulwarkError(CODE, `certificate of ${der.length} bytes is larger than the cap of ${MAX_CERTIFICATE_BYTES}`, { size: der.length });
  const top = new DerReader(der, CODE);
  const cert = top.nested(DER_TAG.SEQUENCE, 'Certificate');
  top.end('Certificate');
  const tbs = cert.nested(DER_TAG.SEQUENCE, 'TBSCertificate');
  cert.expect(DER_TAG.SEQUENCE, 'signatureAlgorithm');
  cert.expect(DER_TAG.BIT_STRING, 'signatureValue');
  cert.end('Certificate');

  const version = tbs.nested(contextTag(0, true), 'version');
  const v = version.expect(DER_TAG.INTEGER, 'version');
  version.end('version');
  if (v.length !== 1 || v[0] !== 2) throw fail('certificate is not version 3');
  const serial = serialToHex(decodeUnsignedInteger(tbs.expect(DER_TAG.INTEGER, 'serialNumber'), CODE, 'serialNumber'));
  tbs.expect(DER_TAG.SEQUENCE, 'signature');
  const issuer = tbs.expectTlv(DER_TAG.SEQUENCE, 'issuer');
  decodeName(issuer.value);
  const validity = tbs.nested(DER_TAG.SEQUENCE, 'validity');
  const notBefore = decodeTime(validity.tlv('notBefore'), CODE, 'notBefore');
  const notAfter = decodeTime(validity.tlv('notAfter'), CODE, 'notAfter');
  validity.end('validity');
  const subjectTlv = tbs.expectTlv(DER_TAG.SEQUENCE, 'subject');
  const subject = decodeName(subjectTlv.value);
  const spki = tbs.expectTlv(DER_TAG.SEQUENCE, 'subjectPublicKeyInfo').encoded;

  const extensions: DecodedExtension[] = [];
  while (!tbs.atEnd) {
    const opt = tbs.tlv('TBSCertificate optional field');
    if (opt.tag === contextTag(1, false) || opt.tag === contextTag(2, false)) continue;
    if (opt.tag !== contextTag(3, true) || !tbs.atEnd) throw tbs.fail(`unexpected TBSCertificate field with tag 0x${opt.tag.toString(16)}`);
    const wrapper = new DerReader(opt.value, CODE);
    const list = wrapper.nested(DER_TAG.SEQUENCE, 'Extensions');
    wrapper.end('extensions');
    while (!list.atEnd) {
      if (extensions.length >= MAX_EXTENSIONS) throw list.fail(`more than ${MAX_EXTENSIONS} extensions`);
      const ext = list.nested(DER_TAG.SEQUENCE, 'Extension');
      const oid = decodeOid(ext.expect(DER_TAG.OID, 'extnID'), CODE);
      let critical = false;
      if (ext.peekTag() === DER_TAG.BOOLEAN) {
        const c = ext.expect(DER_TAG.BOOLEAN, 'critical');
        if (c.length !== 1) throw ext.fail(`extension ${oid}: critical is not one octet`);
        critical = c[0] !== 0;
      }
      const value = ext.expect(DER_TAG.OCTET_STRING, 'extnValue');
      ext.end('Extension');
      if (extensions.some((e) => e.oid === oid)) throw list.fail(`extension ${oid} appears twice`);
      extensions.push({ oid, critical, value });
    }
  }

  const find = (oid: string): Uint8Array | undefined => extensions.find((e) => e.oid === oid)?.value;
  const bc = find(PKI_OID.basicConstraints);
  const { isCa, pathLen } = bc === undefined ? { isCa: false, pathLen: undefined } : decodeBasicConstraints(bc);
  const ku = find(PKI_OID.keyUsage);
  const eku = find(PKI_OID.extKeyUsage);
  const san = find(PKI_OID.subjectAltName);
  const ski = find(PKI_OID.subjectKeyIdentifier);
  const aki = find(PKI_OID.authorityKeyIdentifier);
  return {
    serial,
    issuerDer: issuer.encoded,
    subjectDer: subjectTlv.encoded,
    subject,
    notBefore,
    notAfter,
    spki,
    extensions,
    isCa,
    pathLen,
    keyUsage: ku === undefined ? undefined : decodeKeyUsage(ku),
    extKeyUsage: eku === undefined ? undefined : decodeExtKeyUsage(eku),
    subjectAltNames: san === undefined ? [] : decodeSubjectAltNames(san),
    subjectKeyId: ski === undefined ? undefined : octetStringIn(ski, 'subjectKeyIdentifier'),
    authorityKeyId: aki === undefined ? undefined : decodeAuthorityKeyId(aki),
  };
}

/** The values of one attribute type in a decoded name, in order. */
export function nameValues(name: readonly NameAttribute[], oid: string): Array<string | undefined> {
  return name.filter((a) => a.oid === oid).map((a) => a.value);
}

