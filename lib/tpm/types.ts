/**
 * TPM 2.0 constants and decoded structure types (TCG TPM 2.0 Library, Part 2:
 * Structures). Constants are spelled as in the spec; values Bulwark does not know stay
 * plain numbers.
 */

/** TPM_ALG_ID (Part 2, 6.3). */
export const TPM_ALG = {
  RSA: 0x0001,
  SHA1: 0x0004,
  HMAC: 0x0005,
  AES: 0x0006,
  KEYEDHASH: 0x0008,
  SHA256: 0x000b,
  SHA384: 0x000c,
  SHA512: 0x000d,
  NULL: 0x0010,
  RSASSA: 0x0014,
  RSAES: 0x0015,
  RSAPSS: 0x0016,
  OAEP: 0x0017,
  ECDSA: 0x0018,
  ECDH: 0x0019,
  KDF1_SP800_56A: 0x0020,
  KDF1_SP800_108: 0x0022,
  ECC: 0x0023,
  SYMCIPHER: 0x0025,
  CFB: 0x0043,
} as const;

/** TPM_ECC_CURVE (Part 2, 6.4). */
export const TPM_ECC_CURVE = {
  NIST_P256: 0x0003,
  NIST_P384: 0x0004,
  NIST_P521: 0x0005,
} as const;

/** TPMA_OBJECT bits (Part 2, 8.3). */
export const TPMA_OBJECT = {
  fixedTPM: 1 << 1,
  stClear: 1 << 2,
  fixedParent: 1 << 4,
  sensitiveDataOrigin: 1 << 5,
  userWithAuth: 1 << 6,
  adminWithPolicy: 1 << 7,
  noDA: 1 << 10,
  encryptedDuplication: 1 << 11,
  restricted: 1 << 16,
  decrypt: 1 << 17,
  sign: 1 << 18,
} as const;

/** TPM_GENERATED_VALUE (Part 2, 6.2): the magic of every TPMS_ATTEST the TPM produces. */
export const TPM_GENERATED_VALUE = 0xff544347;

/** TPM_ST attestation types (Part 2, 6.9). */
export const TPM_ST = {
  ATTEST_CERTIFY: 0x8017,
  ATTEST_QUOTE: 0x8018,
  ATTEST_CREATION: 0x801a,
} as const;

/**
 * The hash algorithms Bulwark accepts, once: PCR banks and quote hashes (TPM_ALG_ID), IMA
 * template hashes and policy banks (by name; node:crypto and the kernel's hash_algo_name[]
 * spell them alike), with digest sizes.
 */
export const HASH_ALG_TABLE = [
  { alg: TPM_ALG.SHA1, name: 'sha1', size: 20 },
  { alg: TPM_ALG.SHA256, name: 'sha256', size: 32 },
  { alg: TPM_ALG.SHA384, name: 'sha384', size: 48 },
  { alg: TPM_ALG.SHA512, name: 'sha512', size: 64 },
] as const;

/** A hash algorithm of HASH_ALG_TABLE by name ("sha256"). */
export type HashAlgName = (typeof HASH_ALG_TABLE)[number]['name'];

/** One row of HASH_ALG_TABLE. */
export interface HashAlgInfo {
  readonly alg: number;
  readonly name: HashAlgName;
  readonly size: number;
}

/** The names of HASH_ALG_TABLE, in its order (for schemas and messages). */
export const HASH_ALG_NAMES: readonly HashAlgName[] = HASH_ALG_TABLE.map((h) => h.name);

/** HASH_ALG_TABLE by TPM_ALG_ID. */
export const HASH_ALGS: ReadonlyMap<number, HashAlgInfo> = new Map(HASH_ALG_TABLE.map((h) => [h.alg, h]));

/** HASH_ALG_TABLE by name. */
export const HASH_ALGS_BY_NAME: ReadonlyMap<string, HashAlgInfo> = new Map(HASH_ALG_TABLE.map((h) => [h.name, h]));

