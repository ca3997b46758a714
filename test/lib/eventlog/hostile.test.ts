/**
 * Hostile event logs and policies, seeded (BULWARK_FUZZ_SEED=<n> reruns a seed): random
 * bytes, truncation at every offset, bit flips, huge declared sizes written over every
 * length field, random event payloads for every decoder, zero-length and maximum-length
 * events, mangled policy JSON. Each input goes through the whole pipeline (parse, decode
 * every event, replay against a quote and against itself, Secure Boot state, boot chain,
 * policy evaluation, reference policy); each step must return or throw a BulwarkError with
 * a known code — never another exception, never a hang — and memory must stay bounded.
 */
import t, { type Test } from 'tap';
import { performance } from 'node:perf_hooks';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { ByteWriter } from '../../../lib/bytes.js';
import { BulwarkError, isErrorCode } from '../../../lib/errors.js';
import {
  MAX_EVENT_DATA_SIZE,
  TCG_EVENT_TYPE,
  createReferencePolicy,
  decodeEventData,
  evaluateMeasuredBootPolicyUnquoted,
  parseEventLog,
  parseMeasuredBootPolicies,
  readBootChain,
  readSecureBootState,
  replayEventLog,
  replayEventLogUnquoted,
} from '../../../lib/eventlog/index.js';
import { buildBootLog } from '../../helpers/eventlog-builder.js';
import { policyDocument, quoteOf } from './eventlog-helpers.js';
import { prng } from '../hostile.js';

const SEED = (() => {
  const env = process.env['BULWARK_FUZZ_SEED'];
  const parsed = env === undefined ? Number.NaN : Number(env);
  return Number.isSafeInteger(parsed) ? parsed >>> 0 : 0xe7e1a9;
})();


const rnd = prng(SEED);
const int = (n: number): number => Math.floor(rnd() * n);
const randomBytes = (n: number): Uint8Array => Uint8Array.from({ length: n }, () => int(256));

const built = buildBootLog();
const small = buildBootLog({ padTo: 20, banks: ['sha256'] });
const quoted = quoteOf(built);
const [policy] = parseMeasuredBootPolicies(policyDocument(built));
if (policy === undefined) throw new Error('no policy');

interface Tally {
  inputs: number;
  parsed: number;
  errors: Map<string, number>;
  slowest: number;
}

function newTally(): Tally {
  return { inputs: 0, parsed: 0, errors: new Map(), slowest: 0 };
}

let pipelineRuns = 0;
const slowInputs: string[] = [];

/**
 * The whole pipeline on one input; returns 'ok' or throws. The costly views (certificate
 * subjects, a reference policy) run on every 8th parsed input to keep the file fast.
 */
function pipeline(bytes: Uint8Array): string {
  const full = pipelineRuns++ % 8 === 0;
  const log = parseEventLog(bytes);
  for (const e of log.events) decodeEventData(e.eventType, e.data, log.uintnSize);
  const self = replayEventLogUnquoted(log);
  const bank = [...self.provenPcrs.keys()][0] ?? 0x000b;
  readSecureBootState(self, bank, { subjects: full });
  readBootChain(self, bank);
  if (policy !== undefined) evaluateMeasuredBootPolicyUnquoted(policy, self);
  const r = replayEventLog(log, quoted);
  if (r.ok && policy !== undefined) evaluateMeasuredBootPolicyUnquoted(policy, self);
  if (full) {
    try {
      createReferencePolicy(self, { name: 'fuzz' });
    } catch (err) {
      if (!(err instanceof BulwarkError)) throw err;
    }
  }
  return 'ok';
}

function run(tally: Tally, what: string, bytes: Uint8Array, fn: (b: Uint8Array) => string = pipeline): string | undefined {
  tally.inputs++;
  const start = performance.now();
  let outcome: string;
  try {
    outcome = fn(bytes);
    tally.parsed++;
  } catch (err) {
    if (!(err instanceof BulwarkError) || !isErrorCode(err.code)) {
      return `${what}: ${err instanceof Error ? `${err.name}: ${err.message}\n${err.stack ?? ''}` : String(err)}`;
    }
    outcome = err.code;
    tally.errors.set(err.code, (tally.errors.get(err.code) ?? 0) + 1);
  }
  const ms = performance.now() - start;
  tally.slowest = Math.max(tally.slowest, ms);
  if (ms > 40) slowInputs.push(`${what}: ${ms.toFixed(0)} ms (${outcome})`);
  return undefined;
}

