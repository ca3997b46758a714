/**
 * Quote-verified and self-replayed IMA entries are different kinds: the live evaluation takes
 * only entries replayed against a verified quote (checked by the compiler), and the offline
 * evaluation says which kind it judged (checked at run time).
 */
import t from 'tap';
import { createHash } from 'node:crypto';
import {
  computeImaPcr10,
  evaluateImaEntries,
  evaluateImaEntriesOffline,
  imaReplayKind,
  importKeylimeRuntimePolicy,
  initialImaReplayState,
  parseImaBinary,
  replayImaEntries,
  replayImaEntriesOffline,
  type SelfReplayedImaEntries,
  type VerifiedImaEntries,
} from '../../../lib/ima/index.js';
import { TPM_ALG } from '../../../lib/tpm/types.js';
import { ImaLogBuilder } from '../../helpers/ima-builder.js';
import { softwareQuote } from '../eventlog/eventlog-helpers.js';

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

const b = new ImaLogBuilder();
b.bootAggregate(digest('boot'));
b.file('/usr/bin/allowed', { digest: digest('allowed') });
b.file('/usr/bin/unknown', { digest: digest('unknown') });
const entries = parseImaBinary(b.binary()).entries;
const policy = importKeylimeRuntimePolicy({
  meta: { version: 1, generator: 0 },
  release: 1,
  digests: { boot_aggregate: [digest('boot').toString('hex')], '/usr/bin/allowed': [digest('allowed').toString('hex')] },
  excludes: [],
  keyrings: {},
  ima: { ignored_keyrings: [], log_hash_alg: 'sha1', dm_policy: null },
  'ima-buf': {},
  'verification-keys': '',
});
const pcr10 = new Map([[TPM_ALG.SHA256, new Map([[10, b.pcr10('sha256')]])]]);

t.test('a replay against a verified quote is judged as quoted', async (t) => {
  const r = replayImaEntries(initialImaReplayState(), entries, softwareQuote(pcr10));
  if (!r.ok) return t.fail('the quoted replay fails');
  t.equal(imaReplayKind(r.verified), 'quoted');
  const live = evaluateImaEntries(policy, r.verified);
  const offline = evaluateImaEntriesOffline(policy, r.verified);
  t.equal(offline.replay, 'quoted');
  t.same(offline.findings, live, 'both evaluations judge alike');
  t.same(
    live.map((f) => [f.code, f.details?.['path']]),
    [['IMA_DIGEST_NOT_ALLOWED', '/usr/bin/unknown']],
  );
});

t.test('a replay against the log itself (or an unproven value) is judged as self-replayed', async (t) => {
  const own = computeImaPcr10(initialImaReplayState(), entries).pcr10;
  const fromLog = replayImaEntriesOffline(initialImaReplayState(), entries, new Map([...own].map(([alg, v]) => [alg, new Map([[10, v]])])));
  const fromOperator = replayImaEntriesOffline(initialImaReplayState(), entries, pcr10);
  for (const r of [fromLog, fromOperator]) {
    if (!r.ok) return t.fail('the offline replay fails');
    t.equal(imaReplayKind(r.replayed), 'self-replayed');
    const e = evaluateImaEntriesOffline(policy, r.replayed);
    t.equal(e.replay, 'self-replayed', 'the result says no quote proved these entries');
    t.same(
      e.findings.map((f) => f.code),
      ['IMA_DIGEST_NOT_ALLOWED'],
    );
  }
});

t.test('a forged brand is not taken for a quoted replay', async (t) => {
  // Deliberately forged: a list that no replay made, claiming the quoted brand.
  const forged = Object.freeze(entries.slice()) as unknown as VerifiedImaEntries;
  t.equal(imaReplayKind(forged), 'self-replayed', 'only lists replayImaEntries returned count as quoted');
  t.equal(evaluateImaEntriesOffline(policy, forged).replay, 'self-replayed');
});

t.test('the compiler keeps self-replayed entries away from the live evaluation', async (t) => {
  const r = replayImaEntriesOffline(initialImaReplayState(), entries, pcr10);
  if (!r.ok) return t.fail('the offline replay fails');
  const selfReplayed: SelfReplayedImaEntries = r.replayed;
  const live = (): unknown =>
    // @ts-expect-error SelfReplayedImaEntries is not VerifiedImaEntries: a live node's policy evaluation takes only quote-verified entries.
    evaluateImaEntries(policy, selfReplayed);
  // @ts-expect-error The offline replay result has no `verified` field: nothing in it is quote-verified.
  const field = (): unknown => r.verified;
  t.type(live, 'function');
  t.type(field, 'function');
});
