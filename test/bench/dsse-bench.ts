/**
 * DSSE envelope verification throughput per core: verifyEnvelope from the envelope's JSON
 * text (schema validation, base64 decoding, PAE, payload type, signature) next to a bare
 * crypto.verify of the same signature over the same PAE bytes with the same KeyObject, for
 * ECDSA P-256, Ed25519 and RSA-PSS (2048) on a 1 KiB payload. The trusted keys are prepared
 * once (trustedKeySet), as a reader that verifies many envelopes holds them. Rates are per
 * second of this process's CPU time (process.cpuUsage), so a loaded machine skews neither side.
 *
 *   npx tsc -p . && node dist/test/bench/dsse-bench.js
 */
import { constants, generateKeyPairSync, verify, type KeyObject, type VerifyKeyObjectInput } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { encodeEnvelope, keySigner, pae, PAYLOAD_TYPES, parseEnvelope, signEnvelope, trustedKeySet, verifyEnvelope } from '../../lib/dsse/index.js';
import { cpuMs, measurePair as measure, type PairRates } from './measure.js';
import { printResults, type BenchResult } from './result.js';

/** Wall time each measurement gets in total. */
const MEASURE_MS = 1500;
/** Interleaved rounds (raw, envelope, raw, ...) so load from other processes hits both alike; the ratio is the median of per-round ratios. */
const ROUNDS = 10;
const WARMUP_MS = 300;
const BATCH = 20;

/** Interleaved rounds, rates per second of this process's CPU time. */
const measurePair = (baseline: () => void, candidate: () => void): PairRates =>
  measure(baseline, candidate, { batch: BATCH, clock: cpuMs, warmupMs: WARMUP_MS, measureMs: MEASURE_MS, rounds: ROUNDS });

/** A policy-like JSON payload of about 1 KiB. */
function payload(): Uint8Array {
  const entries = Array.from({ length: 12 }, (_, i) => `{"path":"/usr/bin/tool${i}","sha256":"${i.toString(16).padStart(64, '0')}"}`);
  return new TextEncoder().encode(`{"version":1,"entries":[${entries.join(',')}]}`);
}

async function benchOne(label: string, publicKey: KeyObject, privateKey: KeyObject, raw: (key: KeyObject) => { algorithm: string | null; input: KeyObject | VerifyKeyObjectInput }): Promise<BenchResult[]> {
  const type = PAYLOAD_TYPES.policy;
  const body = payload();
  const env = await signEnvelope(type, body, [keySigner(privateKey, { keyid: label })]);
  const text = encodeEnvelope(env);
  const sig = env.signatures[0]?.sig;
  if (sig === undefined) throw new Error('no signature');
  const message = pae(type, body);
  const { algorithm, input } = raw(publicKey);
  const keys = trustedKeySet([publicKey]);
  const parsed = parseEnvelope(text);
  const rawOp = (): void => {
    if (!verify(algorithm, message, input, sig)) throw new Error('raw verify failed');
  };
  const fullOp = (): void => {
    if (verifyEnvelope(text, { trustedKeys: keys, payloadType: type }).keys.length !== 1) throw new Error('verifyEnvelope failed');
  };
  const parsedOp = (): void => {
    if (verifyEnvelope(parsed, { trustedKeys: keys, payloadType: type }).keys.length !== 1) throw new Error('verifyEnvelope failed');
  };
  rawOp();
  fullOp();
  const m = measurePair(rawOp, fullOp);
  const p = measurePair(rawOp, parsedOp);
  const rawName = `crypto.verify ${label}`;
  return [
    { name: rawName, value: m.base, unit: 'verifications/s' },
    { name: `verifyEnvelope ${label} (from JSON text)`, value: m.cand, unit: 'verifications/s', baseline: { name: rawName, value: m.base }, ratio: m.ratio, target: '≥ 0.8' },
    { name: `verifyEnvelope ${label} (parsed envelope)`, value: p.cand, unit: 'verifications/s', baseline: { name: rawName, value: p.base }, ratio: p.ratio },
  ];
}

/** Envelope verifications per second per core for ECDSA P-256, Ed25519 and RSA-PSS, against raw crypto.verify. */
export async function benchDsse(): Promise<BenchResult[]> {
  const p256 = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const ed = generateKeyPairSync('ed25519');
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return [
    ...(await benchOne('Ed25519', ed.publicKey, ed.privateKey, (key) => ({ algorithm: null, input: key }))),
    ...(await benchOne('ECDSA P-256', p256.publicKey, p256.privateKey, (key) => ({ algorithm: 'sha256', input: { key, dsaEncoding: 'der' } }))),
    ...(await benchOne('RSA-PSS 2048', rsa.publicKey, rsa.privateKey, (key) => ({ algorithm: 'sha256', input: { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 } }))),
  ];
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  printResults(await benchDsse());
}
