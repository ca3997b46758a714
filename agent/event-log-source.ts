/**
 * The UEFI event log as evidence: its sha256 goes with every round, its bytes only when
 * the controller has not acknowledged that digest (after a reboot, or when the
 * controller lost it). The log is read after the quote, so it is never behind it.
 */
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { BulwarkError } from '../lib/index.js';
import { WIRE_LIMITS } from '../proto/index.js';
import type { EvidenceSource, SourceFields } from './evidence-source.js';
import type { EvidenceReplyMsg } from '../proto/index.js';

/** Reads a whole securityfs-style file (its size is reported as 0, so read until EOF), capped. */
export async function readCapped(path: string, cap: number, what: string): Promise<Uint8Array> {
  const handle = await open(path, 'r').catch((err: unknown) => {
    throw new BulwarkError('IO_FAILED', `cannot open the ${what} ${path}`, {}, { cause: err });
  });
  try {
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const buf = Buffer.alloc(64 * 1024);
      const { bytesRead } = await handle.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      total += bytesRead;
      if (total > cap) throw new BulwarkError('IO_FAILED', `the ${what} ${path} is larger than ${cap} bytes`, { cap });
      chunks.push(buf.subarray(0, bytesRead));
    }
    return new Uint8Array(Buffer.concat(chunks, total));
  } finally {
    await handle.close();
  }
}

export class EventLogSource implements EvidenceSource {
  readonly name = 'event-log';
  private readonly path: string;
  private acked = '';

  constructor(path: string) {
    this.path = path;
  }

  async collect(): Promise<SourceFields> {
    let log: Uint8Array;
    try {
      log = await readCapped(this.path, WIRE_LIMITS.eventLog, 'event log');
    } catch (err) {
      // No log (no TPM event log in securityfs): the controller decides what that means.
      if (err instanceof BulwarkError && err.cause instanceof Error && 'code' in err.cause && err.cause.code === 'ENOENT') return {};
      throw err;
    }
    const sha256 = createHash('sha256').update(log).digest('hex');
    return sha256 === this.acked ? { eventLogSha256: sha256 } : { eventLogSha256: sha256, eventLog: log };
  }

  reset(): void {
    this.acked = '';
  }

  acknowledge(reply: EvidenceReplyMsg, sent: SourceFields): void {
    // The controller says which log it holds; anything else means "send it again".
    this.acked = reply.eventLogSha256 !== '' && reply.eventLogSha256 === sent.eventLogSha256 ? reply.eventLogSha256 : '';
  }
}
