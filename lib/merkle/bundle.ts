/**
 * The audit export bundle (`bulwarkctl audit export` writes it, `audit verify` reads it):
 * a run of consecutive audit records with an inclusion proof each in one signed checkpoint,
 * and optionally the consistency proof from an earlier signed checkpoint. JSON, parsed
 * through the schema layer. A single record travels as a C2SP tlog-proof instead.
 */
import { Type, type Static } from '@sinclair/typebox';
import { BulwarkError } from '../errors.js';
import { defineDocument } from '../schema/index.js';
import { decodeBase64Strict, encodeBase64 } from './base64.js';
import { verifyCheckpoint, type Checkpoint } from './checkpoint.js';
import { MERKLE_HASH_SIZE, leafHash } from './hash.js';
import { type NoteVerifier } from './note.js';
import { type MerkleTree } from './tree.js';
import { MERKLE_MAX_PROOF_HASHES, verifyConsistency, verifyInclusion } from './verify.js';

/** Largest audit record carried in a bundle. */
export const AUDIT_RECORD_MAX_BYTES = 1024 * 1024;

const Base64Hash = Type.String({ minLength: 44, maxLength: 44, pattern: '^[A-Za-z0-9+/]{43}=$' });
const Proof = Type.Array(Base64Hash, { maxItems: MERKLE_MAX_PROOF_HASHES });

export const AuditBundleSchema = Type.Object(
  {
    version: Type.Literal(1),
    /** Log index of records[0]. */
    firstIndex: Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }),
    /** The records (leaf data) in log order, standard base64. */
    records: Type.Array(Type.String({ maxLength: Math.ceil(AUDIT_RECORD_MAX_BYTES / 3) * 4 })),
    /** Signed checkpoint note (C2SP tlog-checkpoint) covering every record. */
    checkpoint: Type.String({ maxLength: 256 * 1024 }),
    /** inclusionProofs[i]: audit path of records[i] in the checkpoint's tree. */
    inclusionProofs: Type.Array(Proof),
    /** An earlier signed checkpoint and the consistency proof from it to `checkpoint`. */
    previous: Type.Optional(
      Type.Object({ checkpoint: Type.String({ maxLength: 256 * 1024 }), consistencyProof: Proof }, { additionalProperties: false }),
    ),
  },
  { additionalProperties: false },
);
export type AuditBundle = Static<typeof AuditBundleSchema>;

export const auditBundleDocument = defineDocument(AuditBundleSchema, 'audit bundle', 'AUDIT_BUNDLE_INVALID');

/** Parses bundle JSON (untrusted; verifyBundle checks it). */
export function parseAuditBundle(text: string | Uint8Array, source?: string): AuditBundle {
  return auditBundleDocument.parseJson(text, source);
}

/** What verifying a bundle found: every record verified, or the first (log index) that did not. */
export type AuditBundleVerdict =
  | { readonly ok: true; readonly checkpoint: Checkpoint; readonly records: number }
  | { readonly ok: false; readonly checkpoint: Checkpoint; readonly index: number; readonly reason: string };

const invalid = (message: string, details: Record<string, number> = {}): BulwarkError =>
  new BulwarkError('AUDIT_BUNDLE_INVALID', `audit bundle: ${message}`, details);

const hashes = (proof: readonly string[]): Uint8Array[] =>
  proof.map((h) => decodeBase64Strict(h, 'AUDIT_BUNDLE_INVALID', 'proof hash', MERKLE_HASH_SIZE));

/**
 * Verifies a bundle against trusted log keys: the checkpoint (and the previous one) must be
 * signed by a trusted key with the same origin (NOTE_UNTRUSTED / NOTE_SIGNATURE_INVALID),
 * the previous checkpoint must be consistent with it (MERKLE_PROOF_INVALID), and each record
 * must be included at its index; the first that is not is named in the verdict.
 */
export function verifyBundle(input: AuditBundle | string | Uint8Array, verifiers: readonly NoteVerifier[], origin?: string): AuditBundleVerdict {
  const bundle = typeof input === 'string' || input instanceof Uint8Array ? parseAuditBundle(input) : auditBundleDocument.parse(input);
  const { checkpoint } = verifyCheckpoint(bundle.checkpoint, verifiers, origin);
  const { size, rootHash } = checkpoint;
  if (bundle.inclusionProofs.length !== bundle.records.length) {
    throw invalid('needs one inclusion proof per record', { records: bundle.records.length, proofs: bundle.inclusionProofs.length });
  }
  if (bundle.firstIndex + bundle.records.length > size) {
    throw invalid(`records ${bundle.firstIndex}..${bundle.firstIndex + bundle.records.length - 1} reach past the checkpoint size ${size}`, { size });
  }
  if (bundle.previous !== undefined) {
    const prev = verifyCheckpoint(bundle.previous.checkpoint, verifiers, checkpoint.origin).checkpoint;
    const proof = hashes(bundle.previous.consistencyProof);
    const consistent = prev.size === 0 ? proof.length === 0 : verifyConsistency(prev.size, size, prev.rootHash, rootHash, proof);
    if (!consistent) {
      throw new BulwarkError('MERKLE_PROOF_INVALID', `checkpoint of size ${size} is not consistent with the previous one of size ${prev.size}`, {
        first: prev.size,
        second: size,
      });
    }
  }
  for (let i = 0; i < bundle.records.length; i++) {
    const index = bundle.firstIndex + i;
    const record = decodeBase64Strict(bundle.records[i] ?? '', 'AUDIT_BUNDLE_INVALID', `record ${index}`, AUDIT_RECORD_MAX_BYTES);
    const proof = hashes(bundle.inclusionProofs[i] ?? []);
    let included: boolean;
    try {
      included = verifyInclusion(leafHash(record), index, size, proof, rootHash);
    } catch (err) {
      if (!(err instanceof BulwarkError) || err.code !== 'MERKLE_PROOF_MALFORMED') throw err;
      return { ok: false, checkpoint, index, reason: err.message };
    }
    if (!included) return { ok: false, checkpoint, index, reason: `record ${index} is not in the checkpointed tree of ${size}` };
  }
  return { ok: true, checkpoint, records: bundle.records.length };
}

/**
 * Builds a bundle from the log's own tree: `records` are the leaf data of indices
 * firstIndex.., `checkpoint` a signed note for `size`, `previous` an earlier signed note.
 */
export function buildAuditBundle(
  tree: MerkleTree,
  opts: {
    firstIndex: number;
    records: readonly Uint8Array[];
    checkpoint: { text: string; size: number };
    previous?: { text: string; size: number };
  },
): AuditBundle {
  const { firstIndex, records, checkpoint, previous } = opts;
  const b64 = (hs: readonly Uint8Array[]): string[] => hs.map(encodeBase64);
  return {
    version: 1,
    firstIndex,
    records: records.map(encodeBase64),
    checkpoint: checkpoint.text,
    inclusionProofs: records.map((_, i) => b64(tree.inclusionProof(firstIndex + i, checkpoint.size))),
    ...(previous === undefined
      ? {}
      : {
          previous: {
            checkpoint: previous.text,
            consistencyProof: previous.size === 0 ? [] : b64(tree.consistencyProof(previous.size, checkpoint.size)),
          },
        }),
  };
}
