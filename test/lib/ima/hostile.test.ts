/**
 * Hostile IMA lists: truncation at every offset, bit flips, u32 lengths overwritten with
 * huge values, random bytes, spliced and shuffled lines, overlong lines. Each parse must
 * return or throw a BulwarkError with an IMA code and a position — never another exception,
 * never a hang — and whatever parses must go through replay and policy evaluation the same
 * way. Seeded: BULWARK_FUZZ_SEED=<n> reruns a seed.
 */
import t, { type Test } from 'tap';
import { performance } from 'node:perf_hooks';
import { BulwarkError } from '../../../lib/errors.js';
import {
  computeImaPcr10,
  evaluateImaEntriesOffline,
  initialImaReplayState,
  parseImaAscii,
  parseImaBinary,
  parseRuntimePolicy,
  formatRuntimePolicy,
  replayImaEntriesOffline,
  buildRuntimePolicy,
  IMA_ASCII_LINE_MAX,
  type ImaParseOptions,
  type ParsedImaLog,
} from '../../../lib/ima/index.js';
import { TPM_ALG } from '../../../lib/tpm/types.js';
import { prng, SEED } from '../hostile.js';
import { allTemplatesLog, testSigner } from './ima-test-logs.js';

const PARSE_CODES: ReadonlySet<string> = new Set(['IMA_LOG_MALFORMED', 'IMA_LOG_TRUNCATED', 'IMA_TEMPLATE_UNSUPPORTED']);

/** A policy with a verification key, so garbage signatures reach the verifier too. */
const POLICY = (() => {
  const s = testSigner();
  const base = buildRuntimePolicy([], { generatedAt: '2025-01-01T00:00:00.000Z', generator: 'hostile', excludes: ['/tmp/'] });
  return parseRuntimePolicy({
    ...formatRuntimePolicy(base),
    verificationKeys: [{ keyId: s.keyId.toString(16).padStart(8, '0'), publicKey: s.publicKey.export({ format: 'pem', type: 'spki' }).toString() }],
  });
})();

interface Stats {
  calls: number;
  parsed: number;
  refused: number;
  slowest: number;
}

/** One probe: parse, and when it parses, replay against its own PCR 10 and evaluate. */
function probe(t: Test, stats: Stats, label: string, parse: (b: Uint8Array, o?: ImaParseOptions) => ParsedImaLog, bytes: Uint8Array, options?: ImaParseOptions): void {
  const start = performance.now();
  stats.calls++;
  try {
    const parsed = parse(bytes, options);
    const state = initialImaReplayState([TPM_ALG.SHA1, TPM_ALG.SHA256]);
    const own = computeImaPcr10(state, parsed.entries);
    const reference = new Map([...own.pcr10].map(([alg, v]) => [alg, new Map([[10, v]])]));
    const r = replayImaEntriesOffline(state, parsed.entries, reference);
    if (r.ok) evaluateImaEntriesOffline(POLICY, r.replayed);
    stats.parsed++;
  } catch (err) {
    if (!(err instanceof BulwarkError)) {
      t.fail(`seed ${SEED} ${label}: ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)} (input ${Buffer.from(bytes.subarray(0, 96)).toString('hex')}…)`);
    } else if (!PARSE_CODES.has(err.code)) {
      t.fail(`seed ${SEED} ${label}: unexpected code ${err.code}: ${err.message}`);
    } else if (typeof err.details['entry'] !== 'number' || typeof err.details['offset'] !== 'number') {
      t.fail(`seed ${SEED} ${label}: ${err.code} without a position`);
    } else stats.refused++;
  }
  stats.slowest = Math.max(stats.slowest, performance.now() - start);
}

function report(t: Test, stats: Stats, what: string): void {
  t.ok(stats.calls > 0, `${what}: ${stats.calls} inputs, ${stats.parsed} parsed, ${stats.refused} refused with a position`);
  t.comment(`${what}: slowest input took ${stats.slowest.toFixed(1)} ms`);
}

const LOG = allTemplatesLog();
const SEEDS = [
  { name: 'ascii', parse: parseImaAscii, bytes: LOG.ascii() },
  { name: 'binary', parse: parseImaBinary, bytes: LOG.binary() },
] as const;

