/**
 * TPM2_ActivateCredential played in software with an EK's private key, for tests that
 * need the holder's side of an enrollment without a TPM. Test code only.
 */
import { constants, createDecipheriv, createECDH, createHmac, privateDecrypt, type KeyObject } from 'node:crypto';
import { ByteReader, bytesEqual, concatBytes } from '../../../lib/bytes.js';
import { kdfa, kdfe } from '../../../lib/tpm/credential.js';
import type { CredentialBlob } from '../../../lib/tpm/credential-file.js';
import { HASH_ALGS, type TpmtPublic } from '../../../lib/tpm/types.js';

function hashName(alg: number): string {
  const h = HASH_ALGS.get(alg);
  if (h === undefined) throw new Error(`hash 0x${alg.toString(16)}`);
  return h.name;
}

/** The seed a credential's encryptedSecret carries, recovered with the EK's private key (Part 1, Annex B.10.3 / C.6.4). */
export function recoverSeed(ek: TpmtPublic, ekPrivate: KeyObject, encryptedSecret: Uint8Array): Uint8Array {
  const hash = hashName(ek.nameAlg);
  if (ek.type === 'rsa') {
    return new Uint8Array(privateDecrypt({ key: ekPrivate, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: hash, oaepLabel: Buffer.from('IDENTITY\0', 'latin1') }, encryptedSecret));
  }
  const r = new ByteReader(encryptedSecret);
  const ex = r.tpm2b('x');
  const ey = r.tpm2b('y');
  r.expectEnd('TPMS_ECC_POINT');
  const curve = ek.curveId === 0x0004 ? 'secp384r1' : ek.curveId === 0x0003 ? 'prime256v1' : 'secp521r1';
  const ecdh = createECDH(curve);
  ecdh.setPrivateKey(Buffer.from(ekPrivate.export({ format: 'jwk' }).d ?? '', 'base64url'));
  const z = new Uint8Array(ecdh.computeSecret(concatBytes(Uint8Array.of(4), ex, ey)));
  return kdfe(ek.nameAlg, z, 'IDENTITY', ex, ek.x, (HASH_ALGS.get(ek.nameAlg)?.size ?? 0) * 8);
}

/**
 * TPM2_ActivateCredential in software (Part 1, 24.4–24.5), for tests: checks the outer
 * HMAC over encIdentity || name, then decrypts the TPM2B_DIGEST. Returns null when the
 * integrity check fails, as the TPM answers TPM_RC_INTEGRITY.
 */
export function softwareActivate(ek: TpmtPublic, ekPrivate: KeyObject, akName: Uint8Array, blob: CredentialBlob): Uint8Array | null {
  const seed = recoverSeed(ek, ekPrivate, blob.encryptedSecret);
  const hash = hashName(ek.nameAlg);
  const size = HASH_ALGS.get(ek.nameAlg)?.size ?? 0;
  const r = new ByteReader(blob.idObject);
  const integrity = r.tpm2b('integrityHMAC');
  const encIdentity = r.bytesN(r.remaining, 'encIdentity');
  const hmacKey = kdfa(ek.nameAlg, seed, 'INTEGRITY', new Uint8Array(0), new Uint8Array(0), size * 8);
  const expected = new Uint8Array(createHmac(hash, hmacKey).update(encIdentity).update(akName).digest());
  if (!bytesEqual(expected, integrity)) return null;
  const keyBits = ek.symmetric?.keyBits ?? 0;
  const symKey = kdfa(ek.nameAlg, seed, 'STORAGE', akName, new Uint8Array(0), keyBits);
  const decipher = createDecipheriv(`aes-${keyBits}-cfb`, symKey, new Uint8Array(16));
  const plain = concatBytes(new Uint8Array(decipher.update(encIdentity)), new Uint8Array(decipher.final()));
  const pr = new ByteReader(plain);
  const secret = pr.tpm2b('credential');
  pr.expectEnd('TPM2B_DIGEST');
  return secret;
}
