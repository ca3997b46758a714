/**
 * Linux IMA measurement lists: constants spelled as in the kernel and the decoded types.
 *
 * Sources (Linux security/integrity/ima/): ima_template.c (builtin_templates[], the field
 * lists), ima_template_lib.c (how each field's data is made and shown), ima_fs.c
 * (ima_measurements_show for binary_runtime_measurements, ima_ascii_measurements_show for
 * ascii_runtime_measurements), ima_crypto.c (ima_calc_field_array_hash_tfm: the template
 * hash), ima_queue.c (ima_add_template_entry / ima_init_digests: what is extended into the
 * PCR), and crypto/hash_info.c (hash_algo_name[]).
 */
import type { HashAlgName } from '../tpm/index.js';

/**
 * The builtin template descriptors Bulwark decodes, with their field lists
 * (ima_template.c builtin_templates[]). Custom templates (ima_template_fmt=) and the
 * evm-sig descriptor are refused: fail closed (IMA_TEMPLATE_UNSUPPORTED).
 */
export const IMA_TEMPLATE_FIELDS = {
  ima: ['d', 'n'],
  'ima-ng': ['d-ng', 'n-ng'],
  'ima-sig': ['d-ng', 'n-ng', 'sig'],
  'ima-ngv2': ['d-ngv2', 'n-ng'],
  'ima-sigv2': ['d-ngv2', 'n-ng', 'sig'],
  'ima-buf': ['d-ng', 'n-ng', 'buf'],
  'ima-modsig': ['d-ng', 'n-ng', 'sig', 'd-modsig', 'modsig'],
} as const;

/**
 * The digest types of a d-ngv2 field (ima_template_lib.c digest_type_name[]): "ima", the
 * hash of the file's content, or "verity", its fs-verity digest (the hash of its
 * fsverity_descriptor, Documentation/filesystems/fsverity.rst), for files an
 * appraise rule with digest_type=verity covers.
 */
export const IMA_DIGEST_TYPES = ['ima', 'verity'] as const;
export type ImaDigestType = (typeof IMA_DIGEST_TYPES)[number];

export type ImaTemplateName = keyof typeof IMA_TEMPLATE_FIELDS;

export function isImaTemplateName(name: string): name is ImaTemplateName {
  return Object.prototype.hasOwnProperty.call(IMA_TEMPLATE_FIELDS, name);
}

/**
 * hash_algo_name[] of crypto/hash_info.c, in HASH_ALGO_* order (the index is the
 * `hash_algo` octet of an IMA signature_v2_hdr), with digest sizes (hash_digest_size[]).
 * A d-ng field names one of these before its ':'.
 */
export const IMA_HASH_ALGOS = [
  { name: 'md4', size: 16 },
  { name: 'md5', size: 16 },
  { name: 'sha1', size: 20 },
  { name: 'rmd160', size: 20 },
  { name: 'sha256', size: 32 },
  { name: 'sha384', size: 48 },
  { name: 'sha512', size: 64 },
  { name: 'sha224', size: 28 },
  { name: 'rmd128', size: 16 },
  { name: 'rmd256', size: 32 },
  { name: 'rmd320', size: 40 },
  { name: 'wp256', size: 32 },
  { name: 'wp384', size: 48 },
  { name: 'wp512', size: 64 },
  { name: 'tgr128', size: 16 },
  { name: 'tgr160', size: 20 },
  { name: 'tgr192', size: 24 },
  { name: 'sm3', size: 32 },
  { name: 'streebog256', size: 32 },
  { name: 'streebog512', size: 64 },
  { name: 'sha3-256', size: 32 },
  { name: 'sha3-384', size: 48 },
  { name: 'sha3-512', size: 64 },
] as const;

/** A kernel hash algorithm name (hash_algo_name[]): what a d-ng field or an IMA signature names. */
export type ImaHashAlgorithmName = (typeof IMA_HASH_ALGOS)[number]['name'];

const IMA_HASH_BY_NAME: ReadonlyMap<string, (typeof IMA_HASH_ALGOS)[number]> = new Map(IMA_HASH_ALGOS.map((a) => [a.name, a]));

/** Whether a name is one of hash_algo_name[]. */
export function isImaHashAlgorithmName(name: string): name is ImaHashAlgorithmName {
  return IMA_HASH_BY_NAME.has(name);
}

