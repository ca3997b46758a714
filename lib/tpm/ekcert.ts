/**
 * Endorsement Key certificates (TCG EK Credential Profile for TPM Family 2.0): the X.509
 * certificate a TPM manufacturer (here: swtpm's local CA) stores in NV, verified against
 * a bundle of CA certificates the operator trusts, and matched against the EK public key
 * the agent presents. node:crypto's X509Certificate parses and checks signatures; the
 * minimal DER walk here finds the certificate's length (NV padding follows it), its
 * validity, basicConstraints and critical extensions (RFC 5280, 4.1 and 4.2).
 */
import { createHash, X509Certificate, type KeyObject } from 'node:crypto';
import { BulwarkError, type ErrorCode } from '../errors.js';
import { tpmtPublicToKeyObject } from './public.js';
import type { TpmtPublic } from './types.js';
import { DER_TAG, DerReader, decodeOid, decodeTime } from '../pki/index.js';
import { finding, type Finding } from '../verdict.js';

/** Largest input accepted: an NV read of an EK certificate index with padding (TPM NV indices are a few KiB). */
const MAX_CERT_INPUT_BYTES = 65536;
/** Largest DER certificate accepted (EK and CA certificates are 1–2 KiB). */
const MAX_CERT_DER_BYTES = 16384;
/** Largest number of extensions in one certificate. */
const MAX_EXTENSIONS = 64;
/** Largest number of certificates in a CA bundle. */
const MAX_BUNDLE_CERTS = 1000;
/** Largest CA bundle text. */
const MAX_BUNDLE_TEXT = 16 * 1024 * 1024;
/** Longest chain: leaf, at most this many intermediates, and a root. */
const MAX_INTERMEDIATES = 6;
/** Most issuer signature checks one chain search may spend (bounds pathological bundles). */
const MAX_SIGNATURE_CHECKS = 4096;

/** OIDs of extensions Bulwark processes or that carry only information for it (RFC 5280, 4.2). */
const OID = {
  subjectDirectoryAttributes: '2.5.29.9',
  subjectKeyIdentifier: '2.5.29.14',
  keyUsage: '2.5.29.15',
  subjectAltName: '2.5.29.17',
  basicConstraints: '2.5.29.19',
  authorityKeyIdentifier: '2.5.29.35',
  extKeyUsage: '2.5.29.37',
} as const;

/**
 * Extensions that may be critical: keyUsage (keyCertSign is checked by OpenSSL's
 * X509_check_issued), basicConstraints (checked here), subjectAltName (the TCG profile
 * makes it critical, with the TPM manufacturer, model and version, when the subject is
 * empty), and the informational ones. Any other critical extension (nameConstraints,
 * policyConstraints, ...) makes the certificate unusable: we cannot honour it (RFC 5280, 4.2).
 */
const UNDERSTOOD_EXTENSIONS: ReadonlySet<string> = new Set(Object.values(OID));

/** DER tags used in certificates (X.690), with the context-specific ones of TBSCertificate (RFC 5280, 4.1). */
const TAG = {
  ...DER_TAG,
  /** [0] EXPLICIT version. */
  CTX_0_CONSTRUCTED: 0xa0,
  /** [1] IMPLICIT issuerUniqueID. */
  CTX_1_PRIMITIVE: 0x81,
  /** [2] IMPLICIT subjectUniqueID. */
  CTX_2_PRIMITIVE: 0x82,
  /** [3] EXPLICIT extensions. */
  CTX_3_CONSTRUCTED: 0xa3,
} as const;

interface Extension {
  readonly oid: string;
  readonly critical: boolean;
  readonly value: Uint8Array;
}

/** What the DER walk learns about a certificate beyond what X509Certificate offers. */
interface CertFacts {
  readonly notBefore: number;
  readonly notAfter: number;
  readonly extensions: readonly Extension[];
  readonly isCa: boolean;
  readonly pathLen: number | undefined;
}

