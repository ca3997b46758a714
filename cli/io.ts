/**
 * Where bulwarkctl reads and writes: the captured streams of one run, input files, output
 * files written atomically, and the AK public key. Every failure is a coded BulwarkError
 * (a missing or unreadable input file is IO_FAILED, exit 3), never a stack trace.
 */
import { createPublicKey, randomBytes, type KeyObject } from 'node:crypto';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { BulwarkError } from '../lib/index.js';

/** The streams and environment of one bulwarkctl run; tests pass captured ones. */
export interface CtlIo {
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Aborts `watch`. */
  readonly signal?: AbortSignal;
}

/** Reads an input file; a missing or unreadable one is IO_FAILED (exit 3), never a stack trace. */
export async function readInput(path: string, what: string): Promise<Uint8Array> {
  try {
    const buf = await readFile(path);
    // A plain Uint8Array view: JSON output renders bytes as hex, not as Buffer's toJSON.
    return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  } catch (err) {
    throw new BulwarkError('IO_FAILED', `cannot read ${what} file ${path}`, {}, { cause: err });
  }
}

/** Reads an input file as text (invalid UTF-8 becomes U+FFFD; the document's parser judges it). */
export async function readTextInput(path: string, what: string): Promise<string> {
  return new TextDecoder('utf-8', { fatal: false }).decode(await readInput(path, what));
}

/** Writes `text` to `path` atomically (a temporary file renamed over it), or to stdout without a path. */
export async function writeOutput(io: CtlIo, path: string | undefined, text: string): Promise<void> {
  if (path === undefined) {
    io.out(text);
    return;
  }
  const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    await writeFile(tmp, text, { mode: 0o644 });
    await rename(tmp, path);
  } catch (err) {
    throw new BulwarkError('IO_FAILED', `cannot write ${path}`, {}, { cause: err });
  }
}

/** Loads an AK public key (PEM, as tpm2_readpublic -f pem writes it); anything else is KEY_INVALID. */
export async function loadAkPublicKey(path: string): Promise<KeyObject> {
  const pem = await readInput(path, 'AK');
  try {
    return createPublicKey(Buffer.from(pem));
  } catch (err) {
    throw new BulwarkError('KEY_INVALID', `${path} is not a PEM public key`, {}, { cause: err });
  }
}

/** One JSON document on its own line. */
export function printJson(io: CtlIo, value: unknown, replacer?: (key: string, value: unknown) => unknown): void {
  io.out(`${JSON.stringify(value, replacer)}\n`);
}
