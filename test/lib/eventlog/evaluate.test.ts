/**
 * replayEventLog → evaluateMeasuredBootPolicy on builder logs, with PCR values proven by
 * verifyQuote (a software-signed quote, see eventlog-helpers.ts; the swtpm test runs the
 * same chain on a real TPM). Each attack or misconfiguration must end in its own code.
 */
import t from 'tap';
import { BulwarkError } from '../../../lib/errors.js';
import {
  TCG_EVENT_TYPE,
  createReferencePolicy,
  evaluateEventLog,
  evaluateMeasuredBootPolicy,
  evaluateMeasuredBootPolicyUnquoted,
  formatMeasuredBootPolicy,
  parseEventLog,
  parseMeasuredBootPolicies,
  readSecureBootState,
  replayEventLog,
  replayEventLogUnquoted,
  type EventLog,
  type MeasuredBootPolicy,
  type VerifiedEventLog,
} from '../../../lib/eventlog/index.js';
import type { QuotedPcrs } from '../../../lib/tpm/types.js';
import { buildBootLog, type BootScenario, type BuiltBoot } from '../../helpers/eventlog-builder.js';
import { codesOf, loadEventlogFixture, policyDocument, quoteOf, softwareQuote, tpmValues } from './eventlog-helpers.js';

const T = TCG_EVENT_TYPE;

function policyOf(built: BuiltBoot, edit?: (doc: Record<string, unknown>) => void): MeasuredBootPolicy {
  const [p] = parseMeasuredBootPolicies(policyDocument(built, edit));
  if (p === undefined) throw new Error('no policy');
  return p;
}

function verified(bytes: Uint8Array, quoted: QuotedPcrs): VerifiedEventLog {
  const r = replayEventLog(parseEventLog(bytes), quoted);
  if (!r.ok) throw new Error(`replay failed: ${codesOf(r.findings).join(',')}`);
  return r.log;
}

/** Codes of the full chain: parse → replay against the quote → policy. */
function judge(bytes: Uint8Array, quoted: QuotedPcrs, policy: MeasuredBootPolicy): string[] {
  let log: EventLog;
  try {
    log = parseEventLog(bytes);
  } catch (err) {
    return [err instanceof BulwarkError ? err.code : 'NOT_A_BULWARK_ERROR'];
  }
  const r = evaluateEventLog(log, quoted, policy);
  return codesOf(r.verdict.findings);
}

/** Byte surgery on a log, found through its parse. */
function surgery(bytes: Uint8Array) {
  const log = parseEventLog(bytes);
  const at = (seq: number): { offset: number; end: number; e: EventLog['events'][number] } => {
    const i = log.events.findIndex((e) => e.sequence === seq);
    const e = log.events[i];
    if (e === undefined) throw new Error(`no event ${seq}`);
    return { offset: e.offset, end: log.events[i + 1]?.offset ?? bytes.length, e };
  };
  const pos = (b: Uint8Array): number => b.byteOffset - bytes.byteOffset;
  const find = (pred: (e: EventLog['events'][number]) => boolean): number => {
    const e = log.events.find(pred);
    if (e === undefined) throw new Error('event not found');
    return e.sequence;
  };
  return {
    log,
    find,
    flipDigest(seq: number, bank = 1): Uint8Array {
      const out = bytes.slice();
      const d = at(seq).e.digests[bank]?.digest ?? new Uint8Array(0);
      out[pos(d)] = (out[pos(d)] ?? 0) ^ 0x01;
      return out;
    },
    flipData(seq: number, index: number): Uint8Array {
      const out = bytes.slice();
      const p = pos(at(seq).e.data) + index;
      out[p] = (out[p] ?? 0) ^ 0x20;
      return out;
    },
    setType(seq: number, type: number): Uint8Array {
      const out = bytes.slice();
      new DataView(out.buffer).setUint32(at(seq).offset + 4, type, true);
      return out;
    },
    remove(seq: number): Uint8Array {
      const { offset, end } = at(seq);
      return Buffer.concat([bytes.subarray(0, offset), bytes.subarray(end)]);
    },
    swap(a: number, b: number): Uint8Array {
      const x = at(a);
      const y = at(b);
      if (x.end !== y.offset) throw new Error('swap needs adjacent events');
      return Buffer.concat([bytes.subarray(0, x.offset), bytes.subarray(y.offset, y.end), bytes.subarray(x.offset, x.end), bytes.subarray(y.end)]);
    },
  };
}

