/**
 * C2SP signed notes: the Go sumdb/note example note (verified, and re-signed byte for
 * byte from its published signer key), the C2SP spec example, ECDSA (type 0x02) keys on
 * P-256 and P-384, the trust rules (unknown keys ignored, a failing known key refuses the
 * note), and hostile notes (typed errors only, never a verified mutated text).
 */
import { createHash, generateKeyPairSync, verify as cryptoVerify } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { BulwarkError } from '../../../lib/index.js';
import {
  NOTE_MAX_BYTES,
  formatSignedNote,
  noteKeyId,
  noteSignerFromKey,
  noteVerifierFromKey,
  parseNoteSignerKey,
  parseNoteVerifierKey,
  parseSignedNote,
  signNote,
  verifyNote,
} from '../../../lib/merkle/index.js';
import { mutations, newStats, prng, probe, report, SEED } from '../hostile.js';

const DIR = fileURLToPath(new URL('../../../../test/fixtures/merkle/', import.meta.url));

interface NoteVector {
  vkey: string;
  skey?: string;
  note: string;
  text: string;
}
const fixtures: unknown = JSON.parse(await readFile(`${DIR}signed-notes.json`, 'utf8'));
function vector(name: string): NoteVector {
  if (typeof fixtures !== 'object' || fixtures === null || !(name in fixtures)) throw new Error(`no fixture ${name}`);
  const v: unknown = Object.entries(fixtures).find(([k]) => k === name)?.[1];
  if (typeof v !== 'object' || v === null || !('vkey' in v) || !('note' in v) || !('text' in v)) throw new Error(`fixture ${name} has the wrong shape`);
  const { vkey, note, text } = v;
  const skey = 'skey' in v ? v.skey : undefined;
  if (typeof vkey !== 'string' || typeof note !== 'string' || typeof text !== 'string') throw new Error(`fixture ${name} has the wrong shape`);
  return { vkey, note, text, ...(typeof skey === 'string' ? { skey } : {}) };
}

function code(fn: () => unknown): string {
  try {
    fn();
    return 'no error';
  } catch (err) {
    return err instanceof BulwarkError ? err.code : `not a BulwarkError: ${String(err)}`;
  }
}

const go = vector('go-sumdb');
const c2sp = vector('c2sp-signed-note');

t.test('golang.org/x/mod sumdb/note example: verified, and re-signed byte for byte', async (t) => {
  const v = parseNoteVerifierKey(go.vkey);
  t.equal(v.name, 'PeterNeumann');
  t.equal(v.keyId.toString(16), 'c74f20a3');
  t.equal(v.type, 'ed25519');
  t.equal(v.vkey, go.vkey, 'vkey round-trips');
  const verified = verifyNote(go.note, [v]);
  t.equal(verified.text, go.text);
  t.same(verified.verifiedBy, ['PeterNeumann']);
  const signer = parseNoteSignerKey(go.skey ?? '');
  t.equal(signer.keyId, v.keyId, 'signer and verifier key IDs agree');
  t.equal(await signNote(go.text, [signer]), go.note, 'Ed25519 is deterministic: the same note as Go writes');
  t.equal(formatSignedNote(parseSignedNote(go.note)), go.note, 'parse then format is the identity');
});

t.test('C2SP signed-note example verifies', async (t) => {
  const v = parseNoteVerifierKey(c2sp.vkey);
  t.equal(v.keyId.toString(16), '530d903a');
  t.equal(verifyNote(new TextEncoder().encode(c2sp.note), [v]).text, c2sp.text);
  t.equal(code(() => verifyNote(c2sp.note, [parseNoteVerifierKey(go.vkey)])), 'NOTE_UNTRUSTED', 'another key: untrusted');
});

