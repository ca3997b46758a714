/**
 * Host baselines end to end: real agents (swtpm, baseline source, nft monitor) on hosts in
 * network namespaces with their own nftables, the real controller replaying their report
 * chains against the quoted PCR 13, and nats-server; baselines pushed and assigned with
 * bulwarkctl as an operator does (policies/baselines/default.json with one pinned SELinux
 * boolean, in report and in enforce mode). Real TCP connections from the root namespace
 * show what is open. The round timer is 30 s, so what turns a node untrusted in time is
 * the round the agent's `nft monitor` triggers (SELinux changes: a round asked for with
 * attestNow, as the next timer round would).
 */
import t, { type Test } from 'tap';
import { readFileSync } from 'node:fs';
import { chmod, readFile, readdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runBaselineApply } from '../../agent/baseline/index.js';
import { silentLogger } from '../../daemon/index.js';
import { decodeReport, encodeReport, renderBulwarkTable, validateBaseline } from '../../lib/baseline/index.js';
import type { FindingMsg, NodeMsg } from '../../proto/wire.js';
import { trustKeySet } from '../../lib/signing/index.js';
import { parseJsonText } from '../../lib/schema/index.js';
import { adminAuditRecords } from '../helpers/audit.js';
import { TestFleet, type TestNode } from '../helpers/fleet.js';
import { NetnsHost } from '../helpers/netns.js';
import { writeSelinuxTree } from '../helpers/selinux-tree.js';
import { makeTempDir, removeDir } from '../helpers/swtpm.js';
import { waitUntil } from '../helpers/wait.js';

const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const DEFAULT_DOCUMENT: Record<string, unknown> = JSON.parse(readFileSync(join(REPO, 'policies/baselines/default.json'), 'utf8'));
/** The boolean the test baselines pin (off, as selinux-policy-default ships it). */
const PINNED_BOOLEAN = 'httpd_can_network_connect';

/** The default baseline in `mode`, with one SELinux boolean pinned. */
function webBaseline(mode: 'report' | 'enforce'): Record<string, unknown> {
  const selinux = DEFAULT_DOCUMENT['selinux'];
  return { ...DEFAULT_DOCUMENT, name: `web-${mode}`, mode, selinux: { ...(typeof selinux === 'object' ? selinux : {}), booleans: { [PINNED_BOOLEAN]: false } } };
}
const NFT_BASELINE = validateBaseline(webBaseline('report')).nftables ?? (() => { throw new Error('the default baseline has no nftables part'); })();
/** Bulwark's table as the baseline renders it (one transaction replacing it whole). */
const BULWARK_TABLE = renderBulwarkTable(NFT_BASELINE);

const root = await makeTempDir('baseline-e2e');
const fleet = await TestFleet.create({
  root,
  requireBaseline: true,
  // Rounds come from nft monitor and from the test; the timer and the controller's pull stay out of the way.
  controller: { intervalMs: 30_000, pullIntervalMs: 30_000, staleAfterMs: 120_000, nonceTtlMs: 30_000 },
});
const hosts: NetnsHost[] = [];
t.teardown(async () => {
  await fleet.stop();
  for (const h of hosts) await h.close();
  await removeDir(root);
});
await fleet.startController();

// The operator's side: both baselines pushed, report mode as the default, enforce mode for one node.
for (const mode of ['report', 'enforce'] as const) {
  const file = join(root, `web-${mode}.json`);
  await writeFile(file, JSON.stringify(webBaseline(mode), null, 2));
  const pushed = await fleet.ctl(['policy', 'push', 'baseline', `web-${mode}`, file]);
  if (pushed.code !== 0) throw new Error(`policy push failed: ${pushed.err}`);
}
for (const args of [['web-report', '--default'], ['web-enforce', '--node', 'enforced']]) {
  const assigned = await fleet.ctl(['policy', 'assign', 'baseline', ...args]);
  if (assigned.code !== 0) throw new Error(`policy assign failed: ${assigned.err}`);
}

/** A host in a namespace with listeners on 22, 443 and 8080, a SELinux tree, and the baseline applied as `bulwark-agent baseline apply` does. */
async function baselineHost(name: string): Promise<{ host: NetnsHost; tree: string }> {
  const host = await NetnsHost.create({ ports: [22, 443, 8080] });
  hosts.push(host);
  const tree = join(root, `${name}-selinux`);
  await writeSelinuxTree(tree);
  let out = '';
  const code = await runBaselineApply({
    dataDir: join(root, `${name}-apply`),
    selinuxRoot: tree,
    nftCommand: host.nftCommand,
    toolTimeoutMs: 20_000,
    dryRun: false,
    baselinePath: join(root, 'web-report.json'),
    out: (s) => (out += s),
    log: silentLogger(),
  });
  if (code !== 0) throw new Error(`baseline apply failed: ${out}`);
  return { host, tree };
}