function report(t: Test, name: string, tally: Tally, failures: string[]): void {
  t.same(failures.slice(0, 5), [], `${name}: only BulwarkErrors (seed ${SEED})`);
  t.comment(`${name}: ${tally.inputs} inputs, ${tally.parsed} parsed, errors ${JSON.stringify(Object.fromEntries(tally.errors))}, slowest ${tally.slowest.toFixed(1)} ms`);
}

// A forced collection makes the heap figure mean something (tap gives no --expose-gc).
setFlagsFromString('--expose-gc');
const gcFn: unknown = runInNewContext('gc');
function collect(): void {
  if (typeof gcFn === 'function') gcFn();
}
collect();
const heapBefore = process.memoryUsage().heapUsed;

t.test('random bytes never parse', async (t) => {
  const tally = newTally();
  const failures: string[] = [];
  for (let i = 0; i < 3000; i++) {
    const f = run(tally, `random #${i}`, randomBytes(int(2048)));
    if (f !== undefined) failures.push(f);
  }
  report(t, 'random bytes', tally, failures);
  t.equal(tally.parsed, 0, 'no random input parses as an event log');
  // Random events after a valid header: the framing is judged event by event.
  const header = built.bytes.subarray(0, parseEventLog(built.bytes).events[0]?.offset ?? 0);
  const t2 = newTally();
  const f2: string[] = [];
  for (let i = 0; i < 2000; i++) {
    const f = run(t2, `header + random #${i}`, Buffer.concat([header, randomBytes(1 + int(1024))]));
    if (f !== undefined) f2.push(f);
  }
  report(t, 'header + random events', t2, f2);
  t.ok(t2.errors.size > 0);
});

t.test('truncation at every offset, through the whole pipeline', async (t) => {
  const tally = newTally();
  const failures: string[] = [];
  for (let n = 0; n <= small.bytes.length; n++) {
    const f = run(tally, `cut at ${n}`, small.bytes.subarray(0, n));
    if (f !== undefined) failures.push(f);
  }
  report(t, 'truncation', tally, failures);
  t.ok((tally.errors.get('EVENTLOG_TRUNCATED') ?? 0) > small.bytes.length * 0.8, 'most cuts are EVENTLOG_TRUNCATED');
  t.equal(tally.parsed, parseEventLog(small.bytes).events.length + 1, 'exactly the cuts at event boundaries parse');
});

t.test('bit flips and random byte runs', async (t) => {
  const tally = newTally();
  const failures: string[] = [];
  for (let i = 0; i < 2500; i++) {
    const b = built.bytes.slice();
    const k = 1 + int(4);
    for (let j = 0; j < k; j++) {
      const bit = int(b.length * 8);
      b[bit >> 3] = (b[bit >> 3] ?? 0) ^ (1 << (bit & 7));
    }
    const f = run(tally, `flips #${i}`, b);
    if (f !== undefined) failures.push(f);
  }
  for (let i = 0; i < 800; i++) {
    const b = built.bytes.slice();
    const at = int(b.length);
    b.set(randomBytes(Math.min(1 + int(64), b.length - at)), at);
    const f = run(tally, `run #${i}`, b);
    if (f !== undefined) failures.push(f);
  }
  report(t, 'mutations', tally, failures);
  t.ok(tally.parsed > 800, 'many mutated logs still parse, and then go through every later step');
});

t.test('huge declared sizes over every length field', async (t) => {
  const tally = newTally();
  const failures: string[] = [];
  const log = parseEventLog(small.bytes);
  // Every u32 EventSize and TPML_DIGEST_VALUES.count, and every 8th octet elsewhere (u64 lengths inside payloads).
  const offsets = new Set<number>();
  for (const e of log.events) {
    offsets.add(e.offset + 8);
    offsets.add(e.data.byteOffset - small.bytes.byteOffset - 4);
  }
  for (let at = 0; at + 8 <= small.bytes.length; at += 24) offsets.add(at);
  for (const at of offsets) {
    for (const v of [0xffffffff, 0x7fffffff, MAX_EVENT_DATA_SIZE + 1, small.bytes.length - at]) {
      const b = small.bytes.slice();
      new DataView(b.buffer).setUint32(at, v >>> 0, true);
      const f = run(tally, `u32 ${v} at ${at}`, b);
      if (f !== undefined) failures.push(f);
    }
    const b = small.bytes.slice();
    new DataView(b.buffer).setBigUint64(Math.min(at, b.length - 8), 0xffffffffffffffffn, true);
    const f = run(tally, `u64 max at ${at}`, b);
    if (f !== undefined) failures.push(f);
  }
  report(t, 'huge sizes', tally, failures);
  t.ok((tally.errors.get('EVENTLOG_MALFORMED') ?? 0) > 0 && (tally.errors.get('EVENTLOG_TRUNCATED') ?? 0) > 0);
});

