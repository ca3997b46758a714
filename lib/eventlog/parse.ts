/**
 * The TCG PC Client event log as Linux exposes it in
 * /sys/kernel/security/tpm0/binary_bios_measurements, in either of its two formats, all
 * little-endian:
 * - crypto-agile (PFP 10.2.1, 10.2.2, 10.4.5.1): one SHA-1 format TCG_PCClientPCREvent
 *   carrying the TCG_EfiSpecIDEvent, then TCG_PCR_EVENT2 records with a digest per bank;
 * - SHA-1 (the TCG 1.2 format: PC Client Implementation for Conventional BIOS 1.21 11.1.1,
 *   TCG EFI Platform 1.22 7.1, PFP 10.2.1): TCG_PCClientPCREvent throughout, one SHA-1
 *   digest each, no Spec ID event. Older firmware writes it, and so does firmware that logs
 *   only a StartupLocality event (PFP 10.4.5.3 allows the SHA-1 format for it).
 *
 * Parsing checks structure only. Every length is compared with what is left (and a named
 * cap) before a zero-copy slice is taken; nothing is allocated from a declared size. The
 * result is untrusted: only `replayEventLog` (replay.ts) turns events into evidence.
 */
import { ByteReader } from '../bytes.js';
import { BulwarkError } from '../errors.js';
import { SPEC_ID_EVENT03_SIGNATURE, STARTUP_LOCALITY_SIGNATURE, TCG_DIGEST_SIZES, TCG_EVENT_TYPE } from './constants.js';
import { latin1 } from './uefi.js';

/** Largest log accepted (real logs are 10–500 KiB; the PFP asks firmware for at least 64 KiB). */
export const MAX_EVENT_LOG_SIZE = 16 * 1024 * 1024;
/** Largest data of one event (a full dbx is about 20 KiB). */
export const MAX_EVENT_DATA_SIZE = 1024 * 1024;
/** Most digest algorithms a Spec ID event may list (TPM2_NUM_PCR_BANKS). */
export const MAX_LOG_ALGORITHMS = 16;
/** PC Client TPMs have PCRs 0–23 (PFP, "PCR Usage"); a measured event names one of them. */
export const MAX_EVENT_PCR_INDEX = 23;
/** The SHA-1 digest of the TCG_PCClientPCREvent header format (PFP 10.2.1). */
const SHA1_DIGEST_SIZE = 20;
/** TPM_ALG_SHA1 (TPM 2.0 Library, Part 2, 6.3): the one bank of a SHA-1 format log. */
const TPM_ALG_SHA1 = 0x0004;
/**
 * UINTN of the UEFI structures in a SHA-1 format log, which has no Spec ID event to say it:
 * 8, as on every x86-64 and AArch64 firmware (go-attestation assumes the same).
 */
const SHA1_LOG_UINTN_SIZE = 8;

/** 'crypto-agile': Spec ID header and TCG_PCR_EVENT2 records; 'sha1': TCG_PCClientPCREvent throughout (the TCG 1.2 format). */
export type EventLogFormat = 'crypto-agile' | 'sha1';

/** TCG_EfiSpecIdEventAlgorithmSize (PFP 10.4.5.1). */
export interface SpecIdAlgorithm {
  readonly algorithmId: number;
  readonly digestSize: number;
}

/** TCG_EfiSpecIDEvent (PFP 10.4.5.1), the data of the log's first event. */
export interface TcgEfiSpecIdEvent {
  readonly platformClass: number;
  readonly specVersionMinor: number;
  readonly specVersionMajor: number;
  readonly specErrata: number;
  /** Octets of UINTN in UEFI structures: 4 (uintnSize 1) or 8 (uintnSize 2). */
  readonly uintnSize: 4 | 8;
  /** The algorithms every later event carries a digest for, in header order. */
  readonly digestSizes: readonly SpecIdAlgorithm[];
  readonly vendorInfo: Uint8Array;
}

/** One digest of a TCG_PCR_EVENT2 (TPMT_HA: hashAlg u16 + digest). */
export interface EventDigest {
  readonly hashAlg: number;
  readonly digest: Uint8Array;
}

