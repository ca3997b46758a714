/**
 * The baseline source when the host's state cannot be read (garbage SELinux values, nft
 * failing, nft printing a truncated document): a report with an error part, never a throw,
 * and the chain still replays. And SELinux enforcement on a written tree: permissive and a
 * flipped boolean corrected in enforce mode, only reported in report mode. swtpm for the
 * PCR, real nft in a namespace where a ruleset is read.
 */
import t from 'tap';
import { createPublicKey } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BaselineSource, Nftables } from '../../agent/baseline/index.js';
import { Tpm2ToolsTpm } from '../../agent/tpm2-tools-tpm.js';
import { DEFAULT_BASELINE, decodeReport, replayReportChain, type Baseline, type BaselineReport } from '../../lib/baseline/index.js';
import { TPM_ALG } from '../../lib/tpm/types.js';
import { trustedKeySet } from '../../lib/dsse/index.js';
import { EMPTY_REPLY_STATE } from '../../proto/index.js';
import { recordingLogger, type LogRecord } from '../helpers/logs.js';
import { NetnsHost } from '../helpers/netns.js';
import { writeSelinuxTree } from '../helpers/selinux-tree.js';
import { makeTempDir, removeDir, startTestTpms } from '../helpers/swtpm.js';
import { waitUntil } from '../helpers/wait.js';
import { signPolicy, testKey } from '../helpers/signing.js';

const root = await makeTempDir('baseline-hostile');
const fleet = await startTestTpms(join(root, 'tpms'), 1);
const sw = fleet.tpms[0];
if (sw === undefined) throw new Error('swtpm did not start');
await mkdir(join(root, 'work'));
const tpm = await Tpm2ToolsTpm.open({ tcti: sw.tcti, toolTimeoutMs: 20_000, akAlg: 'rsa', workRoot: join(root, 'work') });
t.teardown(async () => {
  await tpm.close();
  await fleet.stop();
  await removeDir(root);
});
const logs: LogRecord[] = [];
const log = recordingLogger((r) => logs.push(r));

const baselineKey = testKey('baseline-1');

/** A source on its own PCR, data dir and tree, holding `baseline` (an envelope it verifies, unless `verify` is false: no baselineKeys). */
async function sourceWith(name: string, pcr: number, nftCommand: readonly string[], baseline: Baseline, verify = true): Promise<{ source: BaselineSource; tree: string }> {
  const tree = join(root, name, 'tree');
  const baselineKeys = verify ? trustedKeySet([createPublicKey(baselineKey.publicKeyPem)]) : null;
  const source = new BaselineSource({ tpm, nft: new Nftables({ command: nftCommand }), selinuxRoot: tree, dataDir: join(root, name, 'data'), pcr, bootId: async () => 'boot-1', log, baselineKeys });
  const envelope = await signPolicy('baseline', baseline, [baselineKey]);
  source.acknowledge({ verdict: 'trusted', findings: [], ...EMPTY_REPLY_STATE, baseline: new TextEncoder().encode(envelope) }, {});
  return { source, tree };
}

async function replays(source: BaselineSource, pcr: number): Promise<boolean> {
  const value = (await tpm.readPcrs(`sha256:${pcr}`)).get(TPM_ALG.SHA256)?.get(pcr) ?? new Uint8Array();
  return replayReportChain(new Uint8Array(32), source.reports, value).ok;
}

const errorCode = (part: BaselineReport['selinux'] | BaselineReport['nftables'] | undefined): string | undefined => (part !== undefined && 'error' in part ? part.error.code : undefined);