/** BasicConstraints ::= SEQUENCE { cA BOOLEAN DEFAULT FALSE, pathLenConstraint INTEGER (0..MAX) OPTIONAL } (RFC 5280, 4.2.1.9). */
function decodeBasicConstraints(value: Uint8Array, code: ErrorCode): { isCa: boolean; pathLen: number | undefined } {
  const outer = new DerReader(value, code);
  const seq = outer.nested(TAG.SEQUENCE, 'basicConstraints');
  outer.end('basicConstraints');
  let isCa = false;
  let pathLen: number | undefined;
  if (!seq.atEnd) {
    let tlv = seq.tlv('basicConstraints field');
    if (tlv.tag === TAG.BOOLEAN) {
      if (tlv.value.length !== 1) throw seq.fail('basicConstraints cA is not one octet');
      isCa = tlv.value[0] !== 0;
      if (!seq.atEnd) tlv = seq.tlv('basicConstraints pathLen');
    }
    if (tlv.tag === TAG.INTEGER) {
      if (tlv.value.length === 0 || tlv.value.length > 4 || ((tlv.value[0] ?? 0) & 0x80) !== 0) {
        throw seq.fail('basicConstraints pathLenConstraint is not a small non-negative integer');
      }
      pathLen = 0;
      for (const b of tlv.value) pathLen = pathLen * 256 + b;
    } else if (tlv.tag !== TAG.BOOLEAN) {
      throw seq.fail(`basicConstraints has an unexpected tag 0x${tlv.tag.toString(16)}`);
    }
  }
  seq.end('basicConstraints');
  return { isCa, pathLen };
}

/**
 * Walks Certificate → TBSCertificate (RFC 5280, 4.1) for validity, extensions and
 * basicConstraints. `der` must be exactly one certificate.
 */
function decodeCertFacts(der: Uint8Array, code: ErrorCode): CertFacts {
  const top = new DerReader(der, code);
  const cert = top.nested(TAG.SEQUENCE, 'Certificate');
  top.end('Certificate');
  const tbs = cert.nested(TAG.SEQUENCE, 'TBSCertificate');
  cert.expect(TAG.SEQUENCE, 'signatureAlgorithm');
  cert.expect(TAG.BIT_STRING, 'signatureValue');
  cert.end('Certificate');

  // version [0] EXPLICIT is optional (absent means v1).
  const first = tbs.tlv('version or serialNumber');
  const serial = first.tag === TAG.CTX_0_CONSTRUCTED ? tbs.tlv('serialNumber') : first;
  if (serial.tag !== TAG.INTEGER) throw tbs.fail('serialNumber is not an INTEGER');
  tbs.expect(TAG.SEQUENCE, 'signature');
  tbs.expect(TAG.SEQUENCE, 'issuer');
  const validity = tbs.nested(TAG.SEQUENCE, 'validity');
  const notBefore = decodeTime(validity.tlv('notBefore'), code, 'notBefore');
  const notAfter = decodeTime(validity.tlv('notAfter'), code, 'notAfter');
  validity.end('validity');
  tbs.expect(TAG.SEQUENCE, 'subject');
  tbs.expect(TAG.SEQUENCE, 'subjectPublicKeyInfo');

  const extensions: Extension[] = [];
  let isCa = false;
  let pathLen: number | undefined;
  let seenBasicConstraints = false;
  while (!tbs.atEnd) {
    const opt = tbs.tlv('TBSCertificate optional field');
    if (opt.tag === TAG.CTX_1_PRIMITIVE || opt.tag === TAG.CTX_2_PRIMITIVE) continue;
    if (opt.tag !== TAG.CTX_3_CONSTRUCTED) throw tbs.fail(`unexpected TBSCertificate field with tag 0x${opt.tag.toString(16)}`);
    const wrapper = new DerReader(opt.value, code);
    const list = wrapper.nested(TAG.SEQUENCE, 'Extensions');
    wrapper.end('extensions');
    while (!list.atEnd) {
      if (extensions.length >= MAX_EXTENSIONS) throw list.fail(`more than ${MAX_EXTENSIONS} extensions`);
      const ext = list.nested(TAG.SEQUENCE, 'Extension');
      const oid = decodeOid(ext.expect(TAG.OID, 'extnID'), code);
      let next = ext.tlv('critical or extnValue');
      let critical = false;
      if (next.tag === TAG.BOOLEAN) {
        if (next.value.length !== 1) throw ext.fail(`extension ${oid}: critical is not one octet`);
        critical = next.value[0] !== 0;
        next = ext.tlv('extnValue');
      }
      if (next.tag !== TAG.OCTET_STRING) throw ext.fail(`extension ${oid}: extnValue is not an OCTET STRING`);
      ext.end('Extension');
      // RFC 5280, 4.2: a certificate must not include more than one instance of an extension.
      if (extensions.some((e) => e.oid === oid)) throw list.fail(`extension ${oid} appears twice`);
      extensions.push({ oid, critical, value: next.value });
      if (oid === OID.basicConstraints) {
        ({ isCa, pathLen } = decodeBasicConstraints(next.value, code));
        seenBasicConstraints = true;
      }
    }
  }
  return { notBefore, notAfter, extensions, isCa: seenBasicConstraints && isCa, pathLen };
}

