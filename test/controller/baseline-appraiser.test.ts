/**
 * The baseline appraiser against a real nats-server (policy store, KV chain state, admin
 * audit) and real quotes: a swtpm into whose PCR 13 each report's sha256 is extended with
 * tpm2_pcrextend (as the agent does, before the quote), quoted with tpm2_quote and judged
 * by judgeEvidence, so the appraiser sees PCRs a verified quote proved. The rulesets in the
 * reports are what `nft -j list ruleset` prints in a fresh network namespace after the
 * baseline's own table is applied there (with a rule added for drift). The kernel's SELinux
 * measurements come from ima-buf entries the IMA appraiser verified in the same round.
 */
import t from 'tap';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { connect } from 'nats';
import { judgeEvidence } from '../../lib/attestation/judge.js';
import { EMPTY_ATTESTATION, type NodeRecord } from '../../lib/attestation/node-record.js';
import {
  DEFAULT_BASELINE,
  effectiveExposure,
  encodeReport,
  nftDigest,
  parseNftRuleset,
  renderBulwarkTable,
  validateBaseline,
  type Baseline,
  type BaselineReport,
  type EnforcementAction,
  type SelinuxState,
} from '../../lib/baseline/index.js';
import { parsePcrSelectionSpec } from '../../lib/tpm/pcrs.js';
import type { AppraisalContext, AppraisalResult } from '../../controller/appraisers/appraiser.js';
import { BaselineAppraiser, NO_BASELINE_NOTE } from '../../controller/appraisers/baseline-appraiser.js';
import { ImaAppraiser } from '../../controller/appraisers/ima-appraiser.js';
import { PolicyStore } from '../../controller/policies/policy-store.js';
import { AdminAudit } from '../../controller/state/admin-audit.js';
import { baselineStatusToMsg } from '../../controller/api/grpc-server.js';
import { NO_LOGS, type EvidenceMsg } from '../../proto/wire.js';
import { adminAuditRecords } from '../helpers/audit.js';
import { ImaLogBuilder } from '../helpers/ima-builder.js';
import { makeTempDir, removeDir, startTestTpms, type SwtpmProcess } from '../helpers/swtpm.js';
import { createTestAk, runQuote, type TestAk } from '../lib/tpm/quote-helpers.js';
import { openStateBed } from './state-bed.js';

const BASELINE_PCR = 13;
const SPEC = 'sha256:0,1,2,3,4,5,6,7,10,13';
const SELECTION = parsePcrSelectionSpec(SPEC);

const bed = await openStateBed('baseline-appraiser');
t.teardown(() => bed.close());
const js = bed.nc.jetstream();
const root = await makeTempDir('baseline-appraiser');
const tpms = await startTestTpms(root, 1);
t.teardown(async () => {
  await tpms.stop();
  await removeDir(root);
});
const swtpm: SwtpmProcess = tpms.tpms[0] ?? (() => { throw new Error('no TPM'); })();
const work = join(root, 'work');
await mkdir(work);
const ak: TestAk = await createTestAk(swtpm, work, '0x81010002', 'rsa');

const policies = await PolicyStore.open(js);
const audit = new AdminAudit(js);
const ima = await ImaAppraiser.open(js, policies);
const required = await BaselineAppraiser.open(js, policies, { pcr: BASELINE_PCR, requireBaseline: true, kernel: ima, audit });
const optional = await BaselineAppraiser.open(js, policies, { pcr: BASELINE_PCR, requireBaseline: false, kernel: ima, audit });

/** `nft -j list ruleset` in a fresh network namespace after `nft -f` of `script` (never the host's ruleset). */
async function nftJson(script: string, name: string): Promise<string> {
  const file = join(work, `${name}.nft`);
  await writeFile(file, script);
  const r = await execa('unshare', ['--net', 'sh', '-c', `nft -f "$1" && nft -j list ruleset`, 'sh', file], { timeout: 20_000 });
  return r.stdout;
}