/** The two forms of the measurement list: ascii_runtime_measurements and binary_runtime_measurements. */
export const IMA_LOG_FORMATS = ['ascii', 'binary'] as const;
export type ImaLogFormat = (typeof IMA_LOG_FORMATS)[number];

/** Whether a wire or stored string names a measurement list form. */
export function isImaLogFormat(v: string): v is ImaLogFormat {
  return v === 'ascii' || v === 'binary';
}

/** HASH_ALGO_* ids Bulwark refers to by name (include/uapi/linux/hash_info.h). */
export const HASH_ALGO = {
  MD5: 1,
  SHA1: 2,
  SHA256: 4,
  SHA384: 5,
  SHA512: 6,
  SHA224: 7,
} as const;

/** Digest size of a kernel hash algorithm name, or undefined for a name the kernel does not know. */
export function imaHashSize(name: string): number | undefined {
  return IMA_HASH_BY_NAME.get(name)?.size;
}

/** Hash algorithms whose template hashes Bulwark can recompute: those of lib/tpm's HASH_ALG_TABLE (node:crypto names = kernel names). */
export type ImaTemplateHashAlgorithm = HashAlgName;

/** Caps checked before anything is sliced or allocated. Each names the kernel limit it stands for. */
export const IMA_LIMITS = {
  /** IMA_EVENT_NAME_LEN_MAX (ima.h): the 'n' field of the 'ima' template; hashed padded to 256 bytes. */
  eventNameLenMax: 255,
  /** Template names are short ("ima-modsig"); a custom template's name is its format string (MAX_TEMPLATE_NAME_LEN). */
  templateNameMax: 64,
  /**
   * Template data of one entry. Paths are at most PATH_MAX (4096); signatures, modsig
   * PKCS#7 blobs and ima-buf payloads (keys, critical data) are a few KiB. 1 MiB leaves room
   * and still stops a hostile length from making us allocate.
   */
  templateDataMax: 1 << 20,
  /** PCR indices a PC Client TPM has (0-23); an IMA policy rule may choose any of them. */
  pcrMax: 23,
} as const;

/** The PCR IMA extends unless a policy rule says otherwise (CONFIG_IMA_MEASURE_PCR_IDX). */
export const IMA_PCR = 10;

/** The event name of the first entry, measured over PCRs 0-7 (0-9) at IMA init (ima_init.c). */
export const BOOT_AGGREGATE_NAME = 'boot_aggregate';

/** The modsig part of an ima-modsig entry (d-modsig, modsig fields), present when the file carries an appended signature. */
export interface ImaModsig {
  readonly digestAlgorithm: ImaHashAlgorithmName;
  /** Digest of the file without its appended signature. */
  readonly digest: Uint8Array;
  /** The appended PKCS#7 signature. */
  readonly signature: Uint8Array;
}

/**
 * One decoded measurement list entry. Untrusted: these are the agent's bytes; only a replay
 * against a quoted PCR 10 (replayImaEntries) makes entries that policy evaluation accepts.
 * Byte arrays are views, made when read, into the parsed input (binary) or into buffers
 * shared by the entries of a parse (ASCII): treat them as read-only.
 */
