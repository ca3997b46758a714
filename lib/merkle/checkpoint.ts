/**
 * C2SP tlog-checkpoint note text: origin, tree size (decimal, no leading zeros), base64
 * RFC 6962 root hash, then optional non-empty extension lines. Strict: every line is
 * non-empty and has no leading or trailing whitespace.
 */
import { BulwarkError } from '../errors.js';
import { decodeBase64Strict, encodeBase64 } from './base64.js';
import { MERKLE_HASH_SIZE } from './hash.js';
import { verifyNote, type NoteVerifier, type SignedNote, type VerifiedNote } from './note.js';

/** Most extension lines accepted after the root hash. */
export const CHECKPOINT_MAX_EXTENSIONS = 16;
/** Longest line of a checkpoint. */
export const CHECKPOINT_MAX_LINE = 1024;

export interface Checkpoint {
  readonly origin: string;
  readonly size: number;
  readonly rootHash: Uint8Array;
  readonly extensions: readonly string[];
}

const bad = (message: string, details: Record<string, string | number> = {}): BulwarkError =>
  new BulwarkError('CHECKPOINT_MALFORMED', `checkpoint: ${message}`, details);

/** Parses checkpoint note text (trusted only when it came from a VerifiedNote). */
export function parseCheckpointText(text: string): Checkpoint {
  if (!text.endsWith('\n')) throw bad('text does not end in a newline');
  const lines = text.slice(0, -1).split('\n');
  if (lines.length < 3) throw bad('has fewer than three lines', { lines: lines.length });
  if (lines.length > 3 + CHECKPOINT_MAX_EXTENSIONS) throw bad(`has more than ${CHECKPOINT_MAX_EXTENSIONS} extension lines`, { lines: lines.length });
  lines.forEach((line, i) => {
    if (line.length === 0) throw bad(`line ${i + 1} is empty`, { line: i + 1 });
    if (line.length > CHECKPOINT_MAX_LINE) throw bad(`line ${i + 1} is longer than ${CHECKPOINT_MAX_LINE}`, { line: i + 1 });
    if (line.trim() !== line) throw bad(`line ${i + 1} has leading or trailing whitespace`, { line: i + 1 });
  });
  const [origin = '', sizeText = '', rootText = '', ...extensions] = lines;
  if (!/^(?:0|[1-9][0-9]{0,15})$/.test(sizeText) || !Number.isSafeInteger(Number(sizeText))) {
    throw bad('tree size is not a decimal without leading zeros below 2^53');
  }
  const rootHash = decodeBase64Strict(rootText, 'CHECKPOINT_MALFORMED', 'checkpoint root hash', MERKLE_HASH_SIZE);
  if (rootHash.length !== MERKLE_HASH_SIZE) throw bad('root hash is not 32 bytes', { length: rootHash.length });
  return { origin, size: Number(sizeText), rootHash, extensions };
}

/** Formats checkpoint note text (what the log signs). */
export function formatCheckpointText(cp: Checkpoint): string {
  if (!Number.isSafeInteger(cp.size) || cp.size < 0) throw bad('tree size is not a non-negative safe integer');
  if (cp.rootHash.length !== MERKLE_HASH_SIZE) throw bad('root hash is not 32 bytes');
  const text = `${[cp.origin, String(cp.size), encodeBase64(cp.rootHash), ...cp.extensions].join('\n')}\n`;
  parseCheckpointText(text); // the same rules both ways
  return text;
}

/** A checkpoint whose note verified against trusted keys (and whose origin, when asked, matches). Trusted. */
export interface VerifiedCheckpoint {
  readonly checkpoint: Checkpoint;
  readonly note: VerifiedNote;
}

/** Verifies a signed checkpoint note and parses its text; `origin` (when given) must match. */
export function verifyCheckpoint(note: SignedNote | string | Uint8Array, verifiers: readonly NoteVerifier[], origin?: string): VerifiedCheckpoint {
  const verified = verifyNote(note, verifiers);
  const checkpoint = parseCheckpointText(verified.text);
  if (origin !== undefined && checkpoint.origin !== origin) {
    throw new BulwarkError('NOTE_UNTRUSTED', `checkpoint origin ${checkpoint.origin.slice(0, 200)} is not ${origin}`, { origin: checkpoint.origin.slice(0, 200) });
  }
  return { checkpoint, note: verified };
}