// The test baseline: the default one with a SELinux part pinned (Debian's "default" policy).
const BASELINE: Baseline = {
  ...DEFAULT_BASELINE,
  name: 'web',
  mode: 'enforce',
  selinux: { mode: 'enforcing', policyType: 'default', booleans: { httpd_can_network_connect: false }, requiredModules: [], forbiddenModules: [] },
};
const nftBaseline = BASELINE.nftables ?? (() => { throw new Error('the default baseline has no nftables part'); })();
const cleanRuleset = parseNftRuleset(await nftJson(renderBulwarkTable(nftBaseline), 'clean'));
const driftRuleset = parseNftRuleset(
  await nftJson(`${renderBulwarkTable(nftBaseline)}\nadd rule inet ${nftBaseline.table} input tcp dport 8080 accept\n`, 'drift').then((text) =>
    text.includes('8080') ? text : Promise.reject(new Error('the drift rule is not in the ruleset')),
  ),
);
await policies.put('baseline', 'web', JSON.stringify(BASELINE));
/** The sha256 of the document the controller sends agents (its canonical JSON), which reports name. */
const BASELINE_SHA256 = createHash('sha256').update(JSON.stringify(validateBaseline(JSON.parse(JSON.stringify(BASELINE))))).digest('hex');

const ENFORCING: SelinuxState = {
  present: true,
  mode: 'enforcing',
  configMode: 'enforcing',
  policyType: 'default',
  policyVersion: 33,
  policyHash: null,
  booleans: { httpd_can_network_connect: false },
  modules: ['base'],
};

/** The kernel's selinux-state critical data (security/selinux/ima.c). */
function kernelState(enforcing: boolean): Buffer {
  return Buffer.from(
    `initialized=1;enforcing=${enforcing ? 1 : 0};checkreqprot=0;network_peer_controls=1;open_perms=1;extended_socket_class=1;always_check_network=0;cgroup_seclabel=1;nnp_nosuid_transition=1;genfs_seclabel_symlinks=1;ioctl_skip_cloexec=0;`,
  );
}

let hostSeq = 0;

/** One host on the swtpm: its record, its report chain as the agent keeps it, and what the controller acknowledged. */
class Host {
  readonly nodeId = `host-${++hostSeq}`;
  record: NodeRecord;
  readonly bootId = `boot-${hostSeq}`;
  readonly chain: Uint8Array[] = [];
  acked = 0;
  first = true;
  heldSha256 = '';
  readonly ima = new ImaLogBuilder();

  private constructor() {
    this.record = {
      version: 1,
      nodeId: this.nodeId,
      state: 'enrolled',
      reasons: [],
      stateSince: '2026-01-01T00:00:00.000Z',
      enrolledAt: '2026-01-01T00:00:00.000Z',
      ekType: 'rsa',
      ekPublic: '00',
      ekCertificateSubject: 'CN=test EK',
      akPublic: '00',
      akName: '00',
      facts: null,
      factsDigest: '',
      lastEvidenceAt: null,
      lastVerdictAt: null,
      attestation: EMPTY_ATTESTATION,
      requiresReenrollment: false,
      reenrollApproved: false,
      nomadNode: null,
    };
  }

  /** A new host: the TPM reboots (PCRs zero), so every host starts its own boot. */
  static async boot(): Promise<Host> {
    await swtpm.reboot();
    return new Host();
  }

  report(over: Partial<BaselineReport> & { ruleset?: typeof cleanRuleset } = {}): BaselineReport {
    const { ruleset = cleanRuleset, ...rest } = over;
    return {
      version: 1,
      node: this.nodeId,
      bootId: this.bootId,
      seq: this.chain.length,
      time: new Date(Date.UTC(2026, 0, 1, 0, 0, this.chain.length)).toISOString(),
      baseline: { name: 'web', sha256: BASELINE_SHA256 },
      selinux: { state: ENFORCING },
      nftables: { ruleset: ruleset.json, digest: nftDigest(ruleset), exposure: effectiveExposure(ruleset) },
      changes: [],
      enforcement: [],
      ...rest,
    };
  }