/** One event as logged: untrusted until a replay has matched its PCR against a quote. */
export interface LoggedEvent {
  /** Position in the log: 0 is the Spec ID header event, real events count from 1. */
  readonly sequence: number;
  /** Byte offset of the event in the log. */
  readonly offset: number;
  readonly pcrIndex: number;
  readonly eventType: number;
  /** One digest per log algorithm, in the order the event lists them. */
  readonly digests: readonly EventDigest[];
  /** The event data (zero-copy view of the log). */
  readonly data: Uint8Array;
}

/** A parsed log. Untrusted: what the agent sent, proven by nothing yet. */
export interface EventLog {
  readonly format: EventLogFormat;
  /** The Spec ID header of a crypto-agile log; null for a SHA-1 format log, which has none. */
  readonly specId: TcgEfiSpecIdEvent | null;
  /** The banks every event carries a digest for: the Spec ID event's list, or SHA-1 alone for a SHA-1 format log. */
  readonly algorithms: readonly SpecIdAlgorithm[];
  /** Octets of UINTN in the UEFI structures of event data (the Spec ID event's, else 8). */
  readonly uintnSize: 4 | 8;
  /** The events after the header (every event of a SHA-1 format log), in log order, EV_NO_ACTION ones included. */
  readonly events: readonly LoggedEvent[];
  /** StartupLocality (PFP 10.4.5.3) when logged: the locality TPM2_Startup came from, which seeds PCR 0. */
  readonly startupLocality: number | null;
  /** The log's size in octets. */
  readonly size: number;
}

function malformed(message: string, details: Record<string, number>): BulwarkError {
  return new BulwarkError('EVENTLOG_MALFORMED', message, details);
}

/**
 * Decodes TCG_EfiSpecIDEvent (PFP 10.4.5.1): signature[16] "Spec ID Event03\0",
 * platformClass u32, specVersionMinor u8, specVersionMajor u8, specErrata u8, uintnSize u8,
 * numberOfAlgorithms u32, digestSizes[n] {algorithmId u16, digestSize u16}, vendorInfoSize u8,
 * vendorInfo. Known algorithms must state their real size; every size is 1..64.
 */
export function decodeTcgEfiSpecIdEvent(data: Uint8Array, base: number): TcgEfiSpecIdEvent {
  const r = new ByteReader(data, 'EVENTLOG_TRUNCATED');
  const signature = latin1(r.bytesN(16, 'TCG_EfiSpecIDEvent.signature'));
  if (signature !== SPEC_ID_EVENT03_SIGNATURE) {
    throw malformed(`not a crypto-agile log: the first event's signature is ${JSON.stringify(signature.replace(/\0+$/, '').slice(0, 16))}, not "Spec ID Event03"`, {
      offset: base,
    });
  }
  const platformClass = r.u32le('platformClass');
  const specVersionMinor = r.u8('specVersionMinor');
  const specVersionMajor = r.u8('specVersionMajor');
  const specErrata = r.u8('specErrata');
  const uintnAt = base + r.offset;
  const uintn = r.u8('uintnSize');
  if (uintn !== 1 && uintn !== 2) throw malformed(`uintnSize is ${uintn}, not 1 (UINT32) or 2 (UINT64)`, { offset: uintnAt, uintnSize: uintn });
  const countAt = base + r.offset;
  const count = r.u32le('numberOfAlgorithms');
  if (count === 0 || count > MAX_LOG_ALGORITHMS) {
    throw malformed(`the Spec ID event lists ${count} algorithms, not 1..${MAX_LOG_ALGORITHMS}`, { offset: countAt, count });
  }
  const digestSizes: SpecIdAlgorithm[] = [];
  for (let i = 0; i < count; i++) {
    const at = base + r.offset;
    const algorithmId = r.u16le('algorithmId');
    const digestSize = r.u16le('digestSize');
    const known = TCG_DIGEST_SIZES.get(algorithmId);
    if ((known !== undefined && known !== digestSize) || digestSize === 0 || digestSize > 64) {
      throw malformed(`algorithm 0x${algorithmId.toString(16)} is listed with digest size ${digestSize}`, { offset: at, algorithmId, digestSize });
    }
    if (digestSizes.some((a) => a.algorithmId === algorithmId)) throw malformed(`algorithm 0x${algorithmId.toString(16)} is listed twice`, { offset: at, algorithmId });
    digestSizes.push({ algorithmId, digestSize });
  }
  const vendorInfoSize = r.u8('vendorInfoSize');
  const vendorInfo = r.bytesN(vendorInfoSize, 'vendorInfo');
  if (!r.atEnd) throw malformed(`${r.remaining} octets after the Spec ID event's vendorInfo`, { offset: base + r.offset });
  return { platformClass, specVersionMinor, specVersionMajor, specErrata, uintnSize: uintn === 2 ? 8 : 4, digestSizes, vendorInfo };
}