/** A certificate both node:crypto and the DER walk accepted. */
interface ParsedCert {
  readonly x509: X509Certificate;
  readonly der: Uint8Array;
  readonly publicKey: KeyObject;
  readonly facts: CertFacts;
}

function parseCert(der: Uint8Array, code: ErrorCode, what: string, parsed?: X509Certificate): ParsedCert {
  const facts = decodeCertFacts(der, code);
  let x509: X509Certificate;
  let publicKey: KeyObject;
  try {
    x509 = parsed ?? new X509Certificate(der);
    publicKey = x509.publicKey;
  } catch (err) {
    throw new BulwarkError(code, `${what} is not a certificate node:crypto can parse: ${err instanceof Error ? err.message : String(err)}`, {}, { cause: err });
  }
  return { x509, der, publicKey, facts };
}

/**
 * The length of the DER certificate at the start of `bytes` (its outer SEQUENCE), so
 * the NV padding a TPM returns after it can be cut off.
 */
function certificateLength(bytes: Uint8Array): number {
  const r = new DerReader(bytes, 'CERT_MALFORMED');
  const tlv = r.tlv('Certificate');
  if (tlv.tag !== TAG.SEQUENCE) throw r.fail(`certificate starts with tag 0x${tlv.tag.toString(16)}, not a DER SEQUENCE`, 0);
  if (tlv.encoded.length > MAX_CERT_DER_BYTES) {
    throw new BulwarkError('CERT_MALFORMED', `certificate of ${tlv.encoded.length} bytes is larger than the cap of ${MAX_CERT_DER_BYTES}`, { size: tlv.encoded.length });
  }
  return tlv.encoded.length;
}

function unknownCritical(cert: ParsedCert): string | undefined {
  return cert.facts.extensions.find((e) => e.critical && !UNDERSTOOD_EXTENSIONS.has(e.oid))?.oid;
}

function validAt(cert: ParsedCert, now: number): boolean {
  return cert.facts.notBefore <= now && now <= cert.facts.notAfter;
}

/** Whether `issuer` issued `child`: names and key identifiers match, keyCertSign if keyUsage is present, and the signature verifies. */
function issuedBy(child: ParsedCert, issuer: ParsedCert): 'ok' | 'name' | 'signature' {
  try {
    if (!child.x509.checkIssued(issuer.x509)) return 'name';
    return child.x509.verify(issuer.publicKey) ? 'ok' : 'signature';
  } catch {
    return 'signature';
  }
}

interface ParsedBundle {
  readonly pems: readonly string[];
  readonly certs: readonly ParsedCert[];
  /** Per certificate: self-issued and self-signed (a root). */
  readonly selfSigned: readonly boolean[];
}

/** Parsed bundles by array identity; the texts are compared again on every use. */
const bundleCache = new WeakMap<readonly string[], ParsedBundle>();

function parseBundle(caBundle: readonly string[]): ParsedBundle {
  const cached = bundleCache.get(caBundle);
  if (cached !== undefined && cached.pems.length === caBundle.length && cached.pems.every((p, i) => p === caBundle[i])) return cached;
  if (caBundle.length > MAX_BUNDLE_CERTS) {
    throw new BulwarkError('EK_CA_BUNDLE_INVALID', `CA bundle of ${caBundle.length} certificates is larger than the cap of ${MAX_BUNDLE_CERTS}`);
  }
  const certs = caBundle.map((pem, index) => {
    let x509: X509Certificate;
    try {
      x509 = new X509Certificate(pem);
    } catch (err) {
      throw new BulwarkError('EK_CA_BUNDLE_INVALID', `CA bundle entry ${index} is not a certificate`, { index }, { cause: err });
    }
    return parseCert(new Uint8Array(x509.raw), 'EK_CA_BUNDLE_INVALID', `CA bundle entry ${index}`, x509);
  });
  const selfSigned = certs.map((c) => issuedBy(c, c) === 'ok');
  const parsed: ParsedBundle = { pems: [...caBundle], certs, selfSigned };
  bundleCache.set(caBundle, parsed);
  return parsed;
}

type ChainFailure = 'issuer-not-found' | 'bad-signature' | 'issuer-not-ca' | 'issuer-not-valid-now' | 'path-length-exceeded' | 'unhandled-critical-extension' | 'chain-too-long';