const good = buildBootLog();
const goodQuote = quoteOf(good);
const policy = policyOf(good);

t.test('a log and PCRs that agree and satisfy the policy: no findings', async (t) => {
  const r = replayEventLog(parseEventLog(good.bytes), goodQuote);
  if (!r.ok) return t.fail(codesOf(r.findings).join(','));
  t.equal(r.log.quoted, true);
  t.same(r.log.provenPcrs.get(0x000b), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 'PCRs 0-9 proven; PCR 10 (IMA) is not compared; PCR 14 not quoted');
  t.equal(r.log.events.length, good.measuredEvents - 2, 'every event of a proven PCR (the two PCR 14 events are unproven)');
  t.equal(r.log.unprovenEvents, 2);
  t.same(r.log.quirks, []);
  const result = evaluateMeasuredBootPolicy(policy, r.log);
  t.same(result.verdict, { verdict: 'trusted', findings: [] });
  t.same(judge(good.bytes, goodQuote, policy), []);
});

t.test('the log edited by one byte', async (t) => {
  const s = surgery(good.bytes);
  const kernelApp = s.find((e) => e.pcrIndex === 4 && e.eventType === T.EV_EFI_BOOT_SERVICES_APPLICATION && e.data.length > 90 && e.sequence > 30);
  const r = replayEventLog(parseEventLog(s.flipDigest(kernelApp)), goodQuote);
  t.equal(r.ok, false);
  if (!r.ok) {
    t.same(codesOf(r.findings), ['EVENTLOG_REPLAY_MISMATCH'], 'a digest byte: replay mismatch');
    t.equal(r.findings[0]?.details?.['pcr'], 4, 'the finding names PCR 4');
    t.match(r.findings[0]?.message ?? '', /PCR 4 \(sha256\)/);
  }
  // A byte of the kernel command line string: the replay holds, the data no longer matches its digest.
  const cmdline = s.find((e) => e.pcrIndex === 8 && Buffer.from(e.data).toString('latin1').startsWith('kernel_cmdline: '));
  const codes = judge(s.flipData(cmdline, 30), goodQuote, policy);
  t.ok(codes.includes('EVENTLOG_EVENT_DATA_MISMATCH'), `edited data: ${codes.join(',')}`);
  t.ok(codes.includes('KERNEL_CMDLINE_NOT_ALLOWED'), 'and no command line is believed');
  // A byte of a device path (data no digest covers): replay and policy hold — a device path is a hint only.
  t.same(judge(s.flipData(kernelApp, 40), goodQuote, policy), []);
});

t.test('the log truncated, an event removed, events reordered', async (t) => {
  t.same(judge(good.bytes.subarray(0, good.bytes.length - 7), goodQuote, policy), ['EVENTLOG_TRUNCATED']);
  const s = surgery(good.bytes);
  const sep4 = s.find((e) => e.pcrIndex === 4 && e.eventType === T.EV_SEPARATOR);
  t.same(judge(s.remove(sep4), goodQuote, policy), ['EVENTLOG_REPLAY_MISMATCH'], 'the PCR 4 separator removed');
  // The last event of the log: cut at an event boundary, the log still parses.
  const last = s.log.events[s.log.events.length - 1]?.sequence ?? 0;
  t.same(judge(s.remove(last), goodQuote, policy), ['EVENTLOG_REPLAY_MISMATCH'], 'the last event removed');
  // Two events of PCR 8 swapped.
  const cmds = s.log.events.filter((e) => e.pcrIndex === 8);
  const a = cmds.find((e, i) => cmds[i + 1] !== undefined && (cmds[i + 1]?.sequence ?? 0) === e.sequence + 1);
  if (a === undefined) return t.fail('no adjacent PCR 8 events');
  t.same(judge(s.swap(a.sequence, a.sequence + 1), goodQuote, policy), ['EVENTLOG_REPLAY_MISMATCH'], 'two events of one PCR reordered');
  // Two adjacent events of different PCRs swapped: replay cannot see it, and nothing in the policy depends on it.
  const cross = s.log.events.find((e, i) => s.log.events[i + 1] !== undefined && s.log.events[i + 1]?.pcrIndex !== e.pcrIndex && e.pcrIndex === 9);
  if (cross === undefined) return t.fail('no cross-PCR pair');
  t.same(judge(s.swap(cross.sequence, cross.sequence + 1), goodQuote, policy), [], 'order across PCRs is not proven and not relied on');
});

