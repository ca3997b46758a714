/**
 * The baseline source end to end on real components: nft in a network namespace with TCP
 * listeners on 22, 443 and 8080 reached from the root namespace, a SELinux tree written
 * here, and swtpm for the baseline PCR. It checks the reports of one boot (first report,
 * drift, enforcement), real connection attempts before and after enforcement, nft monitor
 * triggering a round, the PCR against a replay of the report log, the report log across an
 * agent restart and a reboot, and what collect/acknowledge send.
 */
import t from 'tap';
import { createPublicKey, randomUUID } from 'node:crypto';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BaselineSource, Nftables, ReportLog } from '../../agent/baseline/index.js';
import { Tpm2ToolsTpm } from '../../agent/tpm2-tools-tpm.js';
import { DEFAULT_BASELINE, decodeReport, encodeReport, judgeBaseline, replayReportChain, type Baseline, type BaselineReport } from '../../lib/baseline/index.js';
import { TPM_ALG } from '../../lib/tpm/types.js';
import { encodeEnvelope, parseEnvelope, PAYLOAD_TYPES, trustedKeySet } from '../../lib/dsse/index.js';
import { EMPTY_REPLY_STATE, type EvidenceReplyMsg } from '../../proto/index.js';
import { recordingLogger, type LogRecord } from '../helpers/logs.js';
import { NetnsHost, nftMonitorSubscribed } from '../helpers/netns.js';
import { writeSelinuxTree } from '../helpers/selinux-tree.js';
import { makeTempDir, removeDir, startTestTpms } from '../helpers/swtpm.js';
import { waitFor, waitUntil } from '../helpers/wait.js';
import { signPolicy, signText, testKey } from '../helpers/signing.js';

const PCR = 13;
const root = await makeTempDir('baseline-source');
const fleet = await startTestTpms(join(root, 'tpms'), 1);
const sw = fleet.tpms[0];
if (sw === undefined) throw new Error('swtpm did not start');
await mkdir(join(root, 'work'));
const tpm = await Tpm2ToolsTpm.open({ tcti: sw.tcti, toolTimeoutMs: 20_000, akAlg: 'rsa', workRoot: join(root, 'work') });
const host = await NetnsHost.create({ ports: [22, 443, 8080] });
t.teardown(async () => {
  await host.close();
  await tpm.close();
  await fleet.stop();
  await removeDir(root);
});

const tree = join(root, 'selinux');
await writeSelinuxTree(tree);
const dataDir = join(root, 'data');
const bootIdPath = join(root, 'boot_id');
await writeFile(bootIdPath, `${randomUUID()}\n`);
const logs: LogRecord[] = [];
const log = recordingLogger((r) => logs.push(r));
/** The baseline key set's key: the agent verifies every baseline envelope with it. */
const baselineKey = testKey('baseline-1');
const baselineKeys = trustedKeySet([createPublicKey(baselineKey.publicKeyPem)]);

function newSource(): BaselineSource {
  return new BaselineSource({
    tpm,
    nft: new Nftables({ command: host.nftCommand }),
    selinuxRoot: tree,
    dataDir,
    pcr: PCR,
    bootId: async () => (await readFile(bootIdPath, 'utf8')).trim(),
    log,
    baselineKeys,
  });
}

function reply(fields: Partial<EvidenceReplyMsg> = {}): EvidenceReplyMsg {
  return { verdict: 'trusted', findings: [], ...EMPTY_REPLY_STATE, ...fields };
}

const ENFORCE: Baseline = { ...DEFAULT_BASELINE, mode: 'enforce' };
const enc = new TextEncoder();
/** The enforce-mode baseline as the controller sends it: the envelope the operator signed. */
const enforceBytes = enc.encode(await signPolicy('baseline', ENFORCE, [baselineKey]));
const decoded = (s: BaselineSource): BaselineReport[] => s.reports.map((r) => decodeReport(r));
const tcpPorts = (r: BaselineReport | undefined): string =>
  r === undefined || 'error' in r.nftables ? 'unreadable' : r.nftables.exposure.tcp.map((p) => (p.from === p.to ? `${p.from}` : `${p.from}-${p.to}`)).join(',');

