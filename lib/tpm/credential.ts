/**
 * TPM2_MakeCredential in pure TypeScript (TCG TPM 2.0 Library Part 1, 24 "Credential
 * Protection"; Part 3, 12.6): the controller wraps a secret so that only the TPM that
 * holds the EK, and has the AK of the given Name loaded, can recover it with
 * TPM2_ActivateCredential. Secret sharing with the EK follows Part 1, Annex B.10 (RSA)
 * and Annex C.6 (ECC); the key derivation functions are Part 1, 11.4.10.
 */
import { createCipheriv, createECDH, createHash, createHmac, constants, publicEncrypt, randomBytes } from 'node:crypto';
import { ByteWriter, concatBytes } from '../bytes.js';
import { BulwarkError } from '../errors.js';
import type { CredentialBlob } from './credential-file.js';
import { tpmtPublicToKeyObject } from './public.js';
import { HASH_ALGS, TPM_ALG, TPM_ECC_CURVE, TPMA_OBJECT, type EccPublic, type SymDefObject, type TpmtPublic } from './types.js';

/** Largest KDF output Bulwark asks for (keys and HMAC keys are at most 512 bits). */
const MAX_KDF_BITS = 1 << 16;
/** Largest KDF input (seed or Z) accepted: a SHA-512 seed or a P-521 shared x-coordinate. */
const MAX_KDF_SECRET_BYTES = 1024;

/** Part 1, 24.4: label of the secret-sharing step (OAEP label, KDFe "Use"), with its terminating NUL. */
const IDENTITY_LABEL = 'IDENTITY\0';
/** Part 1, 24.4: KDFa label deriving the symmetric key that protects the credential. */
const STORAGE_LABEL = 'STORAGE';
/** Part 1, 24.5: KDFa label deriving the HMAC key of the outer integrity check. */
const INTEGRITY_LABEL = 'INTEGRITY';

/** node:crypto ECDH curve names for TPM_ECC_CURVE values, with coordinate sizes. */
const ECDH_CURVES: ReadonlyMap<number, { readonly name: string; readonly size: number; readonly topByteMask: number }> = new Map([
  [TPM_ECC_CURVE.NIST_P256, { name: 'prime256v1', size: 32, topByteMask: 0xff }],
  [TPM_ECC_CURVE.NIST_P384, { name: 'secp384r1', size: 48, topByteMask: 0xff }],
  // P-521's order has 521 bits: only the lowest bit of the first of 66 bytes can be set.
  [TPM_ECC_CURVE.NIST_P521, { name: 'secp521r1', size: 66, topByteMask: 0x01 }],
]);

/** How often a random ephemeral scalar outside [1, n-1] is drawn again before giving up. */
const MAX_EPHEMERAL_ATTEMPTS = 64;

function hashOf(alg: number, what: string): { readonly name: string; readonly size: number } {
  const hash = HASH_ALGS.get(alg);
  if (hash === undefined) {
    throw new BulwarkError('TPM_ALG_UNSUPPORTED', `${what} 0x${alg.toString(16)} has no hash Bulwark supports`, { alg });
  }
  return hash;
}

function u32be(v: number): Uint8Array {
  return new ByteWriter(4).u32be(v).finish();
}

function checkKdfBits(bits: number): void {
  if (!Number.isSafeInteger(bits) || bits <= 0 || bits > MAX_KDF_BITS) {
    throw new BulwarkError('USAGE', `KDF output of ${bits} bits is not between 1 and ${MAX_KDF_BITS}`, { bits });
  }
}

/**
 * A label as the KDFs hash it: its octets and one terminating zero octet. As in the
 * reference implementation (CryptKDFa/CryptKDFe), no second zero is added to a label
 * that already ends in one.
 */
function labelBytes(label: string): Uint8Array {
  const text = Buffer.from(label, 'utf8');
  return text.length > 0 && text[text.length - 1] === 0 ? new Uint8Array(text) : concatBytes(text, Uint8Array.of(0));
}

