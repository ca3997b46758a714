/**
 * Signatures per second through SoftHSM2 (daemon/pkcs11: PKCS #11 call, session reuse, DER
 * conversion for ECDSA) next to a bare crypto.sign with a key of the same type in Node:
 * ECDSA P-256 (SHA-256) and RSA-2048 PSS (SHA-256, salt 32). Every signature of the first
 * round is verified, so the benchmark never measures a failure path.
 *
 *   npx tsc -p . && node dist/test/bench/hsm-bench.js
 */
import { constants, generateKeyPairSync, sign, verify, type KeyObject, type SignKeyObjectInput } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { Hsm, type HsmKeyType, type HsmSignatureScheme, type Pkcs11Signer } from '../../daemon/index.js';
import { SOFTHSM_MODULE, startSoftHsm } from '../helpers/softhsm.js';
import { measurePairAsync, type PairRates } from './measure.js';
import { printResults, type BenchResult } from './result.js';

/** Wall time per measurement, split into interleaved rounds (raw, HSM, raw, HSM, ...). */
const MEASURE_MS = 1500;
const ROUNDS = 6;
const WARMUP_MS = 200;

const measurePair = (baseline: () => unknown, candidate: () => Promise<unknown>): Promise<PairRates> =>
  measurePairAsync(baseline, candidate, { batch: 10, warmupMs: WARMUP_MS, measureMs: MEASURE_MS, rounds: ROUNDS });
const DATA = new TextEncoder().encode('DSSEv1 34 application/vnd.in-toto+json 64 {"_type":"https://in-toto.io/Statement/v1","subject":[]}');

interface Case {
  readonly label: string;
  readonly type: HsmKeyType;
  readonly scheme: HsmSignatureScheme;
  readonly nodeKey: () => KeyObject;
  readonly input: (key: KeyObject) => SignKeyObjectInput;
}

const CASES: readonly Case[] = [
  {
    label: 'ECDSA P-256 SHA-256',
    type: 'ec-p256',
    scheme: 'ecdsa-p256-sha256',
    nodeKey: () => generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey,
    input: (key) => ({ key, dsaEncoding: 'der' }),
  },
  {
    label: 'RSA-2048 PSS SHA-256',
    type: 'rsa-2048',
    scheme: 'rsa-pss-sha256',
    nodeKey: () => generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey,
    input: (key) => ({ key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }),
  },
];

async function benchCase(hsm: Hsm, c: Case): Promise<BenchResult[]> {
  const made = await hsm.keygen({ label: `bench-${c.type}`, type: c.type });
  const signer: Pkcs11Signer = await hsm.signer(made.uri, { scheme: c.scheme });
  const check = c.type === 'rsa-2048' ? { key: made.publicKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 } : { key: made.publicKey, dsaEncoding: 'der' as const };
  if (!verify('sha256', DATA, check, await signer.sign(DATA))) throw new Error(`${c.label}: the HSM signature does not verify`);
  const input = c.input(c.nodeKey());
  const m = await measurePair(
    () => sign('sha256', DATA, input),
    () => signer.sign(DATA),
  );
  const rawName = `crypto.sign ${c.label}`;
  return [
    { name: rawName, value: m.base, unit: 'signatures/s' },
    { name: `SoftHSM2 ${c.label} (daemon/pkcs11)`, value: m.cand, unit: 'signatures/s', baseline: { name: rawName, value: m.base }, ratio: m.ratio },
  ];
}

/** HSM signatures per second against crypto.sign, for ECDSA P-256 and RSA-2048 PSS. */
export async function benchHsm(): Promise<BenchResult[]> {
  const soft = await startSoftHsm('bench-hsm');
  await soft.initToken('bench', '123456');
  const hsm = await Hsm.open(`pkcs11:token=bench?pin-value=123456&module-path=${SOFTHSM_MODULE}`, { env: {} });
  try {
    const out: BenchResult[] = [];
    for (const c of CASES) out.push(...(await benchCase(hsm, c)));
    return out;
  } finally {
    await hsm.close();
    await soft.cleanup();
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  printResults(await benchHsm());
}