for (const seed of SEEDS) {
  t.test(`${seed.name}: every truncation, with and without a tolerated incomplete tail`, async (t) => {
    const stats: Stats = { calls: 0, parsed: 0, refused: 0, slowest: 0 };
    for (let n = 0; n <= seed.bytes.length; n++) {
      probe(t, stats, `truncate ${n}`, seed.parse, seed.bytes.subarray(0, n));
      probe(t, stats, `truncate ${n} tail`, seed.parse, seed.bytes.subarray(0, n), { allowIncompleteTail: true });
      // The same cut read from the middle: positions carried by fromEntry/fromOffset.
      probe(t, stats, `suffix ${n}`, seed.parse, seed.bytes.subarray(n), { fromEntry: 3, fromOffset: n });
    }
    report(t, stats, seed.name);
  });

  t.test(`${seed.name}: bit flips, byte sets and huge u32 lengths`, async (t) => {
    const rnd = prng(SEED ^ (seed.name === 'ascii' ? 0xa5c11 : 0xb1a7));
    const int = (n: number): number => Math.floor(rnd() * n);
    const stats: Stats = { calls: 0, parsed: 0, refused: 0, slowest: 0 };
    for (let i = 0; i < 3000; i++) {
      const b = Buffer.from(seed.bytes);
      const bit = int(b.length * 8);
      b[bit >> 3] = (b[bit >> 3] ?? 0) ^ (1 << (bit & 7));
      probe(t, stats, `flip bit ${bit}`, seed.parse, b);
    }
    for (let i = 0; i < 1500; i++) {
      const b = Buffer.from(seed.bytes);
      const at = int(b.length);
      const v = int(256);
      b[at] = v;
      probe(t, stats, `byte ${v} at ${at}`, seed.parse, b);
    }
    if (seed.name === 'binary') {
      for (let at = 0; at + 4 <= seed.bytes.length; at++) {
        for (const v of [0xffffffff, 0x7fffffff, 0x00100001, 0x00010000, 0]) {
          const b = Buffer.from(seed.bytes);
          b.writeUInt32LE(v >>> 0, at);
          probe(t, stats, `u32 ${v.toString(16)} at ${at}`, seed.parse, b);
        }
      }
    }
    report(t, stats, seed.name);
  });
}

t.test('random bytes, random text, spliced lines and records', async (t) => {
  const rnd = prng(SEED ^ 0x1a3);
  const int = (n: number): number => Math.floor(rnd() * n);
  const stats: Stats = { calls: 0, parsed: 0, refused: 0, slowest: 0 };
  for (let i = 0; i < 400; i++) {
    const b = Buffer.alloc(int(4096));
    for (let j = 0; j < b.length; j++) b[j] = int(256);
    probe(t, stats, `random ${i}`, parseImaBinary, b);
    probe(t, stats, `random ${i}`, parseImaAscii, b);
    // Random text made of the ASCII list's own alphabet, with newlines.
    const alphabet = ' 0123456789abcdef:/_-.\nimagsbufodsh';
    const text = Buffer.from(Array.from({ length: int(2048) }, () => alphabet[int(alphabet.length)]).join(''));
    probe(t, stats, `text ${i}`, parseImaAscii, text);
  }
  const lines = LOG.entries.map((e) => LOG.asciiLine(e));
  const records = LOG.entries.map((e) => LOG.binaryRecord(e));
  for (let i = 0; i < 400; i++) {
    // Shuffled and duplicated lines stay parseable; lines cut and joined mid-way must not crash.
    const pick = Array.from({ length: 1 + int(12) }, () => lines[int(lines.length)] ?? '');
    probe(t, stats, `shuffled lines ${i}`, parseImaAscii, Buffer.from(pick.join('')));
    const a = pick.join('');
    const cut = int(a.length);
    probe(t, stats, `spliced text ${i}`, parseImaAscii, Buffer.from(a.slice(0, cut) + a.slice(int(a.length))));
    const recs = Buffer.concat(Array.from({ length: 1 + int(12) }, () => records[int(records.length)] ?? Buffer.alloc(0)));
    probe(t, stats, `shuffled records ${i}`, parseImaBinary, recs);
    probe(t, stats, `spliced records ${i}`, parseImaBinary, Buffer.concat([recs.subarray(0, int(recs.length)), recs.subarray(int(recs.length))]));
  }
  report(t, stats, 'random');
});

t.test('overlong input is refused in time proportional to the cap, not the input', async (t) => {
  const stats: Stats = { calls: 0, parsed: 0, refused: 0, slowest: 0 };
  const noNewline = Buffer.alloc(IMA_ASCII_LINE_MAX + 4096, 0x61);
  probe(t, stats, 'one line over the cap', parseImaAscii, noNewline);
  probe(t, stats, 'one line over the cap, tail tolerated', parseImaAscii, noNewline, { allowIncompleteTail: true });
  const hugeName = Buffer.concat([Buffer.from('10 ' + 'ab'.repeat(20) + ' ima-ng sha256:' + 'cd'.repeat(32) + ' /'), Buffer.alloc(IMA_ASCII_LINE_MAX, 0x61), Buffer.from('\n')]);
  probe(t, stats, 'a name over the cap', parseImaAscii, hugeName);
  t.equal(stats.parsed, 0, 'nothing over the cap parses');
  report(t, stats, 'overlong');
});
