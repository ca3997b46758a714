/**
 * Signed policies and app specs verified at runtime, failing closed, against a real fleet
 * (nats-server, controller over gRPC, a swtpm host): the fleet installs a key set per kind
 * at its first start and signs what it pushes. Unsigned, untrusted-key, altered, wrongly
 * typed and under-threshold pushes, and an app spec edited after signing, are each refused
 * with their code, audited, and leave the node's verdict as it was. Key rotation through
 * `bulwarkctl keys`; a restarted controller keeps its key sets and re-verifies what it stored.
 */
import t from 'tap';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { encodeEnvelope, parseEnvelope, PAYLOAD_TYPES } from '../../lib/dsse/index.js';
import { buildRuntimePolicy, formatRuntimePolicy } from '../../lib/ima/index.js';
import { POLICY_BUCKET } from '../../controller/policies/index.js';
import { TestFleet } from '../helpers/fleet.js';
import { adminAuditRecords } from '../helpers/audit.js';
import { keySetDocument, keySetEnvelope, signPolicy, signText, testKey } from '../helpers/signing.js';
import { makeTempDir, removeDir } from '../helpers/swtpm.js';

const root = await makeTempDir('signed-policies');
const appsDir = join(root, 'apps');
await mkdir(appsDir);
const fleet = await TestFleet.create({ root, controller: { appsDir } });
await fleet.startController();
t.teardown(async () => {
  await fleet.stop();
  await removeDir(root);
});

const fleetKey = fleet.signingKey;
const [k2, k3, k4, stranger] = [testKey('ops-2'), testKey('ops-3', 'ec'), testKey('ops-4'), testKey('stranger')];
const RUNTIME_DOC = JSON.stringify(formatRuntimePolicy(buildRuntimePolicy([], { generatedAt: '2026-12-01T00:00:00Z', generator: 'signed-policies test' })));

let fileCount = 0;
async function file(text: string): Promise<string> {
  const path = join(root, `input-${++fileCount}.json`);
  await writeFile(path, text);
  return path;
}

/** Pushes `text` as it is (no signing by the fleet helper). */
async function push(kind: string, name: string, text: string): Promise<{ code: number; out: string; err: string }> {
  return fleet.ctl(['policy', 'push', kind, name, await file(text)], { sign: false });
}

/** One verdict round later (a fresh quote judged): the node as it stands. */
async function nextVerdict(nodeId: string): Promise<{ state: string; reasons: string[] }> {
  const before = (await fleet.waitForNode(nodeId, () => true)).lastVerdictAt;
  await fleet.nodes.get(nodeId)?.agent.attestNow();
  const n = await fleet.waitForNode(nodeId, (x) => x.lastVerdictAt !== before);
  return { state: n.state, reasons: n.reasons.map((r) => r.code) };
}

async function auditedRefusal(action: string, subject: string, code: string): Promise<boolean> {
  return (await adminAuditRecords(fleet)).some((r) => r.action === action && r.subject === subject && r.details['code'] === code);
}

const node = await fleet.addNode('host-1');
await node.agent.start();
await fleet.waitForNode('host-1', (n) => n.state === 'trusted');

t.test('a signed runtime policy is stored; keys show lists the set the fleet installed', async (t) => {
  const pushed = await push('runtime', 'base', await signPolicy('runtime', RUNTIME_DOC, [fleetKey]));
  t.equal(pushed.code, 0, pushed.err);
  const shown = await fleet.ctl(['keys', 'show', 'runtime', '--json']);
  t.equal(shown.code, 0, shown.err);
  t.match(JSON.parse(shown.out), { kind: 'runtime', serial: 1, threshold: 1, keys: [{ keyid: fleetKey.keyid }] });
  const records = await adminAuditRecords(fleet);
  t.ok(records.some((r) => r.action === 'keys.init' && r.subject === 'runtime' && r.details['serial'] === 1), 'keys.init audited');
  t.ok(records.some((r) => r.action === 'policy.put' && r.subject === 'runtime/base' && r.details['keysetSerial'] === 1), 'the push names the key set serial');
  const again = await fleet.ctl(['keys', 'init', 'runtime', await file(await keySetEnvelope(keySetDocument('runtime', 1, 1, [stranger]), [stranger]))]);
  t.equal(again.code, 1, 'a second init is refused');
  t.match(again.err, /KEYSET_EXISTS/);
  t.ok(await auditedRefusal('keys.refused', 'runtime', 'KEYSET_EXISTS'), 'and audited');
});