const [reportBed, enforceBed] = await Promise.all([baselineHost('reported'), baselineHost('enforced')]);
// What real nft prints for the baseline's table: the hostile node's stand-in prints it when it is well-behaved.
const VALID_RULESET = await reportBed.host.run(['nft', '-j', 'list', 'ruleset']);
const validPath = join(root, 'valid-ruleset.json');
await writeFile(validPath, VALID_RULESET);
const nestedPath = join(root, 'nested-ruleset.json');
await writeFile(nestedPath, `{"nftables":${'['.repeat(100_000)}${']'.repeat(100_000)}}`);
const schemaV2Path = join(root, 'schema-v2-ruleset.json');
await writeFile(schemaV2Path, VALID_RULESET.replace(/"json_schema_version":\s*1/, '"json_schema_version": 2'));
const hostileTree = join(root, 'hostile-selinux');
await writeSelinuxTree(hostileTree);
const fakeNft = join(root, 'fake-nft');

/** Makes the hostile node's nft print what `body` (sh) prints; `nft monitor` stays quiet. */
async function fakeNftPrints(body: string): Promise<void> {
  await writeFile(`${fakeNft}.tmp`, `#!/bin/sh\nif [ "$1" = monitor ]; then exec sleep 3600; fi\n${body}\n`);
  await chmod(`${fakeNft}.tmp`, 0o755);
  await rename(`${fakeNft}.tmp`, fakeNft);
}
await fakeNftPrints(`cat '${validPath}'`);

const [reported, enforced, hostile] = await Promise.all([
  fleet.addNode('reported', { baseline: { nftCommand: reportBed.host.nftCommand, selinuxRoot: reportBed.tree } }),
  fleet.addNode('enforced', { baseline: { nftCommand: enforceBed.host.nftCommand, selinuxRoot: enforceBed.tree } }),
  fleet.addNode('hostile', { baseline: { nftCommand: [fakeNft], selinuxRoot: hostileTree } }),
]);
await Promise.all([reported, enforced, hostile].map((n) => n.agent.start()));
await Promise.all([reported, enforced, hostile].map((n) => fleet.waitForNode(n.nodeId, (m) => m.state === 'trusted', 60_000)));
await fleet.waitForNftMonitor('reported');
await fleet.waitForNftMonitor('enforced');

/** A finding's message and detail values: where the offending port or setting must be named. */
function said(f: FindingMsg): string {
  return `${f.message} ${Object.values(f.details).join(' ')}`;
}

function hasFinding(reasons: readonly FindingMsg[], code: string, named: RegExp): boolean {
  return reasons.some((f) => f.code === code && named.test(said(f)));
}

function untrustedWith(code: string, named: RegExp): (n: NodeMsg) => boolean {
  return (n) => n.state === 'untrusted' && hasFinding(n.reasons, code, named);
}

const trusted = (n: NodeMsg): boolean => n.state === 'trusted';

/** The node's current agent (a restart replaces it in the fleet). */
function current(nodeId: string): TestNode {
  const node = fleet.nodes.get(nodeId);
  if (node === undefined) throw new Error(`no node ${nodeId}`);
  return node;
}

/**
 * Lets the rounds already asked for finish (attestNow resolves once a round that started
 * after the call is done), so a change made next is seen by the round it triggers.
 */
async function settle(node: TestNode): Promise<void> {
  await node.agent.attestNow();
}

/**
 * Makes an nftables change on a trusted node and waits for the controller's state to turn
 * untrusted with `code` naming `named`; checks it was the round the nft monitor triggered
 * (the first round after the change, or the second when one was under way already).
 */