t.test('an event type relabelled (the type is not in the digest)', async (t) => {
  const s = surgery(good.bytes);
  const kernelApp = s.find((e) => e.pcrIndex === 4 && e.eventType === T.EV_EFI_BOOT_SERVICES_APPLICATION && e.sequence > 30);
  const codes = judge(s.setType(kernelApp, T.EV_EFI_ACTION), goodQuote, policy);
  t.same(codes, ['EVENTLOG_EVENT_DATA_MISMATCH'], 'a kernel hidden as an EV_EFI_ACTION is caught');
  // A separator passed off as an action (its digest is the hash of its data too): the shape gives it away.
  const sep4 = s.find((e) => e.pcrIndex === 4 && e.eventType === T.EV_SEPARATOR);
  const noSep = judge(s.setType(sep4, T.EV_EFI_ACTION), goodQuote, policy);
  t.ok(noSep.includes('EVENTLOG_EVENT_DATA_MISMATCH') && noSep.includes('BOOT_COMPONENT_MISSING'), `PCR 4 separator relabelled: ${noSep.join(',')}`);
  const calling = s.find((e) => e.pcrIndex === 4 && e.eventType === T.EV_EFI_ACTION);
  t.same(judge(s.setType(calling, T.EV_SEPARATOR), goodQuote, policy), ['EVENTLOG_EVENT_DATA_MISMATCH', 'BOOT_COMPONENT_NOT_ALLOWED'], 'an action passed off as a (second) separator');
  const authority = s.find((e) => e.pcrIndex === 7 && e.eventType === T.EV_EFI_VARIABLE_AUTHORITY);
  t.ok(judge(s.setType(authority, T.EV_EFI_BOOT_SERVICES_DRIVER), goodQuote, policy).includes('SECURE_BOOT_STATE_INVALID'), 'an unexpected type in PCR 7');
});

t.test('boot components outside the policy', async (t) => {
  const other = buildBootLog({ kernelBuild: 'linux-image-6.1.0-18-amd64 6.1.76-1+evil' });
  const codes = judge(other.bytes, quoteOf(other), policy);
  t.same(codes, ['BOOT_COMPONENT_NOT_ALLOWED', 'BOOT_COMPONENT_NOT_ALLOWED'], 'the kernel image (PCR 4) and the kernel file (PCR 9)');
  const r = evaluateEventLog(parseEventLog(other.bytes), quoteOf(other), policy);
  t.same(
    r.verdict.findings.map((f) => [f.details?.['stage'], f.details?.['pcr']]),
    [
      ['kernel', 4],
      ['kernel', 9],
    ],
  );
  const noShim = policyOf(good, (d) => {
    const stages = d['stages'];
    if (typeof stages === 'object' && stages !== null) Object.assign(stages, { shim: ['00'.repeat(32)] });
  });
  t.same(judge(good.bytes, goodQuote, noShim), ['BOOT_COMPONENT_NOT_ALLOWED']);
  const noFirmware = policyOf(good, (d) => {
    const stages = d['stages'];
    if (typeof stages === 'object' && stages !== null) Object.assign(stages, { firmware: good.sha256.firmware.slice(1) });
  });
  t.same(judge(good.bytes, goodQuote, noFirmware), ['BOOT_COMPONENT_NOT_ALLOWED'], 'an S-CRTM version not allowed');
});