async function pcrValue(): Promise<Uint8Array> {
  const v = (await tpm.readPcrs(`sha256:${PCR}`)).get(TPM_ALG.SHA256)?.get(PCR);
  if (v === undefined) throw new Error('no PCR value');
  return v;
}

async function replays(s: BaselineSource): Promise<boolean> {
  return replayReportChain(new Uint8Array(32), s.reports, await pcrValue()).ok;
}

let source = newSource();
let triggers = 0;

t.test('before any baseline: one first report, none while nothing changes; the host is wide open', async (t) => {
  await source.prepare({ nodeId: 'node-a' });
  const [first] = decoded(source);
  t.equal(source.reports.length, 1, 'the boot\'s first report');
  t.match(first, { version: 1, node: 'node-a', seq: 0, baseline: null, changes: [], enforcement: [] });
  t.match(first?.selinux, { state: { present: true, mode: 'enforcing', policyType: 'default', policyVersion: 33 } });
  t.equal(tcpPorts(first), '0-65535', 'no ruleset: every tcp port reachable');
  await source.prepare({ nodeId: 'node-a' });
  t.equal(source.reports.length, 1, 'nothing changed: no second report');
  t.equal(await host.connect(8080), 'connected', '8080 connects without a firewall');
  const sent = await source.collect();
  t.equal(sent.baselineFrom, 0);
  t.equal(sent.baselineReports?.length, 1, 'the first round after start sends every report');
  t.equal(sent.baselineSha256, '', 'no baseline held');
  t.ok(await replays(source), 'the PCR replays from the report log');
});

t.test('enforce mode: the default baseline applied by the agent; 22 and 443 connect, 8080 times out', async (t) => {
  source.acknowledge(reply({ baselineReports: 1, baseline: enforceBytes }), await source.collect());
  t.equal(source.heldBaseline?.baseline.mode, 'enforce', 'the baseline from the reply is held');
  t.ok(source.enforcing, 'verified with baselineKeys: enforced');
  await source.prepare({ nodeId: 'node-a' });
  const reports = decoded(source);
  t.equal(reports.length, 3, 'a drift report, then the report after enforcement');
  const [, drift, fixed] = reports;
  t.equal(drift?.enforcement.length, 0, 'the drift report comes first, without actions');
  t.ok(drift?.changes.some((c) => /baseline: none → default/.test(c)), 'it names the new baseline');
  t.match(fixed?.enforcement, [{ target: 'nftables', action: 'replaced table inet bulwark', ok: true, changed: /inet bulwark is missing/ }], 'the action and the drift it corrected');
  t.equal(tcpPorts(fixed), '22,443', 'the corrected report shows only 22 and 443');
  t.ok(fixed?.changes.some((c) => /table inet bulwark added/.test(c)), 'and what changed');
  t.equal(await host.connect(22), 'connected', '22 connects');
  t.equal(await host.connect(443), 'connected', '443 connects');
  t.equal(await host.connect(8080), 'timeout', '8080 times out (dropped)');
  t.same(new Uint8Array(await readFile(join(dataDir, 'baseline.json'))), enforceBytes, 'baseline.json holds the bytes as received');
  t.equal((await source.collect()).baselineSha256, source.heldBaseline?.sha256, 'the held baseline\'s sha256 goes with every round');
  t.ok(logs.some((l) => l.level === 'warn' && l.msg === 'baseline enforced' && l.fields['target'] === 'nftables'), 'the action is logged');
  t.ok(await replays(source), 'the PCR replays');
});