async function driftsInOneRound(t: Test, node: TestNode, change: () => Promise<void>, code: string, named: RegExp): Promise<NodeMsg> {
  await settle(node);
  const before = node.rounds.length;
  await change();
  const state = await fleet.waitForNode(node.nodeId, untrustedWith(code, named));
  // The controller stores the verdict before it replies: wait for the agent to have the reply too.
  const untrustedRound = (): number => node.rounds.findIndex((r, i) => i >= before && r.reply.verdict === 'untrusted');
  await waitUntil('the agent has the untrusted reply', async () => untrustedRound() >= 0, 20_000);
  const first = untrustedRound();
  t.ok(first >= before && first - before <= 1, `untrusted in the round the change triggered (round ${first - before + 1} after it)`);
  t.ok(hasFinding(node.rounds[first]?.reply.findings ?? [], code, named), `that round's verdict has ${code} naming ${String(named)}`);
  return state;
}

/** Makes a SELinux change, asks for a round, and checks its verdict (and the controller's state) has `code` naming `named`. */
async function selinuxDrift(t: Test, node: TestNode, change: () => Promise<void>, code: string, named: RegExp): Promise<void> {
  await change();
  await node.agent.attestNow();
  const reply = node.rounds.at(-1)?.reply;
  t.equal(reply?.verdict, 'untrusted', 'the next round is untrusted');
  t.ok(hasFinding(reply?.findings ?? [], code, named), `with ${code} naming ${String(named)}: ${JSON.stringify(reply?.findings.map(said))}`);
  await fleet.waitForNode(node.nodeId, untrustedWith(code, named));
}

/** The node turns trusted again after a change that restores the baseline (made by `restore`, then a round). */
async function restored(node: TestNode, restore: () => Promise<void>): Promise<void> {
  await restore();
  await node.agent.attestNow();
  await fleet.waitForNode(node.nodeId, trusted);
}

async function baselineShow(nodeId: string): Promise<{ code: number; status: Record<string, unknown> }> {
  const r = await fleet.ctl(['baseline', 'show', nodeId, '--json']);
  return { code: r.code, status: JSON.parse(r.out) };
}

const enforcedAudits = async (nodeId: string): Promise<string[]> =>
  (await adminAuditRecords(fleet)).filter((r) => r.action === 'baseline.enforced' && r.subject === nodeId).map((r) => JSON.stringify(r.details));

t.test('report mode: the default baseline applied is trusted; 22 and 443 connect, 8080 times out', async (t) => {
  t.equal((await fleet.waitForNode('reported', () => true)).state, 'trusted');
  t.equal(await reportBed.host.connect(22), 'connected', 'ssh');
  t.equal(await reportBed.host.connect(443), 'connected', 'https');
  t.equal(await reportBed.host.connect(8080), 'timeout', '8080 is dropped');
});

t.test('the controller\'s baseline key set reaches the agents with their evidence replies (pinned PEM keys, serial 0 → serial 1)', async (t) => {
  const path = join(reported.config.dataDir, 'baseline-keysets.json');
  const serial = async (): Promise<number> => {
    const doc = parseJsonText(await readFile(path).catch(() => new Uint8Array(0)), 'chain', 'STORE_CORRUPT');
    const envelopes = typeof doc === 'object' && doc !== null && 'envelopes' in doc && Array.isArray(doc.envelopes) ? doc.envelopes.map(String) : [];
    const last = envelopes.at(-1);
    return last === undefined ? 0 : trustKeySet('baseline', Buffer.from(last, 'base64')).document.serial;
  };
  await waitUntil('the agent to hold the controller\'s baseline key set', async () => (await serial().catch(() => 0)) >= 1);
  t.equal(await serial(), 1, 'the set the fleet installed (keys init), walked from the PEM keys it is signed by');
  t.equal((await fleet.waitForNode('reported', () => true)).state, 'trusted', 'baselines verify against it');
});

t.test('report mode: each drift is untrusted within the round it triggers, naming what drifted; restoring trusts the node again', async (t) => {
  const node = current('reported');
  const { host, tree } = reportBed;
  const restoreTable = (): Promise<void> => host.nft(BULWARK_TABLE);

  await driftsInOneRound(t, node, () => host.nft('add rule inet bulwark input tcp dport 8080 accept\n'), 'NFT_BASELINE_DRIFT', /\b8080\b/);
  t.equal(await host.connect(8080), 'connected', 'the drift is real: 8080 connects');
  await restored(node, restoreTable);
  t.equal(await host.connect(8080), 'timeout', 'restored: 8080 times out');

  const missing = await driftsInOneRound(t, node, () => host.nft('delete table inet bulwark\n'), 'NFT_BASELINE_DRIFT', /inet bulwark is missing/);
  t.ok(hasFinding(missing.reasons, 'NFT_BASELINE_DRIFT', /\b8080\b|1-65535|0-65535/), 'and the ports it opened are named');
  await restored(node, restoreTable);

  await driftsInOneRound(t, node, () => host.nft('chain inet bulwark input { policy accept; }\n'), 'NFT_BASELINE_DRIFT', /policy accept/);
  await restored(node, restoreTable);

  const enforce = join(tree, 'sys/fs/selinux/enforce');
  await selinuxDrift(t, node, () => writeFile(enforce, '0'), 'SELINUX_NOT_ENFORCING', /permissive/);
  await restored(node, () => writeFile(enforce, '1'));

  const boolean = join(tree, 'sys/fs/selinux/booleans', PINNED_BOOLEAN);
  await selinuxDrift(t, node, () => writeFile(boolean, '1 1'), 'SELINUX_BOOLEAN_MISMATCH', new RegExp(PINNED_BOOLEAN));
  await restored(node, () => writeFile(boolean, '0 0'));
});

