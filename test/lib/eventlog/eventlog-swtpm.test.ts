/**
 * The whole chain against a real TPM: the builder writes a boot log and extends the same
 * digests into a swtpm (tpm2_pcrextend), tpm2_quote quotes PCRs 0-9, and
 * verifyQuote → replayEventLog → evaluateMeasuredBootPolicy judges it. Every attack is made
 * for real: the TPM holds what "booted", the log is what the attacker sends. One TPM has
 * only a sha256 bank (swtpm_setup's default here), so logs carry more banks than the TPM;
 * another has sha1 and sha256, and both banks are quoted.
 */
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { runCtl } from '../../../cli/ctl.js';
import { toHex } from '../../../lib/bytes.js';
import { BulwarkError } from '../../../lib/errors.js';
import { evaluateEventLog, parseEventLog, parseMeasuredBootPolicies, replayEventLog, type MeasuredBootPolicy } from '../../../lib/eventlog/index.js';
import { verifyQuote } from '../../../lib/tpm/quote.js';
import { buildBootLog, type BankName, type BootScenario, type BuiltBoot } from '../../helpers/eventlog-builder.js';
import { SwtpmProcess, makeTempDir, removeDir, startTestTpms } from '../../helpers/swtpm.js';
import { createTestAk, runQuote, type TestAk } from '../tpm/quote-helpers.js';
import { codesOf, policyDocument, tpm2Eventlog } from './eventlog-helpers.js';

const BOOT_SELECTION = 'sha256:0,1,2,3,4,5,6,7,8,9';

