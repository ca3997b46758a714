/**
 * Appended module signatures (the modsig field of ima-modsig entries): the PKCS#7 / CMS
 * SignedData (RFC 5652) that scripts/sign-file appends to a kernel module, as
 * ima_modsig.c ima_get_raw_modsig hands it to the template (the DER alone, without
 * struct module_signature and the "~Module signature appended~" marker). The d-modsig field
 * is the digest of the module without that signature, made with the signer's digest
 * algorithm (ima_get_modsig_digest).
 *
 * Decoded strictly and minimally, the way the kernel's pkcs7 parser accepts what sign-file
 * writes: DER only (definite, minimal lengths; one-byte tags), detached content of type
 * id-data, exactly one SignerInfo. Its signature (crypto/asymmetric_keys/pkcs7_verify.c
 * pkcs7_digest) is over the content digest itself when there are no signed attributes
 * (sign-file's CMS_NOATTR), else over the DER of the signed attributes as a SET, whose
 * messageDigest must be the content digest. Every length is checked against what its parent
 * holds before it is used; anything else is IMA_LOG_MALFORMED, never another exception.
 */
import type { KeyObject } from 'node:crypto';
import { createHash } from 'node:crypto';
import { BulwarkError } from '../errors.js';
import { verifyEcdsaDigest, verifyRsaPkcs1Digest } from './signature.js';
import { IMA_LIMITS } from './types.js';

/** A DER element: its tag and where its contents lie in the input. */
interface Der {
  readonly tag: number;
  /** Offset of the tag byte. */
  readonly at: number;
  readonly start: number;
  readonly end: number;
}

const TAG = {
  INTEGER: 0x02,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  SEQUENCE: 0x30,
  SET: 0x31,
  CONTEXT_0: 0xa0,
  CONTEXT_1: 0xa1,
  /** [0] IMPLICIT OCTET STRING: a SignerIdentifier subjectKeyIdentifier. */
  CONTEXT_0_PRIMITIVE: 0x80,
} as const;

/** Object identifiers (dotted) Bulwark accepts, by what they name. */
const OID = {
  signedData: '1.2.840.113549.1.7.2',
  data: '1.2.840.113549.1.7.1',
  contentType: '1.2.840.113549.1.9.3',
  messageDigest: '1.2.840.113549.1.9.4',
} as const;

/** Digest algorithm OIDs (RFC 5754, RFC 3370) → kernel hash names. */
const DIGEST_OIDS: ReadonlyMap<string, string> = new Map([
  ['1.3.14.3.2.26', 'sha1'],
  ['2.16.840.1.101.3.4.2.4', 'sha224'],
  ['2.16.840.1.101.3.4.2.1', 'sha256'],
  ['2.16.840.1.101.3.4.2.2', 'sha384'],
  ['2.16.840.1.101.3.4.2.3', 'sha512'],
]);

/** Signature algorithm OIDs → key type, with the hash a combined OID fixes (undefined: the digest algorithm's). */
const SIGNATURE_OIDS: ReadonlyMap<string, { readonly key: 'rsa' | 'ec'; readonly hash?: string }> = new Map([
  ['1.2.840.113549.1.1.1', { key: 'rsa' }], // rsaEncryption (what sign-file writes)
  ['1.2.840.113549.1.1.5', { key: 'rsa', hash: 'sha1' }],
  ['1.2.840.113549.1.1.11', { key: 'rsa', hash: 'sha256' }],
  ['1.2.840.113549.1.1.12', { key: 'rsa', hash: 'sha384' }],
  ['1.2.840.113549.1.1.13', { key: 'rsa', hash: 'sha512' }],
  ['1.2.840.113549.1.1.14', { key: 'rsa', hash: 'sha224' }],
  ['1.2.840.10045.2.1', { key: 'ec' }], // id-ecPublicKey
  ['1.2.840.10045.4.3.1', { key: 'ec', hash: 'sha224' }],
  ['1.2.840.10045.4.3.2', { key: 'ec', hash: 'sha256' }],
  ['1.2.840.10045.4.3.3', { key: 'ec', hash: 'sha384' }],
  ['1.2.840.10045.4.3.4', { key: 'ec', hash: 'sha512' }],
]);

function malformed(why: string, at: number): BulwarkError {
  return new BulwarkError('IMA_LOG_MALFORMED', `modsig PKCS#7: ${why} (byte ${at})`, { field: 'modsig', at });
}

