/**
 * Hostile systemd measurement logs (seeded; BULWARK_FUZZ_SEED=<n> reruns a seed): every
 * prefix, bit flips, random bytes and splices of the recorded log, and hand-made JSON
 * attacks (deep nesting, huge numbers and strings, prototype keys, too many records, no
 * record separator). Each goes through parseSystemdLog, the replay with the recorded
 * firmware log and the UKI policy: a return or a BulwarkError with a known code, never
 * another exception or a hang.
 */
import t from 'tap';
import { BulwarkError } from '../../../lib/errors.js';
import {
  MAX_SYSTEMD_LOG_RECORDS,
  MAX_SYSTEMD_LOG_SIZE,
  evaluateBootLogs,
  parseEventLog,
  parseMeasuredBootPolicies,
  parseSystemdLog,
  readUkiBoot,
  replaySystemdBoot,
} from '../../../lib/eventlog/index.js';
import { TPM_ALG } from '../../../lib/tpm/types.js';
import { SEED, mutations, newStats, prng, probe, report } from '../hostile.js';
import { UKI_QUOTE_PCRS, quoteOfValues, recordedPcrs, ukiFile } from './uki-helpers.js';

const SD = ukiFile('tpm2-measure.log');
const FW = parseEventLog(ukiFile('binary_bios_measurements'));
const QUOTED = quoteOfValues(recordedPcrs(), UKI_QUOTE_PCRS);
const [POLICY] = parseMeasuredBootPolicies(JSON.stringify({ name: 'p', uki: { phases: ['sysinit', 'ready'], cmdline: { pattern: '.*' } } }));

function pipeline(bytes: Uint8Array): void {
  const log = parseSystemdLog(bytes);
  const r = replaySystemdBoot(FW, log, QUOTED);
  if (r.ok) readUkiBoot(r.boot, TPM_ALG.SHA256);
  if (POLICY !== undefined) evaluateBootLogs(FW, log, QUOTED, POLICY);
}

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const rec = (json: string): string => `\x1e${json}\n`;
const GOOD = '{"pcr":11,"digests":[{"hashAlg":"sha256","digest":"' + 'ab'.repeat(32) + '"}],"content_type":"systemd","content":{"string":"x","eventType":"phase"}}';

t.test('mutations of the recorded log', async (t) => {
  const stats = newStats();
  const rnd = prng(SEED);
  for (const [label, bytes] of mutations(SD, rnd, { flipSamples: 3000, randomCount: 300 })) probe(stats, 'systemd log', label, bytes, () => pipeline(bytes));
  report(t, stats, 3000);
});

t.test('hand-made attacks: each a SYSTEMD_LOG_MALFORMED', async (t) => {
  const cases: Array<[string, Uint8Array]> = [
    ['no separator', enc(GOOD + '\n')],
    ['no line feed (cut off)', enc(`\x1e${GOOD}`)],
    ['empty record', enc('\x1e\n')],
    ['text before the first record', enc(`x${rec(GOOD)}`)],
    ['not JSON', enc(rec('{"pcr":'))],
    ['not UTF-8', new Uint8Array([0x1e, 0xff, 0xfe, 0x0a])],
    ['deep nesting', enc(rec(`{"pcr":11,"x":${'['.repeat(5000)}${']'.repeat(5000)}}`))],
    ['PCR 24', enc(rec(GOOD.replace('"pcr":11', '"pcr":24')))],
    ['PCR as a string', enc(rec(GOOD.replace('"pcr":11', '"pcr":"11"')))],
    ['PCR 1e400', enc(rec(GOOD.replace('"pcr":11', '"pcr":1e400')))],
    ['short digest', enc(rec(GOOD.replace('ab'.repeat(32), 'ab'.repeat(31))))],
    ['unknown bank', enc(rec(GOOD.replace('"sha256"', '"md5"')))],
    ['two sha256 digests', enc(rec(GOOD.replace(/\[(\{[^\]]*\})\]/, '[$1,$1]')))],
    ['no digests', enc(rec(GOOD.replace(/\[\{[^\]]*\}\]/, '[]')))],
    ['another content type', enc(rec(GOOD.replace('"systemd"', '"pcclient_std"')))],
    ['__proto__ key', enc(rec(GOOD.replace('"pcr":11', '"__proto__":{"pcr":1},"pcr":11')))],
    ['content key of an object', enc(rec(GOOD.replace('"eventType":"phase"', '"eventType":"phase","extra":{"a":1}')))],
    ['a huge string', enc(rec(GOOD.replace('"string":"x"', `"string":"${'x'.repeat(20_000)}"`)))],
    ['too large', enc(rec(GOOD).repeat(Math.ceil(MAX_SYSTEMD_LOG_SIZE / rec(GOOD).length) + 1))],
    ['recnum going back', enc(rec(GOOD.replace('{', '{"recnum":2,')) + rec(GOOD.replace('{', '{"recnum":1,')))],
  ];
  for (const [label, bytes] of cases) {
    let code = '';
    try {
      parseSystemdLog(bytes);
    } catch (err) {
      code = err instanceof BulwarkError ? err.code : `not a BulwarkError: ${String(err)}`;
    }
    t.equal(code, 'SYSTEMD_LOG_MALFORMED', label);
  }
  const small = rec('{"pcr":11,"digests":[{"hashAlg":"sha1","digest":"' + 'ab'.repeat(20) + '"}],"content_type":"systemd","content":{}}');
  const many = enc(small.repeat(MAX_SYSTEMD_LOG_RECORDS + 1));
  t.ok(many.length <= MAX_SYSTEMD_LOG_SIZE, 'the record cap is reached before the size cap');
  t.throws(() => parseSystemdLog(many), { code: 'SYSTEMD_LOG_MALFORMED' }, `more than ${MAX_SYSTEMD_LOG_RECORDS} records`);
  t.same(parseSystemdLog(new Uint8Array(0)).records, [], 'an empty log is valid');
  t.equal(parseSystemdLog(enc(rec(GOOD.replace('"eventType":"phase"', '"eventType":"phase","nvIndexName":"hardware","seq":3')))).records.length, 1, 'unknown scalar content keys a later systemd adds are read');
});
