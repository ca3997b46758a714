/**
 * lib/dsse against the DSSE spec: the spec's and go-securesystemslib's vectors
 * (test/fixtures/dsse), base64 rules, envelope parsing, every key type signed and verified,
 * t-of-n over distinct keys, payload type first, and in-toto statements.
 */
import t from 'tap';
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import {
  decodeBase64,
  encodeEnvelope,
  keySigner,
  MAX_ENVELOPE_SIGNATURES,
  pae,
  PAYLOAD_TYPES,
  parseEnvelope,
  parseStatement,
  signEnvelope,
  statement,
  trustedKeySet,
  verifyEnvelope,
} from '../../../lib/dsse/index.js';
import { BulwarkError, fromHex } from '../../../lib/index.js';
import { makeKey } from './dsse-keys.js';

const FIX = fileURLToPath(new URL('../../../../test/fixtures/dsse/', import.meta.url));
const enc = new TextEncoder();
const dec = new TextDecoder();

async function fixture(name: string): Promise<unknown> {
  return JSON.parse(await readFile(`${FIX}${name}`, 'utf8'));
}

function rec(v: unknown): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('not an object');
  return Object.fromEntries(Object.entries(v));
}

function str(v: unknown): string {
  if (typeof v !== 'string') throw new Error('not a string');
  return v;
}

/** Runs fn and returns the BulwarkError code it throws ('' when it does not throw). */
function codeOf(fn: () => unknown): string {
  try {
    fn();
    return '';
  } catch (err) {
    if (err instanceof BulwarkError) return err.code;
    throw err;
  }
}

t.test('PAE vectors (go-securesystemslib TestPAE, protocol.md)', async (t) => {
  const doc = rec(await fixture('pae-vectors.json'));
  const vectors = doc['vectors'];
  if (!Array.isArray(vectors)) return t.fail('vectors');
  t.equal(vectors.length, 3);
  for (const v of vectors.map(rec)) {
    t.equal(dec.decode(pae(str(v['payloadType']), fromHex(str(v['payloadHex'])))), str(v['pae']), JSON.stringify(v['pae']));
  }
  // LEN() counts UTF-8 bytes of the type too, not UTF-16 code units.
  t.equal(dec.decode(pae('ಠ', enc.encode('x'))), 'DSSEv1 3 ಠ 1 x');
});

t.test('the spec example: its key verifies its envelope, and its PAE matches', async (t) => {
  const doc = rec(await fixture('spec-vector.json'));
  const jwk = rec(doc['key']);
  const privateKey = createPrivateKey({ key: { kty: 'EC', crv: 'P-256', x: str(jwk['x']), y: str(jwk['y']), d: str(jwk['d']) }, format: 'jwk' });
  const publicKey = createPublicKey(privateKey);
  // The decimal coordinates of protocol.md are the JWK's.
  const dx = BigInt(str(rec(doc['keyDecimal'])['x']));
  t.equal(BigInt(`0x${Buffer.from(str(jwk['x']), 'base64url').toString('hex')}`), dx);
  t.equal(dec.decode(pae(str(doc['payloadType']), enc.encode(str(doc['payload'])))), str(doc['pae']));
  for (const which of ['envelope', 'envelopeWithKeyid']) {
    const text = JSON.stringify(doc[which]);
    const v = verifyEnvelope(text, { trustedKeys: [publicKey], payloadType: 'http://example.com/HelloWorld' });
    t.equal(dec.decode(v.payload), 'hello world', which);
    t.same(v.keys, [{ index: 0, keyid: '' }]);
  }
  // The spec signs deterministically (RFC 6979): node:crypto's own signature differs but verifies too.
  const ours = await signEnvelope('http://example.com/HelloWorld', enc.encode('hello world'), [keySigner(privateKey)]);
  t.equal(dec.decode(verifyEnvelope(encodeEnvelope(ours), { trustedKeys: [publicKey], payloadType: 'http://example.com/HelloWorld' }).payload), 'hello world');
  // Another key does not verify the spec's envelope.
  const other = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey;
  t.equal(codeOf(() => verifyEnvelope(JSON.stringify(doc['envelope']), { trustedKeys: [other], payloadType: 'http://example.com/HelloWorld' })), 'SIGNATURE_INVALID');
});