t.test('garbage SELinux values and a failing nft: a report with error parts, no throw, and the source goes on', async (t) => {
  const { source, tree } = await sourceWith('garbage', 12, ['/nonexistent/nft'], { ...DEFAULT_BASELINE, mode: 'enforce' });
  await writeSelinuxTree(tree, { enforce: 'banana' });
  await source.prepare({ nodeId: 'node-h' });
  const [first] = source.reports.map((r) => decodeReport(r));
  t.equal(errorCode(first?.selinux), 'BASELINE_REPORT_INVALID', 'SELinux: the lib refused the value');
  t.match(first?.selinux, { error: { message: /enforce is "banana"/ } });
  t.equal(errorCode(first?.nftables), 'NFT_TOOL_FAILED', 'nftables: nft could not run');
  t.same(first?.enforcement, [], 'nothing is enforced on a state that could not be read');
  t.ok(await replays(source, 12), 'the report is in the PCR all the same');

  await writeSelinuxTree(tree, { enforce: '1', booleans: { httpd_can_network_connect: 'x y' } });
  await source.prepare({ nodeId: 'node-h' });
  t.equal(errorCode(decodeReport(source.reports[1] ?? new Uint8Array()).selinux), 'BASELINE_REPORT_INVALID', 'a garbage boolean value too');
  await writeSelinuxTree(tree, { enforce: '1', booleans: { httpd_can_network_connect: '0 0' } });
  await source.prepare({ nodeId: 'node-h' });
  const third = decodeReport(source.reports[2] ?? new Uint8Array());
  t.match(third.selinux, { state: { mode: 'enforcing' } }, 'readable again');
  t.ok(third.changes.includes('SELinux readable again'));

  // nft monitor that cannot start is started again and again without taking the source down.
  let triggered = 0;
  source.start(() => triggered++);
  await waitUntil('the failing monitor restarted twice', async () => (source.nftMonitor?.starts ?? 0) >= 3, 20_000);
  await source.stop();
  t.equal(triggered, 0, 'a monitor that failed triggered nothing');
  t.ok(logs.some((l) => l.msg === 'nft monitor ended: starting it again'), 'its ends are logged');
});

t.test('nft printing a truncated document: a report with the parser\'s error', async (t) => {
  // `sh -c 'printf %s "$0"' FRAGMENT -j list ruleset` prints FRAGMENT: a cut-off nft -j output.
  const { source, tree } = await sourceWith('truncated', 15, ['sh', '-c', 'printf %s "$0"', '{"nftables": [{"metainfo": {"json_schema_version": 1}}, {"table": {"fam'], DEFAULT_BASELINE);
  await writeSelinuxTree(tree);
  await source.prepare({ nodeId: 'node-h' });
  const [first] = source.reports.map((r) => decodeReport(r));
  t.equal(errorCode(first?.nftables), 'BASELINE_REPORT_INVALID', 'the lib\'s parser refused it');
  t.match(first?.selinux, { state: { mode: 'enforcing' } }, 'SELinux is reported all the same');
  t.ok(await replays(source, 15));
});

t.test('a ruleset too large for a report: the report carries an error part instead of going missing', async (t) => {
  // A valid `nft -j list ruleset` document with 6000 rules (about 1 MiB): more than a report may carry.
  const rules = Array.from({ length: 6000 }, (_, i) => ({
    rule: { family: 'inet', table: 'big', chain: 'input', handle: i + 3, expr: [{ match: { op: '==', left: { payload: { protocol: 'tcp', field: 'dport' } }, right: 10_000 + i } }, { accept: null }] },
  }));
  const doc = {
    nftables: [
      { metainfo: { version: '1.0.6', release_name: 'Lester Gooch #5', json_schema_version: 1 } },
      { table: { family: 'inet', name: 'big', handle: 1 } },
      { chain: { family: 'inet', table: 'big', name: 'input', handle: 2, type: 'filter', hook: 'input', prio: 0, policy: 'drop' } },
      ...rules,
    ],
  };
  const file = join(root, 'big-ruleset.json');
  await writeFile(file, JSON.stringify(doc));
  const { source, tree } = await sourceWith('big', 13, ['sh', '-c', 'cat "$0"', file], DEFAULT_BASELINE);
  await writeSelinuxTree(tree);
  await source.prepare({ nodeId: 'node-h' });
  const [first] = source.reports.map((r) => decodeReport(r));
  t.equal(errorCode(first?.nftables), 'BASELINE_REPORT_INVALID', `an error part: ${first !== undefined && 'error' in first.nftables ? first.nftables.error.message : ''}`);
  t.match(first?.selinux, { state: { mode: 'enforcing' } });
});

