/**
 * The RFC 6962 tree and the RFC 9162 verifiers: the reference tree's published roots and
 * subtree hashes, transparency-dev/merkle's proof vectors, every proof of every tree up to
 * 64 leaves (and every one-hash mutation of it), and a recursive MTH straight from the RFC
 * compared with the incremental tree at random sizes.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { BulwarkError, fromHex, toHex } from '../../../lib/index.js';
import {
  MerkleTree,
  consistencyProofLength,
  emptyRootHash,
  inclusionProofLength,
  leafHash,
  nodeHash,
  verifyConsistency,
  verifyInclusion,
} from '../../../lib/merkle/index.js';
import { prng } from '../hostile.js';

const DIR = fileURLToPath(new URL('../../../../test/fixtures/merkle/', import.meta.url));
const readJson = async (name: string): Promise<unknown> => JSON.parse(await readFile(`${DIR}${name}`, 'utf8'));

/** An outcome: true, false, or the code of the BulwarkError thrown (anything else fails the test). */
function outcome(fn: () => boolean): boolean | string {
  try {
    return fn();
  } catch (err) {
    if (err instanceof BulwarkError) return err.code;
    throw err;
  }
}

/** MTH of RFC 6962 §2.1, recursively, as the RFC writes it. */
function referenceMth(leaves: readonly Uint8Array[]): Uint8Array {
  const n = leaves.length;
  if (n === 0) return new Uint8Array(createHash('sha256').digest());
  if (n === 1) return leafHash(leaves[0] ?? new Uint8Array());
  let k = 1;
  while (k * 2 < n) k *= 2;
  return nodeHash(referenceMth(leaves.slice(0, k)), referenceMth(leaves.slice(k)));
}

function flip(h: Uint8Array, bit = 0): Uint8Array {
  const c = h.slice();
  c[bit >> 3] = (c[bit >> 3] ?? 0) ^ (1 << (bit & 7));
  return c;
}

interface Reference {
  leaves: string[];
  roots: string[];
  nodes: string[][];
}

function isReference(v: unknown): v is Reference {
  return typeof v === 'object' && v !== null && 'leaves' in v && 'roots' in v && 'nodes' in v;
}

t.test('the RFC 6962 reference tree: every root and complete subtree hash', async (t) => {
  const ref = await readJson('rfc6962-reference-tree.json');
  if (!isReference(ref)) throw new Error('reference tree fixture has the wrong shape');
  const tree = new MerkleTree();
  t.equal(toHex(tree.rootHash()), ref.roots[0], 'empty tree root = SHA-256("")');
  t.equal(toHex(emptyRootHash()), 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  ref.leaves.forEach((hex, i) => {
    t.equal(tree.appendLeaf(fromHex(hex)), i, `leaf ${i} index`);
    t.equal(toHex(tree.rootHash()), ref.roots[i + 1], `root at size ${i + 1}`);
  });
  for (let n = 0; n <= 8; n++) t.equal(toHex(tree.rootHash(n)), ref.roots[n], `root of the past size ${n}`);
  // Complete subtree hashes show up as proof elements: the sibling of leaf 0 at size 8 is
  // node (0,1), then (1,1), then (2,1).
  const proof = tree.inclusionProof(0, 8).map(toHex);
  t.same(proof, [ref.nodes[0]?.[1], ref.nodes[1]?.[1], ref.nodes[2]?.[1]], 'audit path of leaf 0 in 8 = published subtree hashes');
  ref.nodes[0]?.forEach((h, i) => t.equal(toHex(tree.leafHashAt(i)), h, `leaf hash ${i}`));
});

interface InclusionVector {
  file: string;
  leafIdx: number;
  treeSize: number;
  root: string;
  leafHash: string;
  proof: string[] | null;
  wantErr: boolean;
}
interface ConsistencyVector {
  file: string;
  size1: number;
  size2: number;
  root1: string;
  root2: string;
  proof: string[] | null;
  wantErr: boolean;
}

const b64 = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'base64'));