/** Keeps the leftmost `bits` bits: whole octets, and the low bits of the first octet (Part 1, 11.4.10.2). */
function truncateBits(stream: Uint8Array, bits: number): Uint8Array {
  const out = stream.slice(0, Math.ceil(bits / 8));
  const partial = bits % 8;
  if (partial !== 0 && out.length > 0) out[0] = (out[0] ?? 0) & ((1 << partial) - 1);
  return out;
}

/**
 * KDFa (Part 1, 11.4.10.2), SP800-108 counter mode with HMAC:
 * K(i) = HMAC_hashAlg(key, [i]32 || Label || 0x00 || contextU || contextV || [bits]32).
 * Pure function over caller-supplied values; no trust decision.
 */
export function kdfa(hashAlg: number, key: Uint8Array, label: string, contextU: Uint8Array, contextV: Uint8Array, bits: number): Uint8Array {
  const hash = hashOf(hashAlg, 'KDFa hash');
  checkKdfBits(bits);
  if (key.length > MAX_KDF_SECRET_BYTES) throw new BulwarkError('USAGE', `KDFa key of ${key.length} bytes is larger than ${MAX_KDF_SECRET_BYTES}`);
  const fixed = concatBytes(labelBytes(label), contextU, contextV, u32be(bits));
  const blocks: Uint8Array[] = [];
  for (let i = 1, have = 0; have * 8 < bits; i++) {
    const block = createHmac(hash.name, key).update(u32be(i)).update(fixed).digest();
    blocks.push(new Uint8Array(block));
    have += block.length;
  }
  return truncateBits(concatBytes(...blocks), bits);
}

/**
 * KDFe (Part 1, 11.4.10.3), the SP800-56A concatenation KDF:
 * K(i) = H_hashAlg([i]32 || Z || Use || 0x00 || partyUInfo || partyVInfo).
 * Pure function over caller-supplied values; no trust decision.
 */
export function kdfe(hashAlg: number, z: Uint8Array, label: string, partyUInfo: Uint8Array, partyVInfo: Uint8Array, bits: number): Uint8Array {
  const hash = hashOf(hashAlg, 'KDFe hash');
  checkKdfBits(bits);
  if (z.length > MAX_KDF_SECRET_BYTES) throw new BulwarkError('USAGE', `KDFe Z of ${z.length} bytes is larger than ${MAX_KDF_SECRET_BYTES}`);
  const tail = concatBytes(labelBytes(label), partyUInfo, partyVInfo);
  const blocks: Uint8Array[] = [];
  for (let i = 1, have = 0; have * 8 < bits; i++) {
    const block = createHash(hash.name).update(u32be(i)).update(z).update(tail).digest();
    blocks.push(new Uint8Array(block));
    have += block.length;
  }
  return truncateBits(concatBytes(...blocks), bits);
}

/** The EK's symmetric definition, which must be AES in CFB mode for credential protection (Part 1, 24.4). */
function aesCfbOf(symmetric: SymDefObject | null): { readonly cipher: string; readonly keyBits: number } {
  if (symmetric === null || symmetric.algorithm !== TPM_ALG.AES || symmetric.mode !== TPM_ALG.CFB) {
    throw new BulwarkError('TPM_ALG_UNSUPPORTED', 'the EK symmetric algorithm is not AES in CFB mode', {
      algorithm: symmetric?.algorithm ?? TPM_ALG.NULL,
      mode: symmetric?.mode ?? TPM_ALG.NULL,
    });
  }
  if (symmetric.keyBits !== 128 && symmetric.keyBits !== 192 && symmetric.keyBits !== 256) {
    throw new BulwarkError('TPM_ALG_UNSUPPORTED', `AES key of ${symmetric.keyBits} bits is not 128, 192 or 256`, { keyBits: symmetric.keyBits });
  }
  return { cipher: `aes-${symmetric.keyBits}-cfb`, keyBits: symmetric.keyBits };
}

/** An object Name (Part 1, 16): a known nameAlg (u16) followed by a digest of its size. */
function checkName(name: Uint8Array): void {
  const alg = name.length >= 2 ? ((name[0] ?? 0) << 8) | (name[1] ?? 0) : -1;
  const hash = HASH_ALGS.get(alg);
  if (hash === undefined || name.length !== 2 + hash.size) {
    throw new BulwarkError('USAGE', `an object Name of ${name.length} bytes is not a nameAlg followed by its digest`, { length: name.length });
  }
}

