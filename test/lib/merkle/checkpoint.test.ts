/**
 * Checkpoints (C2SP tlog-checkpoint), tlog-proofs (C2SP tlog-proof) and the audit bundle
 * that `bulwarkctl audit verify` checks: round trips, the spec's example shapes, a bundle
 * whose record was edited, dropped or reordered naming that record, and hostile input.
 */
import { generateKeyPairSync } from 'node:crypto';
import t from 'tap';
import { BulwarkError } from '../../../lib/index.js';
import {
  MerkleTree,
  buildAuditBundle,
  encodeBase64,
  formatCheckpointText,
  formatTlogProof,
  leafHash,
  noteSignerFromKey,
  noteVerifierFromKey,
  parseAuditBundle,
  parseCheckpointText,
  parseTlogProof,
  signNote,
  verifyBundle,
  verifyCheckpoint,
  verifyTlogProof,
  type AuditBundle,
} from '../../../lib/merkle/index.js';
import { mutations, newStats, prng, probe, report, SEED } from '../hostile.js';

function code(fn: () => unknown): string {
  try {
    fn();
    return 'no error';
  } catch (err) {
    return err instanceof BulwarkError ? err.code : `not a BulwarkError: ${String(err)}`;
  }
}

const ORIGIN = 'bulwark.example/audit';
const log = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const signer = noteSignerFromKey(ORIGIN, log.privateKey);
const verifier = noteVerifierFromKey(ORIGIN, log.publicKey);
const other = noteVerifierFromKey(ORIGIN, generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey);

const records = Array.from({ length: 40 }, (_, i) => new TextEncoder().encode(JSON.stringify({ seq: i, kind: 'trust-transition', node: `n${i % 7}` })));
const tree = new MerkleTree();
for (const r of records) tree.appendLeaf(r);

async function checkpointAt(size: number): Promise<string> {
  return signNote(formatCheckpointText({ origin: ORIGIN, size, rootHash: tree.rootHash(size), extensions: [] }), [signer]);
}

t.test('checkpoint text: format, parse, strict lines', async (t) => {
  const text = formatCheckpointText({ origin: 'example.com/behind-the-sofa', size: 20852163, rootHash: new Uint8Array(32).fill(7), extensions: ['ext one'] });
  t.equal(text, `example.com/behind-the-sofa\n20852163\n${encodeBase64(new Uint8Array(32).fill(7))}\next one\n`);
  const cp = parseCheckpointText(text);
  t.equal(cp.size, 20852163);
  t.same(cp.extensions, ['ext one']);
  const root = encodeBase64(new Uint8Array(32));
  for (const [label, bad] of [
    ['two lines', `o\n1\n`],
    ['leading zero', `o\n01\n${root}\n`],
    ['negative size', `o\n-1\n${root}\n`],
    ['size past 2^53', `o\n9007199254740993\n${root}\n`],
    ['trailing space', `o \n1\n${root}\n`],
    ['short root', `o\n1\n${encodeBase64(new Uint8Array(31))}\n`],
    ['bad base64 root', `o\n1\n${root.replace('A', '*')}\n`],
    ['empty extension line', `o\n1\n${root}\n\next\n`],
    ['no final newline', `o\n1\n${root}`],
    ['17 extension lines', `o\n1\n${root}\n${'e\n'.repeat(17)}`],
    ['huge line', `${'o'.repeat(2000)}\n1\n${root}\n`],
  ] as const) {
    t.equal(code(() => parseCheckpointText(bad)), 'CHECKPOINT_MALFORMED', label);
  }
  t.equal(parseCheckpointText(`o\n0\n${root}\n`).size, 0, 'size 0');
});

t.test('signed checkpoint: verified with the log key and origin only', async (t) => {
  const note = await checkpointAt(40);
  const { checkpoint, note: verified } = verifyCheckpoint(note, [verifier], ORIGIN);
  t.equal(checkpoint.size, 40);
  t.same(verified.verifiedBy, [ORIGIN]);
  t.equal(code(() => verifyCheckpoint(note, [other], ORIGIN)), 'NOTE_UNTRUSTED', 'another key with the same name');
  t.equal(code(() => verifyCheckpoint(note, [verifier], 'other.example/log')), 'NOTE_UNTRUSTED', 'another origin');
});

t.test('tlog-proof: round trip, verification, refusals', async (t) => {
  const note = await checkpointAt(37);
  const index = 21;
  const text = formatTlogProof({ extra: new TextEncoder().encode('ctx'), index, proof: tree.inclusionProof(index, 37), checkpointText: note });
  t.ok(text.startsWith('c2sp.org/tlog-proof@v1\nextra Y3R4\nindex 21\n'), 'header, extra, index lines');
  t.ok(text.endsWith(note), 'checkpoint verbatim at the end');
  const parsed = parseTlogProof(text);
  t.equal(parsed.index, index);
  t.equal(parsed.proof.length, tree.inclusionProof(index, 37).length);
  t.equal(verifyTlogProof(text, leafHash(records[index] ?? new Uint8Array()), [verifier], ORIGIN).checkpoint.size, 37);
  t.equal(code(() => verifyTlogProof(text, leafHash(records[index + 1] ?? new Uint8Array()), [verifier])), 'MERKLE_PROOF_INVALID', 'another record');
  t.equal(code(() => verifyTlogProof(text, leafHash(records[index] ?? new Uint8Array()), [other])), 'NOTE_UNTRUSTED');
  const noExtra = formatTlogProof({ index: 0, proof: tree.inclusionProof(0, 37), checkpointText: note });
  t.equal(parseTlogProof(noExtra).extra, undefined);
  for (const [label, bad] of [
    ['wrong header', text.replace('tlog-proof@v1', 'tlog-proof@v2')],
    ['index with leading zero', text.replace('index 21', 'index 021')],
    ['no index', text.replace('index 21\n', '')],
    ['bad hash line', text.replace(/\nindex 21\n[^\n]+/, '\nindex 21\nnot-base64')],
    ['short hash line', text.replace(/\nindex 21\n[^\n]+/, '\nindex 21\nAAAA')],
    ['no empty line', text.replace('\n\n', '\n')],
    ['bad extra', text.replace('extra Y3R4', 'extra Y3R')],
  ] as const) {
    t.equal(code(() => parseTlogProof(bad)), 'TLOG_PROOF_MALFORMED', label);
  }
  t.equal(code(() => parseTlogProof(text.replace('\u2014', '-'))), 'NOTE_MALFORMED', 'checkpoint note with a hyphen');
});