t.test('random payloads for every event type decoder', async (t) => {
  const tally = newTally();
  const failures: string[] = [];
  const types = [...Object.values(TCG_EVENT_TYPE), 0x12345678];
  const samples = parseEventLog(built.bytes).events.map((e) => e.data);
  for (const type of types) {
    for (let i = 0; i < 120; i++) {
      let data: Uint8Array;
      if (i % 2 === 0) data = randomBytes(int(300));
      else {
        data = (samples[int(samples.length)] ?? new Uint8Array(0)).slice();
        for (let j = 0; j < 1 + int(6); j++) data[int(data.length)] = int(256);
        if (data.length > 0 && i % 3 === 0) data = data.subarray(0, int(data.length));
      }
      const f = run(tally, `type 0x${type.toString(16)} #${i}`, data, (d) => decodeEventData(type, d, i % 4 === 0 ? 4 : 8).kind);
      if (f !== undefined) failures.push(f);
    }
  }
  report(t, 'decoders', tally, failures);
  t.equal(tally.parsed, tally.inputs, 'decodeEventData never throws');
});

t.test('zero-length and maximum-length events', async (t) => {
  const tally = newTally();
  const failures: string[] = [];
  const header = built.bytes.subarray(0, parseEventLog(built.bytes).events[0]?.offset ?? 0);
  for (const type of Object.values(TCG_EVENT_TYPE)) {
    for (const size of [0, MAX_EVENT_DATA_SIZE]) {
      const w = new ByteWriter(size + 256);
      w.bytes(header);
      w.u32le(type === TCG_EVENT_TYPE.EV_NO_ACTION ? 0 : 7); // PCRIndex
      w.u32le(type); // EventType
      w.u32le(2); // TPML_DIGEST_VALUES.count: sha1 and sha256
      w.u16le(0x0004).bytes(new Uint8Array(20)); // sha1
      w.u16le(0x000b).bytes(new Uint8Array(32)); // sha256
      w.u32le(size); // EventSize
      w.bytes(new Uint8Array(size).fill(0x41)); // Event
      const f = run(tally, `type 0x${type.toString(16)} size ${size}`, w.finish());
      if (f !== undefined) failures.push(f);
    }
  }
  report(t, 'extreme sizes', tally, failures);
  t.equal(tally.parsed, tally.inputs, 'well-framed events of every size up to the cap parse and go through the pipeline');
});

t.test('mangled policy documents', async (t) => {
  const tally = newTally();
  const failures: string[] = [];
  const text = policyDocument(built);
  const alphabet = '{}[]":,0123456789abcdef tnrufalse\\';
  for (let i = 0; i < 3000; i++) {
    let s = text;
    for (let j = 0; j < 1 + int(3); j++) {
      const at = int(s.length);
      const op = int(3);
      if (op === 0) s = s.slice(0, at) + s.slice(at + 1 + int(8));
      else if (op === 1) s = s.slice(0, at) + (alphabet[int(alphabet.length)] ?? '') + s.slice(at);
      else s = s.slice(0, at) + (alphabet[int(alphabet.length)] ?? '') + s.slice(at + 1);
    }
    const f = run(tally, `policy #${i}`, new Uint8Array(0), () => {
      parseMeasuredBootPolicies(s);
      return 'ok';
    });
    if (f !== undefined) failures.push(f);
  }
  report(t, 'policies', tally, failures);
  t.ok((tally.errors.get('MEASURED_BOOT_POLICY_INVALID') ?? 0) > 1000);
});

t.test('memory stays bounded', async (t) => {
  collect();
  const grown = (process.memoryUsage().heapUsed - heapBefore) / 2 ** 20;
  t.comment(`inputs over 40 ms: ${slowInputs.length} ${slowInputs.slice(0, 5).join('; ')}`);
  t.comment(`heap grew by ${grown.toFixed(1)} MiB over all inputs`);
  t.ok(grown < 64, 'heap growth under 64 MiB: nothing is kept per input');
});