t.test('Secure Boot off, keys and dbx outside the policy', async (t) => {
  const off = buildBootLog({ secureBoot: false });
  t.same(judge(off.bytes, quoteOf(off), policy), ['SECURE_BOOT_DISABLED']);
  const rogue = buildBootLog({ rogueDbEntry: true });
  t.same(judge(rogue.bytes, quoteOf(rogue), policy), ['SECURE_BOOT_KEY_NOT_ALLOWED']);
  const oldDbx = buildBootLog({ dbxHashes: good.scenario.dbxHashes.slice(0, 1) });
  const codes = judge(oldDbx.bytes, quoteOf(oldDbx), policy);
  t.same(codes, ['DBX_ENTRY_MISSING']);
  const r = evaluateEventLog(parseEventLog(oldDbx.bytes), quoteOf(oldDbx), policy);
  t.equal(r.verdict.findings[0]?.details?.['missing'], 2);
  const noVendor = policyOf(good, (d) => {
    const sb = d['secureBoot'];
    if (typeof sb === 'object' && sb !== null) Object.assign(sb, { authorities: [good.certs.db[0]] });
  });
  t.same(judge(good.bytes, goodQuote, noVendor), ['SECURE_BOOT_AUTHORITY_NOT_ALLOWED'], "shim's vendor certificate is not an allowed authority");
  const requireOff = policyOf(good, (d) => {
    d['secureBoot'] = { enabled: false };
  });
  t.same(judge(good.bytes, goodQuote, requireOff), ['SECURE_BOOT_STATE_INVALID']);
});

t.test('the kernel command line', async (t) => {
  const shell = buildBootLog({ cmdline: 'root=UUID=6f9c1a52-3d2e-4b8f-9a47-1c5e7d3b2a90 ro quiet init=/bin/sh', cmdlineEditedAtMenu: true });
  t.same(judge(shell.bytes, quoteOf(shell), policy), ['KERNEL_CMDLINE_NOT_ALLOWED']);
  const r = evaluateEventLog(parseEventLog(shell.bytes), quoteOf(shell), policy);
  t.match(String(r.verdict.findings[0]?.details?.['cmdline']), /init=\/bin\/sh/);
  // The pattern must match the whole line: a prefix match is not enough.
  const prefix = policyOf(good, (d) => {
    d['kernelCmdline'] = { pattern: 'BOOT_IMAGE=/vmlinuz-6\\.1\\.0-18-amd64' };
  });
  t.same(judge(good.bytes, goodQuote, prefix), ['KERNEL_CMDLINE_NOT_ALLOWED']);
});

t.test('PCRs and banks the quote does not prove', async (t) => {
  const narrow = quoteOf(good, ['sha256'], [0, 1, 2, 3, 4, 5, 6, 7, 10]);
  const codes = judge(good.bytes, narrow, policy);
  t.same(codes, ['EVENTLOG_PCR_NOT_QUOTED', 'EVENTLOG_PCR_NOT_QUOTED'], 'PCRs 9 and 8 are needed by the policy');
  const r = evaluateEventLog(parseEventLog(good.bytes), narrow, policy);
  t.same(
    r.verdict.findings.map((f) => f.details?.['pcr']),
    [9, 8],
  );
  const sha384 = softwareQuote(new Map([[0x000c, new Map([[0, new Uint8Array(48)]])]]));
  const rb = replayEventLog(parseEventLog(good.bytes), sha384);
  t.same(rb.ok ? [] : codesOf(rb.findings), ['EVENTLOG_BANK_MISSING'], 'a quoted bank the log lacks');
  // The log has sha1 and sha256, the quote both: both banks are proven, a lie in the sha1 digests is caught.
  const both = quoteOf(good, ['sha1', 'sha256']);
  t.same(judge(good.bytes, both, policy), []);
  const s = surgery(good.bytes);
  const sep = s.find((e) => e.pcrIndex === 3 && e.eventType === T.EV_SEPARATOR);
  const r1 = replayEventLog(parseEventLog(s.flipDigest(sep, 0)), both);
  t.same(r1.ok ? [] : r1.findings.map((f) => [f.code, f.details?.['bank'], f.details?.['pcr']]), [['EVENTLOG_REPLAY_MISMATCH', 'sha1', 3]]);
  t.equal(replayEventLog(parseEventLog(s.flipDigest(sep, 0)), goodQuote).ok, true, 'with a sha256-only quote the sha1 digests are not evidence');
});

