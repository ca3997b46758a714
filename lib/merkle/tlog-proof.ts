/**
 * C2SP tlog-proof (c2sp.org/tlog-proof@v1): an offline proof that one entry is in a log —
 * header line, optional "extra <base64>", "index <n>", the inclusion proof (one base64
 * hash per line, leaf's sibling first), an empty line, then the checkpoint note verbatim.
 */
import { BulwarkError } from '../errors.js';
import { decodeBase64Strict, encodeBase64 } from './base64.js';
import { verifyCheckpoint, type VerifiedCheckpoint } from './checkpoint.js';
import { MERKLE_HASH_SIZE } from './hash.js';
import { NOTE_MAX_BYTES, parseSignedNote, type NoteVerifier, type SignedNote } from './note.js';
import { MERKLE_MAX_PROOF_HASHES, verifyInclusion } from './verify.js';

export const TLOG_PROOF_HEADER = 'c2sp.org/tlog-proof@v1';
/** Largest extra data accepted. */
export const TLOG_PROOF_MAX_EXTRA = 64 * 1024;

export interface TlogProof {
  readonly extra?: Uint8Array;
  readonly index: number;
  readonly proof: readonly Uint8Array[];
  /** The checkpoint as a parsed (unverified) signed note. */
  readonly checkpoint: SignedNote;
  /** The checkpoint note's exact text (for re-emitting verbatim). */
  readonly checkpointText: string;
}

const bad = (message: string, details: Record<string, string | number> = {}): BulwarkError =>
  new BulwarkError('TLOG_PROOF_MALFORMED', `tlog proof: ${message}`, details);

/** Formats a tlog proof around an already signed checkpoint note. */
export function formatTlogProof(p: { extra?: Uint8Array; index: number; proof: readonly Uint8Array[]; checkpointText: string }): string {
  if (!Number.isSafeInteger(p.index) || p.index < 0) throw bad('index is not a non-negative safe integer');
  parseSignedNote(p.checkpointText);
  const lines = [TLOG_PROOF_HEADER];
  if (p.extra !== undefined) lines.push(`extra ${encodeBase64(p.extra)}`);
  lines.push(`index ${p.index}`);
  for (const h of p.proof) {
    if (h.length !== MERKLE_HASH_SIZE) throw bad('proof hash is not 32 bytes');
    lines.push(encodeBase64(h));
  }
  return `${lines.join('\n')}\n\n${p.checkpointText}`;
}

/** Parses a tlog proof (untrusted: the checkpoint is parsed, not verified). */
export function parseTlogProof(input: string): TlogProof {
  if (input.length > NOTE_MAX_BYTES + TLOG_PROOF_MAX_EXTRA * 2 + 8192) throw bad('is too large', { size: input.length });
  const split = input.indexOf('\n\n');
  if (split < 0) throw bad('has no empty line before the checkpoint');
  const head = input.slice(0, split).split('\n');
  const checkpointText = input.slice(split + 2);
  let i = 0;
  if (head[i++] !== TLOG_PROOF_HEADER) throw bad(`first line is not ${TLOG_PROOF_HEADER}`);
  let extra: Uint8Array | undefined;
  const maybeExtra = head[i];
  if (maybeExtra?.startsWith('extra ') === true) {
    extra = decodeBase64Strict(maybeExtra.slice(6), 'TLOG_PROOF_MALFORMED', 'extra data', TLOG_PROOF_MAX_EXTRA);
    i += 1;
  }
  const indexLine = head[i++] ?? '';
  const m = /^index (0|[1-9][0-9]{0,15})$/.exec(indexLine);
  const index = Number(m?.[1]);
  if (m === null || !Number.isSafeInteger(index)) throw bad('index line is not "index <decimal>"');
  const hashLines = head.slice(i);
  if (hashLines.length > MERKLE_MAX_PROOF_HASHES) throw bad(`has more than ${MERKLE_MAX_PROOF_HASHES} proof hashes`, { count: hashLines.length });
  const proof = hashLines.map((line, k) => {
    const h = decodeBase64Strict(line, 'TLOG_PROOF_MALFORMED', `proof hash ${k}`, MERKLE_HASH_SIZE);
    if (h.length !== MERKLE_HASH_SIZE) throw bad(`proof hash ${k} is not 32 bytes`, { line: k });
    return h;
  });
  const checkpoint = parseSignedNote(checkpointText);
  return { ...(extra === undefined ? {} : { extra }), index, proof, checkpoint, checkpointText };
}

/**
 * Verifies a tlog proof for an entry whose leaf hash the caller computed: the checkpoint
 * must be signed by a trusted key (and name `origin` when given), and the inclusion proof
 * must bind the leaf hash at the index to the checkpoint's root (else MERKLE_PROOF_INVALID).
 */
export function verifyTlogProof(input: string | TlogProof, leafHash: Uint8Array, verifiers: readonly NoteVerifier[], origin?: string): VerifiedCheckpoint {
  const p = typeof input === 'string' ? parseTlogProof(input) : input;
  const verified = verifyCheckpoint(p.checkpoint, verifiers, origin);
  const { size, rootHash } = verified.checkpoint;
  if (!verifyInclusion(leafHash, p.index, size, p.proof, rootHash)) {
    throw new BulwarkError('MERKLE_PROOF_INVALID', `entry ${p.index} is not in the checkpointed tree of ${size}`, { index: p.index, size });
  }
  return verified;
}