t.test('rotation: threshold of the old set and of the new one; below either, and rollback, refused', async (t) => {
  // serial 2: threshold 2 of [fleet, ops-2], signed by the current set (fleet) and by both new keys.
  const rotate = await fleet.ctl(['keys', 'rotate', 'runtime', await file(await keySetEnvelope(keySetDocument('runtime', 2, 2, [fleetKey, k2]), [fleetKey, k2]))]);
  t.equal(rotate.code, 0, rotate.err);
  t.match(rotate.out, /rotated to the runtime key set serial 2/);
  const next = keySetDocument('runtime', 3, 2, [k3, k4]);
  const belowOld = await fleet.ctl(['keys', 'rotate', 'runtime', await file(await keySetEnvelope(next, [k2, k3, k4]))]);
  t.equal(belowOld.code, 1);
  t.match(belowOld.err, /SIGNATURE_THRESHOLD_NOT_MET: the current key set/);
  const belowNew = await fleet.ctl(['keys', 'rotate', 'runtime', await file(await keySetEnvelope(next, [fleetKey, k2, k3]))]);
  t.equal(belowNew.code, 1);
  t.match(belowNew.err, /SIGNATURE_THRESHOLD_NOT_MET: the new key set/);
  const rollback = await fleet.ctl(['keys', 'rotate', 'runtime', await file(await keySetEnvelope(keySetDocument('runtime', 1, 1, [fleetKey]), [fleetKey, k2]))]);
  t.equal(rollback.code, 1);
  t.match(rollback.err, /KEYSET_ROLLBACK/);
  t.ok(await auditedRefusal('keys.refused', 'runtime', 'KEYSET_ROLLBACK'), 'the rollback is audited');
  t.ok(await auditedRefusal('keys.refused', 'runtime', 'SIGNATURE_THRESHOLD_NOT_MET'), 'the under-threshold rotations are audited');
  t.match(JSON.parse((await fleet.ctl(['keys', 'show', 'runtime', '--json'])).out), { serial: 2, threshold: 2 }, 'the set in force is serial 2');
  t.ok((await adminAuditRecords(fleet)).some((r) => r.action === 'keys.rotate' && r.subject === 'runtime' && r.details['serial'] === 2), 'keys.rotate audited');
});

