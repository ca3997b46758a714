/**
 * Baseline key set rotations from the controller to agents, against a real nats-server:
 * KeySetStore.chainAfter gives the sets accepted after an agent's serial, oldest first,
 * within a reply's caps, and an agent's BaselineKeyTrust (agent/baseline) walks exactly that
 * output from its pinned root to the controller's current set.
 */
import t from 'tap';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { BaselineKeyTrust } from '../../agent/baseline/index.js';
import { KeySetStore } from '../../controller/policies/keyset-store.js';
import { AdminAudit } from '../../controller/state/admin-audit.js';
import { trustKeySet } from '../../lib/signing/index.js';
import { WIRE_LIMITS } from '../../proto/index.js';
import { recordingLogger } from '../helpers/logs.js';
import { keySetDocument, keySetEnvelope, testKey } from '../helpers/signing.js';
import { makeTempDir, removeDir } from '../helpers/swtpm.js';
import { openStateBed } from './state-bed.js';

const bed = await openStateBed('keyset-chain');
t.teardown(() => bed.close());
const dir = await makeTempDir('keyset-chain');
t.teardown(() => removeDir(dir));
const js = bed.nc.jetstream();
const keysets = await KeySetStore.open(js, new AdminAudit(js));
const enc = new TextEncoder();
const [k1, k2, k3, k4] = [testKey('k1'), testKey('k2'), testKey('k3'), testKey('k4')];
const log = recordingLogger(() => undefined);

const set1 = await keySetEnvelope(keySetDocument('baseline', 1, 1, [k1]), [k1]);
await keysets.put('baseline', enc.encode(set1), true, 'test');
await keysets.put('baseline', enc.encode(await keySetEnvelope(keySetDocument('baseline', 2, 1, [k2]), [k1, k2])), false, 'test');
await keysets.put('baseline', enc.encode(await keySetEnvelope(keySetDocument('baseline', 3, 1, [k3]), [k2, k3])), false, 'test');
// A rotation may skip serials.
await keysets.put('baseline', enc.encode(await keySetEnvelope(keySetDocument('baseline', 7, 1, [k4]), [k3, k4])), false, 'test');
const serials = (envelopes: readonly Uint8Array[]): number[] => envelopes.map((e) => trustKeySet('baseline', e).document.serial);
const chain = (serial: number, count: number = WIRE_LIMITS.keysets, bytes: number = WIRE_LIMITS.keysetChunk): Promise<Uint8Array[]> => keysets.chainAfter('baseline', serial, count, bytes);

t.test('chainAfter: the sets after a serial, oldest first, within the caps', async (t) => {
  t.same(serials(await chain(0)), [1, 2, 3, 7], 'from keys pinned as PEM (serial 0): every set');
  t.same(serials(await chain(2)), [3, 7]);
  t.same(serials(await chain(3)), [7], 'serials skipped are not asked for');
  t.same(await chain(7), [], 'current: nothing');
  t.same(await chain(9), [], 'ahead (the controller was restored from an older state): nothing; the agent keeps its set');
  t.same(serials(await chain(0, 2)), [1, 2], 'at most `count`: the rest follows once the agent reports serial 2');
  t.same(await chain(0, 8, 10), [], 'a set larger than the byte cap is not cut');
  t.same(await keysets.chainAfter('runtime', 0, 8, 1 << 20), [], 'a kind without a set');
});

t.test('an agent pinned to serial 1 walks the controller\'s chain to the current set, and restarts there', async (t) => {
  const dataDir = join(dir, 'agent');
  await mkdir(dataDir);
  const root = trustKeySet('baseline', set1);
  const trust = await BaselineKeyTrust.load(root, dataDir, log);
  const first = trust.receive(await chain(trust.serial, 2), Date.now());
  t.same([first.changed, first.refused, trust.serial], [true, null, 3], 'two per reply: serials 2 and 3');
  trust.receive(await chain(trust.serial, 2), Date.now());
  t.equal(trust.serial, 7, 'the next reply brings 7');
  t.same(trust.receive(await chain(trust.serial), Date.now()), { changed: false, refused: null }, 'nothing more');
  await trust.saved();
  t.equal((await BaselineKeyTrust.load(root, dataDir, log)).serial, 7, 'restarted: serial 7 from the stored chain');
});
