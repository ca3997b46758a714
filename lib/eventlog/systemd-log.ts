/**
 * systemd's userspace measurement log, `/run/log/systemd/tpm2-measure.log`: what
 * systemd-pcrextend (boot phases, machine id, file systems) and systemd-cryptsetup (volume
 * keys) extended into PCRs 11 and 15 after ExitBootServices(), where the firmware log no
 * longer records anything. The format is TCG Canonical Event Log JSON (TCG CEL 1.0, 5.2
 * "CEL-JSON") written as a JSON text sequence (RFC 7464): each record is 0x1E, one JSON
 * object, 0x0A. systemd's records (docs/TPM2_PCR_MEASUREMENTS.md, src/shared/tpm2-util.c
 * tpm2_userspace_log) carry `pcr`, `digests` [{hashAlg, digest}] and `content_type:
 * "systemd"` with `content` {eventType, string, bootId, timestamp}.
 *
 * Parsing is not trusting: every record goes through the schema layer and the caps below;
 * only a replay against a quote (replaySystemdBoot) makes its digests evidence. The
 * `content.string` a record shows is evidence only where the digest is over it
 * (systemdRecordPayload): phases, machine id and file systems are; volume keys are not.
 */
import { Type, type Static } from '@sinclair/typebox';
import { fromHex } from '../bytes.js';
import { BulwarkError } from '../errors.js';
import { defineDocument, literalUnion, parseJsonText } from '../schema/index.js';
import { HASH_ALGS_BY_NAME, HASH_ALG_NAMES, type HashAlgName } from '../tpm/index.js';

/** Largest systemd measurement log parsed (a boot logs 5-20 records of 200-400 octets). */
export const MAX_SYSTEMD_LOG_SIZE = 32 * 1024;

/** Most records in one log. */
export const MAX_SYSTEMD_LOG_RECORDS = 128;

/** Longest `content.string` of a record (file system identities are the longest systemd writes). */
export const MAX_SYSTEMD_RECORD_STRING = 4096;

/** RFC 7464 record separator. */
const RS = 0x1e;
const LF = 0x0a;

const WHAT = 'systemd measurement log record';
const CODE = 'SYSTEMD_LOG_MALFORMED';

/** The `content.eventType` values systemd writes (src/shared/tpm2-util.h Tpm2UserspaceEventType); unknown ones stay strings. */
export const SYSTEMD_EVENT_TYPE = {
  phase: 'phase',
  machineId: 'machine-id',
  fileSystem: 'filesystem',
  volumeKey: 'volume-key',
  productId: 'product-id',
  keyslot: 'keyslot',
  nvpcrInit: 'nvpcr-init',
  nvpcrSeparator: 'nvpcr-separator',
} as const;

/**
 * One CEL-JSON record as systemd writes it. systemd 257 writes no `recnum` (CEL makes it
 * optional in systemd's profile) and adds `bootId` and `timestamp` (CLOCK_BOOTTIME, µs) to
 * `content`. Keys a later systemd adds to `content` are kept out of the type but allowed
 * (short strings and integers only), so an update of systemd does not make a host's
 * evidence unreadable; the digests, PCR and content type are strict.
 */
export const SystemdLogRecordSchema = Type.Object(
  {
    recnum: Type.Optional(Type.Integer({ minimum: 0, maximum: 0xffffffff, description: 'CEL record number (systemd 257 writes none).' })),
    pcr: Type.Integer({ minimum: 0, maximum: 23, description: 'The PCR the record extended.' }),
    digests: Type.Array(
      Type.Object(
        {
          hashAlg: literalUnion(HASH_ALG_NAMES),
          digest: Type.String({ pattern: '^[0-9a-fA-F]+$', maxLength: 128 }),
        },
        { additionalProperties: false },
      ),
      { minItems: 1, maxItems: HASH_ALG_NAMES.length },
    ),
    content_type: Type.Literal('systemd'),
    content: Type.Object(
      {
        eventType: Type.Optional(Type.String({ maxLength: 64 })),
        string: Type.Optional(Type.String({ maxLength: MAX_SYSTEMD_RECORD_STRING })),
        bootId: Type.Optional(Type.String({ pattern: '^[0-9a-f]{32}$' })),
        timestamp: Type.Optional(Type.Integer({ minimum: 0 })),
      },
      { additionalProperties: Type.Union([Type.String({ maxLength: 256 }), Type.Integer()]), maxProperties: 16 },
    ),
  },
  { additionalProperties: false },
);

const RECORD = defineDocument(SystemdLogRecordSchema, WHAT, CODE);

/** One digest of a record, decoded. */
export interface SystemdRecordDigest {
  readonly hashAlg: number;
  readonly digest: Uint8Array;
}

