/**
 * Event log throughput per core: parse + replay against quoted PCRs of a 40- and a
 * 400-event log (the fixtures in test/fixtures/eventlog/), next to tpm2_eventlog run
 * process-per-file on the same files (what Keylime does), and the steady state of the
 * controller when a node's log is unchanged: EventLogCache hits with the log bytes (one
 * SHA-256 over them) and by digest, against a full parse + replay + policy evaluation;
 * and a real SHA-1 format (TCG 1.2) log from go-attestation's test data replayed against
 * the PCR values its TPM quoted, next to the bare SHA-1 extends of the same events.
 * No swtpm is needed: the quoted PCRs come from a software-signed quote through the real
 * verifyQuote (test/lib/eventlog/eventlog-helpers.ts).
 *
 *   npx tsc -p . && node dist/test/bench/eventlog-bench.js
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { EventLogCache, evaluateEventLog, eventLogDigest, parseEventLog, parseMeasuredBootPolicies, replayEventLog } from '../../lib/eventlog/index.js';
import { fromHex } from '../../lib/bytes.js';
import { TPM_ALG, type QuotedPcrs } from '../../lib/tpm/types.js';
import { buildBootLog } from '../helpers/eventlog-builder.js';
import { fixtureDir, policyDocument, softwareQuote, tpmValues } from '../lib/eventlog/eventlog-helpers.js';
import { printResults, type BenchResult } from './result.js';

const MEASURE_MS = 1500;
const ROUNDS = 10;
const WARMUP_MS = 300;
/** tpm2_eventlog runs per file (each a process start, ~5 ms). */
const TOOL_RUNS = 40;

function opsPerSecond(op: () => void, ms: number, batch: number): number {
  let count = 0;
  const start = performance.now();
  let now = start;
  while (now - start < ms) {
    for (let i = 0; i < batch; i++) op();
    count += batch;
    now = performance.now();
  }
  return (count * 1000) / (now - start);
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? (s[mid] ?? 0) : ((s[mid - 1] ?? 0) + (s[mid] ?? 0)) / 2;
}

/** Interleaved rounds of baseline and candidate (load on a shared machine hits both alike); medians. */
function measurePair(baseline: () => void, candidate: () => void, batch: number): { base: number; cand: number; ratio: number } {
  opsPerSecond(baseline, WARMUP_MS, batch);
  opsPerSecond(candidate, WARMUP_MS, batch);
  const base: number[] = [];
  const cand: number[] = [];
  const ratios: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    const b = opsPerSecond(baseline, MEASURE_MS / ROUNDS, batch);
    const c = opsPerSecond(candidate, MEASURE_MS / ROUNDS, batch);
    base.push(b);
    cand.push(c);
    ratios.push(c / b);
  }
  return { base: median(base), cand: median(cand), ratio: median(ratios) };
}

/** tpm2_eventlog FILE, process per file, in files per second (wall time, one at a time). */
function tpm2EventlogRate(path: string): number {
  execFileSync('tpm2_eventlog', [path], { stdio: 'ignore' });
  const start = performance.now();
  for (let i = 0; i < TOOL_RUNS; i++) execFileSync('tpm2_eventlog', [path], { stdio: 'ignore', maxBuffer: 64 * 1024 * 1024 });
  return (TOOL_RUNS * 1000) / (performance.now() - start);
}

async function benchSize(events: 40 | 400, quoted: QuotedPcrs): Promise<BenchResult[]> {
  const name = events === 40 ? 'debian-secureboot-sha1-sha256' : 'debian-secureboot-400-events';
  const path = `${fixtureDir()}${name}.bin`;
  const bytes = new Uint8Array(await readFile(path));
  const check = replayEventLog(parseEventLog(bytes), quoted);
  if (!check.ok) throw new Error(`${name} does not replay to the quote: the benchmark would measure a failure path`);
  const ours = opsPerSecond(
    () => {
      if (!replayEventLog(parseEventLog(bytes), quoted).ok) throw new Error('replay failed');
    },
    MEASURE_MS,
    events === 40 ? 20 : 4,
  );
  const tool = tpm2EventlogRate(path);
  const label = `${events}-event log (${bytes.length} octets, sha1+sha256)`;
  const toolName = `tpm2_eventlog ${label}, process per file`;
  return [
    { name: toolName, value: tool, unit: 'logs/s' },
    { name: `parse + replay against a quote, ${label}`, value: ours, unit: 'logs/s', baseline: { name: toolName, value: tool }, ratio: ours / tool, target: '≥ 10' },
  ];
}

