/**
 * TPMS_ATTEST of a quote (TCG TPM 2.0 Library Part 2, 10.12.12) and the PCR selection
 * structures it carries (Part 2, 10.6.2 TPMS_PCR_SELECTION, 10.9.7 TPML_PCR_SELECTION).
 *
 * Decoding here judges only the *shape* of the bytes. Whether the magic is
 * TPM_GENERATED_VALUE, whether the AK signed them, and whether extraData is our nonce are
 * checks made by `verifyQuote` (lib/tpm/quote.ts), which turns them into findings.
 */
import { ByteReader, type ByteWriter } from '../bytes.js';
import { BulwarkError, type ErrorCode } from '../errors.js';
import { TPM_ST, type ClockInfo, type PcrSelection, type QuoteAttest } from './types.js';

/**
 * Most banks a TPML_PCR_SELECTION may list: HASH_COUNT in Part 2, 10.9.7, which the TSS
 * fixes at TPM2_NUM_PCR_BANKS = 16. No TPM has more than a handful of banks.
 */
export const MAX_PCR_BANKS = 16;

/** PCR_SELECT_MAX (Part 2, 10.6.2; TSS: (TPM2_MAX_PCRS + 7) / 8 with TPM2_MAX_PCRS = 32). */
export const PCR_SELECT_MAX = 4;

/**
 * PCR_SELECT_MIN for the PC Client platform (24 PCRs → 3 octets). Only used when encoding;
 * decoding accepts 0..PCR_SELECT_MAX because the TPM echoes what the caller sent.
 */
export const PCR_SELECT_MIN = 3;

/** Largest PCR index a selection can name (PCR_SELECT_MAX octets of bits). */
export const MAX_PCR_INDEX = PCR_SELECT_MAX * 8 - 1;

/** sizeof(TPMU_NAME): a TPMT_HA (2-octet hashAlg + 64-octet SHA-512 digest). Part 2, 10.5.3. */
const MAX_NAME_SIZE = 66;
/** sizeof(TPMT_HA): the buffer of TPM2B_DATA (Part 2, 10.4.3). */
const MAX_DATA_SIZE = 66;
/** sizeof(TPMU_HA): the buffer of TPM2B_DIGEST (Part 2, 10.4.2) — a SHA-512 digest. */
const MAX_DIGEST_SIZE = 64;

/**
 * Decodes one TPMS_PCR_SELECTION (Part 2, 10.6.2): hash (TPMI_ALG_HASH, u16), sizeofSelect
 * (u8, at most PCR_SELECT_MAX), then sizeofSelect octets of bitmap where bit (i mod 8) of
 * octet (i div 8) selects PCR i. Returns the selected indices in ascending order.
 * Untrusted input; a truncation raises the reader's own code, a bad size `code`.
 */
export function decodeTpmsPcrSelection(r: ByteReader, code: ErrorCode): PcrSelection {
  const hashAlg = r.u16be('TPMS_PCR_SELECTION.hash');
  const at = r.offset;
  const sizeofSelect = r.u8('TPMS_PCR_SELECTION.sizeofSelect');
  if (sizeofSelect > PCR_SELECT_MAX) {
    throw new BulwarkError(code, `TPMS_PCR_SELECTION.sizeofSelect is ${sizeofSelect}, more than PCR_SELECT_MAX (${PCR_SELECT_MAX})`, {
      offset: at,
      sizeofSelect,
    });
  }
  const bitmap = r.bytesN(sizeofSelect, 'TPMS_PCR_SELECTION.pcrSelect');
  return { hashAlg, pcrs: pcrsFromBitmap(bitmap) };
}

/** The selected PCR indices of a pcrSelect bitmap, ascending (Part 2, 10.6.2). Untrusted input. */
export function pcrsFromBitmap(bitmap: Uint8Array): number[] {
  const pcrs: number[] = [];
  for (let octet = 0; octet < bitmap.length; octet++) {
    const bits = bitmap[octet] ?? 0;
    if (bits === 0) continue;
    for (let bit = 0; bit < 8; bit++) if ((bits & (1 << bit)) !== 0) pcrs.push(octet * 8 + bit);
  }
  return pcrs;
}

/**
 * Decodes a TPML_PCR_SELECTION (Part 2, 10.9.7): a u32 count (at most MAX_PCR_BANKS, checked
 * before anything is read for it) then that many TPMS_PCR_SELECTION. Untrusted input.
 */
export function decodeTpmlPcrSelection(r: ByteReader, code: ErrorCode): PcrSelection[] {
  const at = r.offset;
  const count = r.u32be('TPML_PCR_SELECTION.count');
  if (count > MAX_PCR_BANKS) {
    throw new BulwarkError(code, `TPML_PCR_SELECTION.count is ${count}, more than ${MAX_PCR_BANKS} banks`, { offset: at, count });
  }
  const list: PcrSelection[] = [];
  for (let i = 0; i < count; i++) list.push(decodeTpmsPcrSelection(r, code));
  return list;
}

/**
 * Encodes one TPMS_PCR_SELECTION (Part 2, 10.6.2) with sizeofSelect = max(PCR_SELECT_MIN,
 * octets needed). Trusted input from our own code; indices beyond MAX_PCR_INDEX are refused.
 */
