/**
 * 1,200 envelopes mutated from valid ones by a seeded PRNG (the same run every time). Each
 * mutation is either semantically neutral (keyid changes, base64 variants, reordered or
 * extra untrusted signatures, unknown fields), and must still verify to the same payload,
 * or it changes what is signed or breaks the encoding, and must be refused with a typed
 * error. Whatever happens: never a crash, never a different payload accepted.
 */
import t from 'tap';
import { encodeEnvelope, keySigner, PAYLOAD_TYPES, signEnvelope, trustedKeySet, verifyEnvelope, type TrustedKeySet } from '../../../lib/dsse/index.js';
import { BulwarkError, bytesEqual } from '../../../lib/index.js';
import { makeKey, prng } from './dsse-keys.js';

const enc = new TextEncoder();
const ITERATIONS = 1200;
const random = prng(0x0d55e);

interface Sig {
  keyid?: unknown;
  sig: unknown;
  [k: string]: unknown;
}
interface Env {
  payload: unknown;
  payloadType: unknown;
  signatures: unknown;
  [k: string]: unknown;
}

/** A valid envelope with what verifies it. */
interface Base {
  readonly name: string;
  readonly json: Env;
  readonly payload: Uint8Array;
  readonly keys: TrustedKeySet;
  /** The trusted keys and one more that signed nothing. */
  readonly widerKeys: TrustedKeySet;
  readonly threshold: number;
  /** Signatures (base64) by a trusted signer of this envelope, made again (another signature, same key). */
  readonly resigned: string;
  /** A signature of this envelope's PAE by a key that is not trusted. */
  readonly untrusted: string;
  /** How many distinct trusted keys signed it. */
  readonly signers: number;
}

