/**
 * C2SP signed notes (c2sp.org/signed-note): text, a blank line, then one or more lines
 * "— <key name> <base64(key ID ‖ signature)>" (U+2014 EM DASH). Parsing is strict and
 * separate from verifying: `parseSignedNote` gives an untrusted note; only `verifyNote`,
 * given trusted verifier keys, yields a `VerifiedNote`.
 *
 * Signature types supported (signed-note §Signature types):
 * - 0x01 Ed25519 over the note text; key ID = SHA-256(name ‖ 0x0A ‖ 0x01 ‖ 32-byte key)[:4].
 * - 0x02 ECDSA "as implemented by github.com/transparency-dev/witness" (the type Rekor v2 and
 *   transparency-dev/formats use): an ASN.1 DER ECDSA signature over SHA-256(note text), on
 *   P-256, P-384 or P-521; the verifier key is 0x02 ‖ SPKI DER and the key ID is
 *   SHA-256(SPKI DER)[:4] (no name, no type byte). This is what the HSM signs: Node hashes
 *   with SHA-256, the token signs the digest with CKM_ECDSA, and the signature leaves in DER.
 */
import { createHash, createPrivateKey, createPublicKey, sign as cryptoSign, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { BulwarkError } from '../errors.js';
import { decodeBase64Strict, encodeBase64 } from './base64.js';

/** Largest signed note accepted (bytes of UTF-8), checked before anything else. */
export const NOTE_MAX_BYTES = 256 * 1024;
/** Most signature lines accepted (signed-note asks for at least 16). */
export const NOTE_MAX_SIGNATURES = 64;
/** Largest decoded signature (key ID included): room for post-quantum signatures (~5 kB). */
export const NOTE_MAX_SIGNATURE_BYTES = 8 * 1024;
/** Longest key name accepted. */
export const NOTE_MAX_KEY_NAME = 256;

/** Signature type identifier bytes of signed-note. */
export const NOTE_SIGNATURE_TYPES = { ed25519: 0x01, ecdsa: 0x02 } as const;
export type NoteSignatureType = keyof typeof NOTE_SIGNATURE_TYPES;

const EM_DASH = '\u2014';
const SIGNATURE_PREFIX = `${EM_DASH} `;
// Unicode spaces (JS \s with the u flag covers Zs and the ASCII whitespace) and '+'.
const BAD_NAME = /[\s+]/u;
const CONTROL = /[\u0000-\u0009\u000b-\u001f]/;

/** One signature line of a note, not yet checked against any key. */
export interface NoteSignature {
  readonly name: string;
  /** The big-endian uint32 key ID (first four bytes of the decoded signature). */
  readonly keyId: number;
  /** The signature proper (after the key ID). */
  readonly signature: Uint8Array;
}

/** A signed note as parsed: untrusted until `verifyNote`. */
export interface SignedNote {
  /** The note text, ending in its newline (the signed bytes, as UTF-8). */
  readonly text: string;
  readonly signatures: readonly NoteSignature[];
}

/** A public key a note may be verified with. */
export interface NoteVerifier {
  readonly name: string;
  readonly keyId: number;
  readonly type: NoteSignatureType;
  /** The vkey encoding: `<name>+<hex key ID>+<base64(type ‖ public key)>`. */
  readonly vkey: string;
  verify(message: Uint8Array, signature: Uint8Array): boolean;
}

/** A key that signs notes (in memory, or an HSM behind the same shape). */
export interface NoteSigner {
  readonly name: string;
  readonly keyId: number;
  sign(message: Uint8Array): Uint8Array | Promise<Uint8Array>;
}

const verifiedToken: unique symbol = Symbol('verified note');

/** A note whose signature by at least one trusted key verified (and none failed). Trusted. */
export class VerifiedNote {
  readonly text: string;
  /** Names of the trusted keys whose signatures verified. */
  readonly verifiedBy: readonly string[];
  readonly signatures: readonly NoteSignature[];

  /** Made only by verifyNote. */
  constructor(token: typeof verifiedToken, note: SignedNote, verifiedBy: readonly string[]) {
    if (token !== verifiedToken) throw new BulwarkError('INTERNAL', 'a VerifiedNote is made only by verifyNote');
    this.text = note.text;
    this.signatures = note.signatures;
    this.verifiedBy = verifiedBy;
  }
}

const malformed = (message: string, details: Record<string, string | number> = {}): BulwarkError =>
  new BulwarkError('NOTE_MALFORMED', `signed note: ${message}`, details);

/** Throws NOTE_MALFORMED (or `code`) unless `name` is a valid key name. */
function checkKeyName(name: string, code: 'NOTE_MALFORMED' | 'NOTE_KEY_INVALID'): void {
  if (name.length === 0 || name.length > NOTE_MAX_KEY_NAME || BAD_NAME.test(name) || CONTROL.test(name)) {
    throw new BulwarkError(code, `key name is empty, longer than ${NOTE_MAX_KEY_NAME}, or holds a space, '+' or control character`, {
      name: name.slice(0, 80),
    });
  }
}

/** Note text rules: UTF-8 text ending in a newline, no control characters but newline. */
function checkText(text: string): void {
  if (!text.endsWith('\n')) throw malformed('text does not end in a newline');
  if (CONTROL.test(text)) throw malformed('text holds a control character');
  if (/[\ud800-\udfff]/u.test(text)) throw malformed('text is not valid UTF-8');
}

function decodeUtf8(input: string | Uint8Array): string {
  if (typeof input === 'string') {
    if (input.length > NOTE_MAX_BYTES || Buffer.byteLength(input, 'utf8') > NOTE_MAX_BYTES) throw malformed(`larger than ${NOTE_MAX_BYTES} bytes`);
    return input;
  }
  if (input.length > NOTE_MAX_BYTES) throw malformed(`larger than ${NOTE_MAX_BYTES} bytes`, { size: input.length });
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(input);
  } catch (err) {
    throw new BulwarkError('NOTE_MALFORMED', 'signed note is not UTF-8', {}, { cause: err });
  }
}

