/**
 * The event log and IMA appraisers on their own, against real JetStream KV and policy
 * store: each round is a quote from a software TPM judged by judgeEvidence (so the
 * appraisers see PCRs a verified quote proved), then handed to the appraiser with the
 * logs an agent would send.
 */
import t from 'tap';
import { createHash, randomBytes } from 'node:crypto';
import { judgeEvidence } from '../../lib/attestation/judge.js';
import { buildRuntimePolicy, formatRuntimePolicy } from '../../lib/ima/index.js';
import { parsePcrSelectionSpec } from '../../lib/tpm/pcrs.js';
import { TPM_ALG } from '../../lib/tpm/types.js';
import type { NodeRecord } from '../../lib/attestation/node-record.js';
import type { AppraisalContext, AppraisalResult, Appraiser } from '../../controller/appraisers/appraiser.js';
import { EventLogAppraiser } from '../../controller/appraisers/event-log-appraiser.js';
import { ImaAppraiser } from '../../controller/appraisers/ima-appraiser.js';
import { PolicyStore } from '../../controller/policies/policy-store.js';
import type { EvidenceMsg } from '../../proto/wire.js';
import { buildBootLog } from '../helpers/eventlog-builder.js';
import { ImaLogBuilder } from '../helpers/ima-builder.js';
import { QUOTED_SPEC, SoftTpm } from '../helpers/soft-tpm.js';
import { policyDocument, tpmValues } from '../lib/eventlog/eventlog-helpers.js';
import { enrolledRecord, evidenceFrom, openStateBed } from './state-bed.js';

const bed = await openStateBed('appraisers');
t.teardown(() => bed.close());
const js = bed.nc.jetstream();
const selection = parsePcrSelectionSpec(QUOTED_SPEC);

/** One node: its TPM, its record (attestation state carried from round to round) and its policies. */
class Host {
  readonly tpm = new SoftTpm();
  record: NodeRecord;
  bootId = 'boot-1';

  constructor(readonly nodeId: string) {
    this.record = enrolledRecord(nodeId, this.tpm);
  }

  /** Quotes, judges the quote like the verifier does, and appraises the round with `appraiser`. */
  async round(appraiser: Appraiser, over: Partial<EvidenceMsg> = {}): Promise<AppraisalResult> {
    const nonce = randomBytes(32);
    const evidence = evidenceFrom(this.nodeId, this.tpm, nonce, { bootId: this.bootId, ...over });
    const j = judgeEvidence({ ak: this.tpm.akKey, state: this.record.attestation, evidence, expectedSelection: selection });
    if (j.pcrs === null || j.clockInfo === null) throw new Error(`the quote did not verify: ${j.verdict.findings.map((f) => f.code).join(',')}`);
    const ctx: AppraisalContext = { record: this.record, evidence, quoted: j.pcrs, clockInfo: j.clockInfo, newBoot: j.newBoot, now: Date.now() };
    const result = await appraiser.appraise(ctx);
    await result.commit?.();
    this.record = { ...this.record, attestation: j.next };
    return result;
  }
}

function codes(r: AppraisalResult): string[] {
  return r.findings.map((f) => f.code);
}

