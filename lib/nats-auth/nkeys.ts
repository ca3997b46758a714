/**
 * NATS nkeys for users, with node:crypto only: an Ed25519 key pair whose seed and public key
 * are written as NATS encodes them (nkeys.js `Codec`):
 *   public  base32( 0xA0 ('U') ‖ 32-byte Ed25519 public key ‖ crc16 LE )        → "U…", 56 chars
 *   seed    base32( 0x90|role>>5, (role&31)<<3 ‖ 32-byte seed ‖ crc16 LE )     → "SU…", 58 chars
 * with base32 the RFC 4648 alphabet without padding and crc16 the XMODEM CRC (poly 0x1021,
 * init 0). nats.js signs the server's nonce from the seed text (nkeyAuthenticator), the
 * server checks it against the public key in its config.
 */
import { createPrivateKey, createPublicKey, randomBytes } from 'node:crypto';
import { BulwarkError } from '../index.js';

/** nkeys prefix byte of a seed (18 << 3). */
const PREFIX_SEED = 18 << 3;
/** nkeys prefix byte of a user (20 << 3). */
const PREFIX_USER = 20 << 3;
const RAW_KEY_BYTES = 32;
const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
/** PKCS#8 DER header of an Ed25519 private key (RFC 8410): the 32-byte seed follows. */
const ED25519_PKCS8_PREFIX = Uint8Array.from([0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20]);

/** A user nkey: the public key goes into the server config, the seed stays with its owner (secret). */
export interface NkeyUser {
  readonly publicKey: string;
  /** The seed text ("SU…"): a secret; nats.js takes it as bytes for nkeyAuthenticator. */
  readonly seed: string;
}

/** CRC-16/XMODEM as nkeys computes its checksum. */
export function crc16Xmodem(data: Uint8Array): number {
  let crc = 0;
  for (const byte of data) {
    crc ^= byte << 8;
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc;
}

function base32Encode(data: Uint8Array): string {
  let out = '';
  let value = 0;
  let bits = 0;
  for (const byte of data) {
    value = ((value << 8) | byte) & 0xffff;
    bits += 8;
    while (bits >= 5) {
      out += BASE32.charAt((value >>> (bits - 5)) & 31);
      bits -= 5;
    }
  }
  if (bits > 0) out += BASE32.charAt((value << (5 - bits)) & 31);
  return out;
}

function base32Decode(text: string): Uint8Array | null {
  const out = new Uint8Array(Math.floor((text.length * 5) / 8));
  let value = 0;
  let bits = 0;
  let j = 0;
  for (const ch of text) {
    const index = BASE32.indexOf(ch);
    if (index < 0) return null;
    value = ((value << 5) | index) & 0xffff;
    bits += 5;
    if (bits >= 8) {
      out[j++] = (value >>> (bits - 8)) & 0xff;
      bits -= 8;
    }
  }
  return out;
}

function withChecksum(payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(payload.length + 2);
  out.set(payload);
  const crc = crc16Xmodem(payload);
  out[payload.length] = crc & 0xff;
  out[payload.length + 1] = crc >>> 8;
  return out;
}

/** Decodes base32 and checks the trailing crc16; null when either fails. */
function decodeChecked(text: string, payloadBytes: number): Uint8Array | null {
  const raw = base32Decode(text);
  if (raw === null || raw.length !== payloadBytes + 2) return null;
  const payload = raw.subarray(0, payloadBytes);
  const crc = (raw[payloadBytes] ?? 0) | ((raw[payloadBytes + 1] ?? 0) << 8);
  return crc16Xmodem(payload) === crc ? payload : null;
}

function credentialInvalid(message: string): BulwarkError {
  return new BulwarkError('NATS_AUTH_CREDENTIAL_INVALID', message);
}

/** The user nkey of a 32-byte Ed25519 seed (deterministic; the seed is a secret). */
export function nkeyUserFromRawSeed(rawSeed: Uint8Array): NkeyUser {
  if (rawSeed.length !== RAW_KEY_BYTES) throw credentialInvalid(`an Ed25519 seed is ${RAW_KEY_BYTES} bytes`);
  const der = new Uint8Array(ED25519_PKCS8_PREFIX.length + RAW_KEY_BYTES);
  der.set(ED25519_PKCS8_PREFIX);
  der.set(rawSeed, ED25519_PKCS8_PREFIX.length);
  const jwk = createPublicKey(createPrivateKey({ key: Buffer.from(der), format: 'der', type: 'pkcs8' })).export({ format: 'jwk' });
  const x = jwk.x;
  if (typeof x !== 'string') throw new BulwarkError('INTERNAL', 'node:crypto gave an Ed25519 public key without x');
  const publicRaw = Buffer.from(x, 'base64url');
  if (publicRaw.length !== RAW_KEY_BYTES) throw new BulwarkError('INTERNAL', 'node:crypto gave an Ed25519 public key of the wrong size');

  const pub = new Uint8Array(1 + RAW_KEY_BYTES);
  pub[0] = PREFIX_USER;
  pub.set(publicRaw, 1);
  const seed = new Uint8Array(2 + RAW_KEY_BYTES);
  seed[0] = PREFIX_SEED | (PREFIX_USER >> 5);
  seed[1] = (PREFIX_USER & 31) << 3;
  seed.set(rawSeed, 2);
  return { publicKey: base32Encode(withChecksum(pub)), seed: base32Encode(withChecksum(seed)) };
}

/** A new user nkey from 32 random bytes. */
export function createNkeyUser(): NkeyUser {
  return nkeyUserFromRawSeed(new Uint8Array(randomBytes(RAW_KEY_BYTES)));
}

/** Reads a user seed ("SU…", surrounding whitespace ignored; untrusted text): throws NATS_AUTH_CREDENTIAL_INVALID unless it decodes with a good checksum. */
export function parseNkeyUserSeed(text: string): NkeyUser {
  const trimmed = text.trim();
  if (trimmed.length !== 58 || !trimmed.startsWith('SU')) throw credentialInvalid('not an nkey user seed (SU followed by 56 base32 characters)');
  const payload = decodeChecked(trimmed, 2 + RAW_KEY_BYTES);
  if (payload === null) throw credentialInvalid('the nkey seed is not base32 or its checksum does not match');
  const b1 = payload[0] ?? 0;
  const b2 = payload[1] ?? 0;
  const kind = b1 & 0xf8;
  const role = ((b1 & 0x07) << 5) | ((b2 & 0xf8) >> 3);
  if (kind !== PREFIX_SEED || role !== PREFIX_USER) throw credentialInvalid('the nkey seed is not a user seed');
  return nkeyUserFromRawSeed(payload.subarray(2));
}

/** Checks an nkey user public key ("U…", 56 characters) including its checksum; throws NATS_AUTH_CREDENTIAL_INVALID. */
export function checkNkeyUserPublicKey(value: string): string {
  const payload = /^U[A-Z2-7]{55}$/.test(value) ? decodeChecked(value, 1 + RAW_KEY_BYTES) : null;
  if (payload === null || payload[0] !== PREFIX_USER) {
    throw new BulwarkError('NATS_AUTH_CREDENTIAL_INVALID', 'not an nkey user public key (U followed by 55 base32 characters with a valid checksum)', {
      length: value.length,
    });
  }
  return value;
}