function int(n: number): number {
  return Math.floor(random() * n);
}
function pick<T>(xs: readonly T[]): T {
  const x = xs[int(xs.length)];
  if (x === undefined) throw new Error('empty');
  return x;
}
function b64(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('base64');
}
function unb64(text: string): Uint8Array {
  return new Uint8Array(Buffer.from(text, 'base64'));
}
function clone(e: Env): Env {
  const parsed: unknown = JSON.parse(JSON.stringify(e));
  if (typeof parsed !== 'object' || parsed === null || !('payload' in parsed) || !('payloadType' in parsed) || !('signatures' in parsed)) throw new Error('clone');
  return { ...parsed, payload: parsed.payload, payloadType: parsed.payloadType, signatures: parsed.signatures };
}
function sigs(e: Env): Sig[] {
  if (!Array.isArray(e.signatures)) throw new Error('signatures');
  const out: Sig[] = [];
  for (const s of e.signatures) {
    if (typeof s !== 'object' || s === null || !('sig' in s)) throw new Error('signature');
    out.push({ ...s, sig: s.sig });
  }
  return out;
}
function flipBit(bytes: Uint8Array): Uint8Array {
  const out = Uint8Array.from(bytes);
  if (out.length === 0) return Uint8Array.of(1);
  const i = int(out.length);
  out[i] = (out[i] ?? 0) ^ (1 << int(8));
  return out;
}
function toUrlSafe(s: string): string {
  return s.replace(/\+/g, '-').replace(/\//g, '_');
}
function unpadded(s: string): string {
  return s.replace(/=+$/, '');
}
/** One base64 spelling of the same bytes, chosen at random. */
function variant(s: string): string {
  const v = int(3);
  return v === 0 ? toUrlSafe(s) : v === 1 ? unpadded(s) : unpadded(toUrlSafe(s));
}
function str(v: unknown): string {
  if (typeof v !== 'string') throw new Error('not a string');
  return v;
}

type Expect = { readonly kind: 'verify' } | { readonly kind: 'refuse'; readonly codes: readonly string[] } | { readonly kind: 'no-wrong-accept' };
const VERIFY: Expect = { kind: 'verify' };
const BAD_SIG: Expect = { kind: 'refuse', codes: ['SIGNATURE_INVALID', 'SIGNATURE_THRESHOLD_NOT_MET'] };
const MALFORMED: Expect = { kind: 'refuse', codes: ['ENVELOPE_MALFORMED'] };

interface Mutant {
  readonly text: string;
  readonly expect: Expect;
  /** The payloadType the verifier asks for (the base's unless a mutation says otherwise). */
  readonly payloadType?: string;
  /** The threshold the verifier asks for (the base's unless a mutation says otherwise). */
  readonly threshold?: number;
  /** The trusted keys (the base's unless a mutation says otherwise). */
  readonly keys?: TrustedKeySet;
}

const JUNK = ['*', ' ', '\n', '.', '!', '"', '\\', '\u00e9', '%', '\t', '=', '\u0000'];

/** The mutations, each a function of a base envelope. */
const MUTATIONS: Record<string, (b: Base) => Mutant> = {
  'payload bit flip': (b) => {
    const e = clone(b.json);
    e.payload = b64(flipBit(unb64(str(e.payload))));
    return { text: JSON.stringify(e), expect: BAD_SIG };
  },
  'payload truncated or extended': (b) => {
    const e = clone(b.json);
    const p = unb64(str(e.payload));
    e.payload = b64(random() < 0.5 && p.length > 0 ? p.subarray(0, int(p.length)) : Uint8Array.from([...p, int(256)]));
    return { text: JSON.stringify(e), expect: BAD_SIG };
  },
  'payloadType changed': (b) => {
    const e = clone(b.json);
    const type = str(e.payloadType);
    const changes = [type.toUpperCase(), `${type} `, type.slice(0, -1), `${type}x`, PAYLOAD_TYPES.baseline, '', type.replace('+json', '+cbor')];
    e.payloadType = pick(changes.filter((c) => c !== type));
    return { text: JSON.stringify(e), expect: { kind: 'refuse', codes: ['PAYLOAD_TYPE_MISMATCH'] } };
  },
  'payloadType changed and expected': (b) => {
    // A verifier that expects the new type still finds no signature over it.
    const e = clone(b.json);
    const type = `${str(e.payloadType)}${pick(['x', ';v=2', ' '])}`;
    e.payloadType = type;
    return { text: JSON.stringify(e), expect: BAD_SIG, payloadType: type };
  },
  'signature bit flip': (b) => {
    const e = clone(b.json);
    const ss = sigs(e);
    // Every signature of a threshold-many signed envelope counts: flipping any one refuses it.
    const s = pick(ss);
    s.sig = b64(flipBit(unb64(str(s.sig))));
    e.signatures = ss;
    return { text: JSON.stringify(e), expect: BAD_SIG };
  },
  'signature truncated': (b) => {
    const e = clone(b.json);
    const ss = sigs(e);
    const s = pick(ss);
    const bytes = unb64(str(s.sig));
    s.sig = b64(bytes.subarray(0, int(bytes.length)));
    e.signatures = ss;
    return { text: JSON.stringify(e), expect: BAD_SIG };
  },
  'signature swapped in from another envelope': (b) => {
    const e = clone(b.json);
    const ss = sigs(e);
    pick(ss).sig = b.untrusted;
    e.signatures = ss;
    return { text: JSON.stringify(e), expect: BAD_SIG };
  },
  'keyid changed': (b) => {
    const e = clone(b.json);
    const ss = sigs(e);
    for (const s of ss) {
      const v = int(5);
      if (v === 0) delete s.keyid;
      else if (v === 1) s.keyid = '';
      else if (v === 2) s.keyid = `k${int(1e6)}`;
      else if (v === 3) s.keyid = str(ss[int(ss.length)]?.keyid ?? 'x');
      else s.keyid = 'ecdsa-p256';
    }
    e.signatures = ss;
    return { text: JSON.stringify(e), expect: VERIFY };
  },
  'base64 variant': (b) => {
    const e = clone(b.json);
    if (random() < 0.7) e.payload = variant(str(e.payload));
    const ss = sigs(e);
    for (const s of ss) if (random() < 0.7) s.sig = variant(str(s.sig));
    e.signatures = ss;
    return { text: JSON.stringify(e), expect: VERIFY };
  },
  'base64 broken': (b) => {
    const e = clone(b.json);
    const ss = sigs(e);
    const target = random() < 0.5 || str(e.payload).length === 0 ? pick(ss) : undefined;
    const text = target === undefined ? str(e.payload) : str(target.sig);
    const v = int(4);
    let broken: string;
    if (v === 0) {
      const at = int(text.length + 1);
      broken = `${text.slice(0, at)}${pick(JUNK)}${text.slice(at)}`;
    } else if (v === 1) {
      broken = `${text}${'='.repeat(1 + int(3))}`;
      // "X" + "=" can complete a group of an unpadded text; keep the padding wrong.
      if (unpadded(text).length % 4 === 0 || broken.length % 4 === 0) broken = `${text}=====`;
    } else if (v === 2) {
      // Both alphabets in one string.
      broken = `-/${text.slice(2)}`;
    } else {
      // A length no byte string encodes to (4n + 1 characters).
      const u = unpadded(text);
      broken = `${u}${'A'.repeat((1 - (u.length % 4) + 4) % 4 || 4)}`;
    }
    if (target === undefined) e.payload = broken;
    else target.sig = broken;
    e.signatures = ss;
    return { text: JSON.stringify(e), expect: MALFORMED };
  },
  'duplicate signatures by one key': (b) => {
    const e = clone(b.json);
    const ss = sigs(e);
    const first = ss[0];
    if (first === undefined) throw new Error('no signature');
    const copies: Sig[] = Array.from({ length: 1 + int(4) }, () => (random() < 0.5 ? { ...first } : { keyid: `dup${int(9)}`, sig: b.resigned }));
    // Only the first signer's signatures: one distinct key, however many there are.
    e.signatures = [first, ...copies];
    // A 1-of-n base is asked for 2 of its keys and one more trusted key that signed nothing.
    return { text: JSON.stringify(e), expect: { kind: 'refuse', codes: ['SIGNATURE_THRESHOLD_NOT_MET'] }, threshold: Math.max(2, b.threshold), keys: b.widerKeys };
  },
  'duplicate signatures beside the others': (b) => {
    const e = clone(b.json);
    const ss = sigs(e);
    const dups = Array.from({ length: 1 + int(3) }, () => ({ ...pick(ss) }));
    e.signatures = [...ss, ...dups];
    return { text: JSON.stringify(e), expect: VERIFY };
  },
  'extra untrusted signatures': (b) => {
    const e = clone(b.json);
    const ss = sigs(e);
    const extra = Array.from({ length: 1 + int(5) }, () => ({ keyid: pick(['', 'a', 'b', 'trusted']), sig: b.untrusted }));
    const all = [...extra, ...ss];
    // Shuffled.
    for (let i = all.length - 1; i > 0; i--) {
      const j = int(i + 1);
      const x = all[i];
      const y = all[j];
      if (x !== undefined && y !== undefined) [all[i], all[j]] = [y, x];
    }
    e.signatures = all;
    return { text: JSON.stringify(e), expect: VERIFY };
  },
  'only untrusted signatures': (b) => {
    const e = clone(b.json);
    e.signatures = Array.from({ length: 1 + int(3) }, () => ({ sig: b.untrusted }));
    return { text: JSON.stringify(e), expect: { kind: 'refuse', codes: ['SIGNATURE_INVALID'] } };
  },
  'signatures dropped below the threshold': (b) => {
    const e = clone(b.json);
    const ss = sigs(e);
    e.signatures = ss.slice(0, b.threshold - 1);
    return { text: JSON.stringify(e), expect: ss.length === 1 || b.threshold === 1 ? MALFORMED : BAD_SIG };
  },
  'unknown fields added': (b) => {
    const e = clone(b.json);
    e[pick(['extra', 'payload_type', 'Payload', 'signature'])] = pick([1, 'x', null, [], { payload: 'AAAA' }]);
    const ss = sigs(e);
    const s = pick(ss);
    s[pick(['cert', 'extra', 'Sig'])] = 'junk';
    e.signatures = ss;
    return { text: JSON.stringify(e), expect: VERIFY };
  },
  'field of the wrong type': (b) => {
    const e = clone(b.json);
    const wrong = pick<unknown>([1, null, true, [], {}, ['AAAA']]);
    const v = int(5);
    if (v === 0) e.payload = wrong;
    else if (v === 1) e.payloadType = wrong;
    else if (v === 2) e.signatures = pick<unknown>([1, null, 'x', {}, [], [null], ['AAAA']]);
    else if (v === 3) {
      const ss = sigs(e);
      pick(ss).sig = wrong;
      e.signatures = ss;
    } else {
      const ss = sigs(e);
      pick(ss).keyid = pick<unknown>([1, null, true, [], {}]);
      e.signatures = ss;
    }
    return { text: JSON.stringify(e), expect: MALFORMED };
  },
  'field missing': (b) => {
    const e = clone(b.json);
    const v = int(4);
    if (v === 0) delete e.payload;
    else if (v === 1) delete e.payloadType;
    else if (v === 2) delete e.signatures;
    else {
      const ss = sigs(e);
      delete pick(ss).sig;
      e.signatures = ss;
    }
    return { text: JSON.stringify(e), expect: MALFORMED };
  },
  'JSON text truncated': (b) => {
    const text = JSON.stringify(b.json);
    return { text: text.slice(0, int(text.length)), expect: MALFORMED };
  },
  'JSON text with a random byte': (b) => {
    // May land inside a string (a keyid: neutral; the payload: refused) or break the JSON: never a wrong accept.
    const text = JSON.stringify(b.json);
    const at = int(text.length);
    const c = String.fromCharCode(int(128));
    return { text: random() < 0.5 ? `${text.slice(0, at)}${c}${text.slice(at)}` : `${text.slice(0, at)}${c}${text.slice(at + 1)}`, expect: { kind: 'no-wrong-accept' } };
  },
  'JSON junk around': (b) => {
    const text = JSON.stringify(b.json);
    const junk = pick([`${text}x`, `[${text}]`, `${text}${text}`, `{"envelope":${text}}`, `${'['.repeat(70)}${']'.repeat(70)}`, `"${text}"`, text.replace('{', '{{')]);
    return { text: junk, expect: MALFORMED };
  },
};

async function makeBases(): Promise<Base[]> {
  const p256 = makeKey('ecdsa-p256');
  const ed = makeKey('ed25519');
  const rsa = makeKey('rsa-pss');
  const p384 = makeKey('ecdsa-p384');
  const stranger = makeKey('ecdsa-p256', 'trusted');
  const bystander = makeKey('ed25519');
  const bases: Base[] = [];
  const add = async (name: string, type: string, payload: Uint8Array, signers: ReturnType<typeof makeKey>[], trusted: ReturnType<typeof makeKey>[], threshold: number): Promise<void> => {
    const env = await signEnvelope(type, payload, signers.map((s) => s.signer));
    const first = signers[0];
    if (first === undefined) throw new Error('signers');
    const again = await signEnvelope(type, payload, [keySigner(first.privateKey)]);
    const foreign = await signEnvelope(type, payload, [stranger.signer]);
    const parsed: unknown = JSON.parse(encodeEnvelope(env));
    if (typeof parsed !== 'object' || parsed === null || !('payload' in parsed) || !('payloadType' in parsed) || !('signatures' in parsed)) throw new Error('envelope');
    bases.push({
      name,
      json: { ...parsed, payload: parsed.payload, payloadType: parsed.payloadType, signatures: parsed.signatures },
      payload,
      keys: trustedKeySet(trusted.map((k) => k.publicKey)),
      widerKeys: trustedKeySet([...trusted.map((k) => k.publicKey), bystander.publicKey]),
      threshold,
      resigned: b64(again.signatures[0]?.sig ?? new Uint8Array()),
      untrusted: b64(foreign.signatures[0]?.sig ?? new Uint8Array()),
      signers: signers.length,
    });
  };
  await add('P-256 policy', PAYLOAD_TYPES.policy, enc.encode('{"version":1,"allow":["sha256:00"]}'), [p256], [p256, ed], 1);
  await add('Ed25519 baseline', PAYLOAD_TYPES.baseline, enc.encode('{"version":1,"pcrs":{}}\n'), [ed], [ed], 1);
  await add('RSA-PSS app', PAYLOAD_TYPES.app, enc.encode('{"Job":{"ID":"web"}}'), [rsa], [rsa, p256], 1);
  await add('P-384 keyset', PAYLOAD_TYPES.keyset, enc.encode('{"keys":["k1"]}'), [p384], [p384], 1);
  await add('2-of-3 keyset', PAYLOAD_TYPES.keyset, enc.encode('{"keys":["k1","k2","k3"],"threshold":2}'), [p256, ed], [p256, ed, rsa], 2);
  await add('3-of-3 statement', PAYLOAD_TYPES.inToto, enc.encode('{"_type":"https://in-toto.io/Statement/v1"}'), [rsa, ed, p384], [p384, rsa, ed], 3);
  await add('empty payload', 'application/vnd.bulwark.test+json', new Uint8Array(), [ed], [ed], 1);
  return bases;
}

const bases = await makeBases();

t.test('the bases verify', async (t) => {
  for (const b of bases) {
    const v = verifyEnvelope(JSON.stringify(b.json), { trustedKeys: b.keys, threshold: b.threshold, payloadType: str(b.json.payloadType) });
    t.ok(bytesEqual(v.payload, b.payload), b.name);
  }
});

t.test(`${ITERATIONS} seeded mutations: neutral ones verify, the rest are refused with a typed error`, async (t) => {
  const names = Object.keys(MUTATIONS);
  const tally = new Map<string, { verified: number; refused: Map<string, number> }>();
  let failures = 0;
  for (let i = 0; i < ITERATIONS; i++) {
    const base = pick(bases);
    const name = names[i % names.length] ?? '';
    const mutate = MUTATIONS[name];
    if (mutate === undefined) throw new Error(name);
    const m = mutate(base);
    const counts = tally.get(name) ?? { verified: 0, refused: new Map<string, number>() };
    tally.set(name, counts);
    let outcome: { ok: true; payload: Uint8Array } | { ok: false; code: string };
    try {
      const v = verifyEnvelope(m.text, { trustedKeys: m.keys ?? base.keys, threshold: m.threshold ?? base.threshold, payloadType: m.payloadType ?? str(base.json.payloadType) });
      outcome = { ok: true, payload: v.payload };
    } catch (err) {
      if (!(err instanceof BulwarkError)) {
        failures++;
        t.fail(`#${i} ${name} on ${base.name}: not a BulwarkError: ${String(err)}`, { text: m.text.slice(0, 300) });
        continue;
      }
      outcome = { ok: false, code: err.code };
    }
    if (outcome.ok) counts.verified++;
    else counts.refused.set(outcome.code, (counts.refused.get(outcome.code) ?? 0) + 1);
    let good: boolean;
    if (outcome.ok) good = m.expect.kind !== 'refuse' && bytesEqual(outcome.payload, base.payload);
    else good = m.expect.kind === 'no-wrong-accept' || (m.expect.kind === 'refuse' && m.expect.codes.includes(outcome.code));
    if (!good) {
      failures++;
      t.fail(`#${i} ${name} on ${base.name}: expected ${JSON.stringify(m.expect)}, got ${outcome.ok ? 'verified' : outcome.code}`, { text: m.text.slice(0, 400) });
    }
  }
  t.equal(failures, 0, `${ITERATIONS} mutations as expected`);
  for (const [name, c] of tally) {
    t.comment(`${name}: ${c.verified} verified, refused ${JSON.stringify(Object.fromEntries(c.refused))}`);
    t.ok(c.verified + [...c.refused.values()].reduce((a, n) => a + n, 0) >= 40, `${name} ran`);
  }
  t.equal(tally.size, names.length, 'every mutation kind ran');
});