t.test('ECDSA (signed-note type 0x02) on P-256 and P-384, Ed25519 from a Node key', async (t) => {
  for (const namedCurve of ['P-256', 'P-384']) {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve });
    const signer = noteSignerFromKey('bulwark.example/audit', privateKey);
    const verifier = noteVerifierFromKey('bulwark.example/audit', publicKey);
    const spki = publicKey.export({ format: 'der', type: 'spki' });
    t.equal(verifier.type, 'ecdsa');
    t.equal(verifier.keyId, createHash('sha256').update(spki).digest().readUInt32BE(0), `${namedCurve}: key ID = SHA-256(SPKI)[:4]`);
    t.equal(signer.keyId, verifier.keyId);
    t.ok(verifier.vkey.split('+')[2]?.startsWith('Aj'), `${namedCurve}: vkey material starts with 0x02 then DER SEQUENCE`);
    const parsed = parseNoteVerifierKey(verifier.vkey);
    const note = await signNote('bulwark.example/audit\n3\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n', [signer]);
    const sig = parseSignedNote(note).signatures[0]?.signature ?? new Uint8Array();
    t.equal(sig[0], 0x30, `${namedCurve}: the signature is ASN.1 DER`);
    // Independent check: node:crypto over SHA-256 of the text, as transparency-dev/formats does.
    t.ok(cryptoVerify('sha256', new TextEncoder().encode(parseSignedNote(note).text), { key: publicKey, dsaEncoding: 'der' }, sig));
    t.same(verifyNote(note, [parsed]).verifiedBy, ['bulwark.example/audit'], `${namedCurve}: verifies with the parsed vkey`);
    const tampered = note.replace('\n3\n', '\n4\n');
    t.equal(code(() => verifyNote(tampered, [parsed])), 'NOTE_SIGNATURE_INVALID', `${namedCurve}: altered text refused`);
  }
  const ed = generateKeyPairSync('ed25519');
  const s = noteSignerFromKey('bulwark.example/ed', ed.privateKey);
  const raw = ed.publicKey.export({ format: 'jwk' }).x ?? '';
  t.equal(s.keyId, noteKeyId('bulwark.example/ed', 'ed25519', new Uint8Array(Buffer.from(raw, 'base64url'))));
  t.equal(code(() => noteSignerFromKey('x', generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey)), 'NOTE_KEY_INVALID', 'RSA cannot sign notes');
  t.equal(code(() => noteVerifierFromKey('x', generateKeyPairSync('ec', { namedCurve: 'secp256k1' }).publicKey)), 'NOTE_KEY_INVALID', 'secp256k1 refused');
});

t.test('trust rules: unknown signatures ignored, a failing known one refuses the note', async (t) => {
  const a = generateKeyPairSync('ed25519');
  const b = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const sa = noteSignerFromKey('log.example/a', a.privateKey);
  const sb = noteSignerFromKey('log.example/b', b.privateKey);
  const va = noteVerifierFromKey('log.example/a', a.publicKey);
  const vb = noteVerifierFromKey('log.example/b', b.publicKey);
  const text = 'log.example/a\n1\nbjQLnP+zepicpUTmu3gKLHiQHT+zNzh2hRGjBhevoB0=\n';
  const both = await signNote(text, [sa, sb]);
  t.same(verifyNote(both, [va]).verifiedBy, ['log.example/a'], 'b unknown: ignored');
  t.same(verifyNote(both, [va, vb]).verifiedBy, ['log.example/a', 'log.example/b']);
  // Same name, other key ID: not the known key, ignored (signed-note: name and ID must both match).
  const impostor = noteSignerFromKey('log.example/a', generateKeyPairSync('ed25519').privateKey);
  t.same(verifyNote(await signNote(text, [impostor, sa]), [va]).verifiedBy, ['log.example/a']);
  const onlyImpostor = await signNote(text, [impostor]);
  t.equal(code(() => verifyNote(onlyImpostor, [va])), 'NOTE_UNTRUSTED');
  // A forged signature under the known name and key ID.
  const note = parseSignedNote(both);
  const forged = formatSignedNote({
    text: note.text,
    signatures: note.signatures.map((s) => (s.name === 'log.example/a' ? { ...s, signature: s.signature.map((x, i) => (i === 0 ? x ^ 1 : x)) } : s)),
  });
  t.equal(code(() => verifyNote(forged, [va, vb])), 'NOTE_SIGNATURE_INVALID', 'a bad known signature refuses even with another good one');
  t.equal(code(() => verifyNote(both, [])), 'NOTE_UNTRUSTED', 'no trusted keys');
});

