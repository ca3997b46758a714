/**
 * PCR values as tpm2-tools hands them over (`tpm2_quote -o FILE -F serialized`), the PCR
 * composite digest a quote signs (Part 3, 18.4 TPM2_Quote), and the "sha256:0-7,10" text
 * form of a selection used by tpm2-tools and our configuration.
 */
import { createHash } from 'node:crypto';
import { ByteReader } from '../bytes.js';
import { BulwarkError } from '../errors.js';
import { MAX_PCR_BANKS, MAX_PCR_INDEX, PCR_SELECT_MAX, pcrsFromBitmap } from './attest.js';
import { HASH_ALGS, HASH_ALGS_BY_NAME, type PcrBanks, type PcrSelection } from './types.js';

/*
 * The serialized PCR file of tpm2-tools 5.4 (lib/pcr.c pcr_fwrite_serialized) is not a TPM
 * marshaling: it fwrite()s the tool's C structs from memory after converting each integer
 * with htole16/htole32. So it is little-endian, with C struct padding and fixed-size arrays
 * (TSS2 tss2_tpm2_types.h on an LP64/ILP32 host, where u16 aligns to 2 and u32 to 4):
 *
 *   offset  size  field
 *   0       4     TPML_PCR_SELECTION.count                 u32le, <= TPM2_NUM_PCR_BANKS (16)
 *   4       128   TPML_PCR_SELECTION.pcrSelections[16]     16 x TPMS_PCR_SELECTION, 8 octets each:
 *                   +0 hash u16le, +2 sizeofSelect u8 (<= TPM2_PCR_SELECT_MAX = 4),
 *                   +3 pcrSelect[4] (only sizeofSelect octets count), +7 one padding octet
 *   132     4     number of TPML_DIGEST that follow        u32le (the tool's size_t tpm2_pcrs.count,
 *                                                           truncated by htole32), <= TPM2_MAX_PCRS (32)
 *   136     n*532 TPML_DIGEST[n], 532 octets each:
 *                   +0 count u32le (<= 8, TPM2_PCR_Read returns at most 8 digests per call),
 *                   +4 digests[8], 8 x TPM2B_DIGEST of 66 octets: size u16le (<= 64), buffer[64]
 *
 * The PCR values are the TPM2_PCR_Read results in order: the selection's banks in order,
 * each bank's PCRs ascending, split over as many TPML_DIGEST as PCR_Read calls were needed
 * (9 PCRs → 8 + 1). Unused array entries, padding octets and buffer octets past `size` are
 * uninitialised-or-zero memory and carry no meaning; they are ignored. What is checked: the
 * exact file length, every count and size against its array bound, known hash algorithms,
 * no bank listed twice, each value as long as its bank's digest, and exactly as many values
 * as selected PCRs.
 */
const SERIALIZED_SELECTION_ENTRY_SIZE = 8;
const SERIALIZED_SELECTION_SIZE = 4 + MAX_PCR_BANKS * SERIALIZED_SELECTION_ENTRY_SIZE;
/** TPM2_MAX_PCRS: the size of tpm2-tools' `tpm2_pcrs.pcr_values` array. */
const SERIALIZED_MAX_DIGEST_LISTS = 32;
/** TPML_DIGEST.digests[8] (Part 2, 10.9.2: a TPML_DIGEST holds at most 8 digests). */
const TPML_DIGEST_MAX = 8;
/** sizeof(TPMU_HA): the buffer of a TPM2B_DIGEST. */
const TPM2B_DIGEST_BUFFER = 64;
const SERIALIZED_DIGEST_SIZE = 2 + TPM2B_DIGEST_BUFFER;
const SERIALIZED_DIGEST_LIST_SIZE = 4 + TPML_DIGEST_MAX * SERIALIZED_DIGEST_SIZE;

/** A decoded serialized PCR file: the selection it claims and the values for it. Untrusted: what the agent claims. */
export interface SerializedPcrs {
  /** The TPML_PCR_SELECTION written by the tool, banks in file order, PCRs ascending. */
  readonly selection: readonly PcrSelection[];
  /** bank → PCR → value; banks and PCRs iterate in selection order. */
  readonly banks: PcrBanks;
}

