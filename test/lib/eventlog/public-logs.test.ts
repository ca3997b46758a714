/**
 * Real public event logs (test/fixtures/eventlog/public: go-attestation's and Keylime's test
 * data, README there): each parses in its format, replays in every bank to the values of
 * the independent replay (public/replay.py) and, where upstream ships PCR values a TPM
 * quoted, to those; SHA-1-only logs are refused as evidence by the default policy with
 * EVENTLOG_SHA1_ONLY, through the controller's path (EventLogCache.evaluate); hostile
 * variants of the SHA-1 format logs give a BulwarkError, never a crash or a hang.
 */
import t from 'tap';
import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { BulwarkError, isErrorCode } from '../../../lib/errors.js';
import {
  EventLogCache,
  bankName,
  evaluateEventLog,
  decodeEventData,
  evaluateMeasuredBootPolicyUnquoted,
  parseEventLog,
  parseMeasuredBootPolicies,
  readBootChain,
  readSecureBootState,
  replayEventLog,
  replayEventLogUnquoted,
  type MeasuredBootPolicy,
} from '../../../lib/eventlog/index.js';
import { fromHex, toHex } from '../../../lib/bytes.js';
import { TPM_ALG } from '../../../lib/tpm/types.js';
import { codesOf, softwareQuote } from './eventlog-helpers.js';
import { prng } from '../hostile.js';

const DIR = fileURLToPath(new URL('../../../../test/fixtures/eventlog/public/', import.meta.url));
const BANKS: Readonly<Record<string, number>> = { sha1: TPM_ALG.SHA1, sha256: TPM_ALG.SHA256, sha384: TPM_ALG.SHA384, sha512: TPM_ALG.SHA512 };

interface PublicFixture {
  readonly name: string;
  readonly bytes: Uint8Array;
  readonly doc: Record<string, unknown>;
}

function obj(v: unknown): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('not an object');
  return Object.fromEntries(Object.entries(v));
}

/** bank name → PCR → hex, from a fixture's JSON. */
function pcrsOf(v: unknown): Map<number, Map<number, string>> {
  const out = new Map<number, Map<number, string>>();
  for (const [bank, values] of Object.entries(obj(v))) {
    const alg = BANKS[bank];
    if (alg === undefined) throw new Error(`unknown bank ${bank}`);
    out.set(alg, new Map(Object.entries(obj(values)).map(([pcr, hex]) => [Number(pcr), String(hex)])));
  }
  return out;
}

function quoteFrom(values: Map<number, Map<number, string>>) {
  return softwareQuote(new Map([...values].map(([alg, bank]) => [alg, new Map([...bank].map(([p, hex]) => [p, fromHex(hex)]))])));
}

async function load(): Promise<PublicFixture[]> {
  const names = (await readdir(DIR)).filter((f) => f.endsWith('.bin')).map((f) => f.slice(0, -4)).sort();
  return Promise.all(
    names.map(async (name) => ({ name, bytes: new Uint8Array(await readFile(`${DIR}${name}.bin`)), doc: obj(JSON.parse(await readFile(`${DIR}${name}.json`, 'utf8'))) })),
  );
}

const fixtures = await load();
const byName = (name: string): PublicFixture => {
  const f = fixtures.find((x) => x.name === name);
  if (f === undefined) throw new Error(`no fixture ${name}`);
  return f;
};

function policy(json: Record<string, unknown>): MeasuredBootPolicy {
  const [p] = parseMeasuredBootPolicies(JSON.stringify(json));
  if (p === undefined) throw new Error('no policy');
  return p;
}