/**
 * Depth-first search from `path`'s last certificate to a self-signed root of the bundle.
 * Every issuer must be a CA (basicConstraints cA), valid at `now`, within its
 * pathLenConstraint, without critical extensions we cannot honour, and must have signed
 * the certificate below it.
 */
function buildChain(path: ParsedCert[], bundle: ParsedBundle, now: number, budget: { checks: number }, failures: Set<ChainFailure>): ParsedCert[] | null {
  const current = path[path.length - 1];
  if (current === undefined) return null;
  // Intermediates already on the path (the leaf does not count).
  const intermediatesBelow = path.length - 1;
  for (let i = 0; i < bundle.certs.length; i++) {
    const candidate = bundle.certs[i];
    if (candidate === undefined || path.some((p) => p.x509.fingerprint256 === candidate.x509.fingerprint256)) continue;
    if (budget.checks <= 0) {
      failures.add('chain-too-long');
      return null;
    }
    budget.checks -= 1;
    const issued = issuedBy(current, candidate);
    if (issued === 'name') continue;
    if (issued === 'signature') {
      failures.add('bad-signature');
      continue;
    }
    if (!candidate.facts.isCa) {
      failures.add('issuer-not-ca');
      continue;
    }
    if (!validAt(candidate, now)) {
      failures.add('issuer-not-valid-now');
      continue;
    }
    if (candidate.facts.pathLen !== undefined && intermediatesBelow > candidate.facts.pathLen) {
      failures.add('path-length-exceeded');
      continue;
    }
    if (unknownCritical(candidate) !== undefined) {
      failures.add('unhandled-critical-extension');
      continue;
    }
    const next = [...path, candidate];
    if (bundle.selfSigned[i] === true) return next;
    if (intermediatesBelow + 1 > MAX_INTERMEDIATES) {
      failures.add('chain-too-long');
      continue;
    }
    const found = buildChain(next, bundle, now, budget, failures);
    if (found !== null) return found;
  }
  if (failures.size === 0) failures.add('issuer-not-found');
  return null;
}

/** Public keys compared as JWK fields, so encodings (compressed points, leading zeros) do not matter. */
function sameKey(a: KeyObject, b: KeyObject): boolean {
  try {
    if (a.asymmetricKeyType !== b.asymmetricKeyType) return false;
    const ja = a.export({ format: 'jwk' });
    const jb = b.export({ format: 'jwk' });
    if (ja.kty === 'RSA') return ja.n !== undefined && ja.n === jb.n && ja.e === jb.e;
    if (ja.kty === 'EC') return ja.crv !== undefined && ja.crv === jb.crv && ja.x === jb.x && ja.y === jb.y;
    return false;
  } catch {
    return false;
  }
}

/**
 * The outcome of `verifyEkCertificate`, a value: `ok: true` means the certificate is trusted
 * for the presented EK (by the operator's CA bundle); otherwise the finding says why not.
 */
export type EkCertificateResult =
  | {
      readonly ok: true;
      readonly subject: string;
      readonly issuer: string;
      readonly serialNumber: string;
      /** SHA-256 of the DER certificate, lowercase hex. */
      readonly fingerprint256: string;
      /** Subjects from the EK certificate up to the root it chains to. */
      readonly chain: readonly string[];
      /** NV padding bytes that followed the DER certificate. */
      readonly trailingBytes: number;
    }
  | { readonly ok: false; readonly finding: Finding };

/**
 * Verifies an EK certificate read from TPM NV (DER, possibly followed by NV padding)
 * against `caBundle` (PEM texts, see `parsePemBundle`) and the EK public key the agent
 * presented. Trust decision: `ok: true` only when the certificate carries exactly
 * `ekPublic`'s key (else EK_CERT_KEY_MISMATCH), is valid at `now`, has no critical
 * extension we cannot honour, and chains through CA certificates of the bundle to a
 * self-signed root of the bundle (else EK_CERT_UNTRUSTED). Throws CERT_MALFORMED when the
 * bytes are not a certificate, EK_CA_BUNDLE_INVALID for a bad bundle entry, and
 * KEY_INVALID when `ekPublic` is not a usable key.
 */