async function bundle(firstIndex: number, count: number, size: number, prevSize?: number): Promise<AuditBundle> {
  return buildAuditBundle(tree, {
    firstIndex,
    records: records.slice(firstIndex, firstIndex + count),
    checkpoint: { text: await checkpointAt(size), size },
    ...(prevSize === undefined ? {} : { previous: { text: await checkpointAt(prevSize), size: prevSize } }),
  });
}

t.test('audit bundle: verifies, and names the first record that does not', async (t) => {
  const good = await bundle(5, 30, 40, 17);
  const json = JSON.stringify(good);
  const verdict = verifyBundle(json, [verifier], ORIGIN);
  t.same(verdict.ok ? verdict.records : -1, 30, 'all 30 records verified');
  t.equal(verifyBundle(await bundle(0, 40, 40, 0), [verifier]).ok, true, 'from the empty checkpoint');
  t.equal(verifyBundle(await bundle(39, 1, 40, 40), [verifier]).ok, true, 'previous = current');

  const edited: AuditBundle = { ...good, records: good.records.map((r, i) => (i === 12 ? encodeBase64(new TextEncoder().encode('{"seq":17,"kind":"forged"}')) : r)) };
  const v1 = verifyBundle(edited, [verifier]);
  t.same(v1.ok ? 'ok' : v1.index, 17, 'an edited record is named by its log index');
  const dropped: AuditBundle = { ...good, records: [...good.records.slice(0, 8), ...good.records.slice(9), good.records[0] ?? ''] };
  const v2 = verifyBundle(dropped, [verifier]);
  t.same(v2.ok ? 'ok' : v2.index, 13, 'a dropped record: the first record after the gap is named');
  const swapped: AuditBundle = { ...good, records: good.records.map((r, i, all) => (i === 3 ? (all[4] ?? r) : i === 4 ? (all[3] ?? r) : r)) };
  const v3 = verifyBundle(swapped, [verifier]);
  t.same(v3.ok ? 'ok' : v3.index, 8, 'reordered records: the first moved one is named');

  const inconsistent: AuditBundle = {
    ...good,
    previous: { checkpoint: await signNote(formatCheckpointText({ origin: ORIGIN, size: 17, rootHash: tree.rootHash(16), extensions: [] }), [signer]), consistencyProof: good.previous?.consistencyProof ?? [] },
  };
  t.equal(code(() => verifyBundle(inconsistent, [verifier])), 'MERKLE_PROOF_INVALID', 'a previous checkpoint the log forked from');
  t.equal(code(() => verifyBundle(good, [other])), 'NOTE_UNTRUSTED', 'checkpoint by another key');
  t.equal(code(() => verifyBundle({ ...good, firstIndex: 20 }, [verifier])), 'AUDIT_BUNDLE_INVALID', 'records past the checkpoint size');
  t.equal(code(() => verifyBundle({ ...good, inclusionProofs: good.inclusionProofs.slice(1) }, [verifier])), 'AUDIT_BUNDLE_INVALID');
  t.equal(code(() => parseAuditBundle('{"version":1}')), 'AUDIT_BUNDLE_INVALID');
  t.equal(code(() => parseAuditBundle(json.replace('"version":1', '"version":2'))), 'AUDIT_BUNDLE_INVALID');
  t.equal(code(() => verifyBundle({ ...good, records: ['***'] , inclusionProofs: [[]] }, [verifier])), 'AUDIT_BUNDLE_INVALID', 'bad base64 record');
});

t.test('hostile bundles and tlog-proofs: typed errors only, nothing forged verifies', async (t) => {
  const good = JSON.stringify(await bundle(30, 3, 40, 35));
  const stats = newStats();
  let forgedOk = 0;
  for (const [label, input] of mutations(new TextEncoder().encode(good), prng(SEED), { flipSamples: 500, randomCount: 150, sizes: [0x3030] })) {
    probe(stats, 'verifyBundle', label, input, () => {
      const v = verifyBundle(input, [verifier]);
      // A mutation may leave every verified part intact (JSON whitespace, key order): then the
      // records must be the original ones.
      if (v.ok && JSON.stringify(parseAuditBundle(input).records) !== JSON.stringify(parseAuditBundle(good).records)) forgedOk += 1;
    });
  }
  const proofText = formatTlogProof({ index: 9, proof: tree.inclusionProof(9, 40), checkpointText: await checkpointAt(40) });
  const leaf = leafHash(records[9] ?? new Uint8Array());
  for (const [label, input] of mutations(new TextEncoder().encode(proofText), prng(SEED + 1), { flipSamples: 400, randomCount: 100, sizes: [0x0a0a] })) {
    probe(stats, 'verifyTlogProof', label, input, () => {
      const v = verifyTlogProof(new TextDecoder().decode(input), leaf, [verifier]);
      if (v.checkpoint.size !== 40) forgedOk += 1;
    });
  }
  t.equal(forgedOk, 0, 'no forged content verified');
  report(t, stats, 2000);
});