t.test('every public fixture has its source and licence', async (t) => {
  t.ok(fixtures.length >= 12, `${fixtures.length} fixtures`);
  for (const f of fixtures) {
    const source = obj(f.doc['source']);
    t.match(source['repository'], /^https:\/\/github\.com\//, `${f.name}: repository`);
    t.match(source['commit'], /^[0-9a-f]{40}$/, `${f.name}: commit`);
    t.equal(source['licence'], 'Apache-2.0', `${f.name}: licence`);
  }
});

t.test('each fixture parses and replays, in every bank, to the independent replay', async (t) => {
  for (const f of fixtures) {
    const error = f.doc['error'];
    if (typeof error === 'string') {
      t.throws(() => parseEventLog(f.bytes), { code: error }, `${f.name}: ${error}`);
      continue;
    }
    const log = parseEventLog(f.bytes);
    t.equal(log.format, f.doc['format'], `${f.name}: format`);
    t.same(log.algorithms.map((a) => bankName(a.algorithmId)), f.doc['banks'], `${f.name}: banks`);
    t.equal(log.startupLocality, f.doc['startupLocality'], `${f.name}: StartupLocality`);
    t.equal(log.events.length, f.doc['events'], `${f.name}: events`);
    if (log.format === 'sha1') t.equal(log.specId, null, `${f.name}: no Spec ID event`);
    for (const e of log.events) decodeEventData(e.eventType, e.data, log.uintnSize);
    const self = replayEventLogUnquoted(log);
    const want = pcrsOf(f.doc['pcrs']);
    t.same([...self.pcrValues.keys()].sort(), [...want.keys()].sort(), `${f.name}: the replayed banks`);
    for (const [alg, bank] of want) {
      const got = self.pcrValues.get(alg);
      t.same(got === undefined ? {} : Object.fromEntries([...got].map(([p, v]) => [String(p), toHex(v)])), Object.fromEntries([...bank].map(([p, v]) => [String(p), v])), `${f.name}: ${bankName(alg)} PCRs`);
    }
  }
});

t.test('logs replay against the PCR values upstream recorded from a TPM', async (t) => {
  // Windows on a GCE Shielded VM: the values of a quote go-attestation verifies, SHA-1 format log.
  const win = byName('go-attestation-windows-gcp-shielded-vm');
  const winQuote = quoteFrom(pcrsOf(win.doc['upstreamPcrs']));
  const r = replayEventLog(parseEventLog(win.bytes), winQuote);
  t.ok(r.ok, 'the Windows log replays to the quoted SHA-1 PCRs');
  if (r.ok) t.same(r.log.provenPcrs.get(TPM_ALG.SHA1), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13, 14], 'boot PCRs and PCRs 11–14 proven');

  // The firmware left the ExitBootServices events out of the log: the quirk explains PCR 5 exactly.
  const ebs = byName('go-attestation-ebs-event-missing');
  const ebsLog = parseEventLog(ebs.bytes);
  const r5 = replayEventLog(ebsLog, quoteFrom(pcrsOf(ebs.doc['upstreamPcrs'])));
  t.ok(r5.ok, 'PCR 5 of the ebs log replays to the TPM value');
  if (r5.ok) t.same(r5.log.quirks, ['EXIT_BOOT_SERVICES_NOT_LOGGED']);
  const r5strict = replayEventLog(ebsLog, quoteFrom(pcrsOf(ebs.doc['upstreamPcrs'])), { quirks: [] });
  t.same(r5strict.ok ? [] : codesOf(r5strict.findings), ['EVENTLOG_REPLAY_MISMATCH'], 'without the quirk PCR 5 does not match');

  // A changed PCR value is a mismatch: the test can fail.
  const tampered = pcrsOf(win.doc['upstreamPcrs']);
  tampered.get(TPM_ALG.SHA1)?.set(4, '00'.repeat(20));
  const bad = replayEventLog(parseEventLog(win.bytes), quoteFrom(tampered));
  t.same(bad.ok ? [] : codesOf(bad.findings), ['EVENTLOG_REPLAY_MISMATCH']);
});