t.test('refused pushes: each with its code, audited, the stored policy and the verdict unchanged', async (t) => {
  const before = await nextVerdict('host-1');
  t.equal(before.state, 'trusted');
  const reader = fleet.client();
  const stored = await reader.getPolicy('runtime', 'base');
  const good = await signPolicy('runtime', RUNTIME_DOC, [fleetKey, k2]);
  const env = parseEnvelope(good);
  const flipped = new Uint8Array(env.payload);
  flipped[10] = (flipped[10] ?? 0) ^ 0x01;
  const cases: [string, string, string, number][] = [
    ['untrusted key', await signPolicy('runtime', RUNTIME_DOC, [stranger]), 'SIGNATURE_INVALID', 1],
    ['one byte changed', encodeEnvelope({ ...env, payload: flipped }), 'SIGNATURE_INVALID', 1],
    ['wrong payloadType', await signText(PAYLOAD_TYPES.baseline, RUNTIME_DOC, [fleetKey, k2]), 'PAYLOAD_TYPE_MISMATCH', 1],
    ['below threshold', await signPolicy('runtime', RUNTIME_DOC, [fleetKey]), 'SIGNATURE_THRESHOLD_NOT_MET', 1],
    ['not an envelope', '{"payloadType": 3, "signatures": "x"}', 'ENVELOPE_MALFORMED', 3],
  ];
  for (const [what, text, code, exit] of cases) {
    const r = await push('runtime', 'base', text);
    t.equal(r.code, exit, `${what}: exit ${exit}`);
    t.match(r.err, new RegExp(`: ${code}: `), `${what}: ${code}`);
    t.ok(await auditedRefusal('policy.refused', 'runtime/base', code), `${what}: audited with ${code}`);
  }
  // An unsigned document straight over the API (bulwarkctl refuses it before sending, below).
  const client = fleet.client();
  await t.rejects(client.putPolicy('runtime', 'base', RUNTIME_DOC), { code: 'ENVELOPE_REQUIRED' }, 'unsigned: ENVELOPE_REQUIRED');
  client.close();
  t.ok(await auditedRefusal('policy.refused', 'runtime/base', 'ENVELOPE_REQUIRED'), 'unsigned: audited');
  const cliUnsigned = await push('runtime', 'base', RUNTIME_DOC);
  t.equal(cliUnsigned.code, 1, 'bulwarkctl refuses an unsigned document itself');
  t.match(cliUnsigned.err, /ENVELOPE_REQUIRED: .*bulwarkctl sign .*--payload-type application\/vnd\.bulwark\.policy\+json/);
  // A replacement of the assigned measured-boot policy signed by an untrusted key: refused, and the node stays trusted.
  const mb = await push('measured-boot', 'test-accept-all', await signPolicy('measured-boot', { name: 'test-accept-all', acceptAll: false }, [stranger]));
  t.match(mb.err, /SIGNATURE_INVALID/);
  t.equal(await reader.getPolicy('runtime', 'base'), stored, 'the stored policy is unchanged');
  reader.close();
  t.same(await nextVerdict('host-1'), before, "the node's verdict is unchanged");
  t.equal((await push('runtime', 'base', good)).code, 0, 'signed by the threshold of the rotated set: stored');
});

t.test('bulwarkctl sign (with a PEM key) makes the envelope policy push takes', async (t) => {
  const keyPath = join(root, 'fleet-key.pem');
  await writeFile(keyPath, fleetKey.privateKeyPem, { mode: 0o600 });
  const doc = await file(JSON.stringify({ name: 'from-cli', acceptAll: true }));
  const envelope = join(root, 'from-cli.dsse.json');
  const signed = await fleet.ctl(['sign', doc, '--key', keyPath, '--payload-type', PAYLOAD_TYPES.policy, '-o', envelope]);
  t.equal(signed.code, 0, signed.err);
  const pushed = await fleet.ctl(['policy', 'push', 'measured-boot', 'from-cli', envelope]);
  t.equal(pushed.code, 0, pushed.err);
  const wrongType = join(root, 'from-cli-app.dsse.json');
  t.equal((await fleet.ctl(['sign', doc, '--key', keyPath, '--payload-type', PAYLOAD_TYPES.app, '-o', wrongType])).code, 0);
  t.match((await fleet.ctl(['policy', 'push', 'measured-boot', 'from-cli', wrongType])).err, /PAYLOAD_TYPE_MISMATCH/);
});

