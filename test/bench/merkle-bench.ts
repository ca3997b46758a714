/**
 * The audit log's Merkle tree: the cost of appending 10,000 audit records (µs per append,
 * against a bare SHA-256 of the same record bytes, the floor any hashing log pays), and of
 * proving one: inclusion proof size (hashes, bytes) at 10,000 and 1,000,000 leaves, µs per
 * proof and per verification; plus the restart rebuild (tree from stored leaf hashes) and
 * the memory the 1,000,000-leaf tree holds.
 *
 *   npx tsc -p . && node dist/test/bench/merkle-bench.js
 */
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { MerkleTree, MERKLE_HASH_SIZE, verifyConsistency, verifyInclusion } from '../../lib/merkle/index.js';
import { prng } from '../lib/hostile.js';
import { printResults, type BenchResult } from './result.js';

const RECORDS = 10_000;
const BIG = 1_000_000;
const ROUNDS = 7;

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? (s[mid] ?? 0) : ((s[mid - 1] ?? 0) + (s[mid] ?? 0)) / 2;
}

/** An audit record of the size the controller writes (~250 bytes of JSON). */
function record(i: number): Uint8Array {
  return new TextEncoder().encode(
    JSON.stringify({ version: 1, seq: i, at: 1764640000000 + i, kind: 'trust-transition', node: `node-${i % 500}`, from: 'trusted', to: 'untrusted', findings: ['IMA_DIGEST_UNKNOWN'], actor: 'controller' }),
  );
}

/** µs per call of `op` over `n` calls. */
function microsPer(n: number, op: (i: number) => void): number {
  const start = performance.now();
  for (let i = 0; i < n; i++) op(i);
  return ((performance.now() - start) * 1000) / n;
}

function proofFigures(tree: MerkleTree, label: string): BenchResult[] {
  const n = tree.size;
  const rnd = prng(n);
  const indices = Array.from({ length: 2000 }, () => Math.floor(rnd() * n));
  const root = tree.rootHash();
  let hashes = 0;
  let most = 0;
  const proofs = indices.map((i) => tree.inclusionProof(i));
  for (const p of proofs) {
    hashes += p.length;
    most = Math.max(most, p.length);
  }
  const leafHashes = indices.map((i) => tree.leafHashAt(i));
  const prove = median(Array.from({ length: ROUNDS }, () => microsPer(indices.length, (k) => tree.inclusionProof(indices[k] ?? 0))));
  const verify = median(
    Array.from({ length: ROUNDS }, () =>
      microsPer(indices.length, (k) => {
        if (!verifyInclusion(leafHashes[k] ?? root, indices[k] ?? 0, n, proofs[k] ?? [], root)) throw new Error('proof did not verify');
      }),
    ),
  );
  const m = Math.floor(n / 2) + 1;
  const consistency = tree.consistencyProof(m, n);
  const first = tree.rootHash(m);
  const cverify = median(
    Array.from({ length: ROUNDS }, () =>
      microsPer(500, () => {
        if (!verifyConsistency(m, n, first, root, consistency)) throw new Error('consistency proof did not verify');
      }),
    ),
  );
  return [
    { name: `inclusion proof size at ${label} leaves (mean over 2,000 leaves)`, value: hashes / proofs.length, unit: 'hashes' },
    { name: `inclusion proof size at ${label} leaves (largest)`, value: most * MERKLE_HASH_SIZE, unit: 'bytes' },
    { name: `inclusion proof made at ${label} leaves`, value: prove, unit: 'µs/proof' },
    { name: `inclusion proof verified at ${label} leaves`, value: verify, unit: 'µs/verification' },
    { name: `consistency proof ${m} -> ${label} (size)`, value: consistency.length, unit: 'hashes' },
    { name: `consistency proof ${m} -> ${label} verified`, value: cverify, unit: 'µs/verification' },
  ];
}

/** Append and proof costs of the in-memory audit tree. */
export async function benchMerkle(): Promise<BenchResult[]> {
  const records = Array.from({ length: RECORDS }, (_, i) => record(i));
  // Interleaved rounds: a bare SHA-256 of every record, then a fresh tree appending them all.
  const raw: number[] = [];
  const append: number[] = [];
  const ratios: number[] = [];
  let tree = new MerkleTree();
  for (let round = 0; round < ROUNDS + 1; round++) {
    const r = microsPer(RECORDS, (i) => createHash('sha256').update(records[i] ?? new Uint8Array()).digest());
    const t = new MerkleTree();
    const a = microsPer(RECORDS, (i) => t.appendLeaf(records[i] ?? new Uint8Array()));
    tree = t;
    if (round === 0) continue; // warm-up
    raw.push(r);
    append.push(a);
    ratios.push(a / r);
  }
  const rawName = 'SHA-256 of one record';
  const results: BenchResult[] = [
    { name: rawName, value: median(raw), unit: 'µs/record' },
    {
      name: `append one audit record (of ${RECORDS.toLocaleString('en-US')})`,
      value: median(append),
      unit: 'µs/append',
      baseline: { name: rawName, value: median(raw) },
      ratio: median(ratios),
    },
    ...proofFigures(tree, '10,000'),
  ];

  const before = process.memoryUsage();
  const big = new MerkleTree();
  const leafHash = new Uint8Array(MERKLE_HASH_SIZE);
  const view = new DataView(leafHash.buffer);
  const build = microsPer(BIG, (i) => {
    view.setUint32(0, i);
    big.appendLeafHash(leafHash);
  });
  const after = process.memoryUsage();
  const stored = Array.from({ length: 100_000 }, (_, i) => big.leafHashAt(i));
  const rebuild = microsPer(stored.length, (i) => {
    if (i === 0) MerkleTree.fromLeafHashes(stored);
  });
  results.push(
    { name: 'append a leaf hash, tree of 1,000,000 (restart rebuild rate)', value: build, unit: 'µs/leaf' },
    { name: 'MerkleTree.fromLeafHashes, 100,000 stored hashes', value: rebuild, unit: 'µs/leaf' },
    { name: 'memory of the 1,000,000-leaf tree', value: (after.arrayBuffers - before.arrayBuffers + after.heapUsed - before.heapUsed) / 2 ** 20, unit: 'MiB' },
    ...proofFigures(big, '1,000,000'),
  );
  return results;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  printResults(await benchMerkle());
}