export function verifyEkCertificate(certDer: Uint8Array, caBundle: readonly string[], ekPublic: TpmtPublic, now: Date = new Date()): EkCertificateResult {
  if (certDer.length > MAX_CERT_INPUT_BYTES) {
    throw new BulwarkError('CERT_MALFORMED', `EK certificate input of ${certDer.length} bytes is larger than the cap of ${MAX_CERT_INPUT_BYTES}`, { size: certDer.length });
  }
  const length = certificateLength(certDer);
  const leaf = parseCert(certDer.slice(0, length), 'CERT_MALFORMED', 'the EK certificate');
  const ekKey = tpmtPublicToKeyObject(ekPublic);
  const subject = leaf.x509.subject;
  const issuer = leaf.x509.issuer;

  if (!sameKey(leaf.publicKey, ekKey)) {
    return {
      ok: false,
      finding: finding('EK_CERT_KEY_MISMATCH', `the EK certificate (subject "${subject}") is for another key than the EK presented`, {
        subject,
        certKeyType: leaf.publicKey.asymmetricKeyType ?? 'unknown',
        ekType: ekPublic.type,
      }),
    };
  }
  const at = now.getTime();
  if (!validAt(leaf, at)) {
    return {
      ok: false,
      finding: finding('EK_CERT_UNTRUSTED', `the EK certificate is not valid at ${now.toISOString()} (valid ${leaf.x509.validFrom} to ${leaf.x509.validTo})`, {
        reason: 'not-valid-now',
        subject,
      }),
    };
  }
  const critical = unknownCritical(leaf);
  if (critical !== undefined) {
    return {
      ok: false,
      finding: finding('EK_CERT_UNTRUSTED', `the EK certificate has a critical extension ${critical} Bulwark cannot honour`, { reason: 'unhandled-critical-extension', oid: critical }),
    };
  }
  const bundle = parseBundle(caBundle);
  const failures = new Set<ChainFailure>();
  const chain = buildChain([leaf], bundle, at, { checks: MAX_SIGNATURE_CHECKS }, failures);
  if (chain === null) {
    const reasons = [...failures].join(', ');
    return {
      ok: false,
      finding: finding('EK_CERT_UNTRUSTED', `the EK certificate (issuer "${issuer}") does not chain to a root in the EK CA bundle (${reasons})`, {
        reason: reasons,
        issuer,
        subject,
      }),
    };
  }
  return {
    ok: true,
    subject,
    issuer,
    serialNumber: leaf.x509.serialNumber,
    fingerprint256: createHash('sha256').update(leaf.der).digest('hex'),
    chain: chain.map((c) => c.x509.subject),
    trailingBytes: certDer.length - length,
  };
}

/**
 * Splits a PEM bundle text (as read from `policies/trust/ek-ca/*.pem`) into one
 * normalized PEM text per certificate. Text outside PEM blocks (comments, openssl's
 * "subject=" lines) is ignored; a block that is not a CERTIFICATE, an unterminated block,
 * or a body that is not strict base64 throws EK_CA_BUNDLE_INVALID. Pure; says nothing
 * about whether the certificates are trustworthy (that is the operator's choice).
 */
export function parsePemBundle(text: string): string[] {
  if (text.length > MAX_BUNDLE_TEXT) throw new BulwarkError('EK_CA_BUNDLE_INVALID', `CA bundle text of ${text.length} characters is larger than the cap of ${MAX_BUNDLE_TEXT}`);
  const out: string[] = [];
  const begin = /-----BEGIN ([A-Z0-9 ]+)-----/g;
  let m: RegExpExecArray | null;
  while ((m = begin.exec(text)) !== null) {
    const label = m[1] ?? '';
    if (label !== 'CERTIFICATE') {
      throw new BulwarkError('EK_CA_BUNDLE_INVALID', `PEM block "${label}" at character ${m.index} is not a CERTIFICATE`, { offset: m.index });
    }
    const endMarker = '-----END CERTIFICATE-----';
    const end = text.indexOf(endMarker, begin.lastIndex);
    if (end < 0) throw new BulwarkError('EK_CA_BUNDLE_INVALID', `PEM block at character ${m.index} has no END line`, { offset: m.index });
    const body = text.slice(begin.lastIndex, end).replace(/\s+/g, '');
    if (body.length === 0 || body.length % 4 !== 0 || !/^[A-Za-z0-9+/]+={0,2}$/.test(body)) {
      throw new BulwarkError('EK_CA_BUNDLE_INVALID', `PEM block at character ${m.index} is not base64`, { offset: m.index });
    }
    if (out.length >= MAX_BUNDLE_CERTS) throw new BulwarkError('EK_CA_BUNDLE_INVALID', `CA bundle has more than ${MAX_BUNDLE_CERTS} certificates`);
    const lines = body.match(/.{1,64}/g) ?? [];
    out.push(`-----BEGIN CERTIFICATE-----\n${lines.join('\n')}\n-----END CERTIFICATE-----\n`);
    begin.lastIndex = end + endMarker.length;
  }
  return out;
}
