/**
 * Baseline key set rotations on the agent: the agent pins a root (a key set envelope, or a
 * PEM file taken as serial 0), walks the rotations the controller's replies carry by TUF's
 * rules, verifies baseline envelopes against the set reached, refuses a forged, an
 * under-threshold and a rolled-back set while keeping its last verified baseline, and keeps
 * the highest serial reached across a restart (dataDir/baseline-keysets.json).
 *
 * Only acknowledge/collect/loadHeldBaseline run here (no round is prepared), so the TPM
 * and nft are never reached: the source gets a TPM whose every call fails the test.
 */
import t from 'tap';
import { createPublicKey } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BaselineKeyTrust, BaselineSource, Nftables } from '../../agent/baseline/index.js';
import { loadBaselineKeySet } from '../../agent/sources.js';
import { DEFAULT_BASELINE, type Baseline } from '../../lib/baseline/index.js';
import { trustedKeySet } from '../../lib/dsse/index.js';
import { trustKeySet, type KeySet } from '../../lib/signing/index.js';
import { EMPTY_REPLY_STATE, type EvidenceReplyMsg } from '../../proto/index.js';
import { recordingLogger, type LogRecord } from '../helpers/logs.js';
import { keySetDocument, keySetEnvelope, signPolicy, testKey, type TestKey } from '../helpers/signing.js';
import { makeTempDir, removeDir } from '../helpers/swtpm.js';

const root = await makeTempDir('baseline-key-rotation');
t.teardown(() => removeDir(root));
const logs: LogRecord[] = [];
const log = recordingLogger((r) => logs.push(r));
const enc = new TextEncoder();
const [k1, k2, k3, evil] = [testKey('k1'), testKey('k2', 'ec'), testKey('k3'), testKey('evil')];
const ENFORCE: Baseline = { ...DEFAULT_BASELINE, mode: 'enforce' };

const unusedTpm = {
  extendPcr: (): Promise<void> => Promise.reject(new Error('the TPM is not used by this test')),
  readPcrs: (): Promise<never> => Promise.reject(new Error('the TPM is not used by this test')),
};

function source(dataDir: string, trust: { keySet?: KeySet; pem?: readonly TestKey[]; threshold?: number }): BaselineSource {
  return new BaselineSource({
    tpm: unusedTpm,
    nft: new Nftables({ command: ['false'] }),
    selinuxRoot: join(root, 'no-selinux'),
    dataDir,
    pcr: 13,
    bootId: async () => 'boot-1',
    log,
    baselineKeySet: trust.keySet ?? null,
    baselineKeys: trust.pem === undefined ? null : trustedKeySet(trust.pem.map((k) => createPublicKey(k.publicKeyPem))),
    ...(trust.threshold === undefined ? {} : { baselineKeyThreshold: trust.threshold }),
  });
}

function reply(fields: Partial<EvidenceReplyMsg>): EvidenceReplyMsg {
  return { verdict: 'trusted', findings: [], ...EMPTY_REPLY_STATE, ...fields };
}

const baselineSigned = async (name: string, signers: readonly TestKey[]): Promise<Uint8Array> => enc.encode(await signPolicy('baseline', { ...ENFORCE, name }, signers));
const set1Text = await keySetEnvelope(keySetDocument('baseline', 1, 1, [k1]), [k1]);
const set1 = trustKeySet('baseline', set1Text);
/** Serial 2: k2 and k3, two of them needed; signed by the current set (k1) and a threshold of itself. */
const set2 = enc.encode(await keySetEnvelope(keySetDocument('baseline', 2, 2, [k2, k3]), [k1, k2, k3]));

async function serialOf(s: BaselineSource): Promise<{ pinned: boolean | undefined; serial: number | undefined }> {
  const sent = await s.collect();
  return { pinned: sent.baselineKeysPinned, serial: sent.baselineKeysetSerial };
}

function warned(since: number, code: string): boolean {
  return logs.slice(since).some((l) => l.level === 'warn' && l.fields['code'] === code);
}

const dataDir = join(root, 'agent-a');
for (const dir of [dataDir, join(root, 'agent-pem'), join(root, 'agent-none')]) await mkdir(dir);
let agent = source(dataDir, { keySet: set1 });

t.test('pinned root: baselines signed by it are enforced; the serial is reported', async (t) => {
  await agent.loadHeldBaseline();
  t.same(await serialOf(agent), { pinned: true, serial: 1 });
  agent.acknowledge(reply({ baseline: await baselineSigned('one', [k1]) }), {});
  t.equal(agent.heldBaseline?.baseline.name, 'one');
  t.ok(agent.enforcing, 'verified with the pinned set: enforced');
});