t.test('StartupLocality', async (t) => {
  const loc3 = buildBootLog({ startupLocality: 3 });
  t.same(judge(loc3.bytes, quoteOf(loc3), policyOf(loc3)), [], 'a TPM started at locality 3');
  const r = replayEventLog(parseEventLog(loc3.bytes), goodQuote);
  t.same(r.ok ? [] : r.findings.map((f) => f.details?.['pcr']), [0], 'the log claims locality 3, the TPM started at 0');
});

t.test('firmware quirks, each with its fixture', async (t) => {
  for (const name of ['quirk-exit-boot-services-not-logged', 'quirk-shim-authority-trailing-octet']) {
    const f = await loadEventlogFixture(name);
    const values = new Map(
      [...(f.tpmPcrs ?? f.pcrs ?? [])].map(([bank, m]) => [bank === 'sha1' ? 0x0004 : 0x000b, new Map([...m].filter(([p]) => p <= 9).map(([p, hex]) => [p, new Uint8Array(Buffer.from(hex, 'hex'))]))]),
    );
    const quoted = softwareQuote(values);
    const log = parseEventLog(f.bytes);
    const r = replayEventLog(log, quoted);
    if (!r.ok) {
      t.fail(`${name}: ${codesOf(r.findings).join(',')}`);
      continue;
    }
    if (name === 'quirk-exit-boot-services-not-logged') {
      t.same(r.log.quirks, ['EXIT_BOOT_SERVICES_NOT_LOGGED'], `${name}: applied and named`);
      t.same(
        r.log.events.filter((e) => e.injectedBy !== undefined).map((e) => [e.pcrIndex, Buffer.from(e.data).toString('latin1')]),
        [
          [5, 'Exit Boot Services Invocation'],
          [5, 'Exit Boot Services Returned with Success'],
        ],
      );
      const without = replayEventLog(log, quoted, { quirks: [] });
      t.same(without.ok ? [] : without.findings.map((x) => [x.code, x.details?.['pcr']]), [['EVENTLOG_REPLAY_MISMATCH', 5], ['EVENTLOG_REPLAY_MISMATCH', 5]], 'without the quirk PCR 5 fails in both banks');
      // The quirk explains only exactly that difference: another PCR 5 value is still a mismatch.
      const wrong = new Map(values);
      const b = new Map(wrong.get(0x000b));
      b.set(5, new Uint8Array(32).fill(7));
      wrong.set(0x000b, b);
      t.equal(replayEventLog(log, softwareQuote(wrong)).ok, false);
      // A complete log (its EBS events logged) does not get the quirk.
      const full = replayEventLog(parseEventLog(good.bytes), goodQuote);
      t.same(full.ok ? full.log.quirks : ['failed'], []);
    } else {
      t.same(r.log.quirks, [], `${name}: no replay quirk`);
      const state = readSecureBootState(r.log, 0x000b);
      t.same(codesOf(state.problems), [], 'the authority is read through the quirk');
      t.same(
        state.authorities.map((a) => [a.variable, a.quirk ?? '']),
        [
          ['db', ''],
          ['Shim', 'SHIM_AUTHORITY_TRAILING_OCTET'],
        ],
      );
      const built = buildBootLog({ shimAuthorityTrailingOctet: true });
      t.same(judge(f.bytes, quoted, policyOf(built)), [], 'the policy passes');
    }
  }
});

