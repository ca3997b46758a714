/**
 * Hostile bytes into every quote decoder and verifyQuote: random bytes, every truncation,
 * bit flips and overwritten counts/sizes of the real fixtures. Each call must return a
 * value or throw a BulwarkError with a known code — never another error, never a hang.
 * Seeded, so a failure reproduces.
 */
import t from 'tap';
import { performance } from 'node:perf_hooks';
import { BulwarkError, isErrorCode } from '../../../lib/errors.js';
import { decodeQuoteAttest } from '../../../lib/tpm/attest.js';
import { decodeSerializedPcrs } from '../../../lib/tpm/pcrs.js';
import { verifyQuote } from '../../../lib/tpm/quote.js';
import { decodeTpmtSignature } from '../../../lib/tpm/signature.js';
import { TPM_ALG, TPM_GENERATED_VALUE, TPM_ST } from '../../../lib/tpm/types.js';
import { buildQuoteAttest, buildSerializedPcrs } from './quote-builders.js';
import { listQuoteFixtures, loadQuoteFixture, type QuoteFixture } from './quote-helpers.js';
import { prng } from '../hostile.js';


/** Runs hostile inputs and records anything that is not a value or a coded BulwarkError. */
class Harness {
  calls = 0;
  thrown = 0;
  slowest = 0;
  readonly problems: string[] = [];
  readonly codes = new Map<string, number>();

  run(label: string, fn: () => unknown): void {
    this.calls++;
    const start = performance.now();
    try {
      fn();
    } catch (err) {
      this.thrown++;
      if (!(err instanceof BulwarkError) || !isErrorCode(err.code)) {
        if (this.problems.length < 10) this.problems.push(`${label}: ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}`);
      } else this.codes.set(err.code, (this.codes.get(err.code) ?? 0) + 1);
    }
    const took = performance.now() - start;
    if (took > this.slowest) this.slowest = took;
  }

  summary(what: string): string {
    return `${what}: ${this.calls} inputs, ${this.thrown} refused with a code, slowest ${this.slowest.toFixed(2)} ms`;
  }
}

type Decoder = (bytes: Uint8Array) => unknown;

const fixtures: QuoteFixture[] = [];
t.before(async () => {
  for (const name of await listQuoteFixtures()) fixtures.push(await loadQuoteFixture(name));
});

function randomBytes(rand: () => number, n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.floor(rand() * 256);
  return out;
}

function decodersFor(f: QuoteFixture): [string, Uint8Array, Decoder][] {
  return [
    ['attest', f.msg, decodeQuoteAttest],
    ['signature', f.sig, decodeTpmtSignature],
    ['pcrs', f.pcrs, decodeSerializedPcrs],
    ['verifyQuote(attest)', f.msg, (b) => verifyQuote(f.ak, b, f.sig, f.pcrs, f.nonce, { selection: f.selection })],
    ['verifyQuote(signature)', f.sig, (b) => verifyQuote(f.ak, f.msg, b, f.pcrs, f.nonce, { selection: f.selection })],
    ['verifyQuote(pcrs)', f.pcrs, (b) => verifyQuote(f.ak, f.msg, f.sig, b, f.nonce, { selection: f.selection })],
  ];
}

t.test('random bytes of random lengths', async (t) => {
  const rand = prng(0x5eed0001);
  const h = new Harness();
  const ak = fixtures[0]?.ak;
  if (ak === undefined) return t.fail('no fixtures');
  for (let i = 0; i < 4000; i++) {
    const n = Math.floor(rand() * (i % 4 === 0 ? 1400 : 160));
    const bytes = randomBytes(rand, n);
    h.run(`attest #${i}`, () => decodeQuoteAttest(bytes));
    h.run(`signature #${i}`, () => decodeTpmtSignature(bytes));
    h.run(`pcrs #${i}`, () => decodeSerializedPcrs(bytes));
  }
  // Random bytes behind plausible headers, so decoding gets past the first fields.
  for (let i = 0; i < 3000; i++) {
    const tail = randomBytes(rand, Math.floor(rand() * 200));
    const attest = new Uint8Array(6 + tail.length);
    new DataView(attest.buffer).setUint32(0, TPM_GENERATED_VALUE);
    new DataView(attest.buffer).setUint16(4, TPM_ST.ATTEST_QUOTE);
    attest.set(tail, 6);
    h.run(`quote header + random #${i}`, () => decodeQuoteAttest(attest));
    const sig = new Uint8Array(4 + tail.length);
    const alg = [TPM_ALG.RSASSA, TPM_ALG.RSAPSS, TPM_ALG.ECDSA][i % 3] ?? TPM_ALG.RSASSA;
    new DataView(sig.buffer).setUint16(0, alg);
    new DataView(sig.buffer).setUint16(2, TPM_ALG.SHA256);
    sig.set(tail, 4);
    h.run(`signature header + random #${i}`, () => decodeTpmtSignature(sig));
    const pcrs = randomBytes(rand, 136 + 532 * (i % 3));
    pcrs[0] = i % 3;
    pcrs[1] = pcrs[2] = pcrs[3] = 0;
    pcrs[132] = i % 3;
    pcrs[133] = pcrs[134] = pcrs[135] = 0;
    h.run(`pcrs header + random #${i}`, () => decodeSerializedPcrs(pcrs));
    h.run(`verifyQuote random #${i}`, () => verifyQuote(ak, attest, sig, pcrs, tail.length > 0 ? tail : new Uint8Array(1)));
  }
  t.same(h.problems, [], h.summary('random'));
  t.ok(h.calls > 1000);
});