t.test('a rotation signed by a threshold of the old set and of itself is accepted; baselines then verify against the new set', async (t) => {
  agent.acknowledge(reply({ baselineKeysets: [set2] }), {});
  t.same(await serialOf(agent), { pinned: true, serial: 2 }, 'serial 2 in force');
  t.notOk(agent.enforcing, 'the held baseline was signed by k1 only: no longer enforced');
  t.ok(logs.some((l) => /not signed by the rotated baseline key set/.test(l.msg)), 'a warn line says why');
  const mark = logs.length;
  agent.acknowledge(reply({ baseline: await baselineSigned('old-key', [k1]) }), {});
  t.equal(agent.heldBaseline?.baseline.name, 'one', 'a baseline signed by the rotated-out key is refused');
  t.ok(warned(mark, 'SIGNATURE_INVALID'));
  agent.acknowledge(reply({ baseline: await baselineSigned('one-of-two', [k2]) }), {});
  t.equal(agent.heldBaseline?.baseline.name, 'one', 'one key of a threshold-2 set is not enough');
  t.ok(warned(mark, 'SIGNATURE_THRESHOLD_NOT_MET'));
  agent.acknowledge(reply({ baseline: await baselineSigned('two', [k2, k3]) }), {});
  t.equal(agent.heldBaseline?.baseline.name, 'two');
  t.ok(agent.enforcing, 'signed by the new set: enforced again');
  await agent.keySetsSaved();
  t.match(await readFile(join(dataDir, 'baseline-keysets.json'), 'utf8'), /"envelopes":\["[A-Za-z0-9+/=]+"\]/, 'the rotation is on disk');
});

t.test('forged and under-threshold rotations are refused: the set and the verified baseline are kept', async (t) => {
  const cases: [string, Uint8Array, string][] = [
    ['signed by keys outside the set', enc.encode(await keySetEnvelope(keySetDocument('baseline', 3, 1, [evil]), [evil])), 'SIGNATURE_INVALID'],
    ['one of the two current keys', enc.encode(await keySetEnvelope(keySetDocument('baseline', 3, 1, [evil]), [k2, evil])), 'SIGNATURE_THRESHOLD_NOT_MET'],
    ['not signed by the new set itself', enc.encode(await keySetEnvelope(keySetDocument('baseline', 3, 1, [evil]), [k2, k3])), 'SIGNATURE_INVALID'],
    ['a kind other than baseline', enc.encode(await keySetEnvelope(keySetDocument('runtime', 3, 1, [k2]), [k2, k3])), 'KEYSET_INVALID'],
    ['not an envelope', enc.encode('{"payloadType":'), 'ENVELOPE_MALFORMED'],
  ];
  for (const [what, envelope, code] of cases) {
    const mark = logs.length;
    agent.acknowledge(reply({ baselineKeysets: [envelope], baseline: await baselineSigned(`by-evil-${code}`, [evil]) }), {});
    t.same(await serialOf(agent), { pinned: true, serial: 2 }, `${what}: serial 2 kept`);
    t.ok(warned(mark, code), `${what}: refused with ${code}`);
    t.equal(agent.heldBaseline?.baseline.name, 'two', `${what}: the baseline the forged set would accept is refused`);
    t.ok(agent.enforcing, `${what}: the verified baseline is still enforced`);
  }
});

t.test('rollback: an older or equal serial is refused, also after a restart', async (t) => {
  const older = enc.encode(await keySetEnvelope(keySetDocument('baseline', 1, 1, [evil]), [k2, k3, evil]));
  for (const [what, envelope, code] of [
    // The current set's signatures are checked first: the root was not signed by serial 2's keys.
    ['the root set again', enc.encode(set1Text), 'SIGNATURE_INVALID'],
    ['serial 2 again', set2, 'KEYSET_ROLLBACK'],
    ['an older serial signed by the current keys', older, 'KEYSET_ROLLBACK'],
  ] as const) {
    const mark = logs.length;
    agent.acknowledge(reply({ baselineKeysets: [envelope] }), {});
    t.same(await serialOf(agent), { pinned: true, serial: 2 }, `${what}: serial 2 kept`);
    t.ok(warned(mark, code), `${what}: ${code}`);
  }
  await agent.stop();
  agent = source(dataDir, { keySet: set1 });
  await agent.loadHeldBaseline();
  t.same(await serialOf(agent), { pinned: true, serial: 2 }, 'after a restart: serial 2 walked again from the pinned root');
  t.equal(agent.heldBaseline?.baseline.name, 'two');
  t.ok(agent.enforcing, 'the held baseline verifies against serial 2');
  const mark = logs.length;
  agent.acknowledge(reply({ baselineKeysets: [older] }), {});
  t.ok(warned(mark, 'KEYSET_ROLLBACK'), 'the older set is still refused');
  t.same(await serialOf(agent), { pinned: true, serial: 2 });
});

