/**
 * ByteWriter builders for quote edge cases: a TPMS_ATTEST (big-endian TPM marshaling) and a
 * tpm2-tools serialized PCR file (little-endian C structs). One comment per field. Test code.
 */
import { ByteWriter } from '../../../lib/bytes.js';
import { MAX_PCR_BANKS } from '../../../lib/tpm/attest.js';
import { TPM_GENERATED_VALUE, TPM_ST, TPM_ALG } from '../../../lib/tpm/types.js';

/** One TPMS_PCR_SELECTION as raw fields, so tests can write out-of-range values. */
export interface RawPcrSelection {
  readonly hash: number;
  readonly sizeofSelect: number;
  readonly bitmap: readonly number[];
}

export interface AttestFields {
  magic?: number;
  type?: number;
  qualifiedSigner?: Uint8Array;
  extraData?: Uint8Array;
  clock?: bigint;
  resetCount?: number;
  restartCount?: number;
  safe?: number;
  firmwareVersion?: bigint;
  /** Overrides the TPML_PCR_SELECTION.count written (default: selections.length). */
  selectionCount?: number;
  selections?: readonly RawPcrSelection[];
  pcrDigest?: Uint8Array;
  /** Raw bytes appended after the structure. */
  trailing?: Uint8Array;
}

/** sha256 PCRs 0-7 and 10: pcrSelect octets 0xff, 0x04, 0x00. */
export const SHA256_0_7_10: RawPcrSelection = { hash: TPM_ALG.SHA256, sizeofSelect: 3, bitmap: [0xff, 0x04, 0x00] };

/** A TPM2B_NAME as a TPM writes it for a sha256 name: nameAlg then the digest. */
export const SAMPLE_NAME = new Uint8Array([0x00, 0x0b, ...new Array<number>(32).fill(0xab)]);

/** Encodes a TPMS_ATTEST with a TPMS_QUOTE_INFO (Part 2, 10.12.12), field by field. */
export function buildQuoteAttest(f: AttestFields = {}): Uint8Array {
  const selections = f.selections ?? [SHA256_0_7_10];
  const w = new ByteWriter(256);
  w.u32be(f.magic ?? TPM_GENERATED_VALUE); // magic: TPM_GENERATED_VALUE 0xff544347 ("\xffTCG")
  w.u16be(f.type ?? TPM_ST.ATTEST_QUOTE); // type: TPM_ST_ATTEST_QUOTE 0x8018
  w.tpm2b(f.qualifiedSigner ?? SAMPLE_NAME); // qualifiedSigner: TPM2B_NAME of the AK
  w.tpm2b(f.extraData ?? new Uint8Array(32).fill(0x11)); // extraData: TPM2B_DATA, the nonce
  w.u64be(f.clock ?? 123456789n); // clockInfo.clock: milliseconds the TPM has been powered
  w.u32be(f.resetCount ?? 3); // clockInfo.resetCount: TPM resets (reboots)
  w.u32be(f.restartCount ?? 1); // clockInfo.restartCount: restarts/resumes since the reset
  w.u8(f.safe ?? 1); // clockInfo.safe: TPMI_YES_NO
  w.u64be(f.firmwareVersion ?? 0x2019102300163636n); // firmwareVersion: vendor-specific
  w.u32be(f.selectionCount ?? selections.length); // pcrSelect.count: TPML_PCR_SELECTION banks
  for (const s of selections) {
    w.u16be(s.hash); // pcrSelections[i].hash: TPMI_ALG_HASH
    w.u8(s.sizeofSelect); // pcrSelections[i].sizeofSelect
    w.bytes(Uint8Array.from(s.bitmap)); // pcrSelections[i].pcrSelect: bit i%8 of octet i/8
  }
  w.tpm2b(f.pcrDigest ?? new Uint8Array(32).fill(0x22)); // pcrDigest: TPM2B_DIGEST
  if (f.trailing !== undefined) w.bytes(f.trailing); // not part of TPMS_ATTEST
  return w.finish();
}

export interface SerializedFields {
  /** Overrides TPML_PCR_SELECTION.count (default: selections.length). */
  selectionCount?: number;
  selections?: readonly RawPcrSelection[];
  /** Value written into every padding octet and unused entry (tpm2-tools leaves memory there). */
  filler?: number;
  /** Overrides the digest-list count (default: lists.length). */
  listCount?: number;
  /** Each TPML_DIGEST as its values; sizes default to the value lengths. */
  lists?: readonly (readonly Uint8Array[])[];
  /** Overrides TPML_DIGEST.count per list. */
  digestCounts?: readonly number[];
  /** Overrides TPM2B_DIGEST.size: [list, index, size]. */
  sizeOverride?: readonly [number, number, number];
  trailing?: Uint8Array;
}

/** Nine distinct sha256 values for PCRs 0-7 and 10. */
export function samplePcrValues(seed = 1): Uint8Array[] {
  return Array.from({ length: 9 }, (_, i) => new Uint8Array(32).fill((seed * 16 + i) & 0xff));
}

/** Encodes a tpm2-tools 5.4 serialized PCR file (lib/tpm/pcrs.ts documents the layout). */
export function buildSerializedPcrs(f: SerializedFields = {}): Uint8Array {
  const selections = f.selections ?? [SHA256_0_7_10];
  const values = samplePcrValues();
  const lists = f.lists ?? [values.slice(0, 8), values.slice(8)];
  const filler = f.filler ?? 0;
  const w = new ByteWriter(2048);
  w.u32le(f.selectionCount ?? selections.length); // TPML_PCR_SELECTION.count, u32 little-endian
  for (let i = 0; i < MAX_PCR_BANKS; i++) {
    const s = selections[i];
    if (s === undefined) {
      w.bytes(new Uint8Array(8).fill(filler)); // unused pcrSelections[i]: 8 octets of memory
      continue;
    }
    w.u16le(s.hash); // pcrSelections[i].hash, u16 little-endian
    w.u8(s.sizeofSelect); // pcrSelections[i].sizeofSelect
    const bitmap = new Uint8Array(4);
    bitmap.set(s.bitmap.slice(0, 4));
    w.bytes(bitmap); // pcrSelections[i].pcrSelect[TPM2_PCR_SELECT_MAX = 4]
    w.u8(filler); // struct padding to the 2-octet alignment of the next entry
  }
  w.u32le(f.listCount ?? lists.length); // tpm2_pcrs.count (size_t, written as u32 little-endian)
  lists.forEach((list, l) => {
    w.u32le(f.digestCounts?.[l] ?? list.length); // TPML_DIGEST.count, u32 little-endian
    for (let d = 0; d < 8; d++) {
      const v = list[d];
      const override = f.sizeOverride !== undefined && f.sizeOverride[0] === l && f.sizeOverride[1] === d ? f.sizeOverride[2] : undefined;
      w.u16le(override ?? v?.length ?? 0); // digests[d].size, u16 little-endian
      const buffer = new Uint8Array(64).fill(v === undefined ? filler : 0);
      if (v !== undefined) buffer.set(v);
      w.bytes(buffer); // digests[d].buffer[sizeof(TPMU_HA) = 64]
    }
  });
  if (f.trailing !== undefined) w.bytes(f.trailing); // not part of the file
  return w.finish();
}
