/**
 * IMA against a real TPM: the test builder's entries are extended into PCR 10 of a swtpm
 * with tpm2_pcrextend (as the kernel would, SHA-256 bank, per-bank template hashes), quoted
 * with tpm2_quote, verified with verifyQuote, and the list is replayed against the quoted
 * PCR 10 in incremental rounds — with the list ahead of the quote, an unknown binary, a PCR
 * extended behind the list's back, and a reboot.
 */
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { toHex } from '../../../lib/bytes.js';
import {
  buildRuntimePolicy,
  checkBootAggregate,
  evaluateImaEntries,
  initialImaReplayState,
  parseImaAscii,
  parseImaBinary,
  replayImaEntries,
  type ImaReplayResult,
  type ImaReplayState,
  type MeasuredFile,
} from '../../../lib/ima/index.js';
import { parsePcrSelectionSpec } from '../../../lib/tpm/pcrs.js';
import { verifyQuote } from '../../../lib/tpm/quote.js';
import { TPM_ALG, type QuotedPcrs } from '../../../lib/tpm/types.js';
import { ImaLogBuilder, REAL_FILES, type BuiltEntry } from '../../helpers/ima-builder.js';
import { makeTempDir, removeDir, startTestTpms, type SwtpmProcess } from '../../helpers/swtpm.js';
import { createTestAk, readPcrsWithTool, runQuote, type TestAk } from '../tpm/quote-helpers.js';
import { sha256 } from './ima-test-logs.js';

const SPEC = 'sha256:0,1,2,3,4,5,6,7,8,9,10';
const SELECTION = parsePcrSelectionSpec(SPEC);

/** Extends entries into PCR 10 as the kernel does: several digests per tpm2_pcrextend call, in order. */
async function extendEntries(tpm: SwtpmProcess, b: ImaLogBuilder, entries: readonly BuiltEntry[]): Promise<void> {
  for (let i = 0; i < entries.length; i += 8) {
    const specs = entries.slice(i, i + 8).map((e) => `10:sha256=${b.extendValue(e, 'sha256').toString('hex')}`);
    await tpm.tool('tpm2_pcrextend', specs);
  }
}

/** Firmware and boot loader measurements in PCRs 0-9 (PCR 10 is IMA's and stays at zero until IMA extends it). */
async function measureBoot(tpm: SwtpmProcess, seed: number): Promise<void> {
  const specs = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9].map((pcr) => `${pcr}:sha256=${((seed * 31 + pcr) & 0xff).toString(16).padStart(2, '0').repeat(32)}`);
  await tpm.tool('tpm2_pcrextend', specs);
}

async function quote(tpm: SwtpmProcess, dir: string, ak: TestAk, tag: string): Promise<QuotedPcrs> {
  const nonce = randomBytes(32).toString('hex');
  const q = await runQuote(tpm, dir, ak, SPEC, nonce, tag);
  const r = verifyQuote(ak.key, q.msg, q.sig, q.pcrs, Buffer.from(nonce, 'hex'), { selection: SELECTION });
  if (!r.ok) throw new Error(`quote ${tag} did not verify: ${r.findings.map((f) => f.code).join(',')}`);
  return r.pcrs;
}

function codes(r: ImaReplayResult): string[] {
  return r.ok ? [] : r.findings.map((f) => f.code);
}