t.test('IMA appraiser', async (t) => {
  const policies = await PolicyStore.open(js);
  const ima = await ImaAppraiser.open(js, policies);
  const allowed = new ImaLogBuilder();
  const files = ['/usr/bin/ls', '/usr/bin/cat', '/usr/bin/env'].map((p) => allowed.realFile(p));
  const policy = buildRuntimePolicy(
    files.map((e) => ({ path: e.path, digest: { algorithm: 'sha256', value: e.digest } })),
    { generatedAt: '2026-01-01T00:00:00.000Z', generator: 'test' },
  );

  /** A host whose kernel measured `paths` (in order) into its list and PCR 10. */
  function imaHost(nodeId: string, paths: readonly string[]): { host: Host; log: ImaLogBuilder } {
    const host = new Host(nodeId);
    const log = new ImaLogBuilder();
    for (const p of paths) measure(host, log, () => log.realFile(p));
    return { host, log };
  }

  function measure(host: Host, log: ImaLogBuilder, add: () => ReturnType<ImaLogBuilder['realFile']>): void {
    host.tpm.extend(10, log.extendValue(add(), 'sha256'));
  }

  /** The part of the ascii list from entry `from`, with the byte offset of that entry. */
  function slice(log: ImaLogBuilder, from: number, to = log.entries.length): Partial<EvidenceMsg> {
    return { imaFormat: 'ascii', imaFromEntry: from, imaFromOffset: log.ascii(0, from).length, imaEntries: log.ascii(from, to) };
  }

  await t.test('no list and no policy: nothing to judge', async (t) => {
    t.same(codes(await new Host('ima-none').round(ima)), []);
  });

  await t.test('IMA_LOG_MISSING: a runtime policy applies but no list was sent', async (t) => {
    await policies.put('runtime', 'base', JSON.stringify(formatRuntimePolicy(policy)));
    await policies.assign('runtime', 'base', 'ima-missing');
    const r = await new Host('ima-missing').round(ima);
    t.same(codes(r), ['IMA_LOG_MISSING']);
    t.match(r.findings[0]?.message, /runtime policy base/);
    t.notOk(r.sticky, 'not sticky: the next round may carry the list');
  });

  await policies.assign('runtime', 'base', null);

  await t.test('allowed entries replay to the quoted PCR 10; the next round resumes where this one stopped', async (t) => {
    const { host, log } = imaHost('ima-good', ['/usr/bin/ls', '/usr/bin/cat']);
    const first = await host.round(ima, slice(log, 0));
    t.same(codes(first), []);
    t.same(first.reply, { imaEntry: 2, imaOffset: log.ascii(0, 2).length });
    measure(host, log, () => log.realFile('/usr/bin/env'));
    const second = await host.round(ima, slice(log, 2));
    t.same(codes(second), [], 'only the new entry was sent, replayed from the stored PCR 10');
    t.same(second.reply, { imaEntry: 3, imaOffset: log.ascii().length });
    const resent = await host.round(ima, slice(log, 1));
    t.same(codes(resent), [], 'entries already verified may be sent again');
    t.equal(resent.commit, undefined, 'nothing new to store');
  });

  await t.test('IMA_DIGEST_NOT_ALLOWED: a verified entry the policy does not allow, kept for the boot', async (t) => {
    const { host, log } = imaHost('ima-unknown', ['/usr/bin/ls']);
    host.tpm.extend(10, log.extendValue(log.file('/usr/local/bin/miner', { digest: randomBytes(32) }), 'sha256'));
    const r = await host.round(ima, slice(log, 0));
    t.same(codes(r), ['IMA_DIGEST_NOT_ALLOWED']);
    t.notOk(r.sticky, 'judged again on a policy change, so not sticky');
    t.match(JSON.stringify(r.findings), /\/usr\/local\/bin\/miner/);
    t.match(r.findings[0]?.details, { policy: 'base' }, 'the finding names the policy');
    t.same(codes(await host.round(ima, slice(log, 2))), ['IMA_DIGEST_NOT_ALLOWED'], 'a round with nothing new does not undo what ran');
  });

  await t.test('boot_aggregate is proven against the quoted PCRs 0-9, not looked up in the policy', async (t) => {
    const host = new Host('ima-aggregate');
    host.tpm.measure(0, 'firmware');
    const aggregate = createHash('sha256');
    for (let i = 0; i <= 9; i++) aggregate.update(host.tpm.pcr(i));
    const log = new ImaLogBuilder();
    measure(host, log, () => log.bootAggregate(aggregate.digest()));
    measure(host, log, () => log.realFile('/usr/bin/ls'));
    t.same(codes(await host.round(ima, slice(log, 0))), [], 'the right aggregate');

    const forged = new Host('ima-aggregate-forged');
    const wrong = new ImaLogBuilder();
    measure(forged, wrong, () => wrong.bootAggregate(randomBytes(32)));
    const r = await forged.round(ima, slice(wrong, 0));
    t.same(codes(r), ['IMA_BOOT_AGGREGATE_MISMATCH', 'IMA_DIGEST_NOT_ALLOWED'], 'not proven, so the policy judges it as well');
    t.equal(r.sticky, true);
  });

  await t.test('IMA_LOG_DISCONTINUOUS: the agent skips entries the controller has not verified', async (t) => {
    const { host, log } = imaHost('ima-gap', ['/usr/bin/ls', '/usr/bin/cat', '/usr/bin/env']);
    const r = await host.round(ima, slice(log, 1));
    t.same(codes(r), ['IMA_LOG_DISCONTINUOUS']);
    t.same(r.reply, { imaEntry: 0, imaOffset: 0 }, 'the agent is told where to start');
    const wrongOffset = await host.round(ima, { ...slice(log, 0), imaFromOffset: 5 });
    t.same(codes(wrongOffset), ['IMA_LOG_DISCONTINUOUS'], 'the right entry at the wrong offset');
  });

  await t.test('IMA_LOG_INCOMPLETE: the quote is ahead of what arrived and more is to come', async (t) => {
    const { host, log } = imaHost('ima-backlog', ['/usr/bin/ls', '/usr/bin/cat', '/usr/bin/env']);
    const r = await host.round(ima, { ...slice(log, 0, 2), imaMore: true });
    t.same(codes(r), ['IMA_LOG_INCOMPLETE']);
    t.notOk(r.sticky, 'not sticky: the rest comes next round');
    t.match(r.findings[0]?.details, { verifiedEntries: 0, receivedEntries: 2, rounds: 1 }, 'the progress');
    t.same(r.reply, { imaEntry: 2, imaOffset: log.ascii(0, 2).length }, 'the agent goes on from what was received');
    t.same(codes(await host.round(ima, slice(log, 2))), [], 'the rest reaches the quote: the whole list is proven and judged');
  });

  await t.test('a backlog over several rounds, a controller restart in the middle, judged as a whole', async (t) => {
    const host = new Host('ima-backlog-long');
    const log = new ImaLogBuilder();
    for (let i = 0; i < 30; i++) measure(host, log, () => log.realFile(['/usr/bin/ls', '/usr/bin/cat', '/usr/bin/env'][i % 3] ?? '/usr/bin/ls'));
    host.tpm.extend(10, log.extendValue(log.file('/usr/local/bin/early-miner', { digest: randomBytes(32) }), 'sha256'));
    for (let i = 0; i < 10; i++) measure(host, log, () => log.realFile('/usr/bin/ls'));
    const chunks = [0, 12, 25, 41];
    for (let c = 0; c + 2 < chunks.length; c++) {
      const r = await host.round(ima, { ...slice(log, chunks[c] ?? 0, chunks[c + 1]), imaMore: true });
      t.same(codes(r), ['IMA_LOG_INCOMPLETE'], `round ${c + 1}: in progress`);
      t.same(r.reply?.imaEntry, chunks[c + 1]);
    }
    // A replica that never saw the backlog continues from the stored state.
    const other = await ImaAppraiser.open(js, policies);
    const resent = await host.round(other, { ...slice(log, 5, 20), imaMore: true });
    t.same(codes(resent), ['IMA_LOG_INCOMPLETE'], 'entries received before are not taken twice');
    t.same(resent.reply?.imaEntry, 25, 'the agent is sent on to what was received');
    const last = await host.round(other, slice(log, 25));
    t.same(codes(last), ['IMA_DIGEST_NOT_ALLOWED'], 'the last chunk proves the chain: an entry of an earlier chunk is judged');
    t.match(JSON.stringify(last.findings), /early-miner/);
    t.same(last.reply, { imaEntry: 41, imaOffset: log.ascii().length });
  });

  await t.test('IMA_BACKLOG_TOO_LARGE: a backlog that grows past the cap without reaching the quote is refused, not kept', async (t) => {
    const host = new Host('ima-backlog-cap');
    const log = new ImaLogBuilder();
    for (let i = 0; i < 12; i++) measure(host, log, () => log.realFile('/usr/bin/ls'));
    const capped = await ImaAppraiser.open(js, policies, undefined, { maxBacklogBytes: log.ascii(0, 5).length });
    t.same(codes(await host.round(capped, { ...slice(log, 0, 4), imaMore: true })), ['IMA_LOG_INCOMPLETE'], 'under the cap: in progress');
    const r = await host.round(capped, { ...slice(log, 4, 8), imaMore: true });
    t.same(codes(r), ['IMA_BACKLOG_TOO_LARGE']);
    t.equal(r.sticky, true, 'sticky: the list is never proven');
    t.same(r.reply, { imaEntry: 0, imaOffset: 0 }, 'nothing unproven is kept: the agent starts again from the proven position');
  });

  await t.test('a backlog chunk that does not follow on: the gap is refused, nothing unproven is judged', async (t) => {
    const { host, log } = imaHost('ima-backlog-gap', ['/usr/bin/ls', '/usr/bin/cat', '/usr/bin/env', '/usr/bin/ls']);
    t.same(codes(await host.round(ima, { ...slice(log, 0, 2), imaMore: true })), ['IMA_LOG_INCOMPLETE']);
    const r = await host.round(ima, slice(log, 3));
    t.same(codes(r), ['IMA_LOG_DISCONTINUOUS']);
    t.same(r.reply?.imaEntry, 2);
  });

  await t.test('IMA_REPLAY_MISMATCH: the same shortfall with nothing more to come is sticky', async (t) => {
    const { host, log } = imaHost('ima-short', ['/usr/bin/ls', '/usr/bin/cat', '/usr/bin/env']);
    const r = await host.round(ima, slice(log, 0, 2));
    t.same(codes(r), ['IMA_REPLAY_MISMATCH']);
    t.equal(r.sticky, true);
  });

  await t.test('IMA_REPLAY_MISMATCH lists, unverified, what the policy would refuse', async (t) => {
    const host = new Host('ima-mismatch-refuse');
    const log = new ImaLogBuilder();
    measure(host, log, () => log.realFile('/usr/bin/ls'));
    measure(host, log, () => log.file('/usr/local/bin/dropper', { digest: randomBytes(32) }));
    // An entry the kernel extended but the list lost: nothing replays to the quote.
    host.tpm.extend(10, randomBytes(32));
    const r = await host.round(ima, slice(log, 0));
    t.same(codes(r), ['IMA_REPLAY_MISMATCH']);
    t.equal(r.sticky, true);
    t.match(r.findings[0]?.details, { wouldRefuseCount: 1, wouldRefuseEntries: [1], wouldRefusePolicy: /^base@/ });
    t.match(String(r.findings[0]?.details?.['wouldRefuse']), /\/usr\/local\/bin\/dropper/);
  });

  await t.test('a policy change judges the kept measurements again, naming the revision', async (t) => {
    const { host, log } = imaHost('ima-rejudge', ['/usr/bin/ls', '/usr/bin/cat']);
    await policies.assign('runtime', 'base', 'ima-rejudge');
    t.same(codes(await host.round(ima, slice(log, 0))), []);
    t.equal(await ima.rejudge(host.record), null, 'nothing changed: nothing to judge');
    const withoutCat = buildRuntimePolicy(
      files.filter((e) => e.path !== '/usr/bin/cat').map((e) => ({ path: e.path, digest: { algorithm: 'sha256', value: e.digest } })),
      { generatedAt: '2026-01-02T00:00:00.000Z', generator: 'test' },
    );
    const pushed = await policies.put('runtime', 'base', JSON.stringify(formatRuntimePolicy(withoutCat)));
    const removed = await ima.rejudge(host.record);
    t.same(removed?.map((f) => f.code), ['IMA_DIGEST_NOT_ALLOWED'], 'a digest removed from the policy: the node that ran it is refused');
    t.match(removed?.[0]?.details, { path: '/usr/bin/cat', policy: 'base', policyRevision: pushed.revision, policySha256: pushed.sha256 });
    t.same(codes(await host.round(ima, slice(log, 2))), ['IMA_DIGEST_NOT_ALLOWED'], 'the next round keeps the judgement');
    await policies.put('runtime', 'base', JSON.stringify(formatRuntimePolicy(policy)));
    t.same(await ima.rejudge(host.record), [], 'the digest added back clears the finding');
    await policies.assign('runtime', null, 'ima-rejudge');
  });

  await t.test('a new boot starts the replay from entry 0 again', async (t) => {
    const { host, log } = imaHost('ima-reboot', ['/usr/bin/ls']);
    t.same(codes(await host.round(ima, slice(log, 0))), []);
    host.tpm.reboot();
    host.bootId = 'boot-2';
    const fresh = new ImaLogBuilder();
    measure(host, fresh, () => fresh.realFile('/usr/bin/cat'));
    const r = await host.round(ima, slice(fresh, 0));
    t.same(codes(r), []);
    t.same(r.reply, { imaEntry: 1, imaOffset: fresh.ascii().length });
  });

  await t.test('a list that does not parse is a finding with its parser code', async (t) => {
    const host = new Host('ima-garbage');
    const r = await host.round(ima, { imaFormat: 'ascii', imaFromEntry: 0, imaFromOffset: 0, imaEntries: new TextEncoder().encode('10 zz ima-ng nonsense\n') });
    t.equal(r.findings.length, 1);
    t.match(r.findings[0]?.code, /^IMA_/);
  });

  await t.test('reset forgets the stored position', async (t) => {
    const { host, log } = imaHost('ima-reset', ['/usr/bin/ls', '/usr/bin/cat']);
    await host.round(ima, slice(log, 0));
    t.same(codes(await host.round(ima, slice(log, 2, 2))), [], 'resumes at entry 2');
    await ima.reset('ima-reset');
    t.same(codes(await host.round(ima, slice(log, 2, 2))), ['IMA_LOG_DISCONTINUOUS'], 'after a reset it expects entry 0');
  });
});