t.test('transparency-dev/merkle inclusion vectors', async (t) => {
  const vectors = await readJson('transparency-dev-inclusion.json');
  if (!Array.isArray(vectors)) throw new Error('not a list');
  t.ok(vectors.length >= 90, `${vectors.length} vectors`);
  const ref = await readJson('rfc6962-reference-tree.json');
  if (!isReference(ref)) throw new Error('reference tree fixture has the wrong shape');
  const tree = new MerkleTree();
  for (const hex of ref.leaves) tree.appendLeaf(fromHex(hex));
  for (const raw of vectors) {
    const v: InclusionVector = raw;
    const proof = (v.proof ?? []).map(b64);
    const hashes = [b64(v.root), b64(v.leafHash), ...proof];
    const got = outcome(() => verifyInclusion(b64(v.leafHash), v.leafIdx, v.treeSize, proof, b64(v.root)));
    if (hashes.some((h) => h.length !== 32)) t.equal(got, 'MERKLE_PROOF_MALFORMED', `${v.file}: a hash that is not 32 bytes is malformed`);
    else if (v.wantErr) t.not(got, true, `${v.file}: refused (${String(got)})`);
    else {
      t.equal(got, true, `${v.file}: verifies`);
      if (v.treeSize <= 8) t.same(tree.inclusionProof(v.leafIdx, v.treeSize).map(toHex), proof.map(toHex), `${v.file}: our tree makes the same proof`);
    }
  }
});

t.test('transparency-dev/merkle consistency vectors', async (t) => {
  const vectors = await readJson('transparency-dev-consistency.json');
  if (!Array.isArray(vectors)) throw new Error('not a list');
  t.ok(vectors.length >= 90, `${vectors.length} vectors`);
  const ref = await readJson('rfc6962-reference-tree.json');
  if (!isReference(ref)) throw new Error('reference tree fixture has the wrong shape');
  const tree = new MerkleTree();
  for (const hex of ref.leaves) tree.appendLeaf(fromHex(hex));
  for (const raw of vectors) {
    const v: ConsistencyVector = raw;
    const proof = (v.proof ?? []).map(b64);
    const hashes = [b64(v.root1), b64(v.root2), ...proof];
    const got = outcome(() => verifyConsistency(v.size1, v.size2, b64(v.root1), b64(v.root2), proof));
    if (hashes.some((h) => h.length !== 32)) t.equal(got, 'MERKLE_PROOF_MALFORMED', `${v.file}: a hash that is not 32 bytes is malformed`);
    else if (v.wantErr) t.not(got, true, `${v.file}: refused (${String(got)})`);
    else {
      t.equal(got, true, `${v.file}: verifies`);
      if (v.size2 <= 8 && v.size1 > 0) {
        t.same(tree.consistencyProof(v.size1, v.size2).map(toHex), proof.map(toHex), `${v.file}: our tree makes the same proof`);
      }
    }
  }
});

t.test('every tree up to 64 leaves: every proof verifies, every one-hash mutation fails', async (t) => {
  const tree = new MerkleTree();
  const leaves: Uint8Array[] = [];
  const roots: Uint8Array[] = [emptyRootHash()];
  for (let i = 0; i < 64; i++) {
    const leaf = Uint8Array.of(i, i ^ 0x5a);
    leaves.push(leaf);
    tree.appendLeaf(leaf);
    roots.push(tree.rootHash());
  }
  let checks = 0;
  const bad: string[] = [];
  const fails = (label: string, fn: () => boolean): void => {
    checks += 1;
    if (outcome(fn) === true) bad.push(label);
  };
  for (let n = 1; n <= 64; n++) {
    const root = roots[n] ?? new Uint8Array();
    if (toHex(root) !== toHex(referenceMth(leaves.slice(0, n)))) bad.push(`root ${n} differs from the recursive MTH`);
    for (let m = 0; m < n; m++) {
      const leaf = tree.leafHashAt(m);
      const proof = tree.inclusionProof(m, n);
      if (proof.length !== inclusionProofLength(m, n)) bad.push(`inclusion ${m}/${n} length`);
      checks += 1;
      if (!verifyInclusion(leaf, m, n, proof, root)) bad.push(`inclusion ${m}/${n} does not verify`);
      proof.forEach((_, i) => fails(`inclusion ${m}/${n} proof[${i}] flipped`, () => verifyInclusion(leaf, m, n, proof.map((h, j) => (j === i ? flip(h, i * 7) : h)), root)));
      fails(`inclusion ${m}/${n} root flipped`, () => verifyInclusion(leaf, m, n, proof, flip(root, 255)));
      fails(`inclusion ${m}/${n} leaf flipped`, () => verifyInclusion(flip(leaf, 9), m, n, proof, root));
      for (let other = 0; other < n; other++) {
        if (other !== m) fails(`inclusion ${m}/${n} as index ${other}`, () => verifyInclusion(leaf, other, n, proof, root));
      }
      fails(`inclusion ${m}/${n} index past size`, () => verifyInclusion(leaf, n, n, proof, root));
      fails(`inclusion ${m}/${n} proof extended`, () => verifyInclusion(leaf, m, n, [...proof, root], root));
    }
    for (let m = 1; m <= n; m++) {
      const first = roots[m] ?? new Uint8Array();
      const proof = tree.consistencyProof(m, n);
      if (m < n && proof.length !== consistencyProofLength(m, n)) bad.push(`consistency ${m}->${n} length`);
      checks += 1;
      if (!verifyConsistency(m, n, first, root, proof)) bad.push(`consistency ${m}->${n} does not verify`);
      proof.forEach((_, i) => fails(`consistency ${m}->${n} proof[${i}] flipped`, () => verifyConsistency(m, n, first, root, proof.map((h, j) => (j === i ? flip(h, i * 5) : h)))));
      fails(`consistency ${m}->${n} root1 flipped`, () => verifyConsistency(m, n, flip(first, 3), root, proof));
      fails(`consistency ${m}->${n} root2 flipped`, () => verifyConsistency(m, n, first, flip(root, 77), proof));
      // A proof presented for other sizes, with those sizes' true roots (a checkpoint binds a
      // size to its root; a root paired with a wrong size is not a mutation a proof can show:
      // MTH(4 leaves) is also the root of a 3-leaf tree whose third leaf hash is H(c, d)).
      if (m > 1) fails(`consistency ${m}->${n} as from ${m - 1}`, () => verifyConsistency(m - 1, n, roots[m - 1] ?? first, root, proof));
      if (m < n) fails(`consistency ${m}->${n} as to ${n - 1}`, () => verifyConsistency(m, n - 1, first, roots[n - 1] ?? root, proof));
      fails(`consistency ${m}->${n} proof extended`, () => verifyConsistency(m, n, first, root, [...proof, root]));
    }
  }
  t.same(bad.slice(0, 10), [], 'no proof failed and no mutation verified');
  t.ok(checks > 50_000, `${checks} checks`);
});