t.test('not drift: a second accepting table, counters and handles, an exempted table\'s rules', async (t) => {
  const node = current('reported');
  const { host } = reportBed;
  /** Two more rounds after `change` (plus the one nft monitor triggers): every one trusted. */
  const staysTrusted = async (what: string, change: () => Promise<void>): Promise<void> => {
    await settle(node);
    const before = node.rounds.length;
    await change();
    await node.agent.attestNow();
    await node.agent.attestNow();
    const after = node.rounds.slice(before);
    t.ok(after.length >= 2, `${what}: ${after.length} rounds after it`);
    t.same(after.map((r) => r.reply.verdict), after.map(() => 'trusted'), `${what}: every round after it is trusted`);
    t.equal((await fleet.waitForNode(node.nodeId, () => true)).state, 'trusted', `${what}: the controller holds the node trusted`);
  };

  await staysTrusted('a second table accepting everything on input', () =>
    host.nft('table inet wide {\n\tchain input {\n\t\ttype filter hook input priority 0; policy accept;\n\t\taccept\n\t}\n}\n'),
  );
  t.equal(await host.connect(8080), 'timeout', "8080 still times out: Bulwark's table drops it first");
  const wide = await baselineShow('reported');
  t.ok((wide.status['changes'] as string[]).includes('table inet wide added'), 'the agent reported the table (it was judged, not missed)');

  const counterTable = 'table ip filter {\n\tchain INPUT {\n\t\ttype filter hook input priority 0; policy accept;\n\t\tcounter\n\t}\n}\n';
  await host.nft(counterTable);
  await settle(node);
  const chainBefore = (await baselineShow('reported')).status['chainLength'];
  await staysTrusted('counters and handles changing', async () => {
    for (let i = 0; i < 3; i++) await host.connect(22);
    // Deleted and declared again in one transaction: every handle changes, nothing else.
    await host.nft(`delete table ip filter\n${counterTable}`);
    for (let i = 0; i < 3; i++) await host.connect(22);
  });
  t.match(await host.run(['nft', 'list', 'table', 'ip', 'filter']), /counter packets [1-9]/, 'the counter did count');
  t.equal((await baselineShow('reported')).status['chainLength'], chainBefore, 'no new report: counters and handles are not a change');

  await staysTrusted('the rules of the exempted table ip nat changing', async () => {
    await host.nft('table ip nat {\n\tchain POSTROUTING {\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n\t\toifname "bwx0" masquerade\n\t}\n}\n');
    await host.nft('add rule ip nat POSTROUTING oifname "bwx1" masquerade\n');
  });
  t.ok(((await baselineShow('reported')).status['chainLength'] as number) > (chainBefore as number), 'the nat changes were reported, and judged no drift');
  await host.nft('delete table inet wide\ndelete table ip filter\ndelete table ip nat\n');
  await settle(node);
  await fleet.waitForNode(node.nodeId, trusted);
});