/**
 * Decodes a `tpm2_quote -o FILE -F serialized` file (layout above) into its selection and
 * values. Values are zero-copy views of `bytes`. Untrusted input: nothing here says these
 * are the values the TPM quoted; only verifyQuote can.
 */
export function decodeSerializedPcrFile(bytes: Uint8Array): SerializedPcrs {
  const r = new ByteReader(bytes, 'TPM_PCRS_MALFORMED');
  const count = r.u32le('TPML_PCR_SELECTION.count');
  if (count > MAX_PCR_BANKS) {
    throw new BulwarkError('TPM_PCRS_MALFORMED', `PCR file selects ${count} banks, more than ${MAX_PCR_BANKS}`, { offset: 0, count });
  }
  const selection: PcrSelection[] = [];
  const seen = new Set<number>();
  let selected = 0;
  for (let i = 0; i < count; i++) {
    const at = r.offset;
    const hashAlg = r.u16le('TPMS_PCR_SELECTION.hash');
    const sizeofSelect = r.u8('TPMS_PCR_SELECTION.sizeofSelect');
    const bitmap = r.bytesN(PCR_SELECT_MAX, 'TPMS_PCR_SELECTION.pcrSelect');
    r.skip(1, 'TPMS_PCR_SELECTION padding');
    if (sizeofSelect > PCR_SELECT_MAX) {
      throw new BulwarkError('TPM_PCRS_MALFORMED', `PCR file bank ${i} has sizeofSelect ${sizeofSelect}, more than ${PCR_SELECT_MAX}`, {
        offset: at + 2,
        sizeofSelect,
      });
    }
    if (!HASH_ALGS.has(hashAlg)) {
      throw new BulwarkError('TPM_ALG_UNSUPPORTED', `PCR file bank ${i} uses hash algorithm 0x${hashAlg.toString(16)}`, { offset: at, hashAlg });
    }
    if (seen.has(hashAlg)) {
      throw new BulwarkError('TPM_PCRS_MALFORMED', `PCR file lists bank 0x${hashAlg.toString(16)} twice`, { offset: at, hashAlg });
    }
    seen.add(hashAlg);
    const pcrs = pcrsFromBitmap(bitmap.subarray(0, sizeofSelect));
    selected += pcrs.length;
    selection.push({ hashAlg, pcrs });
  }
  r.skip((MAX_PCR_BANKS - count) * SERIALIZED_SELECTION_ENTRY_SIZE, 'unused TPMS_PCR_SELECTION entries');

  const listsAt = r.offset;
  const lists = r.u32le('digest list count');
  if (lists > SERIALIZED_MAX_DIGEST_LISTS) {
    throw new BulwarkError('TPM_PCRS_MALFORMED', `PCR file declares ${lists} digest lists, more than ${SERIALIZED_MAX_DIGEST_LISTS}`, {
      offset: listsAt,
      lists,
    });
  }
  // The whole length is known now: check it before reading any list.
  const expected = SERIALIZED_SELECTION_SIZE + 4 + lists * SERIALIZED_DIGEST_LIST_SIZE;
  if (bytes.length !== expected) {
    throw new BulwarkError('TPM_PCRS_MALFORMED', `PCR file is ${bytes.length} bytes; ${lists} digest lists make ${expected}`, {
      length: bytes.length,
      expected,
    });
  }

  // One map per bank, in selection order (a bank selecting no PCR still appears), filled by
  // walking the selection (banks in order, PCRs ascending) and the flattened digests together.
  const banks = new Map<number, Map<number, Uint8Array>>();
  for (const sel of selection) banks.set(sel.hashAlg, new Map());
  let bankIndex = 0;
  let pcrIndex = 0;
  let consumed = 0;
  for (let l = 0; l < lists; l++) {
    const listAt = r.offset;
    const n = r.u32le('TPML_DIGEST.count');
    if (n > TPML_DIGEST_MAX) {
      throw new BulwarkError('TPM_PCRS_MALFORMED', `TPML_DIGEST ${l} holds ${n} digests, more than ${TPML_DIGEST_MAX}`, { offset: listAt, count: n });
    }
    for (let d = 0; d < n; d++) {
      const digestAt = r.offset;
      const size = r.u16le('TPM2B_DIGEST.size');
      const buffer = r.bytesN(TPM2B_DIGEST_BUFFER, 'TPM2B_DIGEST.buffer');
      // The next selected PCR this value belongs to.
      let sel = selection[bankIndex];
      while (sel !== undefined && pcrIndex >= sel.pcrs.length) {
        bankIndex++;
        pcrIndex = 0;
        sel = selection[bankIndex];
      }
      if (sel === undefined) {
        throw new BulwarkError('TPM_PCRS_MALFORMED', `PCR file holds more values than the ${selected} PCRs it selects`, {
          offset: digestAt,
          selected,
        });
      }
      const digestSize = HASH_ALGS.get(sel.hashAlg)?.size ?? -1;
      if (size !== digestSize) {
        throw new BulwarkError('TPM_PCRS_MALFORMED', `PCR value of ${size} bytes in a bank of ${digestSize}-byte digests`, {
          offset: digestAt,
          size,
          hashAlg: sel.hashAlg,
        });
      }
      const pcr = sel.pcrs[pcrIndex] ?? -1;
      banks.get(sel.hashAlg)?.set(pcr, buffer.subarray(0, size));
      pcrIndex++;
      consumed++;
    }
    r.skip((TPML_DIGEST_MAX - n) * SERIALIZED_DIGEST_SIZE, 'unused TPM2B_DIGEST entries');
  }
  r.expectEnd('serialized PCR file');
  if (consumed !== selected) {
    throw new BulwarkError('TPM_PCRS_MALFORMED', `PCR file holds ${consumed} values for ${selected} selected PCRs`, { consumed, selected });
  }
  return { selection, banks };
}

