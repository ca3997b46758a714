/**
 * A recorded systemd-boot + UKI boot (Debian 13, systemd 257.13, OVMF + swtpm; see
 * test/fixtures/eventlog/uki/README.md): systemd-stub's events in the firmware log and
 * systemd's measurement log replay to the PCR values tpm2_pcrread read in that boot, and
 * the policy's UKI checks each give their finding on an edited copy (a changed command
 * line, a different UKI, an unknown system extension, a systemd log that does not replay).
 */
import t from 'tap';
import { createHash } from 'node:crypto';
import { toHex } from '../../../lib/bytes.js';
import {
  evaluateBootLogs,
  parseEventLog,
  parseMeasuredBootPolicies,
  parseSystemdLog,
  readUkiBoot,
  replaySystemdBoot,
  TCG_EVENT_TYPE,
  type EventLog,
  type SystemdLog,
} from '../../../lib/eventlog/index.js';
import { TPM_ALG } from '../../../lib/tpm/types.js';
import { codesOf } from './eventlog-helpers.js';
import { UKI_QUOTE_PCRS, digest, quoteOfValues, recordedPcrs, replaceAll, ukiFile, ukiText } from './uki-helpers.js';

const FW = ukiFile('binary_bios_measurements');
const SD = ukiFile('tpm2-measure.log');
const SHA256 = TPM_ALG.SHA256;
const SHA1 = TPM_ALG.SHA1;
const NAMES = new Map<number, string>([
  [SHA1, 'sha1'],
  [SHA256, 'sha256'],
]);

/**
 * What a TPM would hold after these logs: the recorded values, PCRs 9 and 11-15 extended
 * from the logs by plain node:crypto (9: Linux's EFI stub measures its load options, the
 * command line, there too).
 */
function tpmAfter(fw: EventLog, sd: SystemdLog): Map<number, Map<number, Uint8Array>> {
  const out = new Map<number, Map<number, Uint8Array>>();
  for (const [alg, bank] of recordedPcrs()) {
    const name = NAMES.get(alg) ?? 'sha256';
    const values = new Map(bank);
    for (const pcr of [9, 11, 12, 13, 15]) {
      let v: Buffer = Buffer.alloc(name === 'sha1' ? 20 : 32);
      for (const e of fw.events) {
        if (e.pcrIndex !== pcr || e.eventType === TCG_EVENT_TYPE.EV_NO_ACTION) continue;
        const d = e.digests.find((x) => x.hashAlg === alg)?.digest ?? new Uint8Array(0);
        v = createHash(name).update(v).update(d).digest();
      }
      for (const r of sd.records) {
        if (r.pcr !== pcr) continue;
        v = createHash(name).update(v).update(r.digests.find((x) => x.hashAlg === alg)?.digest ?? new Uint8Array(0)).digest();
      }
      values.set(pcr, new Uint8Array(v));
    }
    out.set(alg, values);
  }
  return out;
}

function utf16(s: string): Uint8Array {
  return new Uint8Array(Buffer.from(s, 'utf16le'));
}

const recorded = { fw: parseEventLog(FW), sd: parseSystemdLog(SD) };
const boot = replaySystemdBoot(recorded.fw, recorded.sd, quoteOfValues(recordedPcrs(), UKI_QUOTE_PCRS));
const uki = boot.ok ? readUkiBoot(boot.boot, SHA256) : undefined;

/** A policy accepting exactly the recorded boot, with `edit` applied to its uki block. */
function policy(edit: (u: Record<string, unknown>) => void = () => undefined) {
  const u: Record<string, unknown> = {
    digests: [uki?.ukiDigest ?? ''],
    phases: ['sysinit', 'ready'],
    cmdline: { pattern: 'root=/dev/vdb rw console=ttyS0 systemd\\.show_status=1' },
    sysexts: (uki?.pcr13 ?? []).map((m) => m.digest),
  };
  edit(u);
  const [p] = parseMeasuredBootPolicies(JSON.stringify({ name: 'uki-fixture', uki: u }));
  if (p === undefined) throw new Error('no policy');
  return p;
}

t.test('the recorded logs replay to the recorded PCRs 11, 12, 13 and 15 in both banks', async (t) => {
  t.equal(recorded.sd.records.length, 3, 'machine-id, sysinit, ready');
  t.ok(boot.ok, 'systemd-stub events + systemd log replay against the recorded quote');
  if (!boot.ok) return;
  for (const alg of [SHA1, SHA256]) {
    t.same([...(boot.boot.provenPcrs.get(alg) ?? [])], [11, 12, 13, 15], `${NAMES.get(alg) ?? ''}: all four proven`);
    for (const pcr of [11, 12, 13, 15]) {
      t.equal(toHex(boot.boot.pcrValues.get(alg)?.get(pcr) ?? new Uint8Array(0)), toHex(recordedPcrs().get(alg)?.get(pcr) ?? new Uint8Array(1)), `${NAMES.get(alg) ?? ''} PCR ${pcr}`);
    }
  }
  // systemd-analyze pcrs, run in the same boot, is an independent reading of the sha256 bank.
  const analyze = ukiText('systemd-analyze-pcrs.txt');
  for (const pcr of [11, 12, 13, 15]) {
    const line = analyze.split('\n').find((l) => l.trim().startsWith(`${pcr} `));
    t.match(line ?? '', toHex(boot.boot.pcrValues.get(SHA256)?.get(pcr) ?? new Uint8Array(0)), `systemd-analyze pcrs agrees on PCR ${pcr}`);
  }
});

