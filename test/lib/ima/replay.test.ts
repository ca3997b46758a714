/**
 * Replay of IMA entries into PCR 10 (pure), cross-checked with `evmctl ima_measurement`:
 * both kernel rules for the SHA-256 bank, violations, chunked rounds equal one round, a list
 * ahead of the reference, and every tamper (removed, reordered, duplicated, edited entry,
 * list behind the reference, gaps) caught with its code.
 */
import t from 'tap';
import { execa } from 'execa';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { toHex } from '../../../lib/bytes.js';
import {
  computeImaPcr10,
  decodeImaReplayState,
  encodeImaReplayState,
  initialImaReplayState,
  parseImaAscii,
  parseImaBinary,
  replayImaEntriesOffline,
  type ImaBankRule,
  type ImaOfflineReplayResult,
  type ImaReplayState,
} from '../../../lib/ima/index.js';
import { TPM_ALG, type PcrBanks } from '../../../lib/tpm/types.js';
import { evmctlPcrFile, ImaLogBuilder, REAL_FILES, type BuilderBank } from '../../helpers/ima-builder.js';
import { allTemplatesLog, sha256, throwsCode } from './ima-test-logs.js';

const ALG: Readonly<Record<BuilderBank, number>> = { sha1: TPM_ALG.SHA1, sha256: TPM_ALG.SHA256 };

function reference(values: Partial<Record<BuilderBank, Buffer>>): PcrBanks {
  const banks = new Map<number, ReadonlyMap<number, Uint8Array>>();
  for (const [bank, v] of Object.entries(values)) if (v !== undefined && (bank === 'sha1' || bank === 'sha256')) banks.set(ALG[bank], new Map([[10, v]]));
  return banks;
}

function codes(r: ImaOfflineReplayResult): string[] {
  return r.ok ? [] : r.findings.map((f) => f.code);
}

function pcrOf(state: ImaReplayState, bank: BuilderBank): string {
  return toHex(state.pcr10.get(ALG[bank]) ?? new Uint8Array(0));
}

/** A list without the 'ima' template (evmctl 1.4 refuses lists that mix it with others). */
function evmctlLog(): ImaLogBuilder {
  const b = new ImaLogBuilder();
  b.bootAggregate(sha256(Buffer.from('pcrs')));
  for (const p of REAL_FILES) b.realFile(p);
  b.realFile('/usr/bin/ls', { template: 'ima-sig' });
  b.buffer('kernel_version', Buffer.from('6.1.0-18-amd64'));
  b.violation('/var/log/syslog');
  b.realFile('/usr/bin/cat', { algorithm: 'sha1' });
  return b;
}

t.test('replay of a whole list equals the kernel computation, per bank and rule', async (t) => {
  const b = allTemplatesLog();
  for (const f of [parseImaAscii(b.ascii()), parseImaBinary(b.binary())]) {
    for (const rule of ['per-bank', 'sha1-padded'] as const) {
      const state = initialImaReplayState([TPM_ALG.SHA1, TPM_ALG.SHA256]);
      const ref = reference({ sha1: b.pcr10('sha1', rule), sha256: b.pcr10('sha256', rule) });
      const r = replayImaEntriesOffline(state, f.entries, ref, { bankRule: rule });
      t.same(codes(r), [], `${f.format} ${rule}`);
      if (!r.ok) continue;
      t.equal(r.consumed, b.entries.length);
      t.equal(r.replayed.length, b.entries.length);
      t.equal(r.pending.length, 0);
      t.equal(r.state.entryCount, b.entries.length);
      t.equal(r.state.byteOffset, f.format === 'ascii' ? b.ascii().length : b.binary().length);
      t.equal(pcrOf(r.state, 'sha256'), toHex(b.pcr10('sha256', rule)));
      t.equal(pcrOf(r.state, 'sha1'), toHex(b.pcr10('sha1', rule)));
    }
  }
  // The two rules really differ for the SHA-256 bank and agree for SHA-1.
  t.not(toHex(b.pcr10('sha256', 'per-bank')), toHex(b.pcr10('sha256', 'sha1-padded')));
  t.equal(toHex(b.pcr10('sha1', 'per-bank')), toHex(b.pcr10('sha1', 'sha1-padded')));
});