async function benchCache(quoted: QuotedPcrs): Promise<BenchResult[]> {
  const bytes = new Uint8Array(await readFile(`${fixtureDir()}debian-secureboot-sha1-sha256.bin`));
  const built = buildBootLog();
  const [policy] = parseMeasuredBootPolicies(policyDocument(built));
  if (policy === undefined) throw new Error('no policy');
  const cache = new EventLogCache();
  const digest = eventLogDigest(bytes);
  const full = (): void => {
    if (evaluateEventLog(parseEventLog(bytes), quoted, policy).verdict.verdict !== 'trusted') throw new Error('not trusted');
  };
  const hit = (): void => {
    if (cache.evaluate(bytes, quoted, policy).verdict.verdict !== 'trusted') throw new Error('not trusted');
  };
  const byDigest = (): void => {
    if (cache.evaluateCached(digest, quoted, policy)?.verdict.verdict !== 'trusted') throw new Error('not trusted');
  };
  full();
  hit();
  byDigest();
  const withBytes = measurePair(full, hit, 20);
  const noHash = measurePair(full, byDigest, 20);
  const fullName = 'parse + replay + policy, 40-event log (no cache)';
  return [
    { name: fullName, value: withBytes.base, unit: 'rounds/s' },
    {
      name: 'EventLogCache.evaluate hit (SHA-256 of the log + compared PCRs)',
      value: withBytes.cand,
      unit: 'rounds/s',
      baseline: { name: fullName, value: withBytes.base },
      ratio: withBytes.ratio,
      target: '≥ 10',
    },
    {
      name: 'EventLogCache.evaluateCached hit (digest kept by the controller)',
      value: noHash.cand,
      unit: 'rounds/s',
      baseline: { name: fullName, value: noHash.base },
      ratio: noHash.ratio,
      target: '≥ 20',
    },
  ];
}

/**
 * The SHA-1 format (TCG 1.2) log of go-attestation's Windows GCE fixture: parse + replay
 * against its quoted PCR values, against the floor of any replay: the SHA-1 extends of the
 * same events' digests, already parsed (measured in the same run, interleaved).
 */
async function benchSha1Log(): Promise<BenchResult[]> {
  const dir = `${fixtureDir()}public/`;
  const name = 'go-attestation-windows-gcp-shielded-vm';
  const bytes = new Uint8Array(await readFile(`${dir}${name}.bin`));
  const doc: unknown = JSON.parse(await readFile(`${dir}${name}.json`, 'utf8'));
  const upstream = typeof doc === 'object' && doc !== null && 'upstreamPcrs' in doc ? doc.upstreamPcrs : undefined;
  const sha1 = typeof upstream === 'object' && upstream !== null && 'sha1' in upstream ? upstream.sha1 : undefined;
  if (typeof sha1 !== 'object' || sha1 === null) throw new Error(`${name}.json has no upstream sha1 PCRs`);
  const quoted = softwareQuote(new Map([[TPM_ALG.SHA1, new Map(Object.entries(sha1).map(([p, hex]) => [Number(p), fromHex(String(hex))]))]]));
  const log = parseEventLog(bytes);
  if (log.format !== 'sha1' || !replayEventLog(log, quoted).ok) throw new Error(`${name} is not a SHA-1 format log that replays to its quote`);
  const measured = log.events.filter((e) => e.eventType !== 0x00000003).map((e) => ({ pcr: e.pcrIndex, digest: e.digests[0]?.digest ?? new Uint8Array(20) }));
  const raw = (): void => {
    const pcrs = new Map<number, Uint8Array>();
    for (const e of measured) pcrs.set(e.pcr, createHash('sha1').update(pcrs.get(e.pcr) ?? new Uint8Array(20)).update(e.digest).digest());
    if (pcrs.size === 0) throw new Error('nothing replayed');
  };
  const ours = (): void => {
    if (!replayEventLog(parseEventLog(bytes), quoted).ok) throw new Error('replay failed');
  };
  const pair = measurePair(raw, ours, 20);
  const baseName = `SHA-1 extends of the same ${measured.length} events (already parsed, no quote comparison)`;
  return [
    { name: baseName, value: pair.base, unit: 'logs/s' },
    {
      name: `parse + replay against the quoted SHA-1 PCRs, SHA-1 format log (${log.events.length} events, ${bytes.length} octets, go-attestation windows_gcp_shielded_vm)`,
      value: pair.cand,
      unit: 'logs/s',
      baseline: { name: baseName, value: pair.base },
      ratio: pair.ratio,
      target: '≥ 0.2',
    },
  ];
}

/** Event-log parse + replay per second per core (40 and 400 events) against tpm2_eventlog, and the cache-hit path. */
export async function benchEventLog(): Promise<BenchResult[]> {
  const quoted = softwareQuote(tpmValues(buildBootLog(), ['sha256'], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]));
  const quoted400 = softwareQuote(tpmValues(buildBootLog({ padTo: 400 }), ['sha256'], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]));
  return [...(await benchSize(40, quoted)), ...(await benchSize(400, quoted400)), ...(await benchCache(quoted)), ...(await benchSha1Log())];
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  printResults(await benchEventLog());
}