t.test('the recorded boot read: UKI sections, command line, sysext, phases, machine id', async (t) => {
  if (uki === undefined) return t.fail('no replay');
  t.same(
    uki.sections.map((s) => s.name),
    ['.linux', '.osrel', '.initrd', '.uname', '.sbat'],
    'the UKI sections ukify built, in the UKI specification order',
  );
  // ukify inspect (run on the UKI at build time) is an independent source for section digests.
  const inspect = ukiText('ukify-inspect.txt');
  for (const s of uki.sections) {
    const block = inspect.split(/\n(?=\.)/).find((b) => b.startsWith(`${s.name}:`));
    t.match(block ?? '', `sha256: ${s.digest}`, `${s.name} digest matches ukify inspect`);
  }
  t.same(uki.unpairedPcr11, [], 'every PCR 11 stub event is a section name/contents pair');
  // systemd-measure calculate --phase= over the same sections (computed offline) names the UKI the same way.
  t.match(ukiText('systemd-measure-calculate.txt'), `Phase <:>\n11:sha256=${uki.ukiDigest ?? 'none'}`, 'the UKI digest is systemd-measure\'s');
  const cmdlines = uki.pcr12.filter((m) => m.cmdline).map((m) => m.description);
  t.same(cmdlines, [ukiText('proc-cmdline').trim(), ukiText('proc-cmdline').trim()], 'systemd-boot and systemd-stub each measured /proc/cmdline into PCR 12');
  t.same(
    uki.pcr13.map((m) => m.description),
    ['System extension initrd'],
    'the sysext cpio in PCR 13',
  );
  t.same(
    uki.phases.map((p) => [p.eventType, p.string, p.bound]),
    [
      ['phase', 'sysinit', true],
      ['phase', 'ready', true],
    ],
  );
  t.same(
    uki.identity.map((p) => [p.eventType, p.string, p.bound]),
    [['machine-id', `machine-id:${ukiText('machine-id').trim()}`, true]],
  );
});

t.test('the recorded boot is trusted under its own policy, and every check can fail', async (t) => {
  const quoted = quoteOfValues(recordedPcrs(), UKI_QUOTE_PCRS);
  const ok = evaluateBootLogs(recorded.fw, recorded.sd, quoted, policy());
  t.same(codesOf(ok.verdict.findings), [], 'trusted');
  t.same(codesOf(evaluateBootLogs(recorded.fw, recorded.sd, quoted, policy((u) => (u['phases'] = ['enter-initrd', 'leave-initrd', 'sysinit', 'ready']))).verdict.findings), [
    'BOOT_PHASE_NOT_ALLOWED',
    'BOOT_PHASE_NOT_ALLOWED',
  ]);
  t.same(codesOf(evaluateBootLogs(recorded.fw, recorded.sd, quoted, policy((u) => (u['phases'] = ['sysinit']))).verdict.findings), ['BOOT_PHASE_NOT_ALLOWED'], 'a phase past the list');
  const baseline13 = evaluateBootLogs(recorded.fw, recorded.sd, quoted, policy(), { excludePcrs: [13] });
  t.same(codesOf(baseline13.verdict.findings), ['EVENTLOG_PCR_NOT_QUOTED'], 'PCR 13 as the baseline PCR: sysexts cannot be judged');
  const noLog = evaluateBootLogs(recorded.fw, null, quoted, policy());
  t.same(
    codesOf(noLog.verdict.findings),
    ['SYSTEMD_LOG_REPLAY_MISMATCH', 'SYSTEMD_LOG_REPLAY_MISMATCH', 'SYSTEMD_LOG_REPLAY_MISMATCH', 'SYSTEMD_LOG_REPLAY_MISMATCH', 'SYSTEMD_LOG_MISSING'],
    'no systemd log: PCRs 11 and 15 do not replay in either bank',
  );
  t.same(
    noLog.verdict.findings.filter((f) => f.code === 'SYSTEMD_LOG_REPLAY_MISMATCH').map((f) => f.details?.['pcr']),
    [11, 15, 11, 15],
  );
  t.equal(noLog.verdict.verdict, 'untrusted');
});