t.test('base64: standard and URL-safe, padded or not; nothing else', async (t) => {
  const bytes = Uint8Array.from([0xfb, 0xff, 0xbf, 0x00, 0x3e]);
  for (const text of ['+/+/AD4=', '+/+/AD4', '-_-_AD4=', '-_-_AD4']) t.same([...decodeBase64(text, '/x', 'ENVELOPE_MALFORMED')], [...bytes], text);
  t.same([...decodeBase64('', '/x', 'ENVELOPE_MALFORMED')], []);
  const bad = ['+/-_AD4=', 'AD4==', 'AD4=A', 'A', 'AAAAA', 'AD5=', 'AA==\n', ' AAAA', 'AA=A', 'AB==', 'AAA*', 'AAAA===', '=', '===='];
  for (const text of bad) t.equal(codeOf(() => decodeBase64(text, '/x', 'ENVELOPE_MALFORMED')), 'ENVELOPE_MALFORMED', JSON.stringify(text));
});

t.test('envelope parsing: shape, caps, typed errors; unknown fields ignored', async (t) => {
  const good = { payload: 'aGk=', payloadType: 'x', signatures: [{ sig: 'AAAA' }] };
  t.equal(dec.decode(parseEnvelope(JSON.stringify(good)).payload), 'hi');
  t.equal(parseEnvelope(JSON.stringify({ ...good, extra: 1, signatures: [{ sig: 'AAAA', keyid: 'k', more: [] }] })).signatures[0]?.keyid, 'k');
  t.equal(parseEnvelope(JSON.stringify({ ...good, payload: '' })).payload.length, 0, 'an empty payload is allowed (envelope.md: MUST be set, even if empty)');
  const bad: unknown[] = [
    '',
    'null',
    '[]',
    '{',
    '"x"',
    { payloadType: 'x', signatures: [{ sig: 'AAAA' }] },
    { payload: 'aGk=', signatures: [{ sig: 'AAAA' }] },
    { payload: 'aGk=', payloadType: 'x' },
    { ...good, signatures: [] },
    { ...good, signatures: {} },
    { ...good, signatures: [{}] },
    { ...good, signatures: [{ sig: 1 }] },
    { ...good, signatures: [{ sig: 'AAAA', keyid: 5 }] },
    { ...good, signatures: [null] },
    { ...good, payload: 7 },
    { ...good, payloadType: null },
    { ...good, payload: 'a*Gk=' },
    { ...good, signatures: [{ sig: 'AA AA' }] },
    { ...good, signatures: Array.from({ length: MAX_ENVELOPE_SIGNATURES + 1 }, () => ({ sig: 'AAAA' })) },
    { ...good, signatures: [{ sig: 'A'.repeat(8196) }] },
    { ...good, payloadType: 'x'.repeat(1025) },
  ];
  for (const b of bad) {
    const text = typeof b === 'string' ? b : JSON.stringify(b);
    t.equal(codeOf(() => parseEnvelope(text)), 'ENVELOPE_MALFORMED', text.slice(0, 80));
  }
  t.equal(codeOf(() => parseEnvelope(Uint8Array.from([0x7b, 0xff, 0x7d]))), 'ENVELOPE_MALFORMED', 'not UTF-8');
  t.equal(codeOf(() => parseEnvelope(`${'['.repeat(100)}${']'.repeat(100)}`)), 'ENVELOPE_MALFORMED', 'too deep');
  t.equal(parseEnvelope(JSON.stringify({ ...good, signatures: Array.from({ length: MAX_ENVELOPE_SIGNATURES }, () => ({ sig: 'AAAA' })) })).signatures.length, 64);
});

t.test('every key type signs and verifies; a wrong key, payload or type does not', async (t) => {
  for (const name of ['ecdsa-p256', 'ecdsa-p384', 'ed25519', 'rsa-pss', 'rsa-pkcs1'] as const) {
    const k = makeKey(name);
    const other = makeKey(name);
    const env = await signEnvelope(PAYLOAD_TYPES.policy, enc.encode(`{"policy":"${name}"}`), [k.signer]);
    const text = encodeEnvelope(env);
    const opts = { trustedKeys: [k.publicKey], payloadType: PAYLOAD_TYPES.policy };
    const v = verifyEnvelope(text, opts);
    t.equal(dec.decode(v.payload), `{"policy":"${name}"}`, name);
    t.equal(v.payloadType, PAYLOAD_TYPES.policy);
    t.equal(codeOf(() => verifyEnvelope(text, { ...opts, trustedKeys: [other.publicKey] })), 'SIGNATURE_INVALID', `${name}: untrusted key`);
    t.equal(codeOf(() => verifyEnvelope(text, { ...opts, payloadType: PAYLOAD_TYPES.baseline })), 'PAYLOAD_TYPE_MISMATCH', `${name}: type`);
    const altered = { ...env, payload: enc.encode(`{"policy":"${name}!"}`) };
    t.equal(codeOf(() => verifyEnvelope(altered, opts)), 'SIGNATURE_INVALID', `${name}: payload`);
    // A private key given as trusted counts as its public half.
    t.equal(verifyEnvelope(text, { ...opts, trustedKeys: [k.privateKey] }).keys.length, 1);
  }
});