t.test('Secure Boot state', async (t) => {
  const log = verified(good.bytes, goodQuote);
  const s = readSecureBootState(log, 0x000b, { subjects: true });
  t.equal(s.quoted, true);
  t.equal(s.enabled, true);
  t.same(s.pk?.map((e) => e.subject), ['O=Bulwark Tests, CN=Bulwark Test Platform Key']);
  t.same(s.db?.map((e) => e.fingerprint), good.certs.db);
  t.same(s.dbx?.map((e) => [e.kind, e.fingerprint]), good.scenario.dbxHashes.map((h) => ['sha256', h]));
  t.same(
    s.authorities.map((a) => [a.variable, a.entry.fingerprint, a.beforeSeparator, a.bootApplication?.devicePath.endsWith('shimx64.efi') ?? false]),
    [
      ['db', good.certs.db[0], false, true],
      ['Shim', good.certs.shimVendor, false, false],
    ],
    'the db authority verified shim; the vendor certificate (for GRUB) is a bare certificate',
  );
  t.same(s.otherVariables, ['605dab50-e046-4300-abb6-3dd810dd8b23/SbatLevel'], 'SbatLevel after the separator is accepted');
  t.same(s.problems, []);
  const narrow = verified(good.bytes, quoteOf(good, ['sha256'], [0, 1, 2, 3, 4, 5, 6]));
  t.equal(readSecureBootState(narrow, 0x000b).proven, false, 'PCR 7 not quoted: nothing is read');
});

t.test('accept-all, unquoted forensics and reference policies', async (t) => {
  const [all] = parseMeasuredBootPolicies('{"name":"lab","acceptAll":true}');
  if (all === undefined) return t.fail();
  const off = buildBootLog({ secureBoot: false });
  const r = evaluateEventLog(parseEventLog(off.bytes), quoteOf(off), all);
  t.same(r.verdict, { verdict: 'trusted', findings: [] });
  t.match(r.warnings.join(' '), /accepts every boot/);
  t.same(judge(surgery(off.bytes).flipDigest(5), quoteOf(off), all), ['EVENTLOG_REPLAY_MISMATCH'], 'accept-all still needs a replay that matches');

  const self = replayEventLogUnquoted(parseEventLog(good.bytes));
  t.equal(self.quoted, false);
  const report = evaluateMeasuredBootPolicyUnquoted(policy, self);
  t.same([report.quoted, report.passed, report.findings], [false, true, []]);
  t.match(report.warnings.join(' '), /not replayed against a quote/);

  const ref = createReferencePolicy(self, { name: 'reference' });
  t.match(ref.warnings.join(' '), /not checked against a quote/);
  t.same(parseMeasuredBootPolicies(formatMeasuredBootPolicy(ref.policy))[0]?.stages.shim, new Set([good.sha256.shim]), 'round trip');
  t.same(judge(good.bytes, goodQuote, ref.policy), [], 'the reference policy accepts its own boot');
  t.same(judge(buildBootLog({ kernelBuild: 'other' }).bytes, quoteOf(buildBootLog({ kernelBuild: 'other' })), ref.policy), ['BOOT_COMPONENT_NOT_ALLOWED', 'BOOT_COMPONENT_NOT_ALLOWED']);
  const shell = buildBootLog({ cmdline: `${good.scenario.cmdline} init=/bin/sh`, cmdlineEditedAtMenu: true });
  t.same(judge(shell.bytes, quoteOf(shell), ref.policy), ['KERNEL_CMDLINE_NOT_ALLOWED'], 'the reference command line is an exact match');
  const refOfQuoted = createReferencePolicy(verified(good.bytes, goodQuote), { name: 'reference' });
  t.same(refOfQuoted.warnings, [], 'from a quoted log: no warnings');
});

t.test('events of PCRs the quote leaves out are not handed out', async (t) => {
  const built: BuiltBoot = buildBootLog({} satisfies Partial<BootScenario>);
  const values = tpmValues(built, ['sha256'], [4]);
  const r = replayEventLog(parseEventLog(built.bytes), softwareQuote(values));
  if (!r.ok) return t.fail(codesOf(r.findings).join(','));
  t.ok(
    r.log.events.every((e) => e.pcrIndex === 4),
    'only PCR 4 events',
  );
  t.equal(r.log.unprovenEvents, built.measuredEvents - r.log.events.length);
});
