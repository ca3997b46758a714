/**
 * judgeBaseline: no report is BASELINE_REPORT_MISSING; a part the agent could not read is
 * BASELINE_REPORT_INVALID naming the part; SELinux drift is judged (the kernel's measurement
 * winning), repeated drift is said once, a report made under another baseline is judged
 * against the assigned one with a note, and the reported ruleset is judged by
 * lib/baseline/nft (recorded rulesets of test/fixtures/nft).
 */
import t from 'tap';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { DEFAULT_BASELINE, effectiveExposure, judgeBaseline, nftDigest, parseNftRuleset, type Baseline } from '../../../lib/baseline/index.js';
import { sampleReport } from './sample-report.js';

const SELINUX_ONLY: Baseline = { ...DEFAULT_BASELINE, nftables: null };

t.test('no reports: BASELINE_REPORT_MISSING', async (t) => {
  const f = judgeBaseline({ baseline: SELINUX_ONLY, reports: [], kernel: null });
  t.same(f.map((x) => x.code), ['BASELINE_REPORT_MISSING']);
});

t.test('a conforming report has no findings', async (t) => {
  t.same(judgeBaseline({ baseline: SELINUX_ONLY, reports: [sampleReport(0)], kernel: null }), []);
});

t.test('unreadable parts: BASELINE_REPORT_INVALID naming the part', async (t) => {
  const report = sampleReport(0, {
    selinux: { error: { code: 'IO_FAILED', message: 'cannot read sys/fs/selinux/enforce' } },
    nftables: { error: { code: 'TOOL_FAILED', message: 'nft exited 1' } },
  });
  const f = judgeBaseline({ baseline: DEFAULT_BASELINE, reports: [report], kernel: null });
  t.same(f.map((x) => [x.code, x.details?.['part']]), [
    ['BASELINE_REPORT_INVALID', 'selinux'],
    ['BASELINE_REPORT_INVALID', 'nftables'],
  ]);
  t.match(f[0]?.message, /cannot read sys\/fs\/selinux\/enforce/);
});

t.test('SELinux drift, said once over several reports; the kernel wins', async (t) => {
  const permissive = (seq: number) => {
    const r = sampleReport(seq);
    if ('error' in r.selinux) throw new Error('sample has a state');
    return sampleReport(seq, { selinux: { state: { ...r.selinux.state, mode: 'permissive' } } });
  };
  const f = judgeBaseline({ baseline: SELINUX_ONLY, reports: [permissive(1), permissive(2)], kernel: null });
  t.same(f.map((x) => x.code), ['SELINUX_NOT_ENFORCING'], 'deduplicated');
  t.equal(f[0]?.details?.['seq'], 1, "the first report's details");

  const lying = judgeBaseline({ baseline: SELINUX_ONLY, reports: [sampleReport(3)], kernel: { enforcing: false, policyHash: null } });
  t.same(lying.map((x) => x.code).sort(), ['SELINUX_NOT_ENFORCING', 'SELINUX_REPORT_CONTRADICTS_KERNEL']);
  const noSelinux = judgeBaseline({ baseline: { ...SELINUX_ONLY, selinux: null }, reports: [sampleReport(3)], kernel: { enforcing: false, policyHash: null } });
  t.same(noSelinux.map((x) => x.code), ['SELINUX_REPORT_CONTRADICTS_KERNEL'], 'a contradiction counts even when SELinux is not judged');
});

t.test('a report made under another baseline is judged against the assigned one, with a note', async (t) => {
  const r = sampleReport(0, { baseline: { name: 'old', sha256: 'e'.repeat(64) }, selinux: { error: { code: 'IO_FAILED', message: 'x' } } });
  const f = judgeBaseline({ baseline: SELINUX_ONLY, baselineSha256: 'f'.repeat(64), reports: [r], kernel: null });
  t.equal(f.length, 1);
  t.match(f[0]?.details, { reportedBaseline: `old ${'e'.repeat(64)}`, assignedBaseline: `default ${'f'.repeat(64)}` });
});

t.test('the nftables part: judged by lib/baseline/nft on the reported ruleset; a ruleset that does not parse is BASELINE_REPORT_INVALID', async (t) => {
  const fixture = async (name: string) => parseNftRuleset(await readFile(fileURLToPath(new URL(`../../../../test/fixtures/nft/${name}.json`, import.meta.url))));
  const reportOf = async (name: string, seq: number) => {
    const ruleset = await fixture(name);
    return sampleReport(seq, { nftables: { ruleset: ruleset.json, digest: nftDigest(ruleset), exposure: effectiveExposure(ruleset) } });
  };
  t.same(judgeBaseline({ baseline: DEFAULT_BASELINE, reports: [await reportOf('default', 0)], kernel: null }), [], 'the default table conforms');
  const drift = judgeBaseline({ baseline: DEFAULT_BASELINE, reports: [await reportOf('default', 0), await reportOf('extra-8080', 1), await reportOf('extra-8080', 2)], kernel: null });
  t.same(drift.map((f) => f.code), ['NFT_BASELINE_DRIFT'], 'the new port, said once');
  t.match(drift[0]?.message, /8080\/tcp/);
  t.equal(drift[0]?.details?.['seq'], 1);
  const lied = await reportOf('extra-8080', 4);
  if ('error' in lied.nftables) throw new Error('a ruleset report');
  const claimed = judgeBaseline({ baseline: { ...DEFAULT_BASELINE, nftables: null }, reports: [{ ...lied, nftables: { ...lied.nftables, digest: 'b'.repeat(64) } }], kernel: null });
  t.same(claimed.map((f) => [f.code, f.details?.['part']]), [['BASELINE_REPORT_INVALID', 'nftables']], 'a digest that is not the ruleset\'s');
  const garbage = sampleReport(3, { nftables: { ruleset: { nftables: 'no' }, digest: 'a'.repeat(64), exposure: { tcp: [], udp: [], otherProtocols: false, conditional: [], forwardOpen: false } } });
  const bad = judgeBaseline({ baseline: DEFAULT_BASELINE, reports: [garbage], kernel: null });
  t.same(bad.map((f) => [f.code, f.details?.['part']]), [['BASELINE_REPORT_INVALID', 'nftables']]);
});