/** The DER element at `at`, which must end by `limit`. Definite, minimally encoded lengths; one-byte tags. */
function element(b: Uint8Array, at: number, limit: number): Der {
  if (at + 2 > limit) throw malformed('element cut short', at);
  const tag = b[at] ?? 0;
  if ((tag & 0x1f) === 0x1f) throw malformed('multi-byte tag', at);
  const first = b[at + 1] ?? 0;
  let start = at + 2;
  let length: number;
  if (first < 0x80) length = first;
  else {
    const n = first & 0x7f;
    // 0x80 is BER's indefinite length; more than 3 length bytes would exceed any modsig here.
    if (n === 0 || n > 3) throw malformed(n === 0 ? 'indefinite length' : 'length too large', at);
    if (start + n > limit) throw malformed('length cut short', at);
    length = 0;
    for (let i = 0; i < n; i++) length = length * 256 + (b[start + i] ?? 0);
    if ((b[start] ?? 0) === 0 || length < 0x80) throw malformed('length not minimally encoded', at);
    start += n;
  }
  if (length > limit - start) throw malformed(`length ${length} runs past its parent`, at);
  return { tag, at, start, end: start + length };
}

function expectTag(e: Der, tag: number, what: string): Der {
  if (e.tag !== tag) throw malformed(`${what}: tag 0x${e.tag.toString(16)}, not 0x${tag.toString(16)}`, e.at);
  return e;
}

/** The children of a constructed element, in order (at most `max`). */
function children(b: Uint8Array, parent: Der, max: number): Der[] {
  const out: Der[] = [];
  let at = parent.start;
  while (at < parent.end) {
    if (out.length === max) throw malformed('more elements than allowed', at);
    const e = element(b, at, parent.end);
    out.push(e);
    at = e.end;
  }
  return out;
}

/** An OBJECT IDENTIFIER as dotted text (X.690 8.19); at most 32 bytes, minimal subidentifiers. */
function oid(b: Uint8Array, e: Der): string {
  expectTag(e, TAG.OID, 'OBJECT IDENTIFIER');
  if (e.end === e.start || e.end - e.start > 32) throw malformed('OBJECT IDENTIFIER length', e.at);
  const arcs: number[] = [];
  let v = 0;
  let fresh = true;
  for (let i = e.start; i < e.end; i++) {
    const byte = b[i] ?? 0;
    if (fresh && byte === 0x80) throw malformed('OBJECT IDENTIFIER subidentifier not minimal', e.at);
    v = v * 128 + (byte & 0x7f);
    if (v > Number.MAX_SAFE_INTEGER / 128) throw malformed('OBJECT IDENTIFIER arc too large', e.at);
    fresh = (byte & 0x80) === 0;
    if (fresh) {
      arcs.push(v);
      v = 0;
    }
  }
  if (!fresh) throw malformed('OBJECT IDENTIFIER cut short', e.at);
  const [head = 0, ...rest] = arcs;
  const first = head < 40 ? [0, head] : head < 80 ? [1, head - 40] : [2, head - 80];
  return [...first, ...rest].join('.');
}

/** AlgorithmIdentifier: SEQUENCE { OID, parameters NULL or absent }. */
function algorithm(b: Uint8Array, e: Der): string {
  const [id, params, ...more] = children(b, expectTag(e, TAG.SEQUENCE, 'AlgorithmIdentifier'), 2);
  if (id === undefined || more.length > 0) throw malformed('AlgorithmIdentifier', e.at);
  if (params !== undefined && (params.tag !== TAG.NULL || params.end !== params.start)) throw malformed('AlgorithmIdentifier parameters are not NULL', params.at);
  return oid(b, id);
}

/** A decoded appended signature: what verification needs. Untrusted. */
export interface ImaModsigSignature {
  /** Kernel hash name of the SignerInfo's digest algorithm. */
  readonly digestAlgorithm: string;
  readonly keyType: 'rsa' | 'ec';
  /** The subjectKeyIdentifier of the signer when the SignerInfo names it so (sign-file -k), else null (issuerAndSerialNumber). */
  readonly subjectKeyId: Uint8Array | null;
  /** The DER of the signed attributes re-tagged as a SET (what is signed), or null when there are none. */
  readonly signedAttributes: Uint8Array | null;
  /** The messageDigest attribute, when there are signed attributes. */
  readonly messageDigest: Uint8Array | null;
  readonly signature: Uint8Array;
}

