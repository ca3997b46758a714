/**
 * EventLogCache: an unchanged log is parsed and replayed once, a result is reused only for
 * the same compared PCR values (PCR 10 moving with IMA does not matter, a boot PCR does),
 * malformed logs keep failing with their code, entries are evicted by count and bytes.
 */
import t from 'tap';
import { BulwarkError } from '../../../lib/errors.js';
import { EventLogCache, evaluateEventLog, eventLogDigest, parseEventLog, parseMeasuredBootPolicies } from '../../../lib/eventlog/index.js';
import { buildBootLog } from '../../helpers/eventlog-builder.js';
import { codesOf, policyDocument, softwareQuote, tpmValues } from './eventlog-helpers.js';

const built = buildBootLog();
const [policy] = parseMeasuredBootPolicies(policyDocument(built));
if (policy === undefined) throw new Error('no policy');
const values = tpmValues(built);
const quoted = softwareQuote(values);

function withPcr(pcr: number, fill: number): ReturnType<typeof softwareQuote> {
  const v = new Map([...values].map(([alg, bank]) => [alg, new Map(bank)]));
  v.get(0x000b)?.set(pcr, new Uint8Array(32).fill(fill));
  return softwareQuote(v);
}

t.test('hits give the same result as a fresh evaluation', async (t) => {
  const cache = new EventLogCache();
  const first = cache.evaluate(built.bytes, quoted, policy);
  t.same(first.verdict, { verdict: 'trusted', findings: [] });
  t.same(first, evaluateEventLog(parseEventLog(built.bytes), quoted, policy), 'same as without the cache');
  t.equal(cache.evaluate(built.bytes, quoted, policy), first, 'the second round is a memo hit');
  t.equal(cache.evaluate(built.bytes.slice(), softwareQuote(values), policy), first, 'same bytes in another buffer, another quote of the same values');
  t.equal(cache.evaluate(built.bytes, withPcr(10, 0x77), policy), first, 'PCR 10 (IMA) moved: still a hit');
  const digest = eventLogDigest(built.bytes);
  t.equal(cache.evaluateCached(digest, quoted, policy), first, 'by digest, without hashing the log');
  t.equal(cache.evaluateCached('00'.repeat(32), quoted, policy), undefined, 'an unknown digest');
  t.equal(cache.size, 1);
});

t.test('a changed boot PCR or another policy is judged afresh', async (t) => {
  const cache = new EventLogCache();
  const first = cache.evaluate(built.bytes, quoted, policy);
  const moved = cache.evaluate(built.bytes, withPcr(4, 0x44), policy);
  t.not(moved, first);
  t.same(codesOf(moved.verdict.findings), ['EVENTLOG_REPLAY_MISMATCH']);
  const r = cache.replay(built.bytes, withPcr(4, 0x44));
  t.same(r.ok ? [] : r.findings.map((f) => f.details?.['pcr']), [4]);
  const [again] = parseMeasuredBootPolicies(policyDocument(built, (d) => (d['kernelCmdline'] = { pattern: 'nothing' })));
  if (again === undefined) return t.fail();
  t.same(codesOf(cache.evaluate(built.bytes, quoted, again).verdict.findings), ['KERNEL_CMDLINE_NOT_ALLOWED'], 'another policy object, its own result');
  t.equal(cache.evaluate(built.bytes, quoted, policy), first, 'the first result is still memoized');
});

t.test('malformed logs fail every time with their code, and are not parsed again', async (t) => {
  const cache = new EventLogCache();
  const cut = built.bytes.subarray(0, built.bytes.length - 3);
  let first: unknown;
  for (let i = 0; i < 3; i++) {
    try {
      cache.evaluate(cut, quoted, policy);
      t.fail('no error');
    } catch (err) {
      t.ok(err instanceof BulwarkError && err.code === 'EVENTLOG_TRUNCATED', 'EVENTLOG_TRUNCATED');
      if (i === 0) first = err;
      else t.equal(err, first, 'the cached error');
    }
  }
});

t.test('the cache keeps its own copy and evicts by count and bytes', async (t) => {
  const cache = new EventLogCache({ maxEntries: 2 });
  const buffer = built.bytes.slice();
  const r = cache.evaluate(buffer, quoted, policy);
  buffer.fill(0);
  t.equal(cache.evaluate(built.bytes, quoted, policy), r, 'changing the caller buffer changes nothing');
  const a = buildBootLog({ kernelBuild: 'a' });
  const b = buildBootLog({ kernelBuild: 'b' });
  cache.evaluate(a.bytes, quoted, policy);
  cache.evaluate(b.bytes, quoted, policy);
  t.equal(cache.size, 2);
  t.equal(cache.evaluateCached(eventLogDigest(built.bytes), quoted, policy), undefined, 'the least recently used log was evicted');
  t.not(cache.evaluateCached(eventLogDigest(b.bytes), quoted, policy), undefined);
  const tiny = new EventLogCache({ maxBytes: built.bytes.length + 10 });
  tiny.evaluate(built.bytes, quoted, policy);
  tiny.evaluate(a.bytes, quoted, policy);
  t.equal(tiny.size, 1, 'evicted by bytes');
});
