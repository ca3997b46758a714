/**
 * The chain of this boot's encoded baseline reports, kept in the agent's data directory so
 * an agent restart within a boot continues the chain the baseline PCR already holds. One
 * append-only file per boot id (`baseline-reports/<boot>.log`); each record is a u32
 * big-endian length followed by the report's bytes, fsynced before the report is extended
 * into the PCR. Opening the log for a new boot id removes the files of earlier boots.
 */
import { createHash } from 'node:crypto';
import { mkdir, open, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { BulwarkError } from '../../lib/index.js';
import { MAX_REPORT_BYTES } from '../../lib/baseline/index.js';

/** Most reports one boot keeps (a report is written only when the state changes). */
export const MAX_REPORTS = 100_000;
/** A whole log read back at start. */
const MAX_LOG_BYTES = 512 * 1024 * 1024;

/** File name of a boot's log: the boot id when it is a plain token (a Linux boot id is a UUID), else its sha256. */
function logName(bootId: string): string {
  const token = /^[A-Za-z0-9-]{1,64}$/.test(bootId) ? bootId : createHash('sha256').update(bootId).digest('hex');
  return `${token}.log`;
}

/** The report chain of one boot as written by this agent (its own record, not evidence of anything until replayed against a quote). */
export class ReportLog {
  readonly bootId: string;
  private readonly path: string;
  private readonly entries: Uint8Array[];
  /** Bytes of whole records in the file. */
  private size: number;

  private constructor(bootId: string, path: string, entries: Uint8Array[], size: number) {
    this.bootId = bootId;
    this.path = path;
    this.entries = entries;
    this.size = size;
  }

  /**
   * Opens the log of `bootId` in `dir` (created 0700), reading back its records; the logs
   * of other boots are removed. A record cut short at the end (the agent stopped while
   * writing it, before it was extended) is dropped from the file; `droppedTail` says so.
   */
  static async open(dir: string, bootId: string): Promise<{ log: ReportLog; droppedTail: number }> {
    if (bootId.length === 0) throw new BulwarkError('USAGE', 'a report log needs a boot id');
    try {
      await mkdir(dir, { recursive: true, mode: 0o700 });
      const name = logName(bootId);
      for (const other of await readdir(dir)) {
        if (other !== name) await rm(join(dir, other), { force: true, recursive: true });
      }
      const path = join(dir, name);
      const handle = await open(path, 'a+', 0o600);
      try {
        const { size } = await handle.stat();
        if (size > MAX_LOG_BYTES) throw new BulwarkError('STORE_CORRUPT', `the report log ${path} is larger than ${MAX_LOG_BYTES} bytes`, { size });
        const bytes = Buffer.alloc(size);
        let read = 0;
        while (read < size) {
          const { bytesRead } = await handle.read(bytes, read, size - read, read);
          if (bytesRead === 0) break;
          read += bytesRead;
        }
        const { entries, end } = decodeRecords(bytes.subarray(0, read), path);
        if (end < size) {
          await handle.truncate(end);
          await handle.sync();
        }
        return { log: new ReportLog(bootId, path, entries, end), droppedTail: size - end };
      } finally {
        await handle.close();
      }
    } catch (err) {
      if (err instanceof BulwarkError) throw err;
      throw new BulwarkError('IO_FAILED', `cannot open the baseline report log in ${dir}: ${err instanceof Error ? err.message : String(err)}`, {}, { cause: err });
    }
  }

  /** The records, in chain order (position = seq). */
  get records(): readonly Uint8Array[] {
    return this.entries;
  }

  get length(): number {
    return this.entries.length;
  }

  /** Appends one record and fsyncs it; the chain in memory grows only once the record is on disk. */
  async append(report: Uint8Array): Promise<void> {
    if (report.length === 0 || report.length > MAX_REPORT_BYTES) throw new BulwarkError('USAGE', `a report of ${report.length} bytes (1-${MAX_REPORT_BYTES})`, { length: report.length });
    if (this.entries.length >= MAX_REPORTS) throw new BulwarkError('USAGE', `this boot's report log holds ${MAX_REPORTS} reports already`);
    const record = Buffer.alloc(4 + report.length);
    record.writeUInt32BE(report.length, 0);
    record.set(report, 4);
    try {
      const handle = await open(this.path, 'r+');
      try {
        // Written at the known end, so a failed earlier append leaves no half record in the chain.
        await handle.write(record, 0, record.length, this.size);
        await handle.truncate(this.size + record.length);
        await handle.sync();
      } finally {
        await handle.close();
      }
    } catch (err) {
      throw new BulwarkError('IO_FAILED', `cannot append to the report log ${this.path}: ${err instanceof Error ? err.message : String(err)}`, {}, { cause: err });
    }
    this.size += record.length;
    this.entries.push(new Uint8Array(report));
  }
}

/** The whole records of a log file and where they end; a bad length stops the chain there (STORE_CORRUPT unless it is the tail). */
function decodeRecords(bytes: Buffer, path: string): { entries: Uint8Array[]; end: number } {
  const entries: Uint8Array[] = [];
  let at = 0;
  while (at + 4 <= bytes.length) {
    const length = bytes.readUInt32BE(at);
    if (length === 0 || length > MAX_REPORT_BYTES) {
      throw new BulwarkError('STORE_CORRUPT', `the report log ${path} has a record of ${length} bytes at offset ${at}`, { offset: at, length });
    }
    if (at + 4 + length > bytes.length) break;
    if (entries.length >= MAX_REPORTS) throw new BulwarkError('STORE_CORRUPT', `the report log ${path} holds more than ${MAX_REPORTS} reports`);
    entries.push(new Uint8Array(bytes.subarray(at + 4, at + 4 + length)));
    at += 4 + length;
  }
  return { entries, end: at };
}