t.test('enforce mode: the agent corrects each drift; 8080 times out again, the correction is audited, a clean round trusts the node', async (t) => {
  const node = current('enforced');
  const { host, tree } = enforceBed;
  t.equal((await fleet.waitForNode(node.nodeId, () => true)).state, 'trusted');
  const drifts: ReadonlyArray<readonly [string, string, RegExp]> = [
    ['a rule accepting tcp 8080', 'add rule inet bulwark input tcp dport 8080 accept\n', /\b8080\b/],
    ['inet bulwark deleted', 'delete table inet bulwark\n', /inet bulwark is missing/],
    ['its input policy accept', 'chain inet bulwark input { policy accept; }\n', /policy accept/],
  ];
  for (const [what, change, named] of drifts) {
    await settle(node);
    const before = node.rounds.length;
    const audits = (await enforcedAudits(node.nodeId)).length;
    await host.nft(change);
    // The round the change triggers carries the drift and its correction (untrusted); the agent's own transaction triggers a clean one.
    await waitUntil(`${what}: an untrusted round, then a trusted one`, async () => {
      const after = node.rounds.slice(before);
      const bad = after.findIndex((r) => r.reply.verdict === 'untrusted');
      return bad >= 0 && after.slice(bad + 1).some((r) => r.reply.verdict === 'trusted');
    }, 20_000);
    const seen = node.rounds.slice(before).map((r) => r.reply.verdict);
    t.ok(seen.indexOf('untrusted') >= 0 && seen.lastIndexOf('trusted') > seen.indexOf('untrusted'), `${what}: verdicts ${seen.join(' → ')}`);
    t.ok(hasFinding(node.rounds.slice(before).find((r) => r.reply.verdict === 'untrusted')?.reply.findings ?? [], 'NFT_BASELINE_DRIFT', named), `${what}: the drift is named`);
    await fleet.waitForNode(node.nodeId, trusted);
    t.equal(await host.connect(8080), 'timeout', `${what}: corrected, 8080 times out`);
    t.notMatch(await host.run(['nft', 'list', 'table', 'inet', 'bulwark']), /8080|policy accept/, `${what}: the table read back is the baseline's`);
    const records = await enforcedAudits(node.nodeId);
    t.ok(records.length > audits, `${what}: a baseline.enforced record`);
    t.match(records.at(-1) ?? '', /replaced table inet bulwark/, `${what}: naming the action`);
  }

  const enforce = join(tree, 'sys/fs/selinux/enforce');
  const audits = (await enforcedAudits(node.nodeId)).length;
  await writeFile(enforce, '0');
  await node.agent.attestNow();
  const corrected = node.rounds.at(-1)?.reply;
  t.equal(corrected?.verdict, 'untrusted', 'SELinux permissive: the round that corrects it is untrusted');
  t.ok(hasFinding(corrected?.findings ?? [], 'SELINUX_NOT_ENFORCING', /permissive/), 'naming permissive mode');
  t.equal(await readFile(enforce, 'utf8'), '1', 'the agent set enforcing');
  await node.agent.attestNow();
  t.equal(node.rounds.at(-1)?.reply.verdict, 'trusted', 'the clean round after it is trusted');
  await fleet.waitForNode(node.nodeId, trusted);
  const records = await enforcedAudits(node.nodeId);
  t.ok(records.length > audits, 'audited');
  t.match(records.at(-1) ?? '', /setenforce 1/);
});

t.test('bulwarkctl baseline show --json: the effective ports and the last enforcement', async (t) => {
  const { code, status } = await baselineShow('enforced');
  t.equal(code, 0, 'no findings: exit 0');
  t.equal(status['baselineName'], 'web-enforce');
  t.equal(status['baselineMode'], 'enforce');
  t.equal(status['exposureKnown'], true);
  t.same(status['tcp'], [{ from: 22, to: 22 }, { from: 443, to: 443 }], 'tcp 22 and 443 open');
  t.same(status['udp'], []);
  t.equal(status['selinuxMode'], 'enforcing');
  t.not(status['enforcedAt'], '', 'when the agent last enforced');
  t.match(status['enforcement'], [{ target: 'selinux', action: 'setenforce 1', ok: true }], 'the last enforcement');
});