t.test('evmctl ima_measurement agrees with our replay (SHA-256 per bank, SHA-256 padded, SHA-1)', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'bulwark-ima-evmctl-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const b = evmctlLog();
  const log = join(dir, 'binary_runtime_measurements');
  await writeFile(log, b.binary());
  const entries = parseImaBinary(b.binary()).entries;
  const cases: readonly [BuilderBank, ImaBankRule][] = [
    ['sha256', 'per-bank'],
    ['sha256', 'sha1-padded'],
    ['sha1', 'per-bank'],
  ];
  for (const [bank, rule] of cases) {
    const ours = computeImaPcr10(initialImaReplayState([ALG[bank]]), entries, { bankRule: rule });
    const value = Buffer.from(pcrOf(ours, bank), 'hex');
    t.equal(value.toString('hex'), b.pcr10(bank, rule).toString('hex'), `${bank} ${rule}: our replay = builder`);
    const pcrs = join(dir, `pcrs-${bank}-${rule}`);
    await writeFile(pcrs, evmctlPcrFile(value));
    // --ignore-violations makes evmctl extend violations as 0xff, as the kernel does (without it, 0x00).
    const ok = await execa('evmctl', ['ima_measurement', '--ignore-violations', '--pcrs', `${bank},${pcrs}`, log], { reject: false, timeout: 20_000 });
    t.equal(ok.exitCode, 0, `evmctl accepts our ${bank} ${rule} value: ${ok.stderr}${ok.stdout}`);
    // A value one bit off is refused by both.
    const off = Buffer.from(value);
    off[0] = (off[0] ?? 0) ^ 1;
    await writeFile(pcrs, evmctlPcrFile(off));
    const bad = await execa('evmctl', ['ima_measurement', '--ignore-violations', '--pcrs', `${bank},${pcrs}`, log], { reject: false, timeout: 20_000 });
    t.not(bad.exitCode, 0, `evmctl refuses a wrong ${bank} value`);
    t.same(codes(replayImaEntriesOffline(initialImaReplayState([ALG[bank]]), entries, reference({ [bank]: off }), { bankRule: rule })), ['IMA_REPLAY_MISMATCH']);
  }
  // Without --ignore-violations evmctl extends zeros for a violation: that value is not the kernel's.
  const zeros = join(dir, 'pcrs-zero');
  await writeFile(zeros, evmctlPcrFile(b.pcr10('sha256')));
  const strict = await execa('evmctl', ['ima_measurement', '--pcrs', `sha256,${zeros}`, log], { reject: false, timeout: 20_000 });
  t.not(strict.exitCode, 0, 'evmctl without --ignore-violations disagrees with the 0xff rule, as documented');
});

t.test('several rounds in chunks give the same state as one round', async (t) => {
  const b = allTemplatesLog();
  for (const format of ['ascii', 'binary'] as const) {
    const bytes = format === 'ascii' ? b.ascii() : b.binary();
    const parse = format === 'ascii' ? parseImaAscii : parseImaBinary;
    const all = parse(bytes).entries;
    const one = replayImaEntriesOffline(initialImaReplayState(), all, reference({ sha256: b.pcr10('sha256') }));
    for (const cuts of [[1], [3, 4, 9], [0, 5, 5, 14], Array.from({ length: all.length }, (_, i) => i)]) {
      let state = initialImaReplayState();
      let last = 0;
      for (const cut of [...cuts, all.length]) {
        // Each round reads the list from the stored byte offset, as the agent does.
        const chunk = parse(bytes.subarray(state.byteOffset, (cut === all.length ? bytes.length : (all[cut]?.offset ?? bytes.length))), {
          fromEntry: state.entryCount,
          fromOffset: state.byteOffset,
        });
        const r = replayImaEntriesOffline(state, chunk.entries, reference({ sha256: b.pcr10('sha256', 'per-bank', cut) }));
        if (!r.ok) {
          t.fail(`${format} cuts ${cuts.join(',')}: ${codes(r).join(',')}`);
          break;
        }
        t.equal(r.consumed, cut - last);
        state = r.state;
        last = cut;
      }
      t.same(encodeImaReplayState(state), one.ok ? encodeImaReplayState(one.state) : null, `${format} in rounds at ${cuts.join(',')}`);
    }
  }
});

t.test('a list ahead of the quote: replay stops at the quoted value and keeps the rest', async (t) => {
  const b = allTemplatesLog();
  const entries = parseImaBinary(b.binary()).entries;
  const k = 6;
  const r1 = replayImaEntriesOffline(initialImaReplayState(), entries, reference({ sha256: b.pcr10('sha256', 'per-bank', k) }));
  if (!r1.ok) return t.fail(codes(r1).join(','));
  t.equal(r1.consumed, k);
  t.equal(r1.replayed.length, k);
  t.equal(r1.pending.length, entries.length - k);
  t.equal(r1.pending[0]?.index, k);
  t.equal(r1.state.entryCount, k);
  t.equal(r1.state.byteOffset, entries[k]?.offset);
  // Next round: the pending entries against a newer quote.
  const r2 = replayImaEntriesOffline(r1.state, r1.pending, reference({ sha256: b.pcr10('sha256') }));
  t.same(codes(r2), []);
  t.equal(r2.ok ? r2.consumed : -1, entries.length - k);
  // A quote taken before any new entry: nothing consumed, all pending, state unchanged.
  const r3 = replayImaEntriesOffline(r1.state, r1.pending, reference({ sha256: b.pcr10('sha256', 'per-bank', k) }));
  t.equal(r3.ok ? r3.consumed : -1, 0);
  t.equal(r3.ok ? r3.pending.length : -1, entries.length - k);
});