/** Signed attributes: [0] IMPLICIT SET OF Attribute; contentType must be id-data, messageDigest present once. */
function signedAttributes(b: Uint8Array, e: Der): { der: Uint8Array; messageDigest: Uint8Array } {
  let messageDigest: Uint8Array | null = null;
  let contentType = false;
  for (const attr of children(b, e, 32)) {
    const [type, values, ...more] = children(b, expectTag(attr, TAG.SEQUENCE, 'Attribute'), 2);
    if (type === undefined || values === undefined || more.length > 0) throw malformed('Attribute', attr.at);
    const name = oid(b, type);
    const vals = children(b, expectTag(values, TAG.SET, 'attribute values'), 1);
    const [value] = vals;
    if (name === OID.messageDigest || name === OID.contentType) {
      if (value === undefined) throw malformed('attribute without a value', values.at);
      if (name === OID.messageDigest) {
        if (messageDigest !== null) throw malformed('two messageDigest attributes', attr.at);
        messageDigest = b.subarray(expectTag(value, TAG.OCTET_STRING, 'messageDigest').start, value.end);
      } else {
        if (contentType || oid(b, value) !== OID.data) throw malformed('contentType is not id-data (or twice)', attr.at);
        contentType = true;
      }
    }
  }
  if (messageDigest === null || !contentType) throw malformed('signed attributes without messageDigest and contentType', e.at);
  // RFC 5652 5.4: the signature covers the attributes' DER with the SET OF tag, not [0].
  const der = new Uint8Array(b.subarray(e.at, e.end));
  der[0] = TAG.SET;
  return { der, messageDigest };
}

/**
 * Decodes the modsig field: ContentInfo { signedData, [0] SignedData { version,
 * digestAlgorithms, encapContentInfo { id-data } (detached), certificates?, crls?,
 * signerInfos { one SignerInfo } } }. Throws IMA_LOG_MALFORMED for anything else.
 */
export function decodeImaModsig(bytes: Uint8Array): ImaModsigSignature {
  if (bytes.length > IMA_LIMITS.templateDataMax) throw malformed('larger than any template data', 0);
  const top = expectTag(element(bytes, 0, bytes.length), TAG.SEQUENCE, 'ContentInfo');
  if (top.end !== bytes.length) throw malformed('bytes after the ContentInfo', top.end);
  const [type, explicit, ...rest] = children(bytes, top, 2);
  if (type === undefined || explicit === undefined || rest.length > 0) throw malformed('ContentInfo', top.at);
  if (oid(bytes, type) !== OID.signedData) throw malformed('not SignedData', type.at);
  const [sd, ...extra] = children(bytes, expectTag(explicit, TAG.CONTEXT_0, 'ContentInfo content'), 1);
  if (sd === undefined || extra.length > 0) throw malformed('ContentInfo content', explicit.at);
  const parts = children(bytes, expectTag(sd, TAG.SEQUENCE, 'SignedData'), 6);
  const [version, digestAlgorithms, encap] = parts;
  if (version === undefined || digestAlgorithms === undefined || encap === undefined) throw malformed('SignedData', sd.at);
  expectTag(version, TAG.INTEGER, 'SignedData version');
  expectTag(digestAlgorithms, TAG.SET, 'digestAlgorithms');
  const [encapType, encapContent] = children(bytes, expectTag(encap, TAG.SEQUENCE, 'encapContentInfo'), 2);
  if (encapType === undefined || oid(bytes, encapType) !== OID.data) throw malformed('encapContentInfo is not id-data', encap.at);
  if (encapContent !== undefined) throw malformed('the content is attached, a module signature is detached', encapContent.at);
  // certificates [0] and crls [1] may follow; signerInfos is last.
  let i = 3;
  if (parts[i]?.tag === TAG.CONTEXT_0) i++;
  if (parts[i]?.tag === TAG.CONTEXT_1) i++;
  const signerInfos = parts[i];
  if (signerInfos === undefined || i !== parts.length - 1) throw malformed('SignedData without signerInfos last', sd.at);
  const signers = children(bytes, expectTag(signerInfos, TAG.SET, 'signerInfos'), 1);
  const [signer] = signers;
  if (signer === undefined) throw malformed('no SignerInfo', signerInfos.at);
  const s = children(bytes, expectTag(signer, TAG.SEQUENCE, 'SignerInfo'), 7);
  const [sVersion, sid, digestAlg] = s;
  if (sVersion === undefined || sid === undefined || digestAlg === undefined) throw malformed('SignerInfo', signer.at);
  expectTag(sVersion, TAG.INTEGER, 'SignerInfo version');
  let subjectKeyId: Uint8Array | null = null;
  if (sid.tag === TAG.CONTEXT_0_PRIMITIVE) subjectKeyId = bytes.subarray(sid.start, sid.end);
  else expectTag(sid, TAG.SEQUENCE, 'SignerInfo sid');
  const digestAlgorithm = DIGEST_OIDS.get(algorithm(bytes, digestAlg));
  if (digestAlgorithm === undefined) throw malformed('unknown digest algorithm', digestAlg.at);
  let k = 3;
  let attrs: { der: Uint8Array; messageDigest: Uint8Array } | null = null;
  const maybeAttrs = s[k];
  if (maybeAttrs?.tag === TAG.CONTEXT_0) {
    attrs = signedAttributes(bytes, maybeAttrs);
    k++;
  }
  const sigAlg = s[k];
  const sig = s[k + 1];
  if (sigAlg === undefined || sig === undefined) throw malformed('SignerInfo without signature', signer.at);
  const after = s[k + 2];
  if (after !== undefined && (after.tag !== TAG.CONTEXT_1 || k + 3 !== s.length)) throw malformed('SignerInfo: unexpected element after the signature', after.at);
  const sigKind = SIGNATURE_OIDS.get(algorithm(bytes, sigAlg));
  if (sigKind === undefined) throw malformed('unknown signature algorithm', sigAlg.at);
  if (sigKind.hash !== undefined && sigKind.hash !== digestAlgorithm) throw malformed('the signature algorithm names another hash than the digest algorithm', sigAlg.at);
  expectTag(sig, TAG.OCTET_STRING, 'signature');
  if (sig.end === sig.start) throw malformed('empty signature', sig.at);
  return {
    digestAlgorithm,
    keyType: sigKind.key,
    subjectKeyId,
    signedAttributes: attrs?.der ?? null,
    messageDigest: attrs?.messageDigest ?? null,
    signature: bytes.subarray(sig.start, sig.end),
  };
}