/** Reads an event's u32 EventSize and its data, telling a hostile size from a cut-off log. */
function readEventData(r: ByteReader, at: number): Uint8Array {
  const sizeAt = r.offset;
  const size = r.u32le('EventSize');
  if (size > MAX_EVENT_DATA_SIZE) {
    throw malformed(`event at offset ${at} declares ${size} octets of data, more than the cap of ${MAX_EVENT_DATA_SIZE}`, { offset: sizeAt, size });
  }
  if (size > r.remaining) {
    throw new BulwarkError('EVENTLOG_TRUNCATED', `event at offset ${at} declares ${size} octets of data but the log ends ${r.remaining} octets later`, {
      offset: sizeAt,
      size,
      left: r.remaining,
    });
  }
  return r.bytesN(size, 'Event');
}

/** What every measured or no-action event must satisfy, in either format. */
class EventRules {
  startupLocality: number | null = null;
  private pcr0Measured = false;

  /**
   * A measured event names PCR 0–23; StartupLocality (PFP 10.4.5.3: signature + one octet)
   * may come once, before anything is measured into PCR 0.
   */
  check(sequence: number, offset: number, pcrIndex: number, eventType: number, data: Uint8Array): void {
    if (eventType === TCG_EVENT_TYPE.EV_NO_ACTION) {
      if (data.length === 17 && latin1(data.subarray(0, 16)) === STARTUP_LOCALITY_SIGNATURE) {
        if (this.startupLocality !== null || this.pcr0Measured) {
          throw malformed(`event ${sequence}: a StartupLocality event ${this.startupLocality !== null ? 'after another one' : 'after PCR 0 was extended'}`, { offset, sequence });
        }
        this.startupLocality = data[16] ?? 0;
      }
      return;
    }
    if (pcrIndex > MAX_EVENT_PCR_INDEX) throw malformed(`event ${sequence} at offset ${offset} is measured into PCR ${pcrIndex}`, { offset, sequence, pcrIndex });
    if (pcrIndex === 0) this.pcr0Measured = true;
  }
}

/** Whether event data is a TCG_EfiSpecIDEvent of a crypto-agile log (its signature, PFP 10.4.5.1). */
function isSpecIdEvent03(data: Uint8Array): boolean {
  return data.length >= 16 && latin1(data.subarray(0, 16)) === SPEC_ID_EVENT03_SIGNATURE;
}

/** TCG_PCClientPCREvent (PFP 10.2.1): PCRIndex u32, EventType u32, Digest[20] (SHA-1), EventDataSize u32, Event. */
function decodeTcgPcClientPcrEvent(r: ByteReader, sequence: number): LoggedEvent {
  const offset = r.offset;
  const pcrIndex = r.u32le('TCG_PCClientPCREvent.PCRIndex');
  const eventType = r.u32le('TCG_PCClientPCREvent.EventType');
  const digest = r.bytesN(SHA1_DIGEST_SIZE, 'TCG_PCClientPCREvent.Digest');
  const data = readEventData(r, offset);
  return { sequence, offset, pcrIndex, eventType, digests: [{ hashAlg: TPM_ALG_SHA1, digest }], data };
}

/**
 * Parses an event log in either format (see the module comment), told apart by the first
 * event: an EV_NO_ACTION in PCR 0 whose data is a TCG_EfiSpecIDEvent ("Spec ID Event03")
 * starts a crypto-agile log, anything else is the first event of a SHA-1 format log (as
 * go-attestation decides). Crypto-agile events must carry exactly one digest per algorithm
 * of the Spec ID event, in any order; in both formats measured events must name PCR 0–23
 * and a StartupLocality event may appear once, before anything is measured into PCR 0. A
 * cut-off log raises EVENTLOG_TRUNCATED, anything else that does not fit
 * EVENTLOG_MALFORMED; event data is not decoded here (see decodeEventData). Untrusted
 * input, untrusted result: a SHA-1 format log parses, and whether SHA-1 alone may make a
 * node trusted is the measured-boot policy's decision (EVENTLOG_SHA1_ONLY).
 */