/** One record of the log: structure only, proven by nothing until replayed. */
export interface SystemdLogRecord {
  /** Position in the log, from 0. */
  readonly index: number;
  /** CEL recnum, null when absent (systemd 257). */
  readonly recnum: number | null;
  readonly pcr: number;
  readonly digests: readonly SystemdRecordDigest[];
  /** `content.eventType`, "" when absent. */
  readonly eventType: string;
  /** `content.string`, null when absent. */
  readonly string: string | null;
  /** `content.bootId` (the boot the record was written in), null when absent. */
  readonly bootId: string | null;
}

/** A parsed systemd measurement log. Untrusted. */
export interface SystemdLog {
  readonly records: readonly SystemdLogRecord[];
}

function malformed(message: string, details: Record<string, number> = {}): BulwarkError {
  return new BulwarkError(CODE, `systemd measurement log: ${message}`, details);
}

function decodeRecord(json: Uint8Array, index: number, offset: number): SystemdLogRecord {
  const source = `record ${index} at octet ${offset}`;
  const r: Static<typeof SystemdLogRecordSchema> = RECORD.parse(parseJsonText(json, WHAT, CODE, source, MAX_SYSTEMD_LOG_SIZE), source);
  const seen = new Set<number>();
  const digests = r.digests.map((d, i) => {
    const info = HASH_ALGS_BY_NAME.get(d.hashAlg satisfies HashAlgName);
    if (info === undefined) throw malformed(`${source}: unknown hash algorithm`, { index });
    if (seen.has(info.alg)) throw malformed(`${source}: two ${d.hashAlg} digests`, { index });
    seen.add(info.alg);
    if (d.digest.length !== info.size * 2) throw malformed(`${source}: digest ${i} is not ${info.size} octets of ${d.hashAlg}`, { index });
    return { hashAlg: info.alg, digest: fromHex(d.digest) };
  });
  return {
    index,
    recnum: r.recnum ?? null,
    pcr: r.pcr,
    digests,
    eventType: r.content.eventType ?? '',
    string: r.content.string ?? null,
    bootId: r.content.bootId ?? null,
  };
}

/**
 * Parses the log's bytes (RFC 7464: every record is RS, a JSON text, LF). Untrusted bytes
 * in; SYSTEMD_LOG_MALFORMED out for anything else: a record cut off (no LF, as a log read
 * while systemd appends), a text outside a record, more than MAX_SYSTEMD_LOG_SIZE octets or
 * MAX_SYSTEMD_LOG_RECORDS records, a record of another schema, record numbers (where
 * present) that do not increase. An empty log is valid (a boot without systemd measurements).
 */
export function parseSystemdLog(bytes: Uint8Array): SystemdLog {
  if (bytes.length > MAX_SYSTEMD_LOG_SIZE) throw malformed(`larger than ${MAX_SYSTEMD_LOG_SIZE} octets`, { size: bytes.length });
  const records: SystemdLogRecord[] = [];
  let pos = 0;
  while (pos < bytes.length) {
    if (bytes[pos] !== RS) throw malformed(`octet ${pos} is not a record separator (0x1E)`, { offset: pos });
    const start = pos + 1;
    let end = bytes.indexOf(RS, start);
    if (end < 0) end = bytes.length;
    if (end === start || bytes[end - 1] !== LF) throw malformed(`the record at octet ${pos} does not end with a line feed (cut off)`, { offset: pos });
    if (records.length === MAX_SYSTEMD_LOG_RECORDS) throw malformed(`more than ${MAX_SYSTEMD_LOG_RECORDS} records`, { records: records.length });
    const record = decodeRecord(bytes.subarray(start, end - 1), records.length, pos);
    const last = records[records.length - 1];
    if (last !== undefined && record.recnum !== null && last.recnum !== null && record.recnum <= last.recnum) throw malformed(`record ${record.index}: recnum ${record.recnum} does not follow ${last.recnum}`, { index: record.index });
    records.push(record);
    pos = end;
  }
  return { records };
}

/** The PCRs a log extends. */
export function systemdLogPcrs(log: SystemdLog): Set<number> {
  return new Set(log.records.map((r) => r.pcr));
}

/**
 * What a record's digest covers, when it covers its shown string: systemd measures the
 * phase, "machine-id:<id>", "file-system:<...>" and the other string events as UTF-8 without
 * a trailing NUL (TPM2_PCR_MEASUREMENTS.md); a volume key is an HMAC, not over the string.
 */
export function systemdRecordPayload(record: SystemdLogRecord): Uint8Array | null {
  if (record.string === null || record.eventType === SYSTEMD_EVENT_TYPE.volumeKey) return null;
  return new TextEncoder().encode(record.string);
}
