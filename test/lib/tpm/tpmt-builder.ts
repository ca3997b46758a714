/**
 * Test builders for TPMT_PUBLIC (TPM 2.0 Part 2, 12.2.4), written field by field with
 * ByteWriter so edge cases can be made on purpose. Not a library serializer: it writes
 * whatever it is given, valid or not.
 */
import { ByteWriter } from '../../../lib/bytes.js';
import { TPM_ALG, TPM_ECC_CURVE, TPMA_OBJECT, type SchemeWithHash, type SymDefObject } from '../../../lib/tpm/types.js';

interface CommonFields {
  readonly nameAlg: number;
  readonly objectAttributes: number;
  readonly authPolicy: Uint8Array;
  readonly symmetric: SymDefObject | null;
  readonly scheme: SchemeWithHash | null;
}

export interface RsaFields extends CommonFields {
  readonly keyBits: number;
  /** Raw u32 as on the wire: 0 means 65537. */
  readonly exponent: number;
  readonly modulus: Uint8Array;
}

export interface EccFields extends CommonFields {
  readonly curveId: number;
  readonly kdf: SchemeWithHash | null;
  readonly x: Uint8Array;
  readonly y: Uint8Array;
}

function writeCommon(w: ByteWriter, type: number, f: CommonFields): void {
  w.u16be(type); // type: TPMI_ALG_PUBLIC
  w.u16be(f.nameAlg); // nameAlg: TPMI_ALG_HASH
  w.u32be(f.objectAttributes); // objectAttributes: TPMA_OBJECT
  w.tpm2b(f.authPolicy); // authPolicy: TPM2B_DIGEST
  // parameters.symmetric: TPMT_SYM_DEF_OBJECT (algorithm, then keyBits and mode unless NULL)
  if (f.symmetric === null) {
    w.u16be(TPM_ALG.NULL);
  } else {
    w.u16be(f.symmetric.algorithm).u16be(f.symmetric.keyBits).u16be(f.symmetric.mode);
  }
}

function writeScheme(w: ByteWriter, s: SchemeWithHash | null): void {
  // TPMT_*_SCHEME: scheme, then TPMS_SCHEME_HASH.hashAlg unless NULL (RSAES has none)
  if (s === null) w.u16be(TPM_ALG.NULL);
  else if (s.scheme === TPM_ALG.RSAES) w.u16be(s.scheme);
  else w.u16be(s.scheme).u16be(s.hashAlg);
}

/** TPMT_PUBLIC of an RSA key. */
export function writeRsaPublic(f: RsaFields): Uint8Array {
  const w = new ByteWriter();
  writeCommon(w, TPM_ALG.RSA, f);
  writeScheme(w, f.scheme); // parameters.scheme: TPMT_RSA_SCHEME
  w.u16be(f.keyBits); // parameters.keyBits: TPMI_RSA_KEY_BITS
  w.u32be(f.exponent); // parameters.exponent: UINT32
  w.tpm2b(f.modulus); // unique.rsa: TPM2B_PUBLIC_KEY_RSA
  return w.finish();
}

/** TPMT_PUBLIC of an ECC key. */
export function writeEccPublic(f: EccFields): Uint8Array {
  const w = new ByteWriter();
  writeCommon(w, TPM_ALG.ECC, f);
  writeScheme(w, f.scheme); // parameters.scheme: TPMT_ECC_SCHEME
  w.u16be(f.curveId); // parameters.curveID: TPMI_ECC_CURVE
  writeScheme(w, f.kdf); // parameters.kdf: TPMT_KDF_SCHEME
  w.tpm2b(f.x); // unique.ecc.x: TPM2B_ECC_PARAMETER
  w.tpm2b(f.y); // unique.ecc.y: TPM2B_ECC_PARAMETER
  return w.finish();
}

/** TPM2B_PUBLIC: a u16 size, then the TPMT_PUBLIC. */
export function wrapTpm2b(tpmt: Uint8Array): Uint8Array {
  return new ByteWriter().tpm2b(tpmt).finish();
}

/** objectAttributes of the TCG default EK templates: fixedTPM|fixedParent|sensitiveDataOrigin|adminWithPolicy|restricted|decrypt. */
export const EK_ATTRIBUTES =
  TPMA_OBJECT.fixedTPM | TPMA_OBJECT.fixedParent | TPMA_OBJECT.sensitiveDataOrigin | TPMA_OBJECT.adminWithPolicy | TPMA_OBJECT.restricted | TPMA_OBJECT.decrypt;

/** objectAttributes tpm2_createak gives an AK: fixedTPM|fixedParent|sensitiveDataOrigin|userWithAuth|restricted|sign. */
export const AK_ATTRIBUTES =
  TPMA_OBJECT.fixedTPM | TPMA_OBJECT.fixedParent | TPMA_OBJECT.sensitiveDataOrigin | TPMA_OBJECT.userWithAuth | TPMA_OBJECT.restricted | TPMA_OBJECT.sign;

/** An EK-like RSA-2048 public area (TCG template L-1 parameters) around `modulus`. */
export function rsaEkLike(modulus: Uint8Array): Uint8Array {
  return writeRsaPublic({
    nameAlg: TPM_ALG.SHA256,
    objectAttributes: EK_ATTRIBUTES,
    authPolicy: new Uint8Array(32),
    symmetric: { algorithm: TPM_ALG.AES, keyBits: 128, mode: TPM_ALG.CFB },
    scheme: null,
    keyBits: modulus.length * 8,
    exponent: 0,
    modulus,
  });
}

/** An EK-like ECC P-384 public area with the parameters swtpm gives its P-384 EK (sha384, AES-256-CFB). */
export function eccP384EkLike(x: Uint8Array, y: Uint8Array): Uint8Array {
  return writeEccPublic({
    nameAlg: TPM_ALG.SHA384,
    objectAttributes: EK_ATTRIBUTES | TPMA_OBJECT.userWithAuth,
    authPolicy: new Uint8Array(48),
    symmetric: { algorithm: TPM_ALG.AES, keyBits: 256, mode: TPM_ALG.CFB },
    scheme: null,
    curveId: TPM_ECC_CURVE.NIST_P384,
    kdf: null,
    x,
    y,
  });
}