t.test('malformed notes are NOTE_MALFORMED', async (t) => {
  const sigLine = go.note.slice(go.text.length + 1);
  const cases: ReadonlyArray<readonly [string, string | Uint8Array]> = [
    ['empty', ''],
    ['no blank line', go.text + sigLine],
    ['no signature lines', `${go.text}\n`],
    ['no final newline', go.note.slice(0, -1)],
    ['hyphen-minus for the em dash', go.note.replace('\u2014', '-')],
    ['en dash for the em dash', go.note.replace('\u2014', '\u2013')],
    ['two spaces after the dash', go.note.replace('\u2014 ', '\u2014  ')],
    ['two spaces before the signature', go.note.replace('PeterNeumann ', 'PeterNeumann  ')],
    ['trailing space on the signature line', go.note.replace(/=\n$/, '= \n')],
    ['bad base64', go.note.replace('x08go', 'x08g!')],
    ['unpadded base64', go.note.replace('AM=\n', 'AM\n')],
    ['non-canonical base64 (stray low bits)', go.note.replace('AM=\n', 'AN=\n')],
    ['signature shorter than a key ID', `${go.text}\n\u2014 PeterNeumann AAAAAA==\n`],
    ['empty key name', go.note.replace('\u2014 PeterNeumann', '\u2014 ')],
    ['key name with a plus', go.note.replace('PeterNeumann', 'Peter+Neumann')],
    ['key name with a no-break space', go.note.replace('PeterNeumann', 'Peter\u00a0Neumann')],
    ['text line after the signatures', `${go.note}more text\n`],
    ['carriage return', go.note.replace('problem,\n', 'problem,\r\n')],
    ['NUL in the text', go.note.replace('If', 'I\u0000f')],
    ['lone surrogate', go.note.replace('If', 'I\ud800f')],
    ['invalid UTF-8', Uint8Array.of(...new TextEncoder().encode(go.text), 0xff, 0x0a, 0x0a, ...new TextEncoder().encode(sigLine))],
    ['65 signatures', `${go.text}\n${sigLine.repeat(65)}`],
    ['larger than the cap', `${'a'.repeat(NOTE_MAX_BYTES)}\n\n${sigLine}`],
    ['huge signature', `${go.text}\n\u2014 PeterNeumann ${'A'.repeat(20000)}\n`],
  ];
  for (const [label, input] of cases) t.equal(code(() => parseSignedNote(input)), 'NOTE_MALFORMED', label);
  t.equal(code(() => parseSignedNote(`${go.text}\n${sigLine.repeat(16)}`)), 'no error', '16 signatures are accepted');
  for (const bad of [
    '',
    'PeterNeumann',
    'PeterNeumann+c74f20a3',
    'PeterNeumann+C74F20A3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW',
    'PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW',
    'PeterNeumann+c74f20a3+AhpC2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW',
    'PeterNeumann+c74f20a3+BRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW',
    'PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10T',
    'Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW',
    `x+00000000+${'A'.repeat(5000)}`,
  ]) {
    t.equal(code(() => parseNoteVerifierKey(bad)), 'NOTE_KEY_INVALID', `vkey ${bad.slice(0, 40)}`);
  }
  t.equal(code(() => parseNoteSignerKey('PRIVATE+KEY+PeterNeumann+c74f20a4+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz')), 'NOTE_KEY_INVALID');
  t.equal(code(() => formatSignedNote({ text: 'no newline', signatures: [] })), 'NOTE_MALFORMED');
});

t.test('mutated notes: typed errors only, and never a verified mutated text', async (t) => {
  const v = parseNoteVerifierKey(go.vkey);
  const stats = newStats();
  const bytes = new TextEncoder().encode(go.note);
  const wrongTexts: string[] = [];
  for (const [label, input] of mutations(bytes, prng(SEED), { flipSamples: 600, randomCount: 300, sizes: [0x2d20, 0xe280, 0x0a0a] })) {
    probe(stats, 'verifyNote', label, input, () => {
      const verified = verifyNote(input, [v]);
      if (verified.text !== go.text) wrongTexts.push(label);
    });
  }
  t.same(wrongTexts, [], 'no mutated text verified');
  report(t, stats, 1000);
});