t.test('StartupLocality seeds PCR 0 in either format (PFP 10.4.5.3)', async (t) => {
  const short = parseEventLog(byName('go-attestation-short-no-action').bytes);
  t.equal(short.format, 'sha1');
  t.equal(short.startupLocality, 3);
  t.equal(short.events.length, 1, 'the one EV_NO_ACTION event is kept');
  t.same([...(replayEventLogUnquoted(short).pcrValues.get(TPM_ALG.SHA1) ?? [])].map(([p, v]) => [p, toHex(v)]), [[0, `${'00'.repeat(19)}03`]]);
  // tpm2_eventlog 5.4 extends the StartupLocality event's zero digest instead; the TPM (and we) seed PCR 0.
  const keylime = parseEventLog(byName('keylime-create-mb-policy').bytes);
  t.equal(keylime.startupLocality, 3);
});

t.test('the default policy refuses a SHA-1-only log as evidence (EVENTLOG_SHA1_ONLY), the controller path included', async (t) => {
  const win = byName('go-attestation-windows-gcp-shielded-vm');
  const values = pcrsOf(win.doc['upstreamPcrs']);
  // The controller quotes sha1 and sha256: a SHA-1 format log cannot carry sha256, which is not EVENTLOG_BANK_MISSING.
  const both = new Map(values);
  both.set(TPM_ALG.SHA256, new Map([...(values.get(TPM_ALG.SHA1) ?? [])].map(([p]) => [p, '00'.repeat(32)])));
  const quoted = quoteFrom(both);
  const cache = new EventLogCache();
  const acceptAll = policy({ name: 'accept-all', acceptAll: true });
  const r1 = cache.evaluate(win.bytes, quoted, acceptAll);
  t.equal(r1.verdict.verdict, 'untrusted', 'accept-all does not accept SHA-1 evidence');
  t.same(codesOf(r1.verdict.findings), ['EVENTLOG_SHA1_ONLY']);
  const sb = policy({ name: 'sb', secureBoot: { enabled: true } });
  t.same(codesOf(cache.evaluate(win.bytes, quoted, sb).verdict.findings).slice(0, 2), ['EVENTLOG_SHA1_ONLY', 'EVENTLOG_PCR_NOT_QUOTED'], 'sha256 policy: also unproven in its bank');
  const allowed = policy({ name: 'legacy-fleet', acceptAll: true, allowSha1OnlyLog: true });
  t.match(allowed.warnings.join('\n'), /SHA-1/);
  t.equal(cache.evaluate(win.bytes, quoted, allowed).verdict.verdict, 'trusted', 'a policy that allows SHA-1 alone trusts the replayed log');
  // The short log: PCR 0 quoted at the locality.
  const short = byName('go-attestation-short-no-action');
  const q0 = quoteFrom(new Map([[TPM_ALG.SHA1, new Map([[0, `${'00'.repeat(19)}03`]])]]));
  t.same(codesOf(cache.evaluate(short.bytes, q0, acceptAll).verdict.findings), ['EVENTLOG_SHA1_ONLY'], 'the StartupLocality-only log');
  t.equal(cache.evaluate(short.bytes, q0, allowed).verdict.verdict, 'trusted');
  // A crypto-agile log with a sha256 bank is not SHA-1-only.
  const agile = byName('go-attestation-crypto-agile');
  const agileQuote = quoteFrom(pcrsOf(agile.doc['pcrs']));
  t.equal(cache.evaluate(agile.bytes, agileQuote, acceptAll).verdict.verdict, 'trusted', 'a sha256 log under accept-all');
  // A SHA-1 format log quoted only in sha256 (the default PCR selection) proves nothing: the
  // replay fails with EVENTLOG_BANK_MISSING, and the policy's verdict names EVENTLOG_SHA1_ONLY first.
  const only256 = quoteFrom(new Map([[TPM_ALG.SHA256, both.get(TPM_ALG.SHA256) ?? new Map<number, string>()]]));
  const r2 = cache.replay(win.bytes, only256);
  t.same(r2.ok ? [] : codesOf(r2.findings), ['EVENTLOG_BANK_MISSING']);
  t.same(codesOf(cache.evaluate(win.bytes, only256, acceptAll).verdict.findings), ['EVENTLOG_SHA1_ONLY', 'EVENTLOG_BANK_MISSING'], 'the default sha256 selection');
  t.same(codesOf(evaluateEventLog(parseEventLog(win.bytes), only256, sb).verdict.findings), ['EVENTLOG_SHA1_ONLY', 'EVENTLOG_BANK_MISSING'], 'evaluateEventLog alike');
  t.same(codesOf(cache.evaluate(win.bytes, only256, allowed).verdict.findings), ['EVENTLOG_BANK_MISSING'], 'allowed: quote the sha1 bank');
});