/** Parses a signed note (untrusted): text and signature lines, every rule of signed-note checked. */
export function parseSignedNote(input: string | Uint8Array): SignedNote {
  const all = decodeUtf8(input);
  if (CONTROL.test(all)) throw malformed('holds a control character other than newline');
  if (/[\ud800-\udfff]/u.test(all)) throw malformed('is not valid UTF-8');
  if (!all.endsWith('\n')) throw malformed('does not end in a newline');
  // The text is separated from the signatures by the last empty line.
  const split = all.lastIndexOf('\n\n');
  if (split < 0) throw malformed('has no blank line before its signatures');
  const text = all.slice(0, split + 1);
  const lines = all.slice(split + 2, -1);
  if (lines.length === 0) throw malformed('has no signature lines');
  const sigLines = lines.split('\n');
  if (sigLines.length > NOTE_MAX_SIGNATURES) throw malformed(`has more than ${NOTE_MAX_SIGNATURES} signatures`, { count: sigLines.length });
  const signatures = sigLines.map((line, i) => parseSignatureLine(line, i));
  return { text, signatures };
}

function parseSignatureLine(line: string, i: number): NoteSignature {
  if (!line.startsWith(SIGNATURE_PREFIX)) throw malformed(`signature line ${i} does not start with an em dash (U+2014) and a space`, { line: i });
  const parts = line.slice(SIGNATURE_PREFIX.length).split(' ');
  const [name, b64] = parts;
  if (parts.length !== 2 || name === undefined || b64 === undefined) {
    throw malformed(`signature line ${i} is not "— <name> <base64>" with single spaces`, { line: i });
  }
  try {
    checkKeyName(name, 'NOTE_MALFORMED');
  } catch (err) {
    throw new BulwarkError('NOTE_MALFORMED', `signature line ${i}: invalid key name`, { line: i }, { cause: err });
  }
  const raw = decodeBase64Strict(b64, 'NOTE_MALFORMED', `signature ${i}`, NOTE_MAX_SIGNATURE_BYTES);
  if (raw.length < 5) throw malformed(`signature line ${i} is shorter than a key ID and a signature`, { line: i, length: raw.length });
  const keyId = new DataView(raw.buffer, raw.byteOffset, raw.byteLength).getUint32(0, false);
  return { name, keyId, signature: raw.subarray(4) };
}