t.test('a changed command line (systemd.show_status=1 → 0, measured as the TPM would)', async (t) => {
  const fwBytes = [SHA1, SHA256].reduce((bytes, alg) => {
    const name = NAMES.get(alg) === 'sha1' ? 'sha1' : 'sha256';
    const old = ukiText('proc-cmdline').trim();
    const edited = old.replace('show_status=1', 'show_status=0');
    return replaceAll(bytes, digest(name, utf16(`${old}\0`)), digest(name, utf16(`${edited}\0`)));
  }, replaceAll(FW, utf16('show_status=1'), utf16('show_status=0')));
  const fw = parseEventLog(fwBytes);
  const quoted = quoteOfValues(tpmAfter(fw, recorded.sd), UKI_QUOTE_PCRS);
  const r = evaluateBootLogs(fw, recorded.sd, quoted, policy());
  t.same(codesOf(r.verdict.findings), ['KERNEL_CMDLINE_NOT_ALLOWED', 'KERNEL_CMDLINE_NOT_ALLOWED'], 'both PCR 12 measurements refused');
  t.match(r.verdict.findings[0]?.details, { pcr: 12, cmdline: /show_status=0/ });
  // The same edit of the text alone (digest left): the text is not what was measured.
  const lie = parseEventLog(replaceAll(FW, utf16('show_status=1'), utf16('show_status=0')));
  const r2 = evaluateBootLogs(lie, recorded.sd, quoteOfValues(recordedPcrs(), UKI_QUOTE_PCRS), policy());
  t.same(codesOf(r2.verdict.findings), ['KERNEL_CMDLINE_NOT_ALLOWED', 'KERNEL_CMDLINE_NOT_ALLOWED'], 'a command line whose digest does not cover it is refused');
});

t.test('a different UKI (another .linux section)', async (t) => {
  const linux = uki?.sections.find((s) => s.name === '.linux');
  if (linux === undefined) return t.fail('no .linux');
  const fwEvent = recorded.fw.events.find((e) => e.sequence === linux.sequence);
  let bytes = FW;
  for (const d of fwEvent?.digests ?? []) bytes = replaceAll(bytes, d.digest, digest(d.hashAlg === SHA1 ? 'sha1' : 'sha256', 'another kernel'));
  const fw = parseEventLog(bytes);
  const r = evaluateBootLogs(fw, recorded.sd, quoteOfValues(tpmAfter(fw, recorded.sd), UKI_QUOTE_PCRS), policy());
  t.same(codesOf(r.verdict.findings), ['UKI_NOT_ALLOWED']);
  t.match(r.verdict.findings[0]?.message, /\.linux [0-9a-f]{64}/);
});

t.test('an unknown system extension (another PCR 13 cpio)', async (t) => {
  const ev = recorded.fw.events.find((e) => e.pcrIndex === 13);
  let bytes = FW;
  for (const d of ev?.digests ?? []) bytes = replaceAll(bytes, d.digest, digest(d.hashAlg === SHA1 ? 'sha1' : 'sha256', 'an unsigned sysext'));
  const fw = parseEventLog(bytes);
  const r = evaluateBootLogs(fw, recorded.sd, quoteOfValues(tpmAfter(fw, recorded.sd), UKI_QUOTE_PCRS), policy());
  t.same(codesOf(r.verdict.findings), ['SYSEXT_NOT_ALLOWED']);
  t.match(r.verdict.findings[0]?.details, { pcr: 13 });
});

t.test('a systemd log that does not replay', async (t) => {
  const quoted = quoteOfValues(recordedPcrs(), UKI_QUOTE_PCRS);
  const text = ukiText('tpm2-measure.log');
  const dropped = parseSystemdLog(new TextEncoder().encode(text.split('\x1e').slice(0, -1).join('\x1e')));
  const r = evaluateBootLogs(recorded.fw, dropped, quoted, policy());
  t.same(codesOf(r.verdict.findings), ['SYSTEMD_LOG_REPLAY_MISMATCH', 'SYSTEMD_LOG_REPLAY_MISMATCH'], 'the "ready" record dropped: PCR 11 in both banks');
  t.match(r.verdict.findings[0]?.details, { pcr: 11 });
  // A phase renamed in the text only: the digest still replays, but the string is not what was measured.
  const renamed = parseSystemdLog(new TextEncoder().encode(text.replace('"string":"ready"', '"string":"reade"')));
  const r2 = evaluateBootLogs(recorded.fw, renamed, quoted, policy((u) => (u['phases'] = ['sysinit', 'reade'])));
  t.same(codesOf(r2.verdict.findings), ['BOOT_PHASE_NOT_ALLOWED'], 'a phase whose digest does not cover its string');
  // Reordered records replay the same per PCR only when they are in different PCRs.
  const lines = text.split('\x1e').filter((l) => l !== '');
  const swapped = parseSystemdLog(new TextEncoder().encode(['', lines[0], lines[2], lines[1]].join('\x1e')));
  t.same(codesOf(evaluateBootLogs(recorded.fw, swapped, quoted, policy()).verdict.findings), ['SYSTEMD_LOG_REPLAY_MISMATCH', 'SYSTEMD_LOG_REPLAY_MISMATCH'], 'phases swapped');
});