t.test('ECDSA: DER and raw r‖s both verify; RSA: a pinned scheme accepts only itself', async (t) => {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-384' });
  const payload = enc.encode('p');
  const raw = sign('sha384', pae('t', payload), { key: privateKey, dsaEncoding: 'ieee-p1363' });
  t.equal(raw.length, 96);
  const env = { payloadType: 't', payload, signatures: [{ keyid: '', sig: new Uint8Array(raw) }] };
  t.equal(verifyEnvelope(env, { trustedKeys: [publicKey], payloadType: 't' }).keys.length, 1);
  // SHA-256 over P-384 is not Bulwark's scheme.
  const wrongHash = sign('sha256', pae('t', payload), { key: privateKey, dsaEncoding: 'der' });
  t.equal(codeOf(() => verifyEnvelope({ ...env, signatures: [{ keyid: '', sig: new Uint8Array(wrongHash) }] }, { trustedKeys: [publicKey], payloadType: 't' })), 'SIGNATURE_INVALID');

  const pss = makeKey('rsa-pss');
  const envPss = await signEnvelope('t', payload, [pss.signer]);
  const envPkcs1 = await signEnvelope('t', payload, [keySigner(pss.privateKey, { scheme: 'rsa-pkcs1v15-sha256' })]);
  t.equal(verifyEnvelope(envPkcs1, { trustedKeys: [pss.publicKey], payloadType: 't' }).keys.length, 1, 'unpinned RSA accepts PKCS#1 v1.5');
  t.equal(verifyEnvelope(envPss, { trustedKeys: [{ key: pss.publicKey, scheme: 'rsa-pss-sha256' }], payloadType: 't' }).keys.length, 1);
  t.equal(codeOf(() => verifyEnvelope(envPkcs1, { trustedKeys: [{ key: pss.publicKey, scheme: 'rsa-pss-sha256' }], payloadType: 't' })), 'SIGNATURE_INVALID');
  t.equal(codeOf(() => verifyEnvelope(envPss, { trustedKeys: [{ key: pss.publicKey, scheme: 'rsa-pkcs1v15-sha256' }], payloadType: 't' })), 'SIGNATURE_INVALID');
  t.equal(codeOf(() => verifyEnvelope(envPss, { trustedKeys: [{ key: pss.publicKey, scheme: 'ed25519' }], payloadType: 't' })), 'KEY_INVALID');
});

t.test('keys Bulwark does not trust are refused as keys', async (t) => {
  const weak = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey;
  const k1 = generateKeyPairSync('ec', { namedCurve: 'secp256k1' }).publicKey;
  const ed448 = generateKeyPairSync('ed448').publicKey;
  for (const key of [weak, k1, ed448]) t.equal(codeOf(() => trustedKeySet([key])), 'KEY_INVALID');
});

t.test('threshold over distinct keys; keyid never decides', async (t) => {
  const a = makeKey('ecdsa-p256', 'a');
  const b = makeKey('ed25519', 'b');
  const c = makeKey('ecdsa-p256', 'c');
  const payload = enc.encode('{"keys":[]}');
  const type = PAYLOAD_TYPES.keyset;
  const trusted = [
    { key: a.publicKey, keyid: 'A' },
    { key: b.publicKey, keyid: 'B' },
    { key: c.publicKey, keyid: 'C' },
  ];
  const two = await signEnvelope(type, payload, [a.signer, b.signer]);
  t.same(verifyEnvelope(two, { trustedKeys: trusted, threshold: 2, payloadType: type }).keys, [
    { index: 0, keyid: 'A' },
    { index: 1, keyid: 'B' },
  ]);
  const e = (() => {
    try {
      verifyEnvelope(two, { trustedKeys: trusted, threshold: 3, payloadType: type });
    } catch (err) {
      return err;
    }
    return undefined;
  })();
  t.ok(e instanceof BulwarkError && e.code === 'SIGNATURE_THRESHOLD_NOT_MET' && e.details['verified'] === 2 && e.details['threshold'] === 3, 'names how many verified');
  // One key signing three times is one key.
  const same = await signEnvelope(type, payload, [a.signer, a.signer, keySigner(a.privateKey, { keyid: 'b' })]);
  t.equal(codeOf(() => verifyEnvelope(same, { trustedKeys: trusted, threshold: 2, payloadType: type })), 'SIGNATURE_THRESHOLD_NOT_MET');
  // The same key listed twice is one trusted key.
  t.equal(codeOf(() => verifyEnvelope(two, { trustedKeys: [a.publicKey, a.publicKey], threshold: 2, payloadType: type })), 'USAGE');
  // keyids swapped, emptied or made up change nothing.
  const swapped = { ...two, signatures: two.signatures.map((s, i) => ({ ...s, keyid: ['C', ''][i] ?? 'zz' })) };
  t.equal(verifyEnvelope(swapped, { trustedKeys: trusted, threshold: 2, payloadType: type }).keys.length, 2);
  // Signatures by an untrusted key beside trusted ones do not count and do not hurt.
  const stranger = makeKey('ed25519', 'A');
  const mixed = await signEnvelope(type, payload, [stranger.signer, a.signer, stranger.signer]);
  t.equal(verifyEnvelope(mixed, { trustedKeys: trusted, threshold: 1, payloadType: type }).keys.length, 1);
  t.equal(codeOf(() => verifyEnvelope(mixed, { trustedKeys: trusted, threshold: 2, payloadType: type })), 'SIGNATURE_THRESHOLD_NOT_MET');
  t.equal(codeOf(() => verifyEnvelope(two, { trustedKeys: trusted, threshold: 0, payloadType: type })), 'USAGE');
  // The payload type is checked before any signature: an unsigned-by-anyone envelope of another type is a mismatch.
  t.equal(codeOf(() => verifyEnvelope({ ...two, payloadType: 'x' }, { trustedKeys: trusted, payloadType: type })), 'PAYLOAD_TYPE_MISMATCH');
});

