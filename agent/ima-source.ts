/**
 * The IMA measurement list as evidence, shipped incrementally: each round carries the
 * bytes after the entry and offset the controller last acknowledged (read after the
 * quote, so the list is never behind it), and a round is pushed at once when the list
 * grows. The acknowledged position is kept in the data directory with the boot id, so an
 * agent restart resumes instead of resending the whole list.
 */
import { open, readFile, rename, writeFile } from 'node:fs/promises';
import { Backoff, type BackoffPolicy } from '../lib/index.js';
import { Type, type Static } from '@sinclair/typebox';
import { verdictOf, type ImaFormat } from '../lib/attestation/index.js';
import { defineDocument } from '../lib/schema/index.js';
import { WIRE_LIMITS, type EvidenceReplyMsg } from '../proto/index.js';
import type { EvidenceSource, SourceFields } from './evidence-source.js';

export interface ImaSourceOptions {
  readonly path: string;
  readonly format: ImaFormat;
  /** File remembering the acknowledged position (and the boot it belongs to). */
  readonly statePath: string;
  readonly bootId: () => Promise<string>;
  /** How often the list is checked for growth. */
  readonly pollMs?: number;
  /** Most bytes sent in one round. */
  readonly maxChunk?: number;
}

/**
 * Waits before asking again for entries sent past the quote: the kernel extends PCR 10 just
 * after it appends the list entry, so a few short jittered waits (ceilings 20 ms doubling
 * to 320 ms) usually suffice; after MAX_UNVERIFIED_RETRIES the interval timer takes over.
 */
const UNVERIFIED_BACKOFF: BackoffPolicy = { baseMs: 20, capMs: 320 };
const MAX_UNVERIFIED_RETRIES = 5;

interface Position {
  readonly entry: number;
  readonly offset: number;
}

/** The acknowledged position as saved in the data directory; written without `version` before it existed. */
export const ImaPositionSchema = Type.Object(
  {
    version: Type.Optional(Type.Literal(1)),
    bootId: Type.String({ maxLength: 128 }),
    entry: Type.Integer({ minimum: 0 }),
    offset: Type.Integer({ minimum: 0 }),
  },
  { additionalProperties: false },
);

const IMA_POSITION = defineDocument(ImaPositionSchema, 'saved IMA position', 'STORE_CORRUPT');

export class ImaSource implements EvidenceSource {
  readonly name = 'ima';
  private readonly opts: ImaSourceOptions;
  private acked: Position = { entry: 0, offset: 0 };
  private loaded = false;
  /** The boot the acknowledged position belongs to: a new boot starts a new list. */
  private boot = '';
  /** Bytes of the list seen so far (the end of the last read). */
  private seenEnd = 0;
  private timer: NodeJS.Timeout | null = null;
  private polling = false;
  private trigger: (() => void) | null = null;
  /** The list end a follow-up round was last asked for. */
  private retriggeredAt = -1;
  private readonly retries = new Backoff(UNVERIFIED_BACKOFF);

  constructor(opts: ImaSourceOptions) {
    this.opts = opts;
  }

  private async load(): Promise<void> {
    const boot = await this.opts.bootId();
    if (this.loaded && boot !== this.boot) {
      this.acked = { entry: 0, offset: 0 };
      this.seenEnd = 0;
    }
    this.boot = boot;
    if (this.loaded) return;
    this.loaded = true;
    try {
      const saved = IMA_POSITION.parseJson(await readFile(this.opts.statePath), this.opts.statePath);
      if (saved.bootId === boot) this.acked = { entry: saved.entry, offset: saved.offset };
    } catch {
      // No saved position (first start), or one that does not decode: from the beginning.
      // Safe either way: the controller acknowledges only what it verified and says where to resume.
    }
  }