t.test('event log → PCRs → quote → policy on a real swtpm', async (t) => {
  const root = await makeTempDir('eventlog');
  const fleet = await startTestTpms(root, 1);
  // A second TPM with sha1 and sha256 banks: swtpm_setup --pcr-banks overrides the config's sha256.
  const dualDir = join(root, 'dual');
  await mkdir(dualDir);
  await execa('swtpm_setup', ['--tpm2', '--tpmstate', dualDir, '--createek', '--pcr-banks', 'sha1,sha256', '--overwrite', '--config', join(fleet.ca.dir, 'swtpm_setup.conf')], {
    timeout: 30_000,
  });
  const dual = await SwtpmProcess.start(dualDir);
  t.teardown(async () => {
    await dual.stop();
    await fleet.stop();
    await removeDir(root);
  });
  const first = fleet.tpms[0];
  if (first === undefined) throw new Error('no TPM');
  const tpm: SwtpmProcess = first;
  const work = join(root, 'work');
  await mkdir(work);
  const ak = await createTestAk(tpm, work, '0x81010002', 'rsa');
  const dualAk = await createTestAk(dual, work, '0x81010003', 'ecc');

  const good = buildBootLog();
  const [parsed] = parseMeasuredBootPolicies(policyDocument(good));
  if (parsed === undefined) throw new Error('no policy');
  const policy: MeasuredBootPolicy = parsed;

  /**
   * A power cycle after an orderly TPM2_Shutdown(CLEAR): PCRs start at zero again. Without
   * the shutdown every reset counts as a DA failure and the AK soon refuses to quote.
   */
  async function reboot(on: SwtpmProcess): Promise<void> {
    await on.tool('tpm2_shutdown', ['-c']);
    await on.reboot();
  }

  let n = 0;
  /** Reboots `on`, extends what `booted` measured, quotes `spec`; returns the verified quote's PCRs and the raw files. */
  async function bootAndQuote(booted: BuiltBoot, on: SwtpmProcess = tpm, key: TestAk = ak, spec = BOOT_SELECTION, banks: readonly BankName[] = ['sha256']) {
    await reboot(on);
    await booted.builder.extendInto(on, banks);
    const nonce = randomBytes(32).toString('hex');
    const tag = `q${n++}`;
    const files = await runQuote(on, work, key, spec, nonce, tag);
    const q = verifyQuote(key.key, files.msg, files.sig, files.pcrs, Buffer.from(nonce, 'hex'));
    if (!q.ok) throw new Error(`quote did not verify: ${codesOf(q.findings).join(',')}`);
    return { pcrs: q.pcrs, files, nonce, tag };
  }

  /** The verdict codes for `logBytes` against what the TPM quoted. */
  function judge(logBytes: Uint8Array, quoted: Awaited<ReturnType<typeof bootAndQuote>>['pcrs'], p: MeasuredBootPolicy = policy): string[] {
    try {
      return codesOf(evaluateEventLog(parseEventLog(logBytes), quoted, p).verdict.findings);
    } catch (err) {
      return [err instanceof BulwarkError ? err.code : `NOT A BULWARK ERROR: ${String(err)}`];
    }
  }

  const goodBoot = await bootAndQuote(good);

  await t.test('a log that agrees with the TPM and satisfies the policy: trusted, no findings', async (t) => {
    t.same(judge(good.bytes, goodBoot.pcrs), []);
    // The TPM's own values, read with tpm2_pcrread, are what the builder computed and the replay proves.
    const read = await tpm.tool('tpm2_pcrread', [BOOT_SELECTION]);
    const expected = good.builder.expectedPcrs(good.scenario.startupLocality).get('sha256');
    for (const m of read.matchAll(/^\s*(\d+)\s*:\s*0x([0-9A-F]{64})/gim)) {
      t.equal((m[2] ?? '').toLowerCase(), expected?.get(Number(m[1])) ?? '0'.repeat(64), `tpm2_pcrread PCR ${m[1]} is the builder's value`);
    }
    const r = replayEventLog(parseEventLog(good.bytes), goodBoot.pcrs);
    t.ok(r.ok);
    // tpm2_eventlog replays the same log to the same values, except PCR 0: 5.4 extends the StartupLocality event's zero digest.
    const logFile = join(work, 'good.bin');
    await writeFile(logFile, good.bytes);
    const tool = await tpm2Eventlog(logFile);
    if (!tool.ok) return t.fail('tpm2_eventlog failed');
    const sha256 = tool.pcrs.get('sha256');
    for (let pcr = 1; pcr <= 9; pcr++) t.equal(sha256?.get(pcr), toHex(goodBoot.pcrs.get(0x000b)?.get(pcr) ?? new Uint8Array(0)), `tpm2_eventlog agrees with the TPM on PCR ${pcr}`);
    t.not(sha256?.get(0), toHex(goodBoot.pcrs.get(0x000b)?.get(0) ?? new Uint8Array(0)), 'tpm2_eventlog 5.4 gets PCR 0 wrong with a StartupLocality event; the TPM agrees with us');
    const noLocality = buildBootLog({ startupLocality: null });
    await writeFile(join(work, 'noloc.bin'), noLocality.bytes);
    const tool2 = await tpm2Eventlog(join(work, 'noloc.bin'));
    t.equal(tool2.ok ? tool2.pcrs.get('sha256')?.get(0) : 'failed', toHex(goodBoot.pcrs.get(0x000b)?.get(0) ?? new Uint8Array(0)), 'without the event tpm2_eventlog agrees on PCR 0 too');
  });

  await t.test('attacks on the log, against the same real quote', async (t) => {
    const log = parseEventLog(good.bytes);
    const kernel = log.events.find((e) => e.pcrIndex === 4 && e.eventType === 0x80000003 && e.sequence > 30);
    if (kernel === undefined) return t.fail('no kernel event');
    const edited = good.bytes.slice();
    const d = kernel.digests[1]?.digest ?? new Uint8Array(0);
    const at = d.byteOffset - good.bytes.byteOffset;
    edited[at] = (edited[at] ?? 0) ^ 0x80;
    t.same(judge(edited, goodBoot.pcrs), ['EVENTLOG_REPLAY_MISMATCH'], 'one byte edited');
    t.same(judge(good.bytes.subarray(0, good.bytes.length - 5), goodBoot.pcrs), ['EVENTLOG_TRUNCATED'], 'truncated');
    const i = log.events.indexOf(kernel);
    const next = log.events[i + 1]?.offset ?? good.bytes.length;
    t.same(judge(Buffer.concat([good.bytes.subarray(0, kernel.offset), good.bytes.subarray(next)]), goodBoot.pcrs), ['EVENTLOG_REPLAY_MISMATCH'], 'the kernel event removed');
    const pcr8 = log.events.filter((e) => e.pcrIndex === 8);
    const a = pcr8[0];
    const b = pcr8[1];
    if (a === undefined || b === undefined || log.events[log.events.indexOf(a) + 1] !== b) return t.fail('no adjacent PCR 8 events');
    const bEnd = log.events[log.events.indexOf(b) + 1]?.offset ?? good.bytes.length;
    const swapped = Buffer.concat([good.bytes.subarray(0, a.offset), good.bytes.subarray(b.offset, bEnd), good.bytes.subarray(a.offset, b.offset), good.bytes.subarray(bEnd)]);
    t.same(judge(swapped, goodBoot.pcrs), ['EVENTLOG_REPLAY_MISMATCH'], 'two GRUB commands reordered');
    // The attacker booted another kernel and sends the good host's log.
    const evil = buildBootLog({ kernelBuild: 'rootkit' });
    const evilBoot = await bootAndQuote(evil);
    t.same(judge(good.bytes, evilBoot.pcrs), ['EVENTLOG_REPLAY_MISMATCH', 'EVENTLOG_REPLAY_MISMATCH'], 'a good log for an evil boot: PCR 4 and PCR 9 disagree');
    t.same(judge(evil.bytes, evilBoot.pcrs), ['BOOT_COMPONENT_NOT_ALLOWED', 'BOOT_COMPONENT_NOT_ALLOWED'], 'its honest log: the kernel is not in the policy');
  });

  await t.test('boots outside the policy, each with its own code', async (t) => {
    const cases: [string, Partial<BootScenario>, string[]][] = [
      ['Secure Boot off', { secureBoot: false }, ['SECURE_BOOT_DISABLED']],
      ['a command line outside the pattern', { cmdline: `${good.scenario.cmdline} init=/bin/sh`, cmdlineEditedAtMenu: true }, ['KERNEL_CMDLINE_NOT_ALLOWED']],
      ['an old dbx', { dbxHashes: good.scenario.dbxHashes.slice(1) }, ['DBX_ENTRY_MISSING']],
      ['a rogue db certificate', { rogueDbEntry: true }, ['SECURE_BOOT_KEY_NOT_ALLOWED']],
    ];
    for (const [what, scenario, codes] of cases) {
      const built = buildBootLog(scenario);
      const boot = await bootAndQuote(built);
      t.same(judge(built.bytes, boot.pcrs), codes, what);
    }
  });

  await t.test('firmware that does not log ExitBootServices: quirk applied and named', async (t) => {
    const built = buildBootLog({ exitBootServicesLogged: false });
    const boot = await bootAndQuote(built);
    const r = replayEventLog(parseEventLog(built.bytes), boot.pcrs);
    t.same(r.ok ? r.log.quirks : codesOf(r.findings), ['EXIT_BOOT_SERVICES_NOT_LOGGED']);
    t.same(judge(built.bytes, boot.pcrs), []);
    const strict = replayEventLog(parseEventLog(built.bytes), boot.pcrs, { quirks: [] });
    t.same(strict.ok ? [] : strict.findings.map((f) => f.details?.['pcr']), [5], 'without the quirk table PCR 5 fails');
  });

  await t.test("Bulwark's default quote selection does not cover GRUB's PCRs", async (t) => {
    const boot = await bootAndQuote(good, tpm, ak, 'sha256:0,1,2,3,4,5,6,7,10');
    t.same(judge(good.bytes, boot.pcrs), ['EVENTLOG_PCR_NOT_QUOTED', 'EVENTLOG_PCR_NOT_QUOTED'], 'PCRs 8 and 9 must be quoted for kernel, initrd and command line checks');
  });

  await t.test('a log with three banks on a sha256-only TPM; both banks of a sha1+sha256 TPM', async (t) => {
    const three = buildBootLog({ banks: ['sha1', 'sha256', 'sha384'] });
    const boot = await bootAndQuote(three);
    t.same(judge(three.bytes, boot.pcrs), [], 'only the quoted sha256 bank is proven');
    const both = await bootAndQuote(good, dual, dualAk, 'sha1:0,1,2,3,4,5,6,7,8,9+sha256:0,1,2,3,4,5,6,7,8,9', ['sha1', 'sha256']);
    const r = replayEventLog(parseEventLog(good.bytes), both.pcrs);
    t.same(r.ok ? [...r.log.provenPcrs.keys()] : codesOf(r.findings), [0x0004, 0x000b], 'both banks proven');
    t.same(judge(good.bytes, both.pcrs), []);
    // The dual-bank TPM extended sha256 only for one event: the sha1 bank gives it away.
    const lying = buildBootLog();
    await reboot(dual);
    await lying.builder.extendInto(dual, ['sha1', 'sha256']);
    await dual.tool('tpm2_pcrextend', [`9:sha256=${'ee'.repeat(32)}`]);
    const nonce = randomBytes(32).toString('hex');
    const files = await runQuote(dual, work, dualAk, 'sha1:0,1,2,3,4,5,6,7,8,9+sha256:0,1,2,3,4,5,6,7,8,9', nonce, 'lying');
    const q = verifyQuote(dualAk.key, files.msg, files.sig, files.pcrs, Buffer.from(nonce, 'hex'));
    if (!q.ok) return t.fail('quote');
    const rl = replayEventLog(parseEventLog(lying.bytes), q.pcrs);
    t.same(rl.ok ? [] : rl.findings.map((f) => [f.code, f.details?.['bank'], f.details?.['pcr']]), [['EVENTLOG_REPLAY_MISMATCH', 'sha256', 9]]);
  });

  await t.test('bulwarkctl policy check with the tpm2_quote files', async (t) => {
    const run = async (args: string[]): Promise<{ code: number; out: string; err: string }> => {
      let out = '';
      let err = '';
      const code = await runCtl(args, { out: (s) => (out += s), err: (s) => (err += s), env: {} });
      return { code, out, err };
    };
    await writeFile(join(work, 'policy.json'), policyDocument(good));
    await writeFile(join(work, 'good.bin'), good.bytes);
    await writeFile(join(work, 'ak.pem'), ak.pem);
    const q = (tag: string): string[] => ['--ak', join(work, 'ak.pem'), '--msg', join(work, `${tag}.msg`), '--sig', join(work, `${tag}.sig`), '--pcrs', join(work, `${tag}.pcrs`)];
    const ok = await bootAndQuote(good);
    const pass = await run(['policy', 'check', '--policy', join(work, 'policy.json'), '--eventlog', join(work, 'good.bin'), ...q(ok.tag), '--nonce', ok.nonce]);
    t.equal(pass.code, 0, pass.out + pass.err);
    t.match(pass.out, /trusted \(event log replayed against a verified quote; proven PCRs sha256:0,1,2,3,4,5,6,7,8,9\)/);
    const off = buildBootLog({ secureBoot: false });
    await writeFile(join(work, 'off.bin'), off.bytes);
    const offBoot = await bootAndQuote(off);
    const fail = await run(['policy', 'check', '--policy', join(work, 'policy.json'), '--eventlog', join(work, 'off.bin'), ...q(offBoot.tag), '--nonce', offBoot.nonce, '--json']);
    t.equal(fail.code, 1);
    const j: unknown = JSON.parse(fail.out);
    t.match(j, { policy: 'debian12-test', quoted: true, verdict: 'untrusted', findings: [{ code: 'SECURE_BOOT_DISABLED' }] });
    const wrongNonce = await run(['policy', 'check', '--policy', join(work, 'policy.json'), '--eventlog', join(work, 'good.bin'), ...q(ok.tag), '--nonce', '00'.repeat(32)]);
    t.equal(wrongNonce.code, 1);
    t.match(wrongNonce.out, /QUOTE_NONCE_MISMATCH/);
    const stale = await run(['policy', 'check', '--policy', join(work, 'policy.json'), '--eventlog', join(work, 'good.bin'), ...q(offBoot.tag), '--nonce', offBoot.nonce]);
    t.equal(stale.code, 1, 'the good log against the quote of the Secure-Boot-off boot');
    t.match(stale.out, /EVENTLOG_REPLAY_MISMATCH: PCR 7/);
  });
});