function checkSecret(secret: Uint8Array, max: number): void {
  if (secret.length === 0 || secret.length > max) {
    // Part 3, 12.6: TPM_RC_SIZE when the credential is larger than a nameAlg digest.
    throw new BulwarkError('USAGE', `a credential secret of ${secret.length} bytes is not between 1 and ${max} (the EK nameAlg digest size)`, {
      length: secret.length,
      max,
    });
  }
}

/**
 * Protects `secret` for the object named `objectName` with `seed` (Part 1, 24.4 and
 * 24.5), the second half of TPM2_MakeCredential:
 * symKey = KDFa(nameAlg, seed, "STORAGE", name, "", keyBits);
 * encIdentity = AES-CFB(symKey, IV = 0, TPM2B_DIGEST(secret));
 * HMACkey = KDFa(nameAlg, seed, "INTEGRITY", "", "", digest bits);
 * returns TPM2B_DIGEST(HMAC(HMACkey, encIdentity || name)) || encIdentity.
 * `nameAlg` and `symmetric` are the EK's. Pure; the caller chooses what is trusted.
 */
export function protectCredential(nameAlg: number, symmetric: SymDefObject | null, seed: Uint8Array, objectName: Uint8Array, secret: Uint8Array): Uint8Array {
  const hash = hashOf(nameAlg, 'EK nameAlg');
  const aes = aesCfbOf(symmetric);
  checkName(objectName);
  checkSecret(secret, hash.size);
  const symKey = kdfa(nameAlg, seed, STORAGE_LABEL, objectName, new Uint8Array(0), aes.keyBits);
  const cipher = createCipheriv(aes.cipher, symKey, new Uint8Array(16));
  const plain = new ByteWriter(secret.length + 2).tpm2b(secret).finish();
  const encIdentity = concatBytes(new Uint8Array(cipher.update(plain)), new Uint8Array(cipher.final()));
  const hmacKey = kdfa(nameAlg, seed, INTEGRITY_LABEL, new Uint8Array(0), new Uint8Array(0), hash.size * 8);
  const integrity = new Uint8Array(createHmac(hash.name, hmacKey).update(encIdentity).update(objectName).digest());
  return new ByteWriter(2 + integrity.length + encIdentity.length).tpm2b(integrity).bytes(encIdentity).finish();
}

function defaultRandom(n: number): Uint8Array {
  return new Uint8Array(randomBytes(n));
}

/** Part 1, Annex B.10: the seed, encrypted with RSAES-OAEP (hash = EK nameAlg, label "IDENTITY\0"). */
function shareSeedRsa(ek: TpmtPublic, seed: Uint8Array): Uint8Array {
  const key = tpmtPublicToKeyObject(ek);
  const hash = hashOf(ek.nameAlg, 'EK nameAlg');
  try {
    return new Uint8Array(
      publicEncrypt({ key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: hash.name, oaepLabel: Buffer.from(IDENTITY_LABEL, 'latin1') }, seed),
    );
  } catch (err) {
    throw new BulwarkError('KEY_INVALID', `RSA-OAEP encryption to the EK failed: ${err instanceof Error ? err.message : String(err)}`, {}, { cause: err });
  }
}

/**
 * Part 1, Annex C.6: one-pass ECDH with an ephemeral key on the EK's curve.
 * Z = x(d_e · Q_ek); seed = KDFe(nameAlg, Z, "IDENTITY", x_e, x_ek, digest bits);
 * the encrypted secret is the ephemeral public point as a TPMS_ECC_POINT.
 */