t.test('a chain of rotations in one reply is walked in order, stopping at the first refused', async (t) => {
  const set3 = enc.encode(await keySetEnvelope(keySetDocument('baseline', 3, 1, [k3]), [k2, k3]));
  const forged4 = enc.encode(await keySetEnvelope(keySetDocument('baseline', 4, 1, [evil]), [evil]));
  const set5 = enc.encode(await keySetEnvelope(keySetDocument('baseline', 5, 1, [k1]), [k3, k1]));
  const mark = logs.length;
  agent.acknowledge(reply({ baselineKeysets: [set3, forged4, set5] }), {});
  t.same(await serialOf(agent), { pinned: true, serial: 3 }, 'serial 3 accepted, the forged 4 stops the walk');
  t.ok(warned(mark, 'SIGNATURE_INVALID'));
  agent.acknowledge(reply({ baselineKeysets: [set5] }), {});
  t.same(await serialOf(agent), { pinned: true, serial: 5 }, 'a serial may skip ahead when the set in force signed it');
  await agent.keySetsSaved();
});

t.test('a stored chain edited on disk ends where it stops verifying', async (t) => {
  const path = join(dataDir, 'baseline-keysets.json');
  const stored: unknown = JSON.parse(await readFile(path, 'utf8'));
  t.match(stored, { version: 1, kind: 'baseline' });
  const envelopes = typeof stored === 'object' && stored !== null && 'envelopes' in stored && Array.isArray(stored.envelopes) ? stored.envelopes.map(String) : [];
  t.equal(envelopes.length, 3, 'serials 2, 3 and 5');
  const forged = Buffer.from(await keySetEnvelope(keySetDocument('baseline', 3, 1, [evil]), [evil])).toString('base64');
  await writeFile(path, JSON.stringify({ version: 1, kind: 'baseline', envelopes: [envelopes[0], forged, envelopes[2]] }));
  const mark = logs.length;
  const trust = await BaselineKeyTrust.load(set1, dataDir, log);
  t.equal(trust.serial, 2, 'serial 2 verifies; the forged 3 ends the chain (5 no longer follows)');
  t.ok(warned(mark, 'SIGNATURE_INVALID'));
  await writeFile(path, 'not json');
  t.equal((await BaselineKeyTrust.load(set1, dataDir, log)).serial, 1, 'a file that does not parse: the pinned root');
});

t.test('a PEM file alone (baselineKeys) is a root of serial 0 that receives rotations signed by a threshold of its keys', async (t) => {
  const pemAgent = source(join(root, 'agent-pem'), { pem: [k1, k2], threshold: 2 });
  await pemAgent.loadHeldBaseline();
  t.same(await serialOf(pemAgent), { pinned: true, serial: 0 });
  pemAgent.acknowledge(reply({ baseline: await baselineSigned('pem', [k1, k2]) }), {});
  t.ok(pemAgent.enforcing, 'a baseline signed by both pinned keys is enforced, as before key sets were distributed');
  const mark = logs.length;
  pemAgent.acknowledge(reply({ baselineKeysets: [enc.encode(set1Text)] }), {});
  t.ok(warned(mark, 'SIGNATURE_THRESHOLD_NOT_MET'), 'the controller\'s set signed by k1 alone: one of the two pinned keys');
  t.same(await serialOf(pemAgent), { pinned: true, serial: 0 });
  const migrated = enc.encode(await keySetEnvelope(keySetDocument('baseline', 1, 1, [k3]), [k1, k2, k3]));
  pemAgent.acknowledge(reply({ baselineKeysets: [migrated] }), {});
  t.same(await serialOf(pemAgent), { pinned: true, serial: 1 }, 'signed by both pinned keys and itself: accepted');
  await pemAgent.stop();
  const none = source(join(root, 'agent-none'), {});
  await none.loadHeldBaseline();
  t.same(await serialOf(none), { pinned: false, serial: 0 }, 'no keys pinned: nothing is asked of the controller');
});

t.test('config: baselineKeySet is a self-signed key set envelope; with baselineKeys too, CONFIG_INVALID', async (t) => {
  const path = join(root, 'root-keyset.json');
  await writeFile(path, set1Text);
  t.equal(loadBaselineKeySet({ baselineKeySet: path, baselineKeys: null })?.document.serial, 1);
  t.equal(loadBaselineKeySet({ baselineKeySet: null, baselineKeys: null }), null);
  t.throws(() => loadBaselineKeySet({ baselineKeySet: path, baselineKeys: '/etc/bulwark/keys.pem' }), { code: 'CONFIG_INVALID' });
  await writeFile(path, await keySetEnvelope(keySetDocument('baseline', 1, 2, [k1, k2]), [k1]));
  t.throws(() => loadBaselineKeySet({ baselineKeySet: path, baselineKeys: null }), { code: 'CONFIG_INVALID', message: /baselineKeySet/ }, 'not signed to its own threshold');
});

t.teardown(() => agent.stop());