  /** The agent's side: extends the report's sha256 into the baseline PCR and keeps it in its chain. */
  async add(report: BaselineReport): Promise<Uint8Array> {
    const bytes = encodeReport(report);
    await swtpm.extendPcr(BASELINE_PCR, createHash('sha256').update(bytes).digest('hex'));
    this.chain.push(bytes);
    return bytes;
  }

  /** The kernel measures SELinux critical data into the IMA list and PCR 10. */
  async kernelMeasures(enforcing: boolean): Promise<void> {
    const e = this.ima.buffer('selinux-state', kernelState(enforcing));
    await swtpm.extendPcr(10, this.ima.extendValue(e, 'sha256').toString('hex'));
  }

  /**
   * One round: quote, judge the quote as the verifier does, run the IMA appraiser and then
   * `appraiser` (as create.ts orders them) and commit both. Without `over`, the reports
   * are what the agent sends: all on its first round, then from what the controller acknowledged.
   */
  async round(appraiser: BaselineAppraiser, over: Partial<EvidenceMsg> = {}): Promise<AppraisalResult> {
    const nonce = randomBytes(32);
    const q = await runQuote(swtpm, work, ak, SPEC, nonce.toString('hex'), `${this.nodeId}-q`);
    const from = this.first ? 0 : this.acked;
    const evidence: EvidenceMsg = {
      nodeId: this.nodeId,
      nonce,
      attest: q.msg,
      signature: q.sig,
      pcrs: q.pcrs,
      bootId: this.bootId,
      facts: null,
      factsDigest: '',
      round: 1,
      ...NO_LOGS,
      ...(this.ima.entries.length > 0 ? { imaFormat: 'ascii', imaEntries: this.ima.ascii() } : {}),
      baselineFrom: from,
      baselineReports: this.chain.slice(from),
      baselineSha256: this.heldSha256,
      ...over,
    };
    const j = judgeEvidence({ ak: ak.key, state: this.record.attestation, evidence, expectedSelection: SELECTION });
    if (j.pcrs === null || j.clockInfo === null) throw new Error(`the quote did not verify: ${j.verdict.findings.map((f) => f.code).join(',')}`);
    const ctx: AppraisalContext = { record: this.record, evidence, quoted: j.pcrs, clockInfo: j.clockInfo, newBoot: j.newBoot, now: Date.now() };
    const imaResult = await ima.appraise(ctx);
    const result = await appraiser.appraise(ctx);
    await imaResult.commit?.();
    await result.commit?.();
    this.record = { ...this.record, attestation: j.next };
    this.first = false;
    if (result.reply?.baselineReports !== undefined) this.acked = result.reply.baselineReports;
    if (result.reply?.baseline !== undefined && result.reply.baseline.length > 0) this.heldSha256 = result.reply.baselineSha256 ?? '';
    return result;
  }
}

/** The distinct codes of a result, sorted (one drift may be named by several findings). */
function codes(r: AppraisalResult): string[] {
  return [...new Set(r.findings.map((f) => f.code))].sort();
}

const enforcedAction: EnforcementAction = { target: 'nftables', action: `replaced table inet ${nftBaseline.table}`, changed: 'tcp 8080 was accepted', ok: true };

t.test('a chain that replays is trusted; the reply carries the baseline only while the agent holds another', async (t) => {
  await policies.assign('baseline', 'web', null);
  const host = await Host.boot();
  await host.add(host.report());
  await host.add(host.report({ changes: ['counters changed'] }));
  const first = await host.round(required);
  t.same(codes(first), [], 'both reports replay to the quoted PCR 13 and conform');
  t.equal(first.reply?.baselineReports, 2, 'the controller holds both');
  t.ok((first.reply?.baseline?.length ?? 0) > 0, 'the agent held no baseline: the document is sent');
  const sent = first.reply?.baseline ?? new Uint8Array(0);
  t.equal(first.reply?.baselineSha256, createHash('sha256').update(sent).digest('hex'), 'the digest is of the bytes sent');
  t.equal(first.reply?.baselineSha256, BASELINE_SHA256);

  const second = await host.round(required);
  t.same(codes(second), [], 'no new report: the latest is judged again');
  t.equal(second.reply?.baseline?.length, 0, 'the agent holds this baseline: no document');
  t.equal(second.reply?.baselineSha256, first.reply?.baselineSha256);

  await host.add(host.report());
  const third = await host.round(required);
  t.equal(third.reply?.baselineReports, 3, 'a later round sends only the new report, from the acknowledged count');
  t.same(codes(third), []);
  const status = await required.status(host.nodeId);
  t.equal(status.stored?.count, 3);
  t.equal(status.baseline?.name, 'web');
  t.same(status.latest?.nftables, host.report().nftables, 'the latest report is kept for baseline show');
});