/** Formats a note: text, blank line, one "— name base64(keyID ‖ sig)" line per signature. */
export function formatSignedNote(note: SignedNote): string {
  checkText(note.text);
  if (note.signatures.length === 0 || note.signatures.length > NOTE_MAX_SIGNATURES) {
    throw malformed(`needs 1 to ${NOTE_MAX_SIGNATURES} signatures`, { count: note.signatures.length });
  }
  const lines = note.signatures.map((s) => {
    checkKeyName(s.name, 'NOTE_MALFORMED');
    const raw = new Uint8Array(4 + s.signature.length);
    new DataView(raw.buffer).setUint32(0, s.keyId >>> 0, false);
    raw.set(s.signature, 4);
    return `${SIGNATURE_PREFIX}${s.name} ${encodeBase64(raw)}\n`;
  });
  const out = `${note.text}\n${lines.join('')}`;
  if (Buffer.byteLength(out, 'utf8') > NOTE_MAX_BYTES) throw malformed(`larger than ${NOTE_MAX_BYTES} bytes`);
  return out;
}

/** Signs `text` with every signer (in order) and formats the signed note. */
export async function signNote(text: string, signers: readonly NoteSigner[]): Promise<string> {
  checkText(text);
  const message = new TextEncoder().encode(text);
  const signatures: NoteSignature[] = [];
  for (const s of signers) signatures.push({ name: s.name, keyId: s.keyId, signature: await s.sign(message) });
  return formatSignedNote({ text, signatures });
}

/**
 * Verifies a note against trusted keys (signed-note §Signatures): signatures by unknown
 * (name, key ID) pairs are ignored; a signature by a known key that fails refuses the whole
 * note (NOTE_SIGNATURE_INVALID); no verified signature by a known key is NOTE_UNTRUSTED.
 */
export function verifyNote(input: SignedNote | string | Uint8Array, verifiers: readonly NoteVerifier[]): VerifiedNote {
  const note = typeof input === 'string' || input instanceof Uint8Array ? parseSignedNote(input) : input;
  const message = new TextEncoder().encode(note.text);
  const verifiedBy: string[] = [];
  for (const sig of note.signatures) {
    const key = verifiers.find((v) => v.name === sig.name && v.keyId === sig.keyId);
    if (key === undefined) continue;
    if (!key.verify(message, sig.signature)) {
      throw new BulwarkError('NOTE_SIGNATURE_INVALID', `note signature by ${sig.name} does not verify`, { name: sig.name, keyId: hex8(sig.keyId) });
    }
    if (!verifiedBy.includes(sig.name)) verifiedBy.push(sig.name);
  }
  if (verifiedBy.length === 0) {
    throw new BulwarkError('NOTE_UNTRUSTED', 'note has no signature by a trusted key', { signatures: note.signatures.length });
  }
  return new VerifiedNote(verifiedToken, note, verifiedBy);
}

function hex8(n: number): string {
  return (n >>> 0).toString(16).padStart(8, '0');
}

function first4(bytes: Uint8Array): number {
  return createHash('sha256').update(bytes).digest().readUInt32BE(0);
}

/**
 * The key ID of a key: Ed25519 per signed-note (SHA-256(name ‖ 0x0A ‖ 0x01 ‖ key)[:4]);
 * ECDSA (type 0x02) per its definition, SHA-256(SPKI DER)[:4].
 */