t.test('hostile input: nft output truncated, deeply nested, huge, of schema version 2, and a garbage SELinux tree are BASELINE_REPORT_INVALID; the agent keeps attesting', async (t) => {
  const node = current('hostile');
  const cases: ReadonlyArray<readonly [string, () => Promise<void>, () => Promise<void>, string, RegExp]> = [
    ['truncated nft -j output', () => fakeNftPrints(`head -c ${Math.floor(VALID_RULESET.length / 2)} '${validPath}'`), () => fakeNftPrints(`cat '${validPath}'`), 'nftables', /nftables/],
    ['deeply nested nft -j output', () => fakeNftPrints(`cat '${nestedPath}'`), () => fakeNftPrints(`cat '${validPath}'`), 'nftables', /nftables/],
    ['nft output past the cap', () => fakeNftPrints("head -c 20000000 /dev/zero | tr '\\000' ' '"), () => fakeNftPrints(`cat '${validPath}'`), 'nftables', /NFT_TOOL_OUTPUT_TOO_LARGE/],
    ['json_schema_version 2', () => fakeNftPrints(`cat '${schemaV2Path}'`), () => fakeNftPrints(`cat '${validPath}'`), 'nftables', /json_schema_version 2/],
    ['SELinux enforce "banana"', () => writeFile(join(hostileTree, 'sys/fs/selinux/enforce'), 'banana'), () => writeFile(join(hostileTree, 'sys/fs/selinux/enforce'), '1'), 'selinux', /banana/],
    ['a SELinux boolean "x y"', () => writeFile(join(hostileTree, 'sys/fs/selinux/booleans', PINNED_BOOLEAN), 'x y'), () => writeFile(join(hostileTree, 'sys/fs/selinux/booleans', PINNED_BOOLEAN), '0 0'), 'selinux', /selinux/i],
  ];
  for (const [what, spoil, repair, part, named] of cases) {
    await spoil();
    const before = node.rounds.length;
    await node.agent.attestNow();
    const reply = node.rounds.at(-1)?.reply;
    t.ok(node.rounds.length > before, `${what}: the round arrived`);
    t.equal(reply?.verdict, 'untrusted', `${what}: untrusted`);
    const invalid = reply?.findings.find((f) => f.code === 'BASELINE_REPORT_INVALID' && f.details['part'] === part);
    t.ok(invalid !== undefined && named.test(said(invalid)), `${what}: BASELINE_REPORT_INVALID for ${part}: ${invalid === undefined ? JSON.stringify(reply?.findings.map(said)) : said(invalid)}`);
    await fleet.waitForNode(node.nodeId, untrustedWith('BASELINE_REPORT_INVALID', named));
    await restored(node, repair);
  }
  t.equal(node.rounds.at(-1)?.reply.verdict, 'trusted', 'still attesting, trusted once the host reads well again');
});

t.test('the report log edited after the fact: the restarted agent\'s chain from 0 is BASELINE_REPLAY_MISMATCH', async (t) => {
  const old = current('reported');
  await settle(old);
  await old.agent.stop();
  // Rewrite the report that showed 8080 open with the clean ruleset of the one before it (length-prefixed records, agent/baseline/report-log.ts).
  const dir = join(old.config.dataDir, 'baseline-reports');
  const [logName] = await readdir(dir);
  if (logName === undefined) throw new Error('no report log');
  const bytes = await readFile(join(dir, logName));
  const records: Uint8Array[] = [];
  for (let at = 0; at < bytes.length; at += 4 + bytes.readUInt32BE(at)) records.push(bytes.subarray(at + 4, at + 4 + bytes.readUInt32BE(at)));
  const reports = records.map((r) => decodeReport(r));
  const open8080 = reports.findIndex((r) => 'exposure' in r.nftables && r.nftables.exposure.tcp.some((p) => p.from <= 8080 && 8080 <= p.to));
  const clean = reports[open8080 - 1];
  const forged = reports[open8080];
  if (clean === undefined || forged === undefined) throw new Error(`no report with 8080 open after a clean one (${open8080})`);
  records[open8080] = encodeReport({ ...forged, nftables: clean.nftables, changes: [] });
  const record = (r: Uint8Array): Buffer => {
    const out = Buffer.alloc(4 + r.length);
    out.writeUInt32BE(r.length, 0);
    out.set(r, 4);
    return out;
  };
  await writeFile(join(dir, logName), Buffer.concat(records.map(record)));

  const node = fleet.newAgent('reported');
  await node.agent.start();
  await fleet.waitForNode('reported', untrustedWith('BASELINE_REPLAY_MISMATCH', /PCR 13/));
  await waitUntil('the new agent has its first reply', async () => node.rounds.length > 0, 20_000);
  t.equal(node.rounds[0]?.reply.verdict, 'untrusted', 'the first round of the new agent is untrusted');
  t.ok(hasFinding(node.rounds[0]?.reply.findings ?? [], 'BASELINE_REPLAY_MISMATCH', /PCR 13/), 'BASELINE_REPLAY_MISMATCH on PCR 13');
  // The controller keeps the chain it verified: the agent sends only what it does not hold next, so the edit is not sticky.
  await node.agent.attestNow();
  t.equal(node.rounds.at(-1)?.reply.verdict, 'trusted', 'the next round sends only new reports (none): trusted again');
  await fleet.waitForNode('reported', trusted);
});
