/**
 * Quote verification throughput per core: full verifyQuote (decode attest, signature and PCR
 * file, signature check, nonce, selection, PCR digest) next to a bare crypto.verify of the
 * same signature over the same bytes with the same cached KeyObject. Uses the captured
 * fixtures in test/fixtures/quote/, so no swtpm is needed.
 *
 *   npx tsc -p . && node dist/test/bench/quote-bench.js
 */
import { constants, verify, type KeyObject, type VerifyKeyObjectInput } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { verifyQuote } from '../../lib/tpm/quote.js';
import { decodeTpmtSignature } from '../../lib/tpm/signature.js';
import { TPM_ALG } from '../../lib/tpm/types.js';
import { loadQuoteFixture, type QuoteFixture } from '../lib/tpm/quote-helpers.js';
import { printResults, type BenchResult } from './result.js';

/** Wall time each of the two measurements gets in total (~1.5 s each, per fixture). */
const MEASURE_MS = 1500;
/** The time is split into interleaved rounds (raw, full, raw, full, ...) so load from other
 * processes on a shared machine hits both alike; the ratio is the median of the per-round ratios. */
const ROUNDS = 10;
const WARMUP_MS = 300;
const BATCH = 50;

/** Operations per second of `op` over about `ms` milliseconds, timed in batches. */
function opsPerSecond(op: () => void, ms: number): number {
  let count = 0;
  const start = performance.now();
  let now = start;
  while (now - start < ms) {
    for (let i = 0; i < BATCH; i++) op();
    count += BATCH;
    now = performance.now();
  }
  return (count * 1000) / (now - start);
}

function median(xs: readonly number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

/** Interleaved measurement of a baseline and a candidate: median rates and median paired ratio. */
function measurePair(baseline: () => void, candidate: () => void): { base: number; cand: number; ratio: number } {
  opsPerSecond(baseline, WARMUP_MS);
  opsPerSecond(candidate, WARMUP_MS);
  const base: number[] = [];
  const cand: number[] = [];
  const ratios: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    const b = opsPerSecond(baseline, MEASURE_MS / ROUNDS);
    const c = opsPerSecond(candidate, MEASURE_MS / ROUNDS);
    base.push(b);
    cand.push(c);
    ratios.push(c / b);
  }
  return { base: median(base), cand: median(cand), ratio: median(ratios) };
}

/** The bare crypto.verify call a quote needs, with the signature already in node's form. */
function rawVerifier(f: QuoteFixture): () => boolean {
  const sig = decodeTpmtSignature(f.sig);
  const key: KeyObject = f.ak;
  if (sig.sigAlg === TPM_ALG.ECDSA) {
    const p1363 = new Uint8Array(64);
    p1363.set(sig.r, 32 - sig.r.length);
    p1363.set(sig.s, 64 - sig.s.length);
    const input: VerifyKeyObjectInput = { key, dsaEncoding: 'ieee-p1363' };
    return () => verify('sha256', f.msg, input, p1363);
  }
  const input: VerifyKeyObjectInput = { key, padding: constants.RSA_PKCS1_PADDING };
  return () => verify('sha256', f.msg, input, sig.sig);
}

async function benchOne(fixture: string, label: string): Promise<BenchResult[]> {
  const f = await loadQuoteFixture(fixture);
  const raw = rawVerifier(f);
  const expected = { selection: f.selection };
  const full = (): boolean => verifyQuote(f.ak, f.msg, f.sig, f.pcrs, f.nonce, expected).ok;
  if (!raw() || !full()) throw new Error(`${fixture} does not verify: the benchmark would measure a failure path`);
  const m = measurePair(
    () => {
      if (!raw()) throw new Error('raw verify failed');
    },
    () => {
      if (!full()) throw new Error('verifyQuote failed');
    },
  );
  const rawName = `crypto.verify ${label}`;
  return [
    { name: rawName, value: m.base, unit: 'verifications/s' },
    {
      name: `verifyQuote ${label} (full)`,
      value: m.cand,
      unit: 'verifications/s',
      baseline: { name: rawName, value: m.base },
      ratio: m.ratio,
      target: '≥ 0.5',
    },
  ];
}

/** Full quote verifications per second per core for RSA-2048 and ECC P-256 AKs, against raw crypto.verify. */
export async function benchQuote(): Promise<BenchResult[]> {
  return [...(await benchOne('rsa-rsassa-sha256', 'RSA-2048 RSASSA')), ...(await benchOne('ecc-p256-ecdsa-sha256', 'ECC P-256 ECDSA'))];
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  printResults(await benchQuote());
}
