/**
 * Backlogs and re-judging, pure: a list replayed in chunks through replayImaBacklog (the
 * running PCR 10 carried from chunk to chunk) reaches the quote at the last chunk and at no
 * other, split at every entry; the recorded measurements a verifier keeps judge exactly as
 * the entries they were made from, under any policy; and a recorded segment that is
 * truncated or mutated gives a typed error, never a crash.
 */
import t from 'tap';
import { BulwarkError } from '../../../lib/errors.js';
import {
  buildRuntimePolicy,
  decodeRecordedImaEntries,
  encodeRecordedImaEntries,
  evaluateImaEntries,
  evaluateRecordedImaEntries,
  initialImaReplayState,
  parseImaAscii,
  replayImaBacklog,
  replayImaEntries,
  type ImaReplayState,
} from '../../../lib/ima/index.js';
import { TPM_ALG } from '../../../lib/tpm/types.js';
import type { Finding } from '../../../lib/verdict.js';
import { softwareQuote } from '../eventlog/eventlog-helpers.js';
import { allTemplatesLog, throwsCode } from './ima-test-logs.js';

const log = allTemplatesLog();
const list = log.ascii();
const entries = parseImaAscii(list).entries;
const quoted = softwareQuote(new Map([[TPM_ALG.SHA256, new Map([[10, log.pcr10('sha256')]])]]));

function summary(findings: readonly Finding[]): string[] {
  return findings.map((f) => `${f.code} ${String(f.details?.['entry'])} ${String(f.details?.['path'])} ${String(f.details?.['reason'] ?? f.details?.['rule'] ?? '')}`);
}

t.test('a backlog in two chunks, split at every entry, reaches the quote only with the last', async (t) => {
  const whole = replayImaEntries(initialImaReplayState(), entries, quoted);
  if (!whole.ok) throw new Error('the whole list does not replay');
  for (let split = 1; split < entries.length; split++) {
    const first = replayImaBacklog(initialImaReplayState(), entries.slice(0, split), quoted);
    if (first.ok || !('reached' in first)) {
      t.fail(`split ${split}: the first chunk must fall short, not ${first.ok ? 'reach the quote' : 'fail'}`);
      continue;
    }
    t.equal(first.running.entryCount, split);
    t.equal(first.state.entryCount, 0, 'the proven state does not move');
    const rest = replayImaBacklog(first.running, entries.slice(split), quoted);
    t.ok(rest.ok, `split ${split}: the second chunk reaches the quote`);
    if (rest.ok) t.same(rest.state, whole.state, `split ${split}: the same state as one replay`);
  }
});

t.test('a chunk that does not follow the running state is a gap, not a shortfall', async (t) => {
  const first = replayImaBacklog(initialImaReplayState(), entries.slice(0, 3), quoted);
  if (first.ok || !('reached' in first)) throw new Error('expected a shortfall');
  const gap = replayImaBacklog(first.running, entries.slice(4), quoted);
  t.notOk(gap.ok);
  t.notOk('reached' in gap);
  t.same(gap.ok ? [] : gap.findings.map((f) => f.code), ['IMA_LOG_DISCONTINUOUS']);
});

t.test('a wrong running state never reaches the quote', async (t) => {
  const forged: ImaReplayState = { entryCount: 3, byteOffset: entries[3]?.offset ?? 0, pcr10: new Map([[TPM_ALG.SHA256, new Uint8Array(32).fill(7)]]) };
  const r = replayImaBacklog(forged, entries.slice(3), quoted);
  t.notOk(r.ok);
});

t.test('recorded measurements judge as the entries they were made from', async (t) => {
  const whole = replayImaEntries(initialImaReplayState(), entries, quoted);
  if (!whole.ok) throw new Error('the whole list does not replay');
  const segment = encodeRecordedImaEntries(entries, new Set());
  if (segment === null) throw new Error('nothing recorded');
  const recorded = decodeRecordedImaEntries(segment);
  t.equal(recorded.length, entries.length, 'one per distinct measurement');
  const policies = {
    empty: buildRuntimePolicy([], { generatedAt: '2026-01-01T00:00:00.000Z', generator: 'test' }),
    half: buildRuntimePolicy(
      entries.filter((_, i) => i % 2 === 0).map((e) => ({ path: e.path, digest: { algorithm: e.digestAlgorithm, value: e.digest } })),
      { generatedAt: '2026-01-01T00:00:00.000Z', generator: 'test', excludes: ['^/usr/lib/'] },
    ),
    all: buildRuntimePolicy(
      entries.map((e) => ({ path: e.path, digest: { algorithm: e.digestAlgorithm, value: e.digest } })),
      { generatedAt: '2026-01-01T00:00:00.000Z', generator: 'test' },
    ),
  };
  for (const [name, policy] of Object.entries(policies)) {
    t.same(summary(evaluateRecordedImaEntries(policy, recorded)), summary(evaluateImaEntries(policy, whole.verified)), `policy ${name}`);
  }
  const seen = new Set<string>();
  encodeRecordedImaEntries(entries, seen);
  t.equal(encodeRecordedImaEntries(entries, seen), null, 'measurements seen before are not recorded twice');
  t.equal(decodeRecordedImaEntries(segment, seen).length, 0, 'nor read twice');
});

t.test('a recorded segment truncated or mutated: a typed error, never a crash', async (t) => {
  const segment = encodeRecordedImaEntries(entries, new Set());
  if (segment === null) throw new Error('nothing recorded');
  for (let n = 0; n < segment.length; n++) throwsCode(t, () => decodeRecordedImaEntries(segment.subarray(0, n)), 'IMA_STATE_INVALID', `truncated to ${n}`);
  let typed = 0;
  for (let i = 0; i < segment.length; i += 7) {
    const mutated = Uint8Array.from(segment);
    mutated[i] = (mutated[i] ?? 0) ^ 0xa5;
    try {
      decodeRecordedImaEntries(mutated);
    } catch (err) {
      if (!(err instanceof BulwarkError)) throw err;
      typed++;
    }
  }
  t.ok(typed > 0, `${typed} mutations refused with a BulwarkError, the rest decoded`);
});