t.test('incremental tree = recursive MTH at random sizes; rebuild from stored leaf hashes', async (t) => {
  const rnd = prng(0x6962);
  const leaves = Array.from({ length: 3000 }, (_, i) => Uint8Array.from({ length: 1 + (i % 40) }, () => Math.floor(rnd() * 256)));
  const tree = new MerkleTree();
  for (const l of leaves) tree.appendLeaf(l);
  for (const n of [0, 1, 2, 3, 127, 128, 129, 1000, 1023, 1024, 1025, 2047, 2999, 3000, ...Array.from({ length: 12 }, () => Math.floor(rnd() * 3000))]) {
    t.equal(toHex(tree.rootHash(n)), toHex(referenceMth(leaves.slice(0, n))), `root at ${n}`);
  }
  tree.checkExtends({ size: 1234, rootHash: referenceMth(leaves.slice(0, 1234)) });
  tree.checkExtends({ size: 0, rootHash: emptyRootHash() });
  const rewritten = MerkleTree.fromLeafHashes(Array.from({ length: tree.size }, (_, i) => (i === 700 ? leafHash(Uint8Array.of(1)) : tree.leafHashAt(i))));
  const codeOf = (fn: () => void): string => {
    try {
      fn();
      return 'no error';
    } catch (err) {
      return err instanceof BulwarkError ? err.code : String(err);
    }
  };
  t.equal(codeOf(() => rewritten.checkExtends({ size: 1234, rootHash: tree.rootHash(1234) })), 'MERKLE_PROOF_INVALID', 'a rewritten leaf breaks consistency');
  t.equal(codeOf(() => rewritten.checkExtends({ size: 700, rootHash: tree.rootHash(700) })), 'no error', 'leaves before the rewrite still agree');
  t.equal(codeOf(() => tree.checkExtends({ size: 3001, rootHash: tree.rootHash() })), 'MERKLE_PROOF_INVALID', 'an earlier tree larger than this one');
  const rebuilt = MerkleTree.fromLeafHashes(Array.from({ length: tree.size }, (_, i) => tree.leafHashAt(i)));
  t.equal(rebuilt.size, 3000);
  t.equal(toHex(rebuilt.rootHash()), toHex(tree.rootHash()), 'rebuilt root');
  const a = Math.floor(rnd() * 3000);
  t.same(rebuilt.inclusionProof(a).map(toHex), tree.inclusionProof(a).map(toHex), 'rebuilt proofs');
  t.same(rebuilt.consistencyProof(1234, 2999).map(toHex), tree.consistencyProof(1234, 2999).map(toHex));
  // Random proofs at the full size verify.
  for (let k = 0; k < 50; k++) {
    const n = 1 + Math.floor(rnd() * 3000);
    const m = Math.floor(rnd() * n);
    t.ok(verifyInclusion(tree.leafHashAt(m), m, n, tree.inclusionProof(m, n), tree.rootHash(n)), `inclusion ${m}/${n}`);
    if (m > 0) t.ok(verifyConsistency(m, n, tree.rootHash(m), tree.rootHash(n), tree.consistencyProof(m, n)), `consistency ${m}->${n}`);
  }
});