export interface ImaEntry {
  /** Position in the measurement list since boot (0 is boot_aggregate). */
  readonly index: number;
  /** Byte offset of the line or record in the whole list file. */
  readonly offset: number;
  /** Bytes of the line (with its newline) or record. */
  readonly size: number;
  readonly pcr: number;
  readonly template: ImaTemplateName;
  /** The template hash column as the list shows it (SHA-1 in the classic files; all zero for a violation). */
  readonly templateHash: Uint8Array;
  /**
   * The exact bytes the kernel hashes into the template hash (ima_calc_field_array_hash_tfm):
   * each field as a u32 length then its data, except for the 'ima' template, where it is
   * the 20-byte digest then the event name zero-padded to 256 bytes.
   */
  readonly hashInput: Uint8Array;
  /** A violation entry: template hash all zero in the list, 0xff..ff extended into the PCR. */
  readonly violation: boolean;
  /** Kernel hash algorithm name of `digest` ("sha256"); "sha1" for the 'ima' template. */
  readonly digestAlgorithm: ImaHashAlgorithmName;
  /** The d-ngv2 digest type of ima-ngv2 / ima-sigv2 entries ('verity': an fs-verity digest); null for templates without one. */
  readonly digestType: ImaDigestType | null;
  /** The file (or buffer) digest; all zero in a violation entry. */
  readonly digest: Uint8Array;
  /** The event name: the file's path, "boot_aggregate", a keyring or critical-data name. Decoded as UTF-8 (lossy for other bytes). */
  readonly path: string;
  /** The event name's bytes as logged (without the NUL): what policy paths are compared with, exactly. */
  readonly pathBytes: Uint8Array;
  /** The sig field (ima-sig, ima-modsig): the security.ima xattr, a signature_v2_hdr; null when empty. */
  readonly signature: Uint8Array | null;
  /** The buf field (ima-buf): the measured buffer; null for other templates. */
  readonly buffer: Uint8Array | null;
  /** The appended signature of an ima-modsig entry; null when absent. */
  readonly modsig: ImaModsig | null;
}

/** Options of parseImaAscii and parseImaBinary. */
export interface ImaParseOptions {
  /** Index of the first entry in `bytes` (the number of entries before it since boot). Default 0. */
  readonly fromEntry?: number;
  /** Byte offset of `bytes` in the whole list file. Default 0. */
  readonly fromOffset?: number;
  /**
   * Leave an incomplete last entry unconsumed (`remainder`) instead of failing with
   * IMA_LOG_TRUNCATED: for input read in chunks, the rest coming with the next read.
   */
  readonly allowIncompleteTail?: boolean;
  /**
   * Algorithm of the template hash column: SHA-1 in ascii_/binary_runtime_measurements
   * (TPM_DIGEST_SIZE in ima_fs.c); the bank's own in the per-bank files
   * (binary_runtime_measurements_sha256, Linux 6.10+). Default 'sha1'.
   */
  readonly templateHashAlgorithm?: ImaTemplateHashAlgorithm;
  /**
   * Byte order of the integers in binary records and in the field lengths the template hash
   * covers: the host's, or little-endian with ima_canonical_fmt. Default 'le' (x86, arm64).
   */
  readonly byteOrder?: 'le' | 'be';
}

/** The result of a parse: entries in list order and where the next read continues. Untrusted. */
export interface ParsedImaLog {
  readonly format: ImaLogFormat;
  readonly entries: readonly ImaEntry[];
  /** Index the next entry will have. */
  readonly nextEntry: number;
  /** Byte offset in the whole list right after the last complete entry. */
  readonly nextOffset: number;
  /** Bytes at the end of the input that were not consumed (an incomplete entry; 0 unless allowIncompleteTail). */
  readonly remainder: number;
}

declare const verifiedBrand: unique symbol;
declare const selfReplayedBrand: unique symbol;

/**
 * Entries that replayed, in order and without gaps, to a PCR 10 value proven by a verified
 * quote. Only replayImaEntries makes them; evaluation of a live node (evaluateImaEntries)
 * accepts nothing else.
 */
export type VerifiedImaEntries = readonly ImaEntry[] & { readonly [verifiedBrand]: true };

/**
 * Entries that replayed to a PCR 10 value no quote proved: one the log itself supplied, or
 * one an operator typed (offline forensics, `bulwarkctl ima check`). The list is
 * self-consistent, nothing more. Only replayImaEntriesOffline makes them; only the offline
 * evaluation (evaluateImaEntriesOffline) accepts them.
 */
export type SelfReplayedImaEntries = readonly ImaEntry[] & { readonly [selfReplayedBrand]: true };

/** How a list of replayed entries was proven: against a quote, or only against a reference no quote proved. */
export type ImaReplayKind = 'quoted' | 'self-replayed';

declare const recordedBrand: unique symbol;

/**
 * Distinct measurements a verifier recorded in its own state from a boot's entries (one per
 * distinct measurement, with its first index), to judge them again when the policy changes.
 * Only decodeRecordedImaEntries makes them; they are proven only as far as the verifier's
 * stored replay state says (it keeps proven and not-yet-proven segments apart).
 */
export type RecordedImaEntries = readonly ImaEntry[] & { readonly [recordedBrand]: true };
