/**
 * The policy store with signing, against a real nats-server: no key set for a kind refuses
 * every push of it (KEYSET_MISSING, audited); once a set is installed, signed pushes are
 * stored as envelopes and re-verified on read under the set they were accepted with, also
 * after a rotation; a record without an envelope fails closed.
 */
import t from 'tap';
import { connect } from 'nats';
import { RUNTIME_POLICY } from '../../controller/appraisers/ima-appraiser.js';
import { KeySetStore } from '../../controller/policies/keyset-store.js';
import { POLICY_BUCKET, PolicyStore } from '../../controller/policies/policy-store.js';
import { AdminAudit } from '../../controller/state/admin-audit.js';
import { buildRuntimePolicy, formatRuntimePolicy } from '../../lib/ima/index.js';
import { adminAuditRecords } from '../helpers/audit.js';
import { keySetDocument, keySetEnvelope, signPolicy, testKey } from '../helpers/signing.js';
import { openStateBed } from './state-bed.js';

const bed = await openStateBed('signed-policy-store');
t.teardown(() => bed.close());
const js = bed.nc.jetstream();
const audit = new AdminAudit(js);
const keysets = await KeySetStore.open(js, audit);
const policies = await PolicyStore.open(js, audit, keysets);
policies.register(RUNTIME_POLICY);
/** adminAuditRecords closes the connection it is given: a connection of its own. */
const fleet = { natsConnection: () => connect({ servers: bed.nc.getServer() }) };
const enc = new TextEncoder();
const [a, b] = [testKey('a'), testKey('b')];
const DOC = JSON.stringify(formatRuntimePolicy(buildRuntimePolicy([], { generatedAt: '2026-12-01T00:00:00Z', generator: 'test' })));

t.test('no key set for the kind: every push refused, audited', async (t) => {
  await t.rejects(policies.put('runtime', 'base', await signPolicy('runtime', DOC, [a])), { code: 'KEYSET_MISSING' });
  await t.rejects(keysets.put('runtime', enc.encode(await keySetEnvelope(keySetDocument('runtime', 2, 1, [a]), [a])), false, 'test'), { code: 'KEYSET_MISSING' }, 'nothing to rotate');
  t.equal(await keysets.current('runtime'), null);
});

t.test('installed, stored as an envelope, re-verified under its set after a rotation', async (t) => {
  await keysets.put('runtime', enc.encode(await keySetEnvelope(keySetDocument('runtime', 1, 1, [a]), [a])), true, 'test');
  const stored = await policies.put('runtime', 'base', await signPolicy('runtime', DOC, [a]));
  t.ok(stored.revision > 0);
  await keysets.put('runtime', enc.encode(await keySetEnvelope(keySetDocument('runtime', 2, 1, [b]), [a, b])), false, 'test');
  t.ok(await policies.get(RUNTIME_POLICY, 'base'), 'accepted under serial 1, still verifies after the rotation to serial 2');
  await t.rejects(policies.put('runtime', 'next', await signPolicy('runtime', DOC, [a])), { code: 'SIGNATURE_INVALID' }, 'the old key no longer signs new pushes');
  // A record without an envelope (written behind the store's back, or before signing existed).
  const kv = await js.views.kv(POLICY_BUCKET);
  await kv.put('policy.runtime.legacy', enc.encode(JSON.stringify({ version: 1, kind: 'runtime', name: 'legacy', updatedAt: '2026-01-01T00:00:00Z', document: JSON.parse(DOC) })));
  RUNTIME_POLICY.parsed.clear();
  await t.rejects(policies.get(RUNTIME_POLICY, 'legacy'), { code: 'ENVELOPE_REQUIRED' }, 'fails closed');
  const records = await adminAuditRecords(fleet);
  t.ok(records.some((r) => r.action === 'policy.refused' && r.details['code'] === 'KEYSET_MISSING'));
  t.ok(records.some((r) => r.action === 'keys.refused' && r.details['code'] === 'KEYSET_MISSING'));
});