/**
 * Decodes a `tpm2_quote -o FILE -F serialized` file into bank → PCR → value (see
 * decodeSerializedPcrFile). Untrusted input: these are claimed values, not quoted ones.
 */
export function decodeSerializedPcrs(bytes: Uint8Array): PcrBanks {
  return decodeSerializedPcrFile(bytes).banks;
}

/**
 * The selected PCR values concatenated in selection order — banks as listed, each bank's
 * PCRs ascending — into one fresh buffer: the input of the quote's pcrDigest (Part 3, 18.4
 * TPM2_Quote). Throws when a selected value is missing or has its bank's wrong length.
 * Trust: as trusted as `banks`.
 */
export function concatPcrValues(selection: readonly PcrSelection[], banks: PcrBanks): Uint8Array {
  let total = 0;
  for (const sel of selection) total += sel.pcrs.length * (HASH_ALGS.get(sel.hashAlg)?.size ?? 0);
  const out = new Uint8Array(total);
  let at = 0;
  for (const sel of selection) {
    const size = HASH_ALGS.get(sel.hashAlg)?.size;
    const bank = banks.get(sel.hashAlg);
    let previous = -1;
    for (const pcr of sel.pcrs) {
      if (pcr <= previous) {
        throw new BulwarkError('USAGE', `PCR selection for bank 0x${sel.hashAlg.toString(16)} is not strictly ascending`, { pcr });
      }
      previous = pcr;
      const value = bank?.get(pcr);
      if (value === undefined || value.length !== size) {
        throw new BulwarkError('TPM_PCRS_MALFORMED', `no ${size ?? '?'}-byte value for PCR ${pcr} of bank 0x${sel.hashAlg.toString(16)}`, {
          pcr,
          hashAlg: sel.hashAlg,
        });
      }
      out.set(value, at);
      at += size;
    }
  }
  return out;
}

/** `bytes` hashed with a TPM hash algorithm (TPM_ALG_ID); TPM_ALG_UNSUPPORTED for others. Pure: implies no trust. */
export function hashWithTpmAlg(hashAlg: number, bytes: Uint8Array): Uint8Array {
  const hash = HASH_ALGS.get(hashAlg);
  if (hash === undefined) {
    throw new BulwarkError('TPM_ALG_UNSUPPORTED', `hash algorithm 0x${hashAlg.toString(16)} is not supported`, { hashAlg });
  }
  return createHash(hash.name).update(bytes).digest();
}