/** Re-parses an edited list and replays it against the true PCR 10. */
function replayEdited(lines: readonly string[], pcr: Buffer): ImaOfflineReplayResult {
  const entries = parseImaAscii(Buffer.from(lines.join(''), 'utf8')).entries;
  return replayImaEntriesOffline(initialImaReplayState(), entries, reference({ sha256: pcr }));
}

t.test('tampering is caught: removed, reordered, duplicated, edited entries; a list behind the quote', async (t) => {
  const b = allTemplatesLog();
  const lines = b.entries.map((e) => b.asciiLine(e));
  const pcr = b.pcr10('sha256');
  t.same(codes(replayEdited(lines, pcr)), [], 'the untouched list replays');
  const removed = lines.filter((_, i) => i !== 4);
  t.same(codes(replayEdited(removed, pcr)), ['IMA_REPLAY_MISMATCH'], 'an entry removed');
  const reordered = [...lines];
  [reordered[3], reordered[4]] = [reordered[4] ?? '', reordered[3] ?? ''];
  t.same(codes(replayEdited(reordered, pcr)), ['IMA_REPLAY_MISMATCH'], 'two entries swapped');
  const duplicated = [...lines.slice(0, 5), lines[4] ?? '', ...lines.slice(5)];
  t.same(codes(replayEdited(duplicated, pcr)), ['IMA_REPLAY_MISMATCH'], 'an entry duplicated');
  // An unknown binary renamed to an allowed path: the template data changes, the PCR does not.
  const edited = [...lines];
  edited[2] = (edited[2] ?? '').replace('/usr/bin/cat', '/usr/bin/cau');
  t.not(edited[2], lines[2]);
  t.same(codes(replayEdited(edited, pcr)), ['IMA_REPLAY_MISMATCH'], 'a path edited');
  const digestEdited = [...lines];
  digestEdited[3] = (digestEdited[3] ?? '').replace(/sha256:([0-9a-f])/, (_, c: string) => `sha256:${c === '0' ? '1' : '0'}`);
  t.same(codes(replayEdited(digestEdited, pcr)), ['IMA_REPLAY_MISMATCH'], 'a digest edited');
  t.same(codes(replayEdited(lines.slice(0, -2), pcr)), ['IMA_REPLAY_MISMATCH'], 'the last entries cut off (list behind the quote)');
  // A violation shown as a plain entry extends H(data) instead of 0xff..ff: no longer the PCR.
  const unviolated = [...lines];
  const vi = b.entries.findIndex((e) => e.violation);
  unviolated[vi] = (unviolated[vi] ?? '').replace(/^10 0{40}/, `10 ${'11'.repeat(20)}`);
  t.not(unviolated[vi], lines[vi]);
  t.same(codes(replayEdited(unviolated, pcr)), ['IMA_REPLAY_MISMATCH'], 'a violation disguised as a measurement');
  // A measurement shown as a violation (zero template hash) keeps its digest: malformed.
  const disguised = [...lines];
  disguised[2] = (disguised[2] ?? '').replace(/^10 [0-9a-f]{40}/, `10 ${'00'.repeat(20)}`);
  throwsCode(t, () => replayEdited(disguised, pcr), 'IMA_LOG_MALFORMED', 'a measurement disguised as a violation');
});

t.test('the SHA-1 column is checked when the SHA-1 bank is replayed', async (t) => {
  const b = allTemplatesLog();
  const lines = b.entries.map((e) => b.asciiLine(e));
  lines[2] = (lines[2] ?? '').replace(/^10 ([0-9a-f])/, (_, c: string) => `10 ${c === 'a' ? 'b' : 'a'}`);
  const entries = parseImaAscii(Buffer.from(lines.join(''))).entries;
  const both = replayImaEntriesOffline(initialImaReplayState([TPM_ALG.SHA1, TPM_ALG.SHA256]), entries, reference({ sha1: b.pcr10('sha1'), sha256: b.pcr10('sha256') }));
  t.same(codes(both), ['IMA_TEMPLATE_HASH_MISMATCH']);
  // The SHA-256 bank alone does not rely on the column: the template data is what the PCR proves.
  t.same(codes(replayImaEntriesOffline(initialImaReplayState(), entries, reference({ sha256: b.pcr10('sha256') }))), []);
});