t.test('truncation at every offset of every fixture', async (t) => {
  const h = new Harness();
  for (const f of fixtures) {
    for (const [what, bytes, decode] of decodersFor(f)) {
      for (let n = 0; n < bytes.length; n++) h.run(`${f.name} ${what} [0,${n})`, () => decode(bytes.subarray(0, n)));
      // The same bytes cut from the front.
      for (let n = 1; n < bytes.length; n += 7) h.run(`${f.name} ${what} [${n},end)`, () => decode(bytes.subarray(n)));
    }
  }
  t.same(h.problems, [], h.summary('truncation'));
  t.ok(h.calls > 1000);
});

t.test('bit flips of the real fixtures', async (t) => {
  const rand = prng(0x5eed0002);
  const h = new Harness();
  for (const f of fixtures) {
    for (const [what, bytes, decode] of decodersFor(f)) {
      const rounds = what.startsWith('verifyQuote') ? 250 : 600;
      for (let i = 0; i < rounds; i++) {
        const copy = new Uint8Array(bytes);
        const flips = 1 + Math.floor(rand() * 4);
        for (let k = 0; k < flips; k++) {
          const at = Math.floor(rand() * copy.length);
          copy[at] = (copy[at] ?? 0) ^ (1 << Math.floor(rand() * 8));
        }
        h.run(`${f.name} ${what} flip #${i}`, () => decode(copy));
      }
    }
  }
  t.same(h.problems, [], h.summary('bit flips'));
  t.ok(h.calls > 1000);
});

t.test('huge counts and sizes written at every offset', async (t) => {
  const h = new Harness();
  const big = [0xffffffff, 0x80000000, 0x0001_0000, 0xffff, 0x8000, 0x0100, 0x00ff, 17, 33, 9, 65, 67, 513];
  for (const f of fixtures.slice(0, 4)) {
    for (const [what, bytes, decode] of decodersFor(f)) {
      const step = what.startsWith('verifyQuote') ? 3 : 1;
      for (let at = 0; at < bytes.length; at += step) {
        for (const v of big) {
          const copy = new Uint8Array(bytes);
          const view = new DataView(copy.buffer);
          // Big-endian for the TPM structures, little-endian for the tpm2-tools PCR file.
          const le = what.includes('pcrs');
          if (v > 0xffff) {
            if (at + 4 > copy.length) continue;
            view.setUint32(at, v, le);
          } else {
            if (at + 2 > copy.length) continue;
            view.setUint16(at, v, le);
          }
          h.run(`${f.name} ${what} ${v} at ${at}`, () => decode(copy));
        }
      }
    }
  }
  t.same(h.problems, [], h.summary('huge values'));
  t.ok(h.calls > 1000);
});

t.test('built structures with random field values', async (t) => {
  const rand = prng(0x5eed0003);
  const h = new Harness();
  const pick = (xs: readonly number[]): number => xs[Math.floor(rand() * xs.length)] ?? 0;
  const ak = fixtures[0]?.ak;
  if (ak === undefined) return t.fail('no fixtures');
  for (let i = 0; i < 3000; i++) {
    const selections = Array.from({ length: Math.floor(rand() * 4) }, () => ({
      hash: pick([TPM_ALG.SHA1, TPM_ALG.SHA256, TPM_ALG.SHA384, 0x0012, 0xffff]),
      sizeofSelect: Math.floor(rand() * 7),
      bitmap: Array.from({ length: Math.floor(rand() * 7) }, () => Math.floor(rand() * 256)),
    }));
    const attest = buildQuoteAttest({
      type: pick([TPM_ST.ATTEST_QUOTE, TPM_ST.ATTEST_QUOTE, TPM_ST.ATTEST_CERTIFY, 0]),
      safe: pick([0, 1, 2]),
      selectionCount: rand() < 0.2 ? pick([0, 16, 17, 0xffffffff]) : selections.length,
      selections,
      extraData: randomBytes(rand, pick([0, 32, 66])),
      pcrDigest: randomBytes(rand, pick([0, 32, 48, 64])),
    });
    h.run(`built attest #${i}`, () => decodeQuoteAttest(attest));
    const pcrs = buildSerializedPcrs({
      selections: selections.map((s) => ({ ...s, bitmap: s.bitmap.slice(0, 4) })),
      filler: Math.floor(rand() * 256),
      listCount: rand() < 0.2 ? pick([0, 1, 3, 33, 0xffffffff]) : undefined,
      digestCounts: [pick([0, 1, 8, 9, 0xffffffff]), pick([0, 1, 8])],
    });
    h.run(`built pcrs #${i}`, () => decodeSerializedPcrs(pcrs));
    const f = fixtures[i % fixtures.length];
    if (f !== undefined) h.run(`built verifyQuote #${i}`, () => verifyQuote(ak, attest, f.sig, pcrs, f.nonce));
  }
  t.same(h.problems, [], h.summary('built'));
  t.ok(h.calls > 1000);
});
