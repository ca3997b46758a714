/**
 * The baseline key set an agent verifies baselines with, and its rotations.
 *
 * The agent pins a root in its config: a key set envelope (config baselineKeySet, what
 * `bulwarkctl keys init baseline` installed or any later set the operator trusts), or a PEM
 * file of public keys (config baselineKeys, from before key sets were distributed), taken as
 * a set of serial 0. The controller sends, with its evidence replies, the baseline key sets
 * accepted after the serial the agent reports; the agent walks them from the set it trusts
 * with lib/signing's rules (TUF specification §5.3: each signed by a threshold of the set
 * before it and of itself, serial above it), and stops at the first one refused, keeping the
 * set it reached. Every set accepted is appended to `baseline-keysets.json` in the data
 * directory (written to a temporary file, fsynced, renamed), so the highest serial reached
 * survives a restart and an older set cannot be replayed to the agent afterwards: at start
 * the chain is walked again from the pinned root. Entries at or below the root's serial
 * (the operator pinned a newer root since) are skipped.
 */
import { open, readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { Type } from '@sinclair/typebox';
import { BulwarkError, isBulwarkError } from '../../lib/index.js';
import { defineDocument } from '../../lib/schema/index.js';
import { acceptKeySetChain, type KeySet } from '../../lib/signing/index.js';
import type { Logger } from '../../daemon/index.js';

/** The most rotations the file keeps (rotations are rare: years of them). */
export const MAX_KEYSET_CHAIN = 1024;

const KeySetChainFileSchema = Type.Object(
  {
    version: Type.Literal(1),
    kind: Type.Literal('baseline'),
    /** The envelopes accepted after the root, oldest first, base64 of their bytes as received. */
    envelopes: Type.Array(Type.String({ maxLength: 512 * 1024, pattern: '^[A-Za-z0-9+/]*={0,2}$' }), { maxItems: MAX_KEYSET_CHAIN }),
  },
  { additionalProperties: false },
);

const KEYSET_CHAIN_FILE = defineDocument(KeySetChainFileSchema, 'baseline key set chain', 'STORE_CORRUPT');

/** What receive() made of a chain from the controller. */
export interface KeySetReceipt {
  /** Whether the set in force changed. */
  readonly changed: boolean;
  /** Why an envelope was refused (null: all accepted). */
  readonly refused: BulwarkError | null;
}

/** The baseline key set in force on this agent: the pinned root and the rotations walked from it. Trust: verified from the root. */
export class BaselineKeyTrust {
  private current: KeySet;
  private readonly root: KeySet;
  private readonly chain: Uint8Array[];
  private readonly path: string;
  private readonly log: Logger;
  private saving: Promise<void> = Promise.resolve();

  private constructor(root: KeySet, current: KeySet, chain: Uint8Array[], path: string, log: Logger) {
    this.root = root;
    this.current = current;
    this.chain = chain;
    this.path = path;
    this.log = log;
  }

  /**
   * Walks the stored chain again from `root`. A file that does not read or validate, or an
   * entry that does not verify, is said in a warn line; the entries before it are kept.
   */
  static async load(root: KeySet, dataDir: string, log: Logger): Promise<BaselineKeyTrust> {
    const path = join(dataDir, 'baseline-keysets.json');
    let bytes: Uint8Array | null = null;
    try {
      bytes = await readFile(path);
    } catch {
      // None yet: the root is in force.
    }
    let current = root;
    const kept: Uint8Array[] = [];
    if (bytes !== null) {
      let stored: Uint8Array[] = [];
      try {
        stored = KEYSET_CHAIN_FILE.parseJson(bytes, path).envelopes.map((b64) => new Uint8Array(Buffer.from(b64, 'base64')));
      } catch (err) {
        log.warn({ path, code: isBulwarkError(err) ? err.code : 'INTERNAL', error: err instanceof Error ? err.message : String(err) }, 'the stored baseline key set chain does not validate: starting again from the pinned root');
      }
      for (const envelope of stored) {
        // The replay does not judge expiry (-Infinity): verifying a baseline judges the set in force.
        const walked = acceptKeySetChain('baseline', current, [envelope], -Infinity);
        if (walked.refused === null) {
          current = walked.keyset;
          kept.push(envelope);
          continue;
        }
        // Sets up to the root's serial precede a root pinned since: not part of its chain.
        if (walked.refused.code === 'KEYSET_ROLLBACK' && current === root) continue;
        log.warn({ path, code: walked.refused.code, error: walked.refused.message, serial: current.document.serial }, 'a stored baseline key set does not follow from the one before it: the chain ends there');
        break;
      }
    }
    return new BaselineKeyTrust(root, current, kept, path, log);
  }

  /** The set baselines are verified with now. */
  get keyset(): KeySet {
    return this.current;
  }

  /** Its serial (0: the pinned PEM keys, no rotation walked yet). */
  get serial(): number {
    return this.current.document.serial;
  }

  /** The serial of the pinned root. */
  get rootSerial(): number {
    return this.root.document.serial;
  }

  /**
   * Walks key set envelopes from the controller (oldest first) from the set in force: those
   * accepted become the set in force and are saved; the first refused (forged, under a
   * threshold, a rollback) ends the walk and is returned. Never throws.
   */
  receive(envelopes: readonly Uint8Array[], now: number): KeySetReceipt {
    if (envelopes.length === 0) return { changed: false, refused: null };
    const walked = acceptKeySetChain('baseline', this.current, envelopes, now);
    if (walked.accepted > 0) {
      this.current = walked.keyset;
      this.chain.push(...envelopes.slice(0, walked.accepted));
      const snapshot = [...this.chain];
      this.saving = this.saving
        .then(() => this.save(snapshot))
        .catch((err: unknown) => {
          this.log.warn({ path: this.path, error: err instanceof Error ? err.message : String(err) }, 'cannot save the baseline key set chain: the rotation is held in memory only');
        });
    }
    return { changed: walked.accepted > 0, refused: walked.refused };
  }

  /** Resolves when every accepted set is on disk (or its save failed, said in a warn line). */
  async saved(): Promise<void> {
    await this.saving;
  }

  private async save(chain: readonly Uint8Array[]): Promise<void> {
    if (chain.length > MAX_KEYSET_CHAIN) throw new BulwarkError('STORE_CORRUPT', `more than ${MAX_KEYSET_CHAIN} rotations to keep`);
    const text = `${JSON.stringify({ version: 1, kind: 'baseline', envelopes: chain.map((e) => Buffer.from(e).toString('base64')) })}\n`;
    const tmp = `${this.path}.tmp`;
    const handle = await open(tmp, 'w', 0o600);
    try {
      await handle.write(text);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, this.path);
  }
}