t.test('a rule accepting tcp 8080 in inet bulwark: nft monitor triggers a round; the report shows 8080; the agent closes it again', async (t) => {
  source.start(() => triggers++);
  const monitor = source.nftMonitor;
  const pid = await waitFor('the nft monitor process', () => monitor?.pid, 10_000);
  await waitUntil('nft monitor subscribed', () => nftMonitorSubscribed(pid), 10_000);
  const before = triggers;
  await host.nft('add rule inet bulwark input tcp dport 8080 accept\n');
  await waitUntil('a round triggered by nft monitor', async () => triggers > before, 10_000);
  t.equal(await host.connect(8080), 'connected', 'the rule opened 8080');
  const count = source.reports.length;
  await source.prepare({ nodeId: 'node-a' });
  const [drift, fixed] = decoded(source).slice(count);
  t.equal(tcpPorts(drift), '22,443,8080', 'the drift report shows 8080 reachable');
  t.ok(drift?.changes.some((c) => /chain inet bulwark input: 1 rule\(s\) added/.test(c)), 'and the rule added');
  t.match(fixed?.enforcement, [{ target: 'nftables', ok: true, changed: /8080\/tcp is reachable/ }], 'the enforcement names the port it closed');
  t.equal(tcpPorts(fixed), '22,443');
  // What the controller will make of them (the lib's judge, as the appraiser calls it).
  const judge = (r: BaselineReport | undefined) => judgeBaseline({ baseline: ENFORCE, baselineSha256: source.heldBaseline?.sha256 ?? '', reports: r === undefined ? [] : [r], kernel: null });
  t.match(judge(drift), [{ code: 'NFT_BASELINE_DRIFT', message: /8080\/tcp/ }], 'the drift report is drift for the controller');
  t.same(judge(fixed), [], 'the corrected report conforms (digest and ruleset agree)');
  t.equal(await host.connect(8080), 'timeout', '8080 times out again');
  t.equal(await host.connect(22), 'connected', '22 still connects');
});

t.test('a second table accepting everything is not drift: 8080 still times out, nothing is enforced', async (t) => {
  const count = source.reports.length;
  await host.nft('table inet other {\n  chain input { type filter hook input priority filter + 20; policy accept; counter accept; }\n}\n');
  await source.prepare({ nodeId: 'node-a' });
  const added = decoded(source).slice(count);
  t.equal(added.length, 1, 'one report: the ruleset changed');
  t.same(added[0]?.enforcement, [], 'no enforcement');
  t.ok(added[0]?.changes.some((c) => /table inet other added/.test(c)), 'the new table is reported');
  t.equal(tcpPorts(added[0]), '22,443', 'the exposure is unchanged');
  t.equal(await host.connect(8080), 'timeout', '8080 still times out: Bulwark\'s table drops it');
  t.ok(await host.run(['nft', 'list', 'table', 'inet', 'other']), 'the other table was left alone');
});

t.test('collect and acknowledge: reports from the controller\'s count on', async (t) => {
  const n = source.reports.length;
  const first = await source.collect();
  t.equal(first.baselineFrom, 1, 'from the count the controller acknowledged');
  t.equal(first.baselineReports?.length, n - 1);
  source.acknowledge(reply({ baselineReports: n }), first);
  const next = await source.collect();
  t.same([next.baselineFrom, next.baselineReports?.length], [n, 0], 'nothing left to send');
  source.acknowledge(reply({ verdict: 'error', baselineReports: 0 }), next);
  t.equal((await source.collect()).baselineFrom, n, 'a round the controller did not judge changes nothing');
  source.acknowledge(reply({ baselineReports: n + 5 }), next);
  t.equal((await source.collect()).baselineFrom, 0, 'a count beyond the chain: everything again');
  const held = source.heldBaseline?.sha256;
  source.acknowledge(reply({ baselineReports: n, baseline: new TextEncoder().encode('{"version":1,"name":"x"}') }), next);
  t.equal(source.heldBaseline?.sha256, held, 'a bare document is refused (baselineKeys: envelopes only), the old one kept');
  t.ok(logs.some((l) => l.level === 'warn' && /refused the baseline/.test(l.msg) && l.fields['code'] === 'ENVELOPE_MALFORMED'), 'with a warn line');
});