export function encodeTpmsPcrSelection(w: ByteWriter, selection: PcrSelection, sizeofSelect?: number): ByteWriter {
  let highest = -1;
  for (const pcr of selection.pcrs) {
    if (!Number.isInteger(pcr) || pcr < 0 || pcr > MAX_PCR_INDEX) {
      throw new BulwarkError('BYTES_VALUE_OUT_OF_RANGE', `PCR index ${pcr} is outside 0..${MAX_PCR_INDEX}`, { pcr });
    }
    if (pcr > highest) highest = pcr;
  }
  const needed = Math.max(PCR_SELECT_MIN, Math.ceil((highest + 1) / 8));
  const size = sizeofSelect ?? needed;
  if (size < Math.ceil((highest + 1) / 8) || size > PCR_SELECT_MAX) {
    throw new BulwarkError('BYTES_VALUE_OUT_OF_RANGE', `sizeofSelect ${size} cannot hold PCR ${highest}`, { sizeofSelect: size });
  }
  const bitmap = new Uint8Array(size);
  for (const pcr of selection.pcrs) bitmap[pcr >> 3] = (bitmap[pcr >> 3] ?? 0) | (1 << (pcr & 7));
  return w.u16be(selection.hashAlg).u8(size).bytes(bitmap);
}

/** Encodes a TPML_PCR_SELECTION (Part 2, 10.9.7). Trusted input from our own code. */
export function encodeTpmlPcrSelection(w: ByteWriter, list: readonly PcrSelection[]): ByteWriter {
  if (list.length > MAX_PCR_BANKS) {
    throw new BulwarkError('BYTES_VALUE_OUT_OF_RANGE', `${list.length} banks is more than ${MAX_PCR_BANKS}`, { count: list.length });
  }
  w.u32be(list.length);
  for (const selection of list) encodeTpmsPcrSelection(w, selection);
  return w;
}

/** Two selection lists are equal when they name the same banks in the same order with the same PCRs. Pure comparison: implies no trust. */
export function pcrSelectionsEqual(a: readonly PcrSelection[], b: readonly PcrSelection[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i];
    const y = b[i];
    if (x === undefined || y === undefined || x.hashAlg !== y.hashAlg || x.pcrs.length !== y.pcrs.length) return false;
    for (let j = 0; j < x.pcrs.length; j++) if (x.pcrs[j] !== y.pcrs[j]) return false;
  }
  return true;
}

/**
 * Decodes a TPMS_ATTEST holding a TPMS_QUOTE_INFO (Part 2, 10.12.12 and 10.12.4), exactly as
 * `tpm2_quote -m` writes it: the TPM2B_ATTEST's attestationData without its u16 size.
 *
 *   magic            u32  TPM_GENERATED (judged by verifyQuote, not here)
 *   type             u16  TPMI_ST_ATTEST; only TPM_ST_ATTEST_QUOTE is decoded further
 *   qualifiedSigner  TPM2B_NAME
 *   extraData        TPM2B_DATA (the caller's nonce)
 *   clockInfo        TPMS_CLOCK_INFO: clock u64, resetCount u32, restartCount u32, safe u8 (TPMI_YES_NO)
 *   firmwareVersion  u64
 *   attested         TPMS_QUOTE_INFO: TPML_PCR_SELECTION pcrSelect, TPM2B_DIGEST pcrDigest
 *
 * Trailing bytes are refused. Any other attestation type (certify, creation, session audit,
 * ...) is refused with QUOTE_TYPE_INVALID as soon as its type has been read: such bytes may
 * be a perfectly well-formed attestation, so calling them malformed would be wrong, but they
 * are not a quote and their TPMU_ATTEST arm is never read. The error's details carry `magic`
 * and `type`, so `verifyQuote` can report both as findings once the signature holds.
 *
 * Untrusted input: the result is decoded, not verified.
 */
export function decodeQuoteAttest(bytes: Uint8Array): QuoteAttest {
  const code: ErrorCode = 'TPM_ATTEST_MALFORMED';
  const r = new ByteReader(bytes, code);
  const magic = r.u32be('TPMS_ATTEST.magic');
  const type = r.u16be('TPMS_ATTEST.type');
  if (type !== TPM_ST.ATTEST_QUOTE) {
    throw new BulwarkError('QUOTE_TYPE_INVALID', `attestation type is 0x${type.toString(16)}, not TPM_ST_ATTEST_QUOTE (0x8018)`, {
      offset: 4,
      type,
      magic,
    });
  }
  const qualifiedSigner = r.tpm2b('TPMS_ATTEST.qualifiedSigner', MAX_NAME_SIZE);
  const extraData = r.tpm2b('TPMS_ATTEST.extraData', MAX_DATA_SIZE);
  const clockInfo = decodeTpmsClockInfo(r);
  const firmwareVersion = r.u64be('TPMS_ATTEST.firmwareVersion');
  const pcrSelect = decodeTpmlPcrSelection(r, code);
  const pcrDigest = r.tpm2b('TPMS_QUOTE_INFO.pcrDigest', MAX_DIGEST_SIZE);
  r.expectEnd('TPMS_ATTEST');
  return { magic, type, qualifiedSigner, extraData, clockInfo, firmwareVersion, pcrSelect, pcrDigest, encoded: bytes };
}

/** TPMS_CLOCK_INFO (Part 2, 10.11.1); `safe` is a TPMI_YES_NO, so only 0 and 1 are valid. */
function decodeTpmsClockInfo(r: ByteReader): ClockInfo {
  const clock = r.u64be('TPMS_CLOCK_INFO.clock');
  const resetCount = r.u32be('TPMS_CLOCK_INFO.resetCount');
  const restartCount = r.u32be('TPMS_CLOCK_INFO.restartCount');
  const at = r.offset;
  const safe = r.u8('TPMS_CLOCK_INFO.safe');
  if (safe > 1) {
    throw new BulwarkError('TPM_ATTEST_MALFORMED', `TPMS_CLOCK_INFO.safe is ${safe}, not a TPMI_YES_NO (0 or 1)`, { offset: at, safe });
  }
  return { clock, resetCount, restartCount, safe: safe === 1 };
}