t.test('violations extend 0xff..ff, not the zeros the list shows', async (t) => {
  const b = new ImaLogBuilder();
  b.realFile('/usr/bin/ls');
  b.violation('/tmp/x');
  const entries = parseImaBinary(b.binary()).entries;
  t.equal(entries[1]?.violation, true);
  t.same(codes(replayImaEntriesOffline(initialImaReplayState(), entries, reference({ sha256: b.pcr10('sha256') }))), []);
  // What a verifier that extended zeros would expect:
  let zeroRule: Buffer = Buffer.alloc(32);
  for (const e of b.entries) {
    const v = e.violation ? Buffer.alloc(32) : sha256(e.hashInput);
    zeroRule = sha256(Buffer.concat([zeroRule, v]));
  }
  t.same(codes(replayImaEntriesOffline(initialImaReplayState(), entries, reference({ sha256: zeroRule }))), ['IMA_REPLAY_MISMATCH']);
});

t.test('gaps, banks and PCRs: IMA_LOG_DISCONTINUOUS, IMA_BANK_MISSING, IMA_PCR_UNEXPECTED', async (t) => {
  const b = allTemplatesLog();
  const entries = parseImaBinary(b.binary()).entries;
  const ref = reference({ sha256: b.pcr10('sha256') });
  const state = initialImaReplayState();
  t.same(codes(replayImaEntriesOffline(state, entries.slice(1), ref)), ['IMA_LOG_DISCONTINUOUS'], 'starts one entry late');
  const withGap = [...entries.slice(0, 3), ...entries.slice(4)];
  t.same(codes(replayImaEntriesOffline(state, withGap, ref)), ['IMA_LOG_DISCONTINUOUS'], 'skips an entry');
  const shifted = parseImaBinary(b.binary(), { fromOffset: 1 }).entries;
  t.same(codes(replayImaEntriesOffline(state, shifted, ref)), ['IMA_LOG_DISCONTINUOUS'], 'wrong byte offset');
  t.same(codes(replayImaEntriesOffline(initialImaReplayState([TPM_ALG.SHA1, TPM_ALG.SHA256]), entries, ref)), ['IMA_BANK_MISSING'], 'no SHA-1 reference');
  const other = new ImaLogBuilder();
  other.realFile('/usr/bin/ls');
  other.file('/usr/bin/x', { digest: sha256(Buffer.from('x')), pcr: 11 });
  const o = parseImaBinary(other.binary()).entries;
  t.same(codes(replayImaEntriesOffline(state, o, reference({ sha256: sha256(Buffer.alloc(64)) }))), ['IMA_PCR_UNEXPECTED']);
  // A failed replay leaves the state as it was.
  const r = replayImaEntriesOffline(state, entries.slice(1), ref);
  t.equal(r.state, state);
});

t.test('a reboot starts from entry 0: the old state refuses the new boot list', async (t) => {
  const boot1 = allTemplatesLog();
  const r1 = replayImaEntriesOffline(initialImaReplayState(), parseImaBinary(boot1.binary()).entries, reference({ sha256: boot1.pcr10('sha256') }));
  if (!r1.ok) return t.fail('first boot');
  const boot2 = new ImaLogBuilder();
  boot2.bootAggregate(sha256(Buffer.from('boot 2')));
  boot2.realFile('/usr/bin/ls');
  const entries2 = parseImaBinary(boot2.binary()).entries;
  t.same(codes(replayImaEntriesOffline(r1.state, entries2, reference({ sha256: boot2.pcr10('sha256') }))), ['IMA_LOG_DISCONTINUOUS']);
  t.same(codes(replayImaEntriesOffline(initialImaReplayState(), entries2, reference({ sha256: boot2.pcr10('sha256') }))), []);
});

t.test('replay state survives JSON (controller restarts) and is validated when read back', async (t) => {
  const b = allTemplatesLog();
  const r = replayImaEntriesOffline(initialImaReplayState([TPM_ALG.SHA1, TPM_ALG.SHA256]), parseImaBinary(b.binary()).entries, reference({ sha1: b.pcr10('sha1'), sha256: b.pcr10('sha256') }));
  if (!r.ok) return t.fail('replay');
  const json: unknown = JSON.parse(JSON.stringify(encodeImaReplayState(r.state)));
  const back = decodeImaReplayState(json);
  t.same(encodeImaReplayState(back), encodeImaReplayState(r.state));
  for (const bad of [null, [], { entryCount: -1, byteOffset: 0, pcr10: { sha256: '00'.repeat(32) } }, { entryCount: 0, byteOffset: 0, pcr10: {} }, { entryCount: 0, byteOffset: 0, pcr10: { sha256: '00' } }, { entryCount: 0, byteOffset: 0, pcr10: { md5: '00'.repeat(16) } }]) {
    throwsCode(t, () => decodeImaReplayState(bad), 'IMA_STATE_INVALID', JSON.stringify(bad));
  }
});