t.test('event log appraiser', async (t) => {
  const policies = await PolicyStore.open(js);
  const eventLogs = await EventLogAppraiser.open(js, policies);
  const built = buildBootLog();
  const digest = createHash('sha256').update(built.bytes).digest('hex');

  /** A host whose TPM holds the PCRs of `built`'s boot. */
  function bootedHost(nodeId: string): Host {
    const host = new Host(nodeId);
    const boot = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 14];
    const bank = tpmValues(built, ['sha256'], boot).get(TPM_ALG.SHA256);
    for (const i of boot) {
      const v = bank?.get(i);
      if (v === undefined) throw new Error(`no PCR ${i} for the built boot`);
      host.tpm.load(i, v);
    }
    return host;
  }

  await t.test('POLICY_MISSING: no measured-boot policy applies (fail closed), log or no log', async (t) => {
    const r = await bootedHost('el-none').round(eventLogs);
    t.same(codes(r), ['POLICY_MISSING']);
    t.equal(r.notes, undefined, 'no note: nothing is in force');
    const withLog = await bootedHost('el-none-log').round(eventLogs, { eventLogSha256: digest, eventLog: built.bytes });
    t.same(codes(withLog), ['POLICY_MISSING'], 'a log that replays is not a judged boot');
    t.same(withLog.reply, { eventLogSha256: digest }, 'the log is still kept, so a policy assigned later needs nothing more');
  });

  await t.test('an explicit accept-all policy accepts the boot and says so on the verdict', async (t) => {
    await policies.put('measured-boot', 'lab', JSON.stringify({ name: 'lab', acceptAll: true }));
    // The default from here on: the cases below test the log, not the assignment.
    await policies.assign('measured-boot', 'lab', null);
    const none = await bootedHost('el-accept-none').round(eventLogs);
    t.same(codes(none), [], 'no log: accepted, as the policy says');
    t.same(none.notes, ['accept-all measured-boot policy "lab" in force']);
    const host = bootedHost('el-accept-log');
    host.tpm.measure(4, 'a boot loader the log does not show');
    const replay = await host.round(eventLogs, { eventLogSha256: digest, eventLog: built.bytes });
    t.ok(codes(replay).includes('EVENTLOG_REPLAY_MISMATCH'), 'a log that does not replay is still refused');
    t.same(replay.notes, ['accept-all measured-boot policy "lab" in force']);
  });

  await t.test('EVENTLOG_MISSING: a measured-boot policy applies but no log was sent', async (t) => {
    await policies.put('measured-boot', 'debian12', policyDocument(built));
    await policies.assign('measured-boot', 'debian12', 'el-missing');
    const r = await bootedHost('el-missing').round(eventLogs);
    t.same(codes(r), ['EVENTLOG_MISSING']);
    t.match(r.findings[0]?.message, /debian12/);
  });

  await t.test('a log that replays to the quote and meets the policy; later rounds send only its digest', async (t) => {
    await policies.assign('measured-boot', 'debian12', 'el-good');
    const host = bootedHost('el-good');
    const first = await host.round(eventLogs, { eventLogSha256: digest, eventLog: built.bytes });
    t.same(codes(first), []);
    t.same(first.reply, { eventLogSha256: digest });
    const next = await host.round(eventLogs, { eventLogSha256: digest });
    t.same(codes(next), [], 'the stored log is used');
    t.equal(next.commit, undefined, 'nothing new to store');
    const fromKv = await EventLogAppraiser.open(js, policies);
    t.same(codes(await host.round(fromKv, { eventLogSha256: digest })), [], 'another controller reads it from KV');
  });

  await t.test('EVENTLOG_DIGEST_MISMATCH: the log does not hash to the digest sent with it', async (t) => {
    const host = bootedHost('el-digest');
    const r = await host.round(eventLogs, { eventLogSha256: 'ab'.repeat(32), eventLog: built.bytes });
    t.same(codes(r), ['EVENTLOG_DIGEST_MISMATCH']);
    t.same(r.reply, { eventLogSha256: '' }, 'the agent is asked to send the log again');
    t.equal(r.commit, undefined, 'nothing is stored');
    t.same(codes(await host.round(eventLogs, { eventLogSha256: 'ab'.repeat(32) })), ['EVENTLOG_MISSING'], 'and the log was not kept under that digest');
  });

  await t.test('EVENTLOG_MISSING: the agent names a log the controller does not hold', async (t) => {
    const r = await bootedHost('el-unknown').round(eventLogs, { eventLogSha256: digest });
    t.same(codes(r), ['EVENTLOG_MISSING']);
    t.same(r.reply, { eventLogSha256: '' });
  });

  await t.test('EVENTLOG_REPLAY_MISMATCH: the log does not replay to the quoted PCRs', async (t) => {
    const host = bootedHost('el-replay');
    host.tpm.measure(4, 'a boot loader the log does not show');
    const r = await host.round(eventLogs, { eventLogSha256: digest, eventLog: built.bytes });
    t.ok(codes(r).includes('EVENTLOG_REPLAY_MISMATCH'), codes(r).join(','));
  });

  await t.test("the node's policy is applied to the replayed log", async (t) => {
    await policies.put('measured-boot', 'strict-cmdline', policyDocument(built, (doc) => (doc['kernelCmdline'] = { pattern: 'only-this' })));
    await policies.assign('measured-boot', 'strict-cmdline', 'el-cmdline');
    const r = await bootedHost('el-cmdline').round(eventLogs, { eventLogSha256: digest, eventLog: built.bytes });
    t.same(codes(r), ['KERNEL_CMDLINE_NOT_ALLOWED']);
  });

  await t.test('reset forgets the stored log', async (t) => {
    const host = bootedHost('el-reset');
    await host.round(eventLogs, { eventLogSha256: digest, eventLog: built.bytes });
    await eventLogs.reset('el-reset');
    t.same(codes(await host.round(eventLogs, { eventLogSha256: digest })), ['EVENTLOG_MISSING']);
  });
});