  /** Reads the list from `offset`, at most `max` bytes; null when there is no list. */
  private async readFrom(offset: number, max: number): Promise<Uint8Array | null> {
    let handle;
    try {
      handle = await open(this.opts.path, 'r');
    } catch {
      return null;
    }
    try {
      const buf = Buffer.alloc(max + 1);
      let total = 0;
      while (total < buf.length) {
        const { bytesRead } = await handle.read(buf, total, buf.length - total, offset + total);
        if (bytesRead === 0) break;
        total += bytesRead;
      }
      return new Uint8Array(buf.buffer, buf.byteOffset, total);
    } finally {
      await handle.close();
    }
  }

  async collect(): Promise<SourceFields> {
    await this.load();
    const max = this.opts.maxChunk ?? WIRE_LIMITS.imaChunk;
    const bytes = await this.readFrom(this.acked.offset, max);
    if (bytes === null) return {};
    const more = bytes.length > max;
    let chunk = more ? bytes.subarray(0, max) : bytes;
    if (this.opts.format === 'ascii') {
      // Whole lines only; a line still being written waits for the next round.
      const lastNewline = chunk.lastIndexOf(0x0a);
      chunk = chunk.subarray(0, lastNewline + 1);
    }
    this.seenEnd = Math.max(this.seenEnd, this.acked.offset + chunk.length);
    return { imaFormat: this.opts.format, imaFromEntry: this.acked.entry, imaFromOffset: this.acked.offset, imaEntries: chunk, imaMore: more };
  }

  reset(): void {
    this.acked = { entry: 0, offset: 0 };
    this.seenEnd = 0;
    void this.save();
  }

  acknowledge(reply: EvidenceReplyMsg, sent: SourceFields): void {
    const verdict = verdictOf(reply.verdict);
    if (sent.imaFormat === undefined || (verdict !== 'trusted' && verdict !== 'untrusted')) return;
    const wentBack = reply.imaOffset < (sent.imaFromOffset ?? 0);
    const sentEnd = (sent.imaFromOffset ?? 0) + (sent.imaEntries?.length ?? 0);
    this.acked = { entry: reply.imaEntry, offset: reply.imaOffset };
    void this.save();
    // Go on at once when the controller wants older entries again or more than one round
    // carried; when entries sent were past the quote (read after it), soon again, so the next
    // quote covers them: at most five times per list end, so a controller that does not
    // advance is not asked in a loop.
    if (sentEnd !== this.retriggeredAt) {
      this.retriggeredAt = sentEnd;
      this.retries.reset();
    }
    const unverified = reply.imaOffset < sentEnd && this.retries.attempt < MAX_UNVERIFIED_RETRIES;
    if (wentBack || sent.imaMore === true) this.trigger?.();
    else if (unverified) {
      // The extend follows the list entry: give the TPM a moment, a few times, then the timer.
      setTimeout(() => this.trigger?.(), this.retries.next().delayMs).unref();
    }
  }

  private async save(): Promise<void> {
    try {
      const tmp = `${this.opts.statePath}.tmp`;
      const saved: Static<typeof ImaPositionSchema> = { version: 1, bootId: this.boot, ...this.acked };
      await writeFile(tmp, JSON.stringify(saved), { mode: 0o600 });
      await rename(tmp, this.opts.statePath);
    } catch {
      // Losing the position costs one resend from an older offset, nothing more.
    }
  }

  /** Polls the list for bytes past what was last read; a growth triggers a round at once. */
  start(trigger: () => void): void {
    this.trigger = trigger;
    const pollMs = this.opts.pollMs ?? 100;
    this.timer = setInterval(() => {
      if (this.polling) return;
      this.polling = true;
      void this.readFrom(Math.max(this.seenEnd, this.acked.offset), 0)
        .then((b) => {
          if (b !== null && b.length > 0) {
            this.seenEnd = Math.max(this.seenEnd, this.acked.offset) + 1;
            trigger();
          }
        })
        .finally(() => {
          this.polling = false;
        });
    }, pollMs);
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }
}