t.test('a baseline envelope altered in transit, signed by another key or of another payloadType is refused; the verified one is kept', async (t) => {
  const held = source.heldBaseline?.sha256;
  t.ok(held !== undefined && source.enforcing, 'a verified enforce-mode baseline is held');
  const report: Baseline = { ...DEFAULT_BASELINE, name: 'opened', mode: 'report' };
  const valid = await signPolicy('baseline', report, [baselineKey]);
  // One byte of the signed payload changed, the signatures as they were.
  const envelope = parseEnvelope(valid);
  const payload = new Uint8Array(envelope.payload);
  payload[0] = 0x20; // "{" → " ": still the same baseline as JSON, not the bytes signed
  const altered = encodeEnvelope({ ...envelope, payload });
  const cases: [string, string, string][] = [
    ['one payload byte changed', altered, 'SIGNATURE_INVALID'],
    ['signed by another key', await signPolicy('baseline', report, [testKey('intruder')]), 'SIGNATURE_INVALID'],
    ['of another payloadType', await signText(PAYLOAD_TYPES.keyset, report, [baselineKey]), 'PAYLOAD_TYPE_MISMATCH'],
    ['not an envelope', '{"payloadType":', 'ENVELOPE_MALFORMED'],
  ];
  for (const [what, text, code] of cases) {
    const warned = logs.length;
    source.acknowledge(reply({ baseline: enc.encode(text) }), {});
    t.equal(source.heldBaseline?.sha256, held, `${what}: refused, the verified baseline kept`);
    t.ok(source.enforcing, `${what}: still enforced`);
    t.ok(
      logs.slice(warned).some((l) => l.level === 'warn' && /refused the baseline/.test(l.msg) && l.fields['code'] === code),
      `${what}: a warn line naming ${code}`,
    );
  }
  t.same(new Uint8Array(await readFile(join(dataDir, 'baseline.json'))), enforceBytes, 'baseline.json still holds the verified envelope');
});

t.test('the PCR equals the replay of the report log from zero, and each report is in order', async (t) => {
  const reports = decoded(source);
  t.same(
    reports.map((r) => r.seq),
    reports.map((_, i) => i),
  );
  t.ok(await replays(source), `PCR ${PCR} replays from ${reports.length} reports`);
  const edited = [...source.reports];
  edited[1] = encodeReport({ ...reports[1], changes: ['nothing happened'] } as BaselineReport);
  t.notOk(replayReportChain(new Uint8Array(32), edited, await pcrValue()).ok, 'an edited report does not replay');
});

t.test('an agent restart within the boot continues the chain; a report appended but never extended is extended then', async (t) => {
  await source.stop();
  const before = source.reports.map((r) => Buffer.from(r).toString('hex'));
  // The agent stopped after appending a report and before extending it.
  const last = decoded(source).at(-1);
  if (last === undefined) throw new Error('no report');
  const { log: file } = await ReportLog.open(join(dataDir, 'baseline-reports'), last.bootId);
  await file.append(encodeReport({ ...last, seq: last.seq + 1, changes: ['appended, not extended'] }));
  t.notOk(replayReportChain(new Uint8Array(32), file.records, await pcrValue()).ok, 'the PCR lacks the last record');

  source = newSource();
  await source.prepare({ nodeId: 'node-a' });
  const after = source.reports.map((r) => Buffer.from(r).toString('hex'));
  t.same(after.slice(0, before.length), before, 'the same chain is read back');
  t.equal(after.length, before.length + 1, 'with the appended record, and no new report: the state did not change');
  t.ok(await replays(source), 'the missing extend was made: the PCR replays again');
  const sent = await source.collect();
  t.same([sent.baselineFrom, sent.baselineReports?.length], [0, after.length], 'the first round after a restart sends all of them');
  t.equal(sent.baselineSha256, source.heldBaseline?.sha256, 'the held baseline was read back from baseline.json');
});

t.test('a new boot starts a new chain and removes the old log', async (t) => {
  await sw.reboot();
  await writeFile(bootIdPath, `${randomUUID()}\n`);
  await source.prepare({ nodeId: 'node-a' });
  const reports = decoded(source);
  t.equal(reports.length, 1, 'one report');
  t.match(reports[0], { seq: 0, changes: [], bootId: (await readFile(bootIdPath, 'utf8')).trim() });
  t.equal((await readdir(join(dataDir, 'baseline-reports'))).length, 1, 'only this boot\'s log is kept');
  t.ok(await replays(source), 'the PCR (reset by the reboot) replays from the new chain');
  t.equal((await source.collect()).baselineFrom, 0, 'sent from the start');
  await source.stop();
});