t.test('hostile and wrong calls are typed errors', async (t) => {
  const tree = new MerkleTree();
  for (let i = 0; i < 5; i++) tree.appendLeaf(Uint8Array.of(i));
  const code = (fn: () => unknown): string => {
    try {
      fn();
      return 'no error';
    } catch (err) {
      return err instanceof BulwarkError ? err.code : `not a BulwarkError: ${String(err)}`;
    }
  };
  t.equal(code(() => tree.rootHash(6)), 'MERKLE_TREE_SIZE_INVALID');
  t.equal(code(() => tree.rootHash(-1)), 'MERKLE_TREE_SIZE_INVALID');
  t.equal(code(() => tree.rootHash(1.5)), 'MERKLE_TREE_SIZE_INVALID');
  t.equal(code(() => tree.inclusionProof(5)), 'MERKLE_TREE_SIZE_INVALID');
  t.equal(code(() => tree.inclusionProof(2, 2)), 'MERKLE_TREE_SIZE_INVALID');
  t.equal(code(() => tree.consistencyProof(4, 3)), 'MERKLE_TREE_SIZE_INVALID');
  t.equal(code(() => tree.consistencyProof(0, 3)), 'MERKLE_TREE_SIZE_INVALID');
  t.same(tree.consistencyProof(3, 3), [], 'equal sizes: empty proof');
  t.equal(code(() => tree.appendLeafHash(new Uint8Array(31))), 'MERKLE_PROOF_MALFORMED');
  const h = tree.leafHashAt(0);
  const root = tree.rootHash();
  const proof = tree.inclusionProof(0);
  t.equal(code(() => verifyInclusion(h, 0, 5, proof.slice(1), root)), 'MERKLE_PROOF_MALFORMED', 'proof too short');
  t.equal(code(() => verifyInclusion(h, 0, 5, Array.from({ length: 65 }, () => h), root)), 'MERKLE_PROOF_MALFORMED', 'proof too long');
  t.equal(code(() => verifyInclusion(h, 5, 5, proof, root)), 'MERKLE_PROOF_MALFORMED', 'index = size');
  t.equal(code(() => verifyInclusion(h, -1, 5, proof, root)), 'MERKLE_PROOF_MALFORMED');
  t.equal(code(() => verifyInclusion(h, 0, 2 ** 53, proof, root)), 'MERKLE_PROOF_MALFORMED', 'size past 2^53 − 1');
  t.equal(code(() => verifyInclusion(h, 0, Number.NaN, proof, root)), 'MERKLE_PROOF_MALFORMED');
  t.equal(code(() => verifyInclusion(h, 0, 5, [...proof.slice(0, 2), new Uint8Array(33)], root)), 'MERKLE_PROOF_MALFORMED');
  t.equal(code(() => verifyConsistency(3, 2, root, root, [])), 'MERKLE_PROOF_MALFORMED', 'sizes out of order');
  t.equal(code(() => verifyConsistency(0, 5, emptyRootHash(), root, [])), 'MERKLE_PROOF_MALFORMED', 'from the empty tree');
  t.equal(code(() => verifyConsistency(5, 5, root, root, [root])), 'MERKLE_PROOF_MALFORMED', 'equal sizes with a proof');
  t.equal(verifyConsistency(0, 0, emptyRootHash(), emptyRootHash(), []), true, 'empty to empty');
  // Largest safe sizes: exact arithmetic, a proof of the right length just does not verify.
  const big = Number.MAX_SAFE_INTEGER;
  const len = inclusionProofLength(big - 1, big);
  t.ok(len <= 64, `proof length ${len} at 2^53 − 1`);
  t.equal(verifyInclusion(h, big - 1, big, Array.from({ length: len }, () => h), root), false);
  const clen = consistencyProofLength(big - 2, big);
  t.equal(verifyConsistency(big - 2, big, root, root, Array.from({ length: clen }, () => h)), false);
});
