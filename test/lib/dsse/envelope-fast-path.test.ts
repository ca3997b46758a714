/**
 * parseEnvelope's fast path (the compact layout read in place) against the full parser
 * (JSON.parse through lib/schema, the schema check, then decoding) on the same texts: for
 * every text both accept with the same fields, or both refuse with the same code. The texts
 * are valid envelopes (keyids with non-ASCII, escapes, quotes; several signatures; URL-safe
 * and unpadded base64) and 20,000 seeded mutations of them (a character replaced, inserted
 * or deleted, biased toward what the fast path must not misread: `\`, `"`, control
 * characters, whitespace, `,` `]` `}`), as text and as UTF-8 bytes.
 */
import t from 'tap';
import { generateKeyPairSync } from 'node:crypto';
import { isBulwarkError } from '../../../lib/index.js';
import { decodeEnvelope, encodeEnvelope, keySigner, parseEnvelope, PAYLOAD_TYPES, signEnvelope, type DsseEnvelope } from '../../../lib/dsse/index.js';
import { parseJsonText } from '../../../lib/schema/index.js';

const MUTATIONS = 20_000;

/** mulberry32: the same sequence every run. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = Math.imul(a ^ (a >>> 15), 1 | a);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

function full(text: string | Uint8Array): DsseEnvelope {
  return decodeEnvelope(parseJsonText(text, 'DSSE envelope', 'ENVELOPE_MALFORMED', undefined, 64 * 1024 * 1024));
}

type Outcome = { ok: true; value: { payloadType: string; payload: string; signatures: { keyid: string; sig: string }[] } } | { ok: false; code: string };

function outcome(f: () => DsseEnvelope): Outcome {
  try {
    const e = f();
    return {
      ok: true,
      value: { payloadType: e.payloadType, payload: Buffer.from(e.payload).toString('hex'), signatures: e.signatures.map((s) => ({ keyid: s.keyid, sig: Buffer.from(s.sig).toString('hex') })) },
    };
  } catch (err) {
    return { ok: false, code: isBulwarkError(err) ? err.code : `not a BulwarkError: ${String(err)}` };
  }
}

const ed = generateKeyPairSync('ed25519');
const p256 = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const body = new TextEncoder().encode('{"version":1,"name":"fast path","entries":["a","b"]}');
const two = await signEnvelope(PAYLOAD_TYPES.policy, body, [keySigner(ed.privateKey, { keyid: 'k1' }), keySigner(p256.privateKey)]);
const compact = encodeEnvelope(two);
const bases: string[] = [
  compact,
  encodeEnvelope({ ...two, signatures: two.signatures.map((s) => ({ ...s, keyid: 'ключ "quoted" \\ back' })) }),
  encodeEnvelope({ ...two, payloadType: 'application/vnd.example+json; charset=ü' }),
  // URL-safe, unpadded, as other encoders may write.
  compact.replace(/"payload":"([^"]*)"/, (_, b64: string) => `"payload":"${Buffer.from(b64, 'base64').toString('base64url')}"`),
  // The same fields in another key order, with spaces, an unknown field, an escape in base64: the full parser's.
  JSON.stringify({ payloadType: two.payloadType, payload: Buffer.from(two.payload).toString('base64'), signatures: [{ sig: Buffer.from(two.signatures[0]?.sig ?? []).toString('base64') }] }),
  compact.replace('{"payload":', '{ "payload" : '),
  compact.replace(']}', '],"extra":{"a":[1,2]}}'),
  compact.replace('"payload":"e', '"payload":"\\u0065'),
];

const ALPHABET = ['\\', '"', '\u0000', '\u001f', '\n', ' ', ',', ']', '}', '{', '[', ':', '=', '+', '/', '-', '_', 'A', 'é', '\ud800', 'u', '0'];

t.test('valid envelopes: the fast path and the full parser read the same fields', async (t) => {
  for (const [i, text] of bases.entries()) {
    const fast = outcome(() => parseEnvelope(text));
    t.ok(fast.ok, `base ${i} parses`);
    t.same(fast, outcome(() => full(text)), `base ${i}: same fields`);
    t.same(outcome(() => parseEnvelope(new TextEncoder().encode(text))), fast, `base ${i} as bytes`);
  }
});

t.test(`${MUTATIONS} seeded mutations: the same outcome from both parsers`, async (t) => {
  const rand = prng(0x5eed11);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)] ?? (xs[0] as T);
  let differing = 0;
  let accepted = 0;
  for (let i = 0; i < MUTATIONS; i++) {
    const base = pick(bases);
    const at = Math.floor(rand() * base.length);
    const op = rand();
    const ch = rand() < 0.8 ? pick(ALPHABET) : String.fromCharCode(Math.floor(rand() * 128));
    const text = op < 0.4 ? `${base.slice(0, at)}${ch}${base.slice(at + 1)}` : op < 0.8 ? `${base.slice(0, at)}${ch}${base.slice(at)}` : `${base.slice(0, at)}${base.slice(at + 1)}`;
    const fast = outcome(() => parseEnvelope(text));
    const slow = outcome(() => full(text));
    if (fast.ok) accepted++;
    if (JSON.stringify(fast) !== JSON.stringify(slow)) {
      differing++;
      if (differing <= 5) t.fail(`mutation ${i} ${JSON.stringify(text.slice(Math.max(0, at - 20), at + 20))}: fast ${JSON.stringify(fast)} vs full ${JSON.stringify(slow)}`);
    }
    if (i % 10 === 0) {
      const bytes = Buffer.from(text, 'utf8');
      if (JSON.stringify(outcome(() => parseEnvelope(bytes))) !== JSON.stringify(outcome(() => full(bytes)))) differing++;
    }
  }
  t.equal(differing, 0, 'no text read differently');
  t.ok(accepted > 0 && accepted < MUTATIONS, `some mutations are harmless (${accepted}), most are refused`);
});