t.test('IMA replay against quotes of a real swtpm', async (t) => {
  const root = await makeTempDir('ima-swtpm');
  const fleet = await startTestTpms(root, 1);
  t.teardown(async () => {
    await fleet.stop();
    await removeDir(root);
  });
  const tpm = fleet.tpms[0];
  if (tpm === undefined) throw new Error('no TPM');
  const dir = join(root, 'work');
  await mkdir(dir);
  await measureBoot(tpm, 3);
  const ak = await createTestAk(tpm, dir, '0x81010002', 'rsa');

  // boot_aggregate as Linux 5.8+ computes it: SHA-256 over PCRs 0-9 of the SHA-256 bank.
  const boot = await readPcrsWithTool(tpm, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  const bootAggregate = sha256(Buffer.concat([0, 1, 2, 3, 4, 5, 6, 7, 8, 9].map((i) => Buffer.from(boot.get(i) ?? '', 'hex'))));
  const b = new ImaLogBuilder();
  b.bootAggregate(bootAggregate);
  for (const p of REAL_FILES) b.realFile(p);
  b.buffer('kernel_version', Buffer.from('6.1.0-18-amd64'));
  const policy = buildRuntimePolicy(
    b.entries.filter((e) => e.template !== 'ima-buf').map((e): MeasuredFile => ({ path: e.path, digest: { algorithm: e.digestAlgorithm, value: e.digest } })),
    { generatedAt: new Date().toISOString(), generator: 'ima-swtpm.test', release: 1 },
  );
  const withBuf = { ...policy, imaBuf: new Map([['kernel_version', [{ algorithm: 'sha256', value: sha256(Buffer.from('6.1.0-18-amd64')) }]]]) };

  let state: ImaReplayState = initialImaReplayState([TPM_ALG.SHA256]);
  const ascii = (): Buffer => b.ascii();

  await t.test('round 1: the list is ahead of the quote — replay up to the quoted value, keep the rest', async (t) => {
    await extendEntries(tpm, b, b.entries.slice(0, 6));
    const quoted = await quote(tpm, dir, ak, 'r1');
    await extendEntries(tpm, b, b.entries.slice(6)); // measured after the quote, before the agent read the list
    const list = parseImaAscii(ascii(), { fromEntry: state.entryCount, fromOffset: state.byteOffset });
    const r = replayImaEntries(state, list.entries, quoted);
    t.same(codes(r), []);
    if (!r.ok) return;
    t.equal(r.consumed, 6);
    t.equal(r.pending.length, b.entries.length - 6);
    t.same(evaluateImaEntries(withBuf, r.verified), [], 'only allowed files so far');
    const first = r.verified[0];
    if (first === undefined) return t.fail('no entry');
    t.equal(checkBootAggregate(first, quoted).status, 'match', 'boot_aggregate matches the quoted PCRs 0-9');
    state = r.state;
  });

  await t.test('round 2: the rest, from the stored byte offset', async (t) => {
    const quoted = await quote(tpm, dir, ak, 'r2');
    const list = parseImaAscii(ascii().subarray(state.byteOffset), { fromEntry: state.entryCount, fromOffset: state.byteOffset });
    const r = replayImaEntries(state, list.entries, quoted);
    t.same(codes(r), []);
    if (!r.ok) return;
    t.equal(r.consumed, b.entries.length - 6);
    t.equal(toHex(r.state.pcr10.get(TPM_ALG.SHA256) ?? new Uint8Array(0)), toHex(quoted.get(TPM_ALG.SHA256)?.get(10) ?? new Uint8Array(1)));
    t.same(evaluateImaEntries(withBuf, r.verified), []);
    state = r.state;
  });

  await t.test('round 3: one unknown binary → IMA_DIGEST_NOT_ALLOWED naming its path and digest', async (t) => {
    const payload = randomBytes(4096);
    const e = b.file('/usr/local/bin/miner', { digest: sha256(payload) });
    await extendEntries(tpm, b, [e]);
    const quoted = await quote(tpm, dir, ak, 'r3');
    const expected = [['IMA_DIGEST_NOT_ALLOWED', '/usr/local/bin/miner', `sha256:${sha256(payload).toString('hex')}`]];
    // Incrementally, from the stored state (ASCII list).
    const list = parseImaAscii(ascii().subarray(state.byteOffset), { fromEntry: state.entryCount, fromOffset: state.byteOffset });
    const r = replayImaEntries(state, list.entries, quoted);
    t.same(codes(r), []);
    if (!r.ok) return;
    t.equal(r.consumed, 1);
    t.same(evaluateImaEntries(withBuf, r.verified).map((f) => [f.code, f.details?.['path'], f.details?.['digest']]), expected);
    // From scratch (a controller that lost its state), binary list: the same verdict.
    const all = replayImaEntries(initialImaReplayState(), parseImaBinary(b.binary()).entries, quoted);
    t.same(codes(all), []);
    if (all.ok) t.same(evaluateImaEntries(withBuf, all.verified).map((f) => [f.code, f.details?.['path'], f.details?.['digest']]), expected);
    state = r.state;
  });

  await t.test('PCR 10 extended behind the list’s back → IMA_REPLAY_MISMATCH', async (t) => {
    const e = b.realFile('/usr/bin/ls', { template: 'ima-sig' });
    await extendEntries(tpm, b, [e]);
    await tpm.extendPcr(10, randomBytes(32).toString('hex'));
    const quoted = await quote(tpm, dir, ak, 'r4');
    const list = parseImaAscii(ascii().subarray(state.byteOffset), { fromEntry: state.entryCount, fromOffset: state.byteOffset });
    const r = replayImaEntries(state, list.entries, quoted);
    t.same(codes(r), ['IMA_REPLAY_MISMATCH']);
    t.equal(r.state, state, 'state unchanged');
  });

  await t.test('an edited entry (unknown binary renamed to an allowed path) → IMA_REPLAY_MISMATCH', async (t) => {
    const quoted = await quote(tpm, dir, ak, 'r5');
    // Whole list from entry 0, with the miner renamed to /usr/bin/ls.
    const text = ascii().toString('utf8').replace('/usr/local/bin/miner', '/usr/bin/ls');
    t.not(text, ascii().toString('utf8'));
    const entries = parseImaAscii(Buffer.from(text)).entries;
    const r = replayImaEntries(initialImaReplayState(), entries, quoted);
    t.same(codes(r), ['IMA_REPLAY_MISMATCH']);
  });

  await t.test('a reboot: PCR 10 from zero, entries from 0; the old state no longer fits', async (t) => {
    await tpm.reboot();
    await measureBoot(tpm, 4);
    const b2 = new ImaLogBuilder();
    b2.bootAggregate(sha256(Buffer.from('wrong aggregate')));
    b2.realFile('/usr/bin/bash');
    await extendEntries(tpm, b2, b2.entries);
    const quoted = await quote(tpm, dir, ak, 'boot2');
    const entries = parseImaAscii(b2.ascii()).entries;
    t.same(codes(replayImaEntries(state, entries, quoted)), ['IMA_LOG_DISCONTINUOUS']);
    const r = replayImaEntries(initialImaReplayState(), entries, quoted);
    t.same(codes(r), []);
    if (!r.ok) return;
    const first = r.verified[0];
    if (first === undefined) return t.fail('no entry');
    const agg = checkBootAggregate(first, quoted);
    t.equal(agg.status, 'mismatch', 'a boot_aggregate that is not PCRs 0-9 is caught');
    if (agg.status === 'mismatch') t.equal(agg.finding.code, 'IMA_BOOT_AGGREGATE_MISMATCH');
  });
});