t.test('signers: a failing signer is SIGNING_FAILED; counts are bounded', async (t) => {
  const failing = { keyid: 'hsm', sign: async (): Promise<Uint8Array> => Promise.reject(new Error('token removed')) };
  await t.rejects(signEnvelope('t', enc.encode('x'), [failing]), { code: 'SIGNING_FAILED' });
  await t.rejects(signEnvelope('t', enc.encode('x'), []), { code: 'USAGE' });
  t.throws(() => keySigner('not a key'), { code: 'KEY_INVALID' });
  t.throws(() => keySigner(generateKeyPairSync('ed25519').publicKey), { code: 'KEY_INVALID' });
});

t.test('in-toto Statement v1', async (t) => {
  const digest = 'a'.repeat(64);
  const s = statement([{ name: 'bin/app', digest: { sha256: digest } }], 'https://bulwark.invalid/attested/v1', { node: 'n1' });
  t.equal(s.payloadType, 'application/vnd.in-toto+json');
  const k = makeKey('ed25519');
  const env = await signEnvelope(s.payloadType, s.payload, [k.signer]);
  const v = verifyEnvelope(encodeEnvelope(env), { trustedKeys: [k.publicKey], payloadType: PAYLOAD_TYPES.inToto });
  t.match(parseStatement(v.payload), { _type: 'https://in-toto.io/Statement/v1', subject: [{ name: 'bin/app', digest: { sha256: digest } }], predicate: { node: 'n1' } });
  t.throws(() => statement([{ name: 'x', digest: { sha256: 'ABC' } }], 'p', {}), { code: 'STATEMENT_MALFORMED' });
  t.throws(() => statement([], 'p', {}), { code: 'STATEMENT_MALFORMED' });
  t.throws(() => parseStatement(enc.encode('{"_type":"https://in-toto.io/Statement/v0.1"}')), { code: 'STATEMENT_MALFORMED' });
  t.same(Object.values(PAYLOAD_TYPES).length, new Set(Object.values(PAYLOAD_TYPES)).size, 'payload types are distinct');
});

t.test('payloads of every size verify, one after another (the reused PAE buffer grows and is bypassed)', async (t) => {
  const k = makeKey('ed25519');
  const keys = trustedKeySet([k.publicKey]);
  const sizes = [0, 1, 4000, 5000, 70_000, 1_100_000, 10, 300_000];
  const envelopes = await Promise.all(sizes.map(async (n) => encodeEnvelope(await signEnvelope('t', new Uint8Array(n).fill(n % 251), [k.signer]))));
  for (const [i, text] of envelopes.entries()) {
    const v = verifyEnvelope(text, { trustedKeys: keys, payloadType: 't' });
    t.equal(v.payload.length, sizes[i]);
    t.ok(v.payload.every((b) => b === (sizes[i] ?? 0) % 251), `${sizes[i]} bytes intact`);
  }
  // The payload returned is not the reused buffer: a later verification leaves it as it was.
  const first = verifyEnvelope(envelopes[2] ?? '', { trustedKeys: keys, payloadType: 't' });
  verifyEnvelope(envelopes[3] ?? '', { trustedKeys: keys, payloadType: 't' });
  t.ok(first.payload.every((b) => b === 4000 % 251));
});