t.test('an edited, a dropped and a reordered report do not replay; nothing of such a round is stored', async (t) => {
  const host = await Host.boot();
  await host.add(host.report());
  t.same(codes(await host.round(required)), []);

  // Edited after the fact: the agent extended one report and sends another.
  const real = await host.add(host.report());
  const edited = encodeReport({ ...host.report(), seq: 1, changes: ['nothing happened'] });
  const r1 = await host.round(required, { baselineFrom: 1, baselineReports: [edited] });
  t.same(codes(r1), ['BASELINE_REPLAY_MISMATCH']);
  t.equal(r1.reply?.baselineReports, 1, 'the chain stays where it was verified');
  t.equal(r1.commit, undefined, 'a mismatch is not committed');
  t.same(codes(await host.round(required, { baselineFrom: 1, baselineReports: [real] })), [], 'the real report still replays');

  // Dropped: two reports extended, only the second sent.
  await host.add(host.report());
  const last = await host.add(host.report());
  t.same(codes(await host.round(required, { baselineFrom: 2, baselineReports: [last] })), ['BASELINE_REPLAY_MISMATCH'], 'a dropped report');
  // Reordered.
  const [a, b] = host.chain.slice(2);
  if (a === undefined || b === undefined) throw new Error('no reports');
  t.same(codes(await host.round(required, { baselineFrom: 2, baselineReports: [b, a] })), ['BASELINE_REPLAY_MISMATCH'], 'reordered reports');
  t.same(codes(await host.round(required, { baselineFrom: 2, baselineReports: [a, b] })), [], 'in order they replay');
  t.equal((await required.status(host.nodeId)).stored?.count, 4);
});

t.test('a gap: BASELINE_REPORT_MISSING, and the reply says how many the controller holds', async (t) => {
  const host = await Host.boot();
  await host.add(host.report());
  t.same(codes(await host.round(required)), []);
  await host.add(host.report());
  await host.add(host.report());
  const gap = await host.round(required, { baselineFrom: 2, baselineReports: host.chain.slice(2) });
  t.same(codes(gap), ['BASELINE_REPORT_MISSING']);
  t.equal(gap.reply?.baselineReports, 1, 'the stored count');
  t.same(codes(await host.round(required)), [], 'the agent sends from there and the chain replays');
  t.equal(host.acked, 3);
});