export type ImaModsigCheck =
  | { readonly ok: true; readonly keyId: number }
  | { readonly ok: false; readonly reason: 'malformed' | 'algorithm-mismatch' | 'digest-mismatch' | 'unknown-key' };

/**
 * Verifies an ima-modsig entry's appended signature over its d-modsig digest with the
 * runtime policy's keys: the signer's digest algorithm must be d-modsig's; with signed
 * attributes their messageDigest must be the digest. The SignerInfo names its key by issuer
 * and serial (sign-file's default), which the policy's bare keys cannot answer, so each
 * trusted key of the signature's type is tried (a subject key id, when given, narrows this to
 * the key whose IMA key id is its last 4 bytes). 'unknown-key': no trusted key verifies it.
 * Pure; never throws. Trust: `keys` are the runtime policy's; the rest is the entry's.
 */
export function verifyImaModsig(modsig: Uint8Array, digestAlgorithm: string, digest: Uint8Array, keys: ReadonlyMap<number, KeyObject>): ImaModsigCheck {
  let m: ImaModsigSignature;
  try {
    m = decodeImaModsig(modsig);
  } catch {
    return { ok: false, reason: 'malformed' };
  }
  if (m.digestAlgorithm !== digestAlgorithm) return { ok: false, reason: 'algorithm-mismatch' };
  let signed: Uint8Array = digest;
  if (m.signedAttributes !== null) {
    if (m.messageDigest === null || Buffer.compare(Buffer.from(m.messageDigest), Buffer.from(digest)) !== 0) return { ok: false, reason: 'digest-mismatch' };
    signed = new Uint8Array(createHash(m.digestAlgorithm).update(m.signedAttributes).digest());
  }
  const skid = m.subjectKeyId;
  const wanted = skid !== null && skid.length >= 4 ? Buffer.from(skid.subarray(skid.length - 4)).readUInt32BE(0) : undefined;
  for (const [keyId, key] of keys) {
    if (wanted !== undefined && keyId !== wanted) continue;
    if (key.asymmetricKeyType !== m.keyType) continue;
    const ok = m.keyType === 'ec' ? verifyEcdsaDigest(key, signed, m.signature) : verifyRsaPkcs1Digest(key, m.digestAlgorithm, signed, m.signature);
    if (ok === true) return { ok: true, keyId };
  }
  return { ok: false, reason: 'unknown-key' };
}
