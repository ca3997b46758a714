/**
 * Baseline reports: canonical encoding round-trips, malformed bytes are
 * BASELINE_REPORT_INVALID, and the chain replays to the PCR value only when no report was
 * edited, dropped or reordered (BASELINE_REPLAY_MISMATCH otherwise). The extend rule is
 * checked here against its definition (TPM2_PCR_Extend on the sha256 bank).
 */
import t from 'tap';
import { createHash } from 'node:crypto';
import { decodeReport, encodeReport, extendReport, MAX_REPORT_BYTES, replayReportChain } from '../../../lib/baseline/index.js';
import { sampleReport } from './sample-report.js';

t.test('canonical JSON: sorted keys, no whitespace, round-trips', async (t) => {
  const r = sampleReport(0);
  const bytes = encodeReport(r);
  const text = new TextDecoder().decode(bytes);
  t.match(text, /^\{"baseline":\{"name":"default","sha256":"c+"\},"bootId":/, 'keys sorted');
  t.notMatch(text, /\s/, 'no whitespace');
  t.same(decodeReport(bytes), r);
  t.same(encodeReport(decodeReport(bytes)), bytes, 'stable');
  const shuffled = { ...sampleReport(0), enforcement: [], changes: [], version: 1 as const };
  t.same(encodeReport(shuffled), bytes, 'key order of the value does not matter');
});

t.test('malformed report bytes: BASELINE_REPORT_INVALID', async (t) => {
  const good = new TextDecoder().decode(encodeReport(sampleReport(0)));
  const bad: Record<string, string | Uint8Array> = {
    'not JSON': good.slice(0, -1),
    'version 2': good.replace('"version":1', '"version":2'),
    'unknown key': good.replace('"version":1', '"version":1,"extra":true'),
    'negative seq': good.replace('"seq":0', '"seq":-1'),
    'bad mode': good.replace('"mode":"enforcing"', '"mode":"on"'),
    'backwards range': good.replace('{"from":22,"to":22}', '{"from":23,"to":22}'),
    'not UTF-8': Uint8Array.of(0x7b, 0xff, 0x7d),
    'too large': `{"pad":"${'x'.repeat(MAX_REPORT_BYTES)}"}`,
    'too deep': `${'['.repeat(100)}${']'.repeat(100)}`,
  };
  for (const [name, value] of Object.entries(bad)) {
    t.throws(() => decodeReport(typeof value === 'string' ? new TextEncoder().encode(value) : value), { code: 'BASELINE_REPORT_INVALID' }, name);
  }
  const errorPart = sampleReport(1, { selinux: { error: { code: 'IO_FAILED', message: 'cannot read /sys/fs/selinux/enforce' } } });
  t.same(decodeReport(encodeReport(errorPart)), errorPart, 'a part the agent could not read is a valid report');
  t.throws(() => encodeReport({ ...sampleReport(0), seq: 1.5 }), { code: 'BASELINE_REPORT_INVALID' }, 'encoding refuses what would not decode');
});

t.test('the chain replays to the PCR; an edited, dropped or reordered report does not', async (t) => {
  const zero = new Uint8Array(32);
  const reports = [0, 1, 2].map((i) => encodeReport(sampleReport(i, { changes: i === 0 ? [] : [`change ${i}`] })));
  let pcr = zero;
  for (const r of reports) {
    const digest = createHash('sha256').update(r).digest();
    pcr = new Uint8Array(createHash('sha256').update(pcr).update(digest).digest());
  }
  t.same(extendReport(extendReport(extendReport(zero, reports[0] ?? zero), reports[1] ?? zero), reports[2] ?? zero), pcr, 'TPM2_PCR_Extend of sha256(report)');
  const ok = replayReportChain(zero, reports, pcr);
  t.ok(ok.ok);
  t.same(ok.value, pcr);

  const edited = [...reports];
  const text = new TextDecoder().decode(reports[1]).replace('change 1', 'change X');
  edited[1] = new TextEncoder().encode(text);
  const cases: [string, Uint8Array[]][] = [
    ['edited', edited],
    ['dropped', [reports[0] ?? zero, reports[2] ?? zero]],
    ['reordered', [reports[1] ?? zero, reports[0] ?? zero, reports[2] ?? zero]],
  ];
  for (const [name, chain] of cases) {
    const r = replayReportChain(zero, chain, pcr);
    t.notOk(r.ok, name);
    if (!r.ok) {
      t.equal(r.finding.code, 'BASELINE_REPLAY_MISMATCH', name);
      t.match(r.finding.details, { reports: chain.length, quoted: Buffer.from(pcr).toString('hex') }, `${name}: names count and both values`);
    }
  }
  const empty = replayReportChain(zero, [], zero);
  t.ok(empty.ok, 'no reports: the reset value');
  t.same(empty.value, new Uint8Array(32));
  t.notOk(replayReportChain(zero, [], pcr).ok, 'no reports but an extended PCR: mismatch');
  t.throws(() => extendReport(new Uint8Array(20), reports[0] ?? zero), { code: 'INTERNAL' });
});