t.test('app specs: deployed only as signed; a spec edited after signing is refused', async (t) => {
  const hcl = 'job "web" {\n  group "g" {\n    task "t" {\n      driver = "raw_exec"\n    }\n  }\n}\n';
  await writeFile(join(appsDir, 'web.nomad.hcl'), hcl);
  const signed = await file(await signText(PAYLOAD_TYPES.app, { version: 1, name: 'web', hcl }, [fleetKey]));
  const ok = await fleet.ctl(['apps', 'deploy', 'web', '--envelope', signed]);
  t.match(ok.err, /NOMAD_UNAVAILABLE/, 'verified, then the deploy goes on to Nomad (none in this fleet)');
  const unsigned = await fleet.ctl(['apps', 'deploy', 'web'], { sign: false });
  t.match(unsigned.err, /ENVELOPE_REQUIRED/);
  await writeFile(join(appsDir, 'web.nomad.hcl'), hcl.replace('raw_exec', 'exec'));
  const edited = await fleet.ctl(['apps', 'deploy', 'web', '--envelope', signed]);
  t.equal(edited.code, 1);
  t.match(edited.err, /APP_SPEC_NOT_SIGNED/, 'the catalogue file differs from the signed spec');
  const env = parseEnvelope(await signText(PAYLOAD_TYPES.app, { version: 1, name: 'web', hcl }, [fleetKey]));
  const altered = encodeEnvelope({ ...env, payload: new TextEncoder().encode(JSON.stringify({ version: 1, name: 'web', hcl: hcl.replace('raw_exec', 'exec') })) });
  t.match((await fleet.ctl(['apps', 'deploy', 'web', '--envelope', await file(altered)])).err, /SIGNATURE_INVALID/, 'the signed payload edited');
  t.match((await fleet.ctl(['apps', 'deploy', 'web', '--envelope', await file(await signText(PAYLOAD_TYPES.app, { version: 1, name: 'web', hcl }, [stranger]))])).err, /SIGNATURE_INVALID/);
  t.match((await fleet.ctl(['apps', 'deploy', 'web', '--envelope', await file(await signPolicy('runtime', { version: 1, name: 'web', hcl }, [fleetKey]))])).err, /PAYLOAD_TYPE_MISMATCH/);
  for (const code of ['ENVELOPE_REQUIRED', 'APP_SPEC_NOT_SIGNED', 'SIGNATURE_INVALID', 'PAYLOAD_TYPE_MISMATCH']) t.ok(await auditedRefusal('app.refused', 'web', code), `app refusal ${code} audited`);
});

t.test('a restarted controller keeps its key sets and re-verifies stored envelopes on read; a stored record edited behind it fails closed', async (t) => {
  await fleet.stopController();
  await fleet.startController();
  t.match(JSON.parse((await fleet.ctl(['keys', 'show', 'runtime', '--json'])).out), { serial: 2, threshold: 2 });
  const shown = await fleet.ctl(['policy', 'show', 'runtime', 'base']);
  t.equal(shown.code, 0, shown.err);
  t.same(JSON.parse(shown.out), JSON.parse(RUNTIME_DOC), 'the stored envelope verifies on read');
  // Edit the stored record directly in KV (the controller's NATS identity): its envelope now signed by a stranger.
  const nc = await fleet.natsConnection();
  try {
    const kv = await nc.jetstream().views.kv(POLICY_BUCKET);
    const entry = await kv.get('policy.runtime.base');
    const record: unknown = JSON.parse(new TextDecoder().decode(entry?.value));
    await kv.put('policy.runtime.base', new TextEncoder().encode(JSON.stringify({ ...(record as object), envelope: await signPolicy('runtime', RUNTIME_DOC, [stranger, k3]) })));
    const tampered = await fleet.ctl(['policy', 'show', 'runtime', 'base']);
    t.equal(tampered.code, 1);
    t.match(tampered.err, /SIGNATURE_INVALID/, 'fails closed on read');
    await kv.put('policy.runtime.base', new TextEncoder().encode(JSON.stringify({ ...(record as object), envelope: 'garbage' })));
    t.match((await fleet.ctl(['policy', 'show', 'runtime', 'base'])).err, /ENVELOPE_MALFORMED/, 'an envelope that no longer parses fails closed');
  } finally {
    await nc.close();
  }
});