t.test('SELinux drift: corrected in enforce mode (setenforce, boolean written and committed), only reported in report mode', async (t) => {
  const host = await NetnsHost.create({}, t);
  const pinned: Baseline = { ...DEFAULT_BASELINE, mode: 'enforce', nftables: null, selinux: { ...DEFAULT_BASELINE.selinux, mode: 'enforcing', policyType: 'default', booleans: { httpd_can_network_connect: false }, requiredModules: [], forbiddenModules: [] } };
  const { source, tree } = await sourceWith('selinux-enforce', 16, host.nftCommand, pinned);
  await writeSelinuxTree(tree, { enforce: '0', booleans: { httpd_can_network_connect: '1 1', ssh_sysadm_login: '0 0' } });
  await source.prepare({ nodeId: 'node-h' });
  const [drift, fixed] = source.reports.map((r) => decodeReport(r));
  t.match(drift?.selinux, { state: { mode: 'permissive', booleans: { httpd_can_network_connect: true } } }, 'the drift report first');
  t.match(
    fixed?.enforcement,
    [
      { target: 'selinux', action: 'setenforce 1', changed: 'mode permissive → enforcing', ok: true },
      { target: 'selinux', action: 'setsebool httpd_can_network_connect off', changed: /httpd_can_network_connect/, ok: true },
    ],
    'each action with what it changed',
  );
  t.match(fixed?.selinux, { state: { mode: 'enforcing', booleans: { httpd_can_network_connect: false, ssh_sysadm_login: false } } }, 'the corrected state');
  t.equal(await readFile(join(tree, 'sys/fs/selinux/enforce'), 'utf8'), '1', 'enforce written');
  t.equal(await readFile(join(tree, 'sys/fs/selinux/commit_pending_bools'), 'utf8'), '1', 'booleans committed');
  t.equal(await readFile(join(tree, 'sys/fs/selinux/booleans/ssh_sysadm_login'), 'utf8'), '0 0', 'a boolean the baseline does not pin is left alone');
  t.ok(await replays(source, 16));

  const { source: reporting, tree: tree2 } = await sourceWith('selinux-report', 11, host.nftCommand, { ...pinned, mode: 'report' });
  await writeSelinuxTree(tree2, { enforce: '0' });
  await reporting.prepare({ nodeId: 'node-h' });
  t.equal(reporting.reports.length, 1, 'report mode: one report');
  t.match(decodeReport(reporting.reports[0] ?? new Uint8Array()), { selinux: { state: { mode: 'permissive' } }, enforcement: [] }, 'permissive reported, not corrected');
  t.equal(await readFile(join(tree2, 'sys/fs/selinux/enforce'), 'utf8'), '0', 'nothing written');
  await writeFile(join(tree2, 'sys/fs/selinux/enforce'), '1');

  // Without baselineKeys the agent cannot verify the envelope: held and reported against, never enforced.
  const warned = logs.length;
  const { source: unverified, tree: tree3 } = await sourceWith('selinux-unverified', 23, host.nftCommand, pinned, false);
  t.equal(unverified.heldBaseline?.baseline.mode, 'enforce', 'no baselineKeys: the enforce-mode baseline is held');
  t.notOk(unverified.enforcing, 'but not enforced');
  t.ok(logs.slice(warned).some((l) => l.level === 'warn' && /baselineKeys is not set/.test(l.msg)), 'a warn line says why');
  await writeSelinuxTree(tree3, { enforce: '0' });
  await unverified.prepare({ nodeId: 'node-h' });
  t.equal(unverified.reports.length, 1, 'one report');
  const only = decodeReport(unverified.reports[0] ?? new Uint8Array());
  t.match(only, { selinux: { state: { mode: 'permissive' } }, enforcement: [], baseline: { name: pinned.name, sha256: unverified.heldBaseline?.sha256 } }, 'permissive reported against the held baseline, not corrected');
  t.equal(await readFile(join(tree3, 'sys/fs/selinux/enforce'), 'utf8'), '0', 'nothing written');
  t.ok(await replays(unverified, 23));
});