t.test('hostile SHA-1 format logs: a BulwarkError, never a crash or a hang', async (t) => {
  const rnd = prng(0x5a1e61);
  const int = (n: number): number => Math.floor(rnd() * n);
  const [policyObj] = parseMeasuredBootPolicies(JSON.stringify({ name: 'p', stages: { firmware: [] }, bank: 'sha1' }));
  const failures: string[] = [];
  const codes = new Map<string, number>();
  let parsed = 0;
  const probe = (what: string, bytes: Uint8Array): void => {
    try {
      const log = parseEventLog(bytes);
      for (const e of log.events) decodeEventData(e.eventType, e.data, log.uintnSize);
      const self = replayEventLogUnquoted(log);
      readSecureBootState(self, TPM_ALG.SHA1, { subjects: false });
      readBootChain(self, TPM_ALG.SHA1);
      if (policyObj !== undefined) evaluateMeasuredBootPolicyUnquoted(policyObj, self);
      parsed++;
    } catch (err) {
      if (!(err instanceof BulwarkError) || !isErrorCode(err.code)) failures.push(`${what}: ${String(err)}`);
      else codes.set(err.code, (codes.get(err.code) ?? 0) + 1);
    }
  };
  const win = byName('go-attestation-windows-gcp-shielded-vm').bytes;
  const short = byName('go-attestation-short-no-action').bytes;
  for (let n = 0; n <= short.length; n++) probe(`short cut at ${n}`, short.subarray(0, n));
  for (let n = 0; n <= win.length; n += n < 2048 ? 1 : 97) probe(`windows cut at ${n}`, win.subarray(0, n));
  for (const base of [win, byName('go-attestation-option-rom').bytes, byName('go-attestation-ebs-event-missing').bytes]) {
    for (let i = 0; i < 1500; i++) {
      const b = base.slice();
      for (let j = 1 + int(4); j > 0; j--) {
        const bit = int(b.length * 8);
        b[bit >> 3] = (b[bit >> 3] ?? 0) ^ (1 << (bit & 7));
      }
      probe(`flips #${i}`, b);
    }
    // Huge sizes over the EventDataSize field of every event.
    const log = parseEventLog(base);
    for (const e of log.events) {
      for (const v of [0xffffffff, 0x7fffffff, 0x100001]) {
        const b = base.slice();
        new DataView(b.buffer).setUint32(e.offset + 28, v, true);
        probe(`size ${v} at event ${e.sequence}`, b);
      }
      const b = base.slice();
      new DataView(b.buffer).setUint32(e.offset, 0x1000, true); // a measured event in PCR 4096
      probe(`PCR 4096 at event ${e.sequence}`, b);
    }
  }
  t.same(failures.slice(0, 5), [], 'only BulwarkErrors');
  t.ok((codes.get('EVENTLOG_TRUNCATED') ?? 0) > 100, 'cuts are EVENTLOG_TRUNCATED');
  t.ok((codes.get('EVENTLOG_MALFORMED') ?? 0) > 50, 'oversized events and PCR indices are EVENTLOG_MALFORMED');
  t.ok(parsed > 100, 'mutated digests still parse and go through every later step');
  t.comment(`parsed ${parsed}, errors ${JSON.stringify(Object.fromEntries(codes))}`);
});