export function noteKeyId(name: string, type: NoteSignatureType, publicKey: Uint8Array): number {
  if (type === 'ecdsa') return first4(publicKey);
  const nameBytes = new TextEncoder().encode(name);
  const buf = new Uint8Array(nameBytes.length + 2 + publicKey.length);
  buf.set(nameBytes, 0);
  buf[nameBytes.length] = 0x0a;
  buf[nameBytes.length + 1] = NOTE_SIGNATURE_TYPES[type];
  buf.set(publicKey, nameBytes.length + 2);
  return first4(buf);
}

const keyInvalid = (message: string, cause?: unknown): BulwarkError =>
  new BulwarkError('NOTE_KEY_INVALID', message, {}, cause === undefined ? undefined : { cause });

const EC_CURVES: readonly string[] = ['prime256v1', 'secp384r1', 'secp521r1'];

/** The public key bytes a vkey carries for a Node key: raw 32 bytes (Ed25519) or SPKI DER (ECDSA). */
function publicKeyMaterial(key: KeyObject): { type: NoteSignatureType; material: Uint8Array; publicKey: KeyObject } {
  const publicKey = key.type === 'private' ? createPublicKey(key) : key;
  if (publicKey.asymmetricKeyType === 'ed25519') {
    const jwk = publicKey.export({ format: 'jwk' });
    if (typeof jwk.x !== 'string') throw keyInvalid('Ed25519 key has no public part');
    return { type: 'ed25519', material: new Uint8Array(Buffer.from(jwk.x, 'base64url')), publicKey };
  }
  if (publicKey.asymmetricKeyType === 'ec') {
    const curve = publicKey.asymmetricKeyDetails?.namedCurve ?? '';
    if (!EC_CURVES.includes(curve)) throw keyInvalid(`ECDSA curve ${curve} is not P-256, P-384 or P-521`);
    return { type: 'ecdsa', material: new Uint8Array(publicKey.export({ format: 'der', type: 'spki' })), publicKey };
  }
  throw keyInvalid(`key type ${publicKey.asymmetricKeyType ?? 'unknown'} cannot sign notes (Ed25519 or ECDSA only)`);
}

function makeVerifier(name: string, type: NoteSignatureType, material: Uint8Array, publicKey: KeyObject): NoteVerifier {
  const keyId = noteKeyId(name, type, material);
  const typed = new Uint8Array(material.length + 1);
  typed[0] = NOTE_SIGNATURE_TYPES[type];
  typed.set(material, 1);
  const vkey = `${name}+${hex8(keyId)}+${encodeBase64(typed)}`;
  const verify =
    type === 'ed25519'
      ? (message: Uint8Array, signature: Uint8Array): boolean => signature.length === 64 && cryptoVerify(null, message, publicKey, signature)
      : (message: Uint8Array, signature: Uint8Array): boolean => {
          try {
            return cryptoVerify('sha256', message, { key: publicKey, dsaEncoding: 'der' }, signature);
          } catch {
            return false; // a signature that is not DER
          }
        };
  return { name, keyId, type, vkey, verify };
}

/** A verifier for a Node public (or private) key under `name`. */
export function noteVerifierFromKey(name: string, key: KeyObject): NoteVerifier {
  checkKeyName(name, 'NOTE_KEY_INVALID');
  const { type, material, publicKey } = publicKeyMaterial(key);
  return makeVerifier(name, type, material, publicKey);
}