/** Whether a name is one of HASH_ALG_TABLE. */
export function isHashAlgName(name: string): name is HashAlgName {
  return HASH_ALGS_BY_NAME.has(name);
}

/** TPMT_SYM_DEF_OBJECT (Part 2, 11.1.7); `null` for TPM_ALG_NULL. */
export interface SymDefObject {
  readonly algorithm: number;
  readonly keyBits: number;
  readonly mode: number;
}

/** A scheme with its hash (TPMT_RSA_SCHEME, TPMT_ECC_SCHEME, TPMT_KDF_SCHEME); `null` for TPM_ALG_NULL. */
export interface SchemeWithHash {
  readonly scheme: number;
  readonly hashAlg: number;
}

interface TpmtPublicBase {
  readonly nameAlg: number;
  readonly objectAttributes: number;
  readonly authPolicy: Uint8Array;
  readonly symmetric: SymDefObject | null;
  readonly scheme: SchemeWithHash | null;
  /** The exact TPMT_PUBLIC bytes this was decoded from (the Name is computed over them). */
  readonly encoded: Uint8Array;
}

/** TPMT_PUBLIC of an RSA key (Part 2, 12.2.4 with TPMS_RSA_PARMS). Decoded, not yet judged. */
export interface RsaPublic extends TpmtPublicBase {
  readonly type: 'rsa';
  readonly keyBits: number;
  /** The public exponent; the TPM encodes 0 for the default 65537, decoded here as 65537. */
  readonly exponent: number;
  readonly modulus: Uint8Array;
}

/** TPMT_PUBLIC of an ECC key (Part 2, 12.2.4 with TPMS_ECC_PARMS). Decoded, not yet judged. */
export interface EccPublic extends TpmtPublicBase {
  readonly type: 'ecc';
  readonly curveId: number;
  readonly kdf: SchemeWithHash | null;
  readonly x: Uint8Array;
  readonly y: Uint8Array;
}

export type TpmtPublic = RsaPublic | EccPublic;

/** TPMS_PCR_SELECTION (Part 2, 10.6.2), with the selected indices listed in ascending order. */
export interface PcrSelection {
  readonly hashAlg: number;
  readonly pcrs: readonly number[];
}

/** TPMS_CLOCK_INFO (Part 2, 10.11.1). */
export interface ClockInfo {
  readonly clock: bigint;
  readonly resetCount: number;
  readonly restartCount: number;
  readonly safe: boolean;
}

/** TPMS_ATTEST carrying a TPMS_QUOTE_INFO (Part 2, 10.12.12). Decoded, not yet verified. */
export interface QuoteAttest {
  readonly magic: number;
  readonly type: number;
  readonly qualifiedSigner: Uint8Array;
  readonly extraData: Uint8Array;
  readonly clockInfo: ClockInfo;
  readonly firmwareVersion: bigint;
  readonly pcrSelect: readonly PcrSelection[];
  readonly pcrDigest: Uint8Array;
  /** The exact bytes that were signed. */
  readonly encoded: Uint8Array;
}

/** TPMT_SIGNATURE (Part 2, 11.3.4) for the schemes Bulwark verifies. */
export type TpmtSignature =
  | { readonly sigAlg: typeof TPM_ALG.RSASSA | typeof TPM_ALG.RSAPSS; readonly hashAlg: number; readonly sig: Uint8Array }
  | { readonly sigAlg: typeof TPM_ALG.ECDSA; readonly hashAlg: number; readonly r: Uint8Array; readonly s: Uint8Array };

/** PCR values of one or more banks: bank hash algorithm → PCR index → value. */
export type PcrBanks = ReadonlyMap<number, ReadonlyMap<number, Uint8Array>>;

declare const quotedBrand: unique symbol;

/**
 * PCR values proven by a verified quote: signed by the AK, fresh for the nonce, and
 * hashing to the quoted digest. Only `verifyQuote` makes one.
 */
export type QuotedPcrs = PcrBanks & { readonly [quotedBrand]: true };