/**
 * The PCR digest of a quote (Part 3, 18.4 TPM2_Quote: TPMS_QUOTE_INFO.pcrDigest is the hash
 * of the concatenated values of the selected PCRs, with the hash of the signing scheme):
 * hashWithTpmAlg(hashAlg, concatPcrValues(selection, banks)). Trust: as trusted as `banks`;
 * a match with a verified quote is what proves them.
 */
export function computePcrDigest(hashAlg: number, selection: readonly PcrSelection[], banks: PcrBanks): Uint8Array {
  if (!HASH_ALGS.has(hashAlg)) {
    throw new BulwarkError('TPM_ALG_UNSUPPORTED', `PCR digest hash algorithm 0x${hashAlg.toString(16)} is not supported`, { hashAlg });
  }
  return hashWithTpmAlg(hashAlg, concatPcrValues(selection, banks));
}

/**
 * Parses a tpm2-tools PCR selection text: banks joined by '+', each `ALG:LIST` where ALG is
 * sha1|sha256|sha384|sha512 or a hex TPM_ALG_ID (0x000b) and LIST is comma-separated PCR
 * indices or inclusive ranges ("sha256:0-7,10"). Ranges are ours: tpm2-tools 5.4 reads
 * "0-7" as a handle and fails, so formatPcrSelectionSpec never writes them. PCRs come out
 * sorted and unique; a bank may appear once. Untrusted text (configuration, CLI); errors
 * are TPM_PCR_SELECTION_SPEC_INVALID.
 */
export function parsePcrSelectionSpec(spec: string): PcrSelection[] {
  const fail = (why: string): BulwarkError => new BulwarkError('TPM_PCR_SELECTION_SPEC_INVALID', `PCR selection "${spec.slice(0, 80)}": ${why}`);
  if (spec.length === 0 || spec.length > 1024) throw fail('empty or longer than 1024 characters');
  const banks = spec.split('+');
  if (banks.length > MAX_PCR_BANKS) throw fail(`more than ${MAX_PCR_BANKS} banks`);
  const out: PcrSelection[] = [];
  for (const bankSpec of banks) {
    const colon = bankSpec.indexOf(':');
    if (colon <= 0) throw fail(`"${bankSpec}" is not ALG:PCRS`);
    const algText = bankSpec.slice(0, colon).toLowerCase();
    const hashAlg = /^0x[0-9a-f]{1,4}$/.test(algText) ? Number.parseInt(algText.slice(2), 16) : HASH_ALGS_BY_NAME.get(algText)?.alg;
    if (hashAlg === undefined) throw fail(`unknown hash algorithm "${algText}"`);
    if (out.some((s) => s.hashAlg === hashAlg)) throw fail(`bank "${algText}" listed twice`);
    const selected = new Set<number>();
    for (const item of bankSpec.slice(colon + 1).split(',')) {
      const m = /^(\d{1,2})(?:-(\d{1,2}))?$/.exec(item);
      if (m === null) throw fail(`"${item}" is not a PCR index or range`);
      const from = Number(m[1]);
      const to = m[2] === undefined ? from : Number(m[2]);
      if (from > MAX_PCR_INDEX || to > MAX_PCR_INDEX || to < from) throw fail(`"${item}" is outside 0..${MAX_PCR_INDEX} or reversed`);
      for (let p = from; p <= to; p++) selected.add(p);
    }
    out.push({ hashAlg, pcrs: [...selected].sort((a, b) => a - b) });
  }
  return out;
}

/**
 * Formats a selection the way tpm2-tools reads it ("sha256:0,1,2,3,4,5,6,7,10"), the inverse
 * of parsePcrSelectionSpec. Trusted input; an empty bank cannot be written and is refused.
 */
export function formatPcrSelectionSpec(selection: readonly PcrSelection[]): string {
  return selection
    .map((sel) => {
      if (sel.pcrs.length === 0) {
        throw new BulwarkError('TPM_PCR_SELECTION_SPEC_INVALID', `bank 0x${sel.hashAlg.toString(16)} selects no PCR and has no text form`);
      }
      const name = HASH_ALGS.get(sel.hashAlg)?.name ?? `0x${sel.hashAlg.toString(16).padStart(4, '0')}`;
      return `${name}:${sel.pcrs.join(',')}`;
    })
    .join('+');
}
