/** File input shared by the bulwarkctl commands. */
import { readFile } from 'node:fs/promises';
import { BulwarkError } from '../lib/index.js';

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