t.test('drift names the port; drift corrected in one round is untrusted, the next clean round trusted, the correction audited', async (t) => {
  const host = await Host.boot();
  await host.add(host.report());
  t.same(codes(await host.round(required)), []);

  await host.add(host.report({ ruleset: driftRuleset, changes: ['rule added to inet bulwark input'] }));
  const drift = await host.round(required);
  t.same(codes(drift), ['NFT_BASELINE_DRIFT']);
  t.match(JSON.stringify(drift.findings), /8080/, 'the finding names the port');

  // The agent corrects it (enforce mode) and reports the correction.
  await host.add(host.report({ changes: ['table inet bulwark replaced'], enforcement: [enforcedAction] }));
  t.same(codes(await host.round(required)), [], 'corrected');

  // Drift and its correction within one round: both reports are judged.
  await host.add(host.report({ ruleset: driftRuleset, changes: ['rule added to inet bulwark input'] }));
  const corrected = await host.add(host.report({ changes: ['table inet bulwark replaced'], enforcement: [enforcedAction] }));
  const both = await host.round(required);
  t.same(codes(both), ['NFT_BASELINE_DRIFT'], 'a round carrying drift is untrusted even though it was corrected');
  const clean = await host.round(required);
  t.same(codes(clean), [], 'the next round without new drift is trusted again');

  const records = (await adminAuditRecords({ natsConnection: async () => connect({ servers: bed.nc.getServer() }) })).filter(
    (r) => r.action === 'baseline.enforced' && r.subject === host.nodeId,
  );
  t.equal(records.length, 2, 'each reported correction is audited once');
  t.match(records.at(-1)?.details, { actor: `node:${host.nodeId}`, seq: host.chain.indexOf(corrected), actions: 1, ok: true });
  t.match(String(records.at(-1)?.details['action0']), /replaced table inet/);
  const status = await required.status(host.nodeId);
  t.equal(status.stored?.lastEnforcement?.actions[0]?.action, enforcedAction.action, 'baseline show has the last enforcement');
  const shown = baselineStatusToMsg(status);
  t.match(shown, { nodeId: host.nodeId, baselineName: 'web', baselineMode: 'enforce', chainLength: host.chain.length, exposureKnown: true, selinuxMode: 'enforcing', findings: [] });
  t.same(shown.tcp, [{ from: 22, to: 22 }, { from: 443, to: 443 }], 'the effective exposure of the latest report: ssh and https');
  t.same(shown.enforcement, [{ target: 'nftables', action: enforcedAction.action, changed: enforcedAction.changed, ok: true, error: '' }]);
});

t.test('no baseline assigned: POLICY_MISSING when required, a note otherwise; assigned without reports: BASELINE_REPORT_MISSING', async (t) => {
  await policies.assign('baseline', null, null);
  t.teardown(() => policies.assign('baseline', 'web', null));
  const host = await Host.boot();
  await host.add(host.report({ baseline: null }));
  const missing = await host.round(required);
  t.same(codes(missing), ['POLICY_MISSING']);
  t.match(missing.findings[0]?.message, /baseline/);
  t.equal(missing.reply?.baselineSha256, '', 'no baseline to send');
  const noted = await host.round(optional);
  t.same(codes(noted), []);
  t.same(noted.notes, [NO_BASELINE_NOTE]);

  await policies.assign('baseline', 'web', null);
  const empty = await Host.boot();
  t.same(codes(await empty.round(required)), ['BASELINE_REPORT_MISSING'], 'a baseline applies and the host reported nothing');
});

t.test('the kernel measured SELinux permissive while the report says enforcing', async (t) => {
  const host = await Host.boot();
  await host.kernelMeasures(true);
  await host.add(host.report());
  t.same(codes(await host.round(required)), [], 'kernel and report agree');
  await host.kernelMeasures(false);
  const contradicted = await host.round(required);
  t.ok(codes(contradicted).includes('SELINUX_REPORT_CONTRADICTS_KERNEL'), `the kernel's measurement wins (${codes(contradicted).join(',')})`);
});

t.test('a report that does not decode is BASELINE_REPORT_INVALID; the chain still moves on', async (t) => {
  const host = await Host.boot();
  const garbage = new TextEncoder().encode('{"version":1,"node":');
  host.chain.push(garbage);
  await swtpm.extendPcr(BASELINE_PCR, createHash('sha256').update(garbage).digest('hex'));
  const bad = await host.round(required);
  t.same(codes(bad), ['BASELINE_REPORT_INVALID']);
  t.equal(bad.reply?.baselineReports, 1);
  await host.add(host.report());
  t.same(codes(await host.round(required)), [], 'a good report after it');
  const wrongNode = await host.add({ ...host.report(), node: 'someone-else' });
  t.ok(wrongNode.length > 0);
  t.same(codes(await host.round(required)), ['BASELINE_REPORT_INVALID'], 'a report naming another node');
});