/** Parses a verifier key `<name>+<hex key ID>+<base64(type ‖ public key)>` (types 0x01 and 0x02). */
export function parseNoteVerifierKey(vkey: string): NoteVerifier {
  if (vkey.length > 4096) throw keyInvalid('verifier key is longer than 4096 characters');
  const a = vkey.indexOf('+');
  const b = a < 0 ? -1 : vkey.indexOf('+', a + 1);
  if (a < 0 || b < 0) throw keyInvalid('verifier key is not <name>+<key ID>+<key>');
  const name = vkey.slice(0, a);
  const idHex = vkey.slice(a + 1, b);
  checkKeyName(name, 'NOTE_KEY_INVALID');
  if (!/^[0-9a-f]{8}$/.test(idHex)) throw keyInvalid('verifier key ID is not 8 lowercase hex digits');
  const typed = decodeBase64Strict(vkey.slice(b + 1), 'NOTE_KEY_INVALID', 'verifier key', 2048);
  const [typeByte] = typed;
  const material = typed.subarray(1);
  let verifier: NoteVerifier;
  try {
    if (typeByte === NOTE_SIGNATURE_TYPES.ed25519) {
      if (material.length !== 32) throw keyInvalid('Ed25519 verifier key is not 32 bytes');
      const publicKey = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(material).toString('base64url') }, format: 'jwk' });
      verifier = makeVerifier(name, 'ed25519', material, publicKey);
    } else if (typeByte === NOTE_SIGNATURE_TYPES.ecdsa) {
      const publicKey = createPublicKey({ key: Buffer.from(material), format: 'der', type: 'spki' });
      publicKeyMaterial(publicKey); // curve check
      verifier = makeVerifier(name, 'ecdsa', material, publicKey);
    } else {
      throw keyInvalid(`verifier key type ${typeByte ?? 'none'} is not supported (0x01 Ed25519, 0x02 ECDSA)`);
    }
  } catch (err) {
    if (err instanceof BulwarkError) throw err;
    throw keyInvalid('verifier key does not decode', err);
  }
  if (hex8(verifier.keyId) !== idHex) throw keyInvalid(`verifier key ID ${idHex} does not match the key (${hex8(verifier.keyId)})`);
  return verifier;
}

/** A signer for a Node private key (Ed25519 or ECDSA P-256/P-384/P-521), in memory. */
export function noteSignerFromKey(name: string, privateKey: KeyObject): NoteSigner {
  if (privateKey.type !== 'private') throw keyInvalid('note signer needs a private key');
  const verifier = noteVerifierFromKey(name, privateKey);
  const sign =
    verifier.type === 'ed25519'
      ? (message: Uint8Array): Uint8Array => new Uint8Array(cryptoSign(null, message, privateKey))
      : (message: Uint8Array): Uint8Array => new Uint8Array(cryptoSign('sha256', message, { key: privateKey, dsaEncoding: 'der' }));
  return { name, keyId: verifier.keyId, sign };
}

/** PKCS#8 DER prefix of an Ed25519 private key (RFC 8410), before the 32-byte seed. */
const ED25519_PKCS8_PREFIX = Uint8Array.of(0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20);

/** Parses a Go sumdb/note signer key `PRIVATE+KEY+<name>+<hex key ID>+<base64(0x01 ‖ seed)>` (Ed25519). */
export function parseNoteSignerKey(skey: string): NoteSigner {
  // Four '+' separators; the base64 key after the last may hold '+' itself.
  const head = skey.split('+', 4);
  const parts = [...head, skey.slice(head.join('+').length + 1)];
  const [p, k, name, idHex, b64] = parts;
  if (head.length !== 4 || p !== 'PRIVATE' || k !== 'KEY' || name === undefined || idHex === undefined || b64 === undefined) {
    throw keyInvalid('signer key is not PRIVATE+KEY+<name>+<key ID>+<key>');
  }
  checkKeyName(name, 'NOTE_KEY_INVALID');
  const typed = decodeBase64Strict(b64, 'NOTE_KEY_INVALID', 'signer key', 64);
  if (typed.length !== 33 || typed[0] !== NOTE_SIGNATURE_TYPES.ed25519) throw keyInvalid('signer key is not an Ed25519 seed');
  const der = new Uint8Array(ED25519_PKCS8_PREFIX.length + 32);
  der.set(ED25519_PKCS8_PREFIX, 0);
  der.set(typed.subarray(1), ED25519_PKCS8_PREFIX.length);
  const signer = noteSignerFromKey(name, createPrivateKey({ key: Buffer.from(der), format: 'der', type: 'pkcs8' }));
  if (hex8(signer.keyId) !== idHex) throw keyInvalid(`signer key ID ${idHex} does not match the key`);
  return signer;
}