function shareSeedEcc(ek: EccPublic, random: (n: number) => Uint8Array): { seed: Uint8Array; encryptedSecret: Uint8Array } {
  const curve = ECDH_CURVES.get(ek.curveId);
  if (curve === undefined) {
    throw new BulwarkError('TPM_ALG_UNSUPPORTED', `EK curve 0x${ek.curveId.toString(16)} is not P-256, P-384 or P-521`, { curveId: ek.curveId });
  }
  // Validates the EK point (on the curve) before it is used.
  tpmtPublicToKeyObject(ek);
  const hash = hashOf(ek.nameAlg, 'EK nameAlg');
  const ecdh = createECDH(curve.name);
  let ready = false;
  for (let attempt = 0; attempt < MAX_EPHEMERAL_ATTEMPTS && !ready; attempt++) {
    const scalar = random(curve.size);
    if (scalar.length !== curve.size) throw new BulwarkError('USAGE', `random(${curve.size}) returned ${scalar.length} bytes`);
    const masked = scalar.slice();
    masked[0] = (masked[0] ?? 0) & curve.topByteMask;
    try {
      // node:crypto refuses a scalar of zero or not below the group order.
      ecdh.setPrivateKey(masked);
      ready = true;
    } catch {
      ready = false;
    }
  }
  if (!ready) throw new BulwarkError('INTERNAL', `no valid ephemeral ${curve.name} key after ${MAX_EPHEMERAL_ATTEMPTS} random draws`);
  const ekPoint = concatBytes(Uint8Array.of(4), padTo(ek.x, curve.size), padTo(ek.y, curve.size));
  let z: Uint8Array;
  try {
    z = new Uint8Array(ecdh.computeSecret(ekPoint));
  } catch (err) {
    throw new BulwarkError('KEY_INVALID', 'ECDH with the EK point failed', {}, { cause: err });
  }
  // Uncompressed point: 0x04 || x || y, each curve.size bytes.
  const ephemeral = new Uint8Array(ecdh.getPublicKey());
  const ex = ephemeral.subarray(1, 1 + curve.size);
  const ey = ephemeral.subarray(1 + curve.size);
  const seed = kdfe(ek.nameAlg, z, IDENTITY_LABEL, ex, ek.x, hash.size * 8);
  const encryptedSecret = new ByteWriter(4 + 2 * curve.size).tpm2b(ex).tpm2b(ey).finish();
  return { seed, encryptedSecret };
}

function padTo(bytes: Uint8Array, size: number): Uint8Array {
  if (bytes.length >= size) return bytes;
  const out = new Uint8Array(size);
  out.set(bytes, size - bytes.length);
  return out;
}

/**
 * TPM2_MakeCredential (Part 3, 12.6; Part 1, 24) without a TPM: wraps `secret` (1 to
 * nameAlg-digest-size bytes) for the AK named `akName` under the EK `ekPublic` (a
 * restricted decryption key with an AES-CFB symmetric definition). Only the TPM holding
 * that EK, with that AK loaded, recovers the secret. `ekPublic` must already be trusted
 * (its certificate verified); `random` supplies the seed (RSA) or the ephemeral ECDH
 * scalar (ECC) and defaults to node:crypto randomBytes; OAEP padding randomness always
 * comes from node:crypto.
 */
export function makeCredential(ekPublic: TpmtPublic, akName: Uint8Array, secret: Uint8Array, random: (n: number) => Uint8Array = defaultRandom): CredentialBlob {
  const hash = hashOf(ekPublic.nameAlg, 'EK nameAlg');
  const required = TPMA_OBJECT.restricted | TPMA_OBJECT.decrypt;
  if ((ekPublic.objectAttributes & required) !== required) {
    // Part 3, 12.6: TPM2_MakeCredential wants a storage key (restricted, decrypt) as handle.
    throw new BulwarkError('KEY_INVALID', 'the EK is not a restricted decryption key', { objectAttributes: ekPublic.objectAttributes });
  }
  // Checked before any randomness is spent, so a bad request fails the same way each time.
  aesCfbOf(ekPublic.symmetric);
  checkName(akName);
  checkSecret(secret, hash.size);
  let seed: Uint8Array;
  let encryptedSecret: Uint8Array;
  if (ekPublic.type === 'rsa') {
    seed = random(hash.size);
    if (seed.length !== hash.size) throw new BulwarkError('USAGE', `random(${hash.size}) returned ${seed.length} bytes`);
    encryptedSecret = shareSeedRsa(ekPublic, seed);
  } else {
    ({ seed, encryptedSecret } = shareSeedEcc(ekPublic, random));
  }
  const idObject = protectCredential(ekPublic.nameAlg, ekPublic.symmetric, seed, akName, secret);
  return { idObject, encryptedSecret };
}