export function parseEventLog(bytes: Uint8Array): EventLog {
  if (bytes.length > MAX_EVENT_LOG_SIZE) {
    throw malformed(`event log of ${bytes.length} octets is larger than the cap of ${MAX_EVENT_LOG_SIZE}`, { size: bytes.length });
  }
  if (bytes.length === 0) throw new BulwarkError('EVENTLOG_TRUNCATED', 'the event log is empty', { offset: 0 });
  const r = new ByteReader(bytes, 'EVENTLOG_TRUNCATED');
  const first = decodeTcgPcClientPcrEvent(r, 1);
  if (first.eventType === TCG_EVENT_TYPE.EV_NO_ACTION && isSpecIdEvent03(first.data)) {
    if (first.pcrIndex !== 0) throw malformed(`the Spec ID event is logged in PCR ${first.pcrIndex}, not PCR 0`, { offset: 0, pcrIndex: first.pcrIndex });
    const specId = decodeTcgEfiSpecIdEvent(first.data, first.data.byteOffset - bytes.byteOffset);
    return parseCryptoAgileEvents(r, specId, bytes.length);
  }
  return parseSha1Events(r, first, bytes.length);
}

/** The rest of a SHA-1 format log: TCG_PCClientPCREvent records after `first`. */
function parseSha1Events(r: ByteReader, first: LoggedEvent, size: number): EventLog {
  const rules = new EventRules();
  const events: LoggedEvent[] = [];
  let event = first;
  for (;;) {
    rules.check(event.sequence, event.offset, event.pcrIndex, event.eventType, event.data);
    events.push(event);
    if (r.atEnd) break;
    event = decodeTcgPcClientPcrEvent(r, event.sequence + 1);
  }
  return {
    format: 'sha1',
    specId: null,
    algorithms: [{ algorithmId: TPM_ALG_SHA1, digestSize: SHA1_DIGEST_SIZE }],
    uintnSize: SHA1_LOG_UINTN_SIZE,
    events,
    startupLocality: rules.startupLocality,
    size,
  };
}

/** The TCG_PCR_EVENT2 records after a crypto-agile log's Spec ID event (PFP 10.2.2). */
function parseCryptoAgileEvents(r: ByteReader, specId: TcgEfiSpecIdEvent, size: number): EventLog {
  const sizeOf = new Map(specId.digestSizes.map((a) => [a.algorithmId, a.digestSize]));
  const algCount = specId.digestSizes.length;
  const rules = new EventRules();
  const events: LoggedEvent[] = [];
  let sequence = 0;
  while (!r.atEnd) {
    sequence++;
    const offset = r.offset;
    const pcrIndex = r.u32le('TCG_PCR_EVENT2.PCRIndex');
    const eventType = r.u32le('TCG_PCR_EVENT2.EventType');
    const countAt = r.offset;
    const count = r.u32le('TPML_DIGEST_VALUES.count');
    if (count !== algCount) {
      throw malformed(`event ${sequence} at offset ${offset} carries ${count} digests; the Spec ID event lists ${algCount} algorithms`, {
        offset: countAt,
        sequence,
        count,
      });
    }
    const digests: EventDigest[] = [];
    for (let i = 0; i < count; i++) {
      const algAt = r.offset;
      const hashAlg = r.u16le('TPMT_HA.hashAlg');
      const digestSize = sizeOf.get(hashAlg);
      if (digestSize === undefined || digests.some((d) => d.hashAlg === hashAlg)) {
        throw malformed(`event ${sequence} carries a digest of algorithm 0x${hashAlg.toString(16)} ${digestSize === undefined ? 'that the Spec ID event does not list' : 'twice'}`, {
          offset: algAt,
          sequence,
          hashAlg,
        });
      }
      digests.push({ hashAlg, digest: r.bytesN(digestSize, 'TPMT_HA.digest') });
    }
    const data = readEventData(r, offset);
    rules.check(sequence, offset, pcrIndex, eventType, data);
    events.push({ sequence, offset, pcrIndex, eventType, digests, data });
  }
  return {
    format: 'crypto-agile',
    specId,
    algorithms: specId.digestSizes,
    uintnSize: specId.uintnSize,
    events,
    startupLocality: rules.startupLocality,
    size,
  };
}
