/**
 * The whole spine against real components: swtpm per host, tpm2-tools, nats-server with
 * JetStream, the gRPC API. Three hosts enroll and stay trusted while a fourth (the victim)
 * is attacked one way after another; each attack must end with its own code and must not
 * touch the three.
 */
import { createNkeyUser } from '../../lib/nats-auth/index.js';
import t, { type Test } from 'tap';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { randomUUID } from 'node:crypto';
import type { NatsConnection } from 'nats';
import { Tpm2ToolsTpm } from '../../agent/tpm2-tools-tpm.js';
import { runCtl } from '../../cli/ctl.js';
import { decodeSerializedPcrs } from '../../lib/tpm/pcrs.js';
import { TPM_ALG } from '../../lib/tpm/types.js';
import { adminAuditRecords } from '../helpers/audit.js';
import { TestFleet, type TestNode } from '../helpers/fleet.js';
import { indexOfBytes, manualRound, sendRawEvidence } from '../helpers/rounds.js';
import { createTestCa, makeTempDir, removeDir } from '../helpers/swtpm.js';
import { waitFor } from '../helpers/wait.js';
import { wire } from '../../proto/wire.js';

const root = await makeTempDir('fleet');
const fleet = await TestFleet.create({ root });
await fleet.startController();
let nc: NatsConnection;

t.teardown(async () => {
  await nc?.close();
  await fleet.stop();
  await removeDir(root);
});

const healthy = ['node-a', 'node-b', 'node-c'];

const ctl = (args: string[]): Promise<{ code: number; out: string; err: string }> => fleet.ctl(args);

async function assertHealthyUntouched(tt: Test): Promise<void> {
  const client = fleet.client();
  try {
    for (const id of healthy) {
      const n = await client.getNode(id);
      tt.equal(n.state, 'trusted', `${id} is still trusted`);
      const history = await client.history(id, 100);
      tt.notOk(
        history.some((e) => e.state !== 'trusted' && e.state !== 'enrolled'),
        `${id} never left trusted`,
      );
    }
  } finally {
    client.close();
  }
}

t.test('three agents with their own swtpm enroll and become trusted', async (tt) => {
  for (const id of healthy) await fleet.addNode(id);
  await Promise.all(healthy.map((id) => fleet.nodes.get(id)?.agent.start()));
  for (const id of healthy) {
    const n = await fleet.waitForNode(id, (x) => x.state === 'trusted');
    tt.equal(n.reasons.length, 0, `${id} has no reasons`);
    tt.match(n.ekCertificateSubject, /.+/, `${id} has its EK certificate subject`);
    tt.equal(n.facts?.hostname, id, `${id} reported its host facts`);
  }
  const listed = await ctl(['nodes', '--json']);
  tt.equal(listed.code, 0);
  const nodes: unknown = JSON.parse(listed.out);
  tt.ok(Array.isArray(nodes));
  const states = new Map((nodes as { nodeId: string; state: string }[]).map((n) => [n.nodeId, n.state]));
  for (const id of healthy) tt.equal(states.get(id), 'trusted', `bulwarkctl nodes shows ${id} trusted`);
  const table = await ctl(['nodes']);
  for (const id of healthy) tt.match(table.out, new RegExp(`${id}\\s+trusted`));
  const one = await ctl(['node', 'node-a']);
  tt.equal(one.code, 0, 'bulwarkctl node exits 0 for a trusted node');
  tt.match(one.out, /state:\s+trusted/);
  tt.match(one.out, /host:\s+node-a, Debian/);
  nc = await fleet.natsConnection();
  const client = fleet.client();
  tt.equal(await client.healthCheck(), 'SERVING', 'gRPC health reports SERVING');
  client.close();
});

let victim: TestNode;

t.test('the victim enrolls with an ECC EK and becomes trusted', async (tt) => {
  victim = await fleet.addNode('victim', { ekType: 'ecc' });
  await victim.agent.start();
  await fleet.waitForNode('victim', (x) => x.state === 'trusted');
  // From here on the victim's rounds are made by hand.
  await victim.agent.stop();
  tt.pass('victim trusted with the P-384 EK certificate');
});

const own = (): { nodeId: string; tpm: Tpm2ToolsTpm; akHandle: number; bootIdPath: string } => ({
  nodeId: 'victim',
  tpm: victim.tpm,
  akHandle: victim.config.akHandle,
  bootIdPath: victim.bootIdPath,
});

async function expectUntrusted(tt: Test, code: string, reply: { verdict: string; findings: readonly { code: string }[] }): Promise<void> {
  tt.not(reply.verdict, 'trusted', `the round is not trusted (${code})`);
  tt.ok(
    reply.findings.some((f) => f.code === code),
    `the reply names ${code}; got ${reply.findings.map((f) => f.code).join(',')}`,
  );
  const node = await fleet.waitForNode('victim', () => true);
  tt.equal(node.state, 'untrusted', 'the victim is untrusted');
  tt.ok(
    node.reasons.some((r) => r.code === code),
    `the stored reasons name ${code}`,
  );
}

async function restoreVictim(tt: Test): Promise<void> {
  const { reply } = await manualRound(nc, own());
  tt.equal(reply.verdict, 'trusted', 'an honest round makes the victim trusted again');
}

t.test('a good hand-made round is trusted (the harness itself is honest)', async (tt) => {
  await restoreVictim(tt);
});

t.test('a quote signed by another TPM\'s AK: QUOTE_SIGNATURE_INVALID', async (tt) => {
  const impostor = await fleet.newTpm();
  const tpm = await Tpm2ToolsTpm.open({ tcti: impostor.tcti, toolTimeoutMs: 20_000, akAlg: 'rsa' });
  tt.teardown(async () => {
    await tpm.close();
    await impostor.stop();
  });
  const keys = await tpm.ensureKeys({ ekType: 'rsa', akHandle: 0x81010002 });
  const { reply } = await manualRound(nc, { ...own(), tpm, akHandle: keys.akHandle });
  await expectUntrusted(tt, 'QUOTE_SIGNATURE_INVALID', reply);
  await restoreVictim(tt);
});

t.test('a replayed nonce: NONCE_REPLAYED', async (tt) => {
  const { reply, evidence } = await manualRound(nc, own());
  tt.equal(reply.verdict, 'trusted');
  const replay = await sendRawEvidence(nc, wire.evidence.encode(evidence));
  await expectUntrusted(tt, 'NONCE_REPLAYED', replay);
  await restoreVictim(tt);
});

t.test('a nonce the controller never issued: NONCE_UNKNOWN', async (tt) => {
  const { evidence } = await manualRound(nc, own());
  const forged = await sendRawEvidence(nc, wire.evidence.encode({ ...evidence, nonce: randomBytes(32) }));
  await expectUntrusted(tt, 'NONCE_UNKNOWN', forged);
  await restoreVictim(tt);
});

t.test('an expired nonce: NONCE_EXPIRED', async (tt) => {
  const { reply } = await manualRound(nc, { ...own(), delayMs: fleet.controllerConfig.nonceTtlMs + 300 });
  await expectUntrusted(tt, 'NONCE_EXPIRED', reply);
  await restoreVictim(tt);
});

t.test('PCR values that do not match the quote digest: QUOTE_PCR_DIGEST_MISMATCH', async (tt) => {
  // Give PCR 10 a unique value so it can be found in the serialized PCR file.
  await victim.swtpm.extendPcr(10, randomBytes(32).toString('hex'));
  const { reply } = await manualRound(nc, {
    ...own(),
    tamper: (q) => {
      const banks = decodeSerializedPcrs(q.pcrs);
      const pcr10 = banks.get(TPM_ALG.SHA256)?.get(10);
      if (pcr10 === undefined) throw new Error('no PCR 10 in the quote');
      const at = indexOfBytes(q.pcrs, pcr10);
      tt.ok(at > 0, 'found PCR 10 in the PCR file');
      const pcrs = q.pcrs.slice();
      pcrs[at] = (pcrs[at] ?? 0) ^ 0x01;
      return { ...q, pcrs };
    },
  });
  await expectUntrusted(tt, 'QUOTE_PCR_DIGEST_MISMATCH', reply);
  await restoreVictim(tt);
});

t.test('a quote over the wrong PCR selection: QUOTE_PCR_SELECTION_MISMATCH', async (tt) => {
  const { reply } = await manualRound(nc, { ...own(), selection: 'sha256:0,1,2,3,4,5,6,7' });
  await expectUntrusted(tt, 'QUOTE_PCR_SELECTION_MISMATCH', reply);
  await restoreVictim(tt);
});

t.test('a quote whose nonce differs from the evidence nonce: QUOTE_NONCE_MISMATCH', async (tt) => {
  const { evidence } = await manualRound(nc, own());
  // A fresh, valid nonce for the node, sent with the quote made for the previous one.
  const { reply: fresh } = await manualRound(nc, {
    ...own(),
    tamper: (q) => ({ ...q, attest: evidence.attest, signature: evidence.signature, pcrs: evidence.pcrs }),
  });
  await expectUntrusted(tt, 'QUOTE_NONCE_MISMATCH', fresh);
  await restoreVictim(tt);
});

t.test('malformed evidence bytes are refused without touching anyone', async (tt) => {
  for (let i = 0; i < 50; i++) {
    const reply = await sendRawEvidence(nc, randomBytes(1 + (i % 40) * 13));
    tt.equal(reply.verdict, 'refused', 'random bytes are refused');
  }
  const { evidence } = await manualRound(nc, own());
  const truncated = await sendRawEvidence(nc, wire.evidence.encode({ ...evidence, attest: evidence.attest.subarray(0, 20) }));
  tt.not(truncated.verdict, 'trusted');
  tt.ok(truncated.findings.length > 0);
  await restoreVictim(tt);
});

t.test('EK certificate from an unknown CA: enrollment refused with EK_CERT_UNTRUSTED', async (tt) => {
  const rogueCa = await createTestCa(`${root}/rogue-ca`);
  const rogue = await fleet.addNode('rogue', { ca: rogueCa });
  await tt.rejects(rogue.agent.start(), { code: 'EK_CERT_UNTRUSTED' });
  const client = fleet.client();
  await tt.rejects(client.getNode('rogue'), { code: 'NODE_NOT_FOUND' }, 'no node record was created');
  client.close();
});

t.test('wrong activation secret: CREDENTIAL_SECRET_MISMATCH, and the challenge is spent', async (tt) => {
  const node = await fleet.addNode('liar');
  const keys = await node.tpm.ensureKeys({ ekType: 'rsa', akHandle: node.config.akHandle });
  const client = fleet.client();
  tt.teardown(() => client.close());
  const challenge = await client.enroll({
    nodeId: 'liar',
    ekType: 'rsa',
    ekPublic: keys.ekPublic,
    ekCertificate: keys.ekCertificate ?? new Uint8Array(0),
    akPublic: keys.akPublic,
    facts: null,
    nomadNode: '',
  });
  await tt.rejects(client.activateCredential({ challengeId: challenge.challengeId, secret: randomBytes(32), natsPublicKey: createNkeyUser().publicKey }), { code: 'CREDENTIAL_SECRET_MISMATCH' });
  const realSecret = await node.tpm.activateCredential({ idObject: challenge.idObject, encryptedSecret: challenge.encryptedSecret }, keys);
  await tt.rejects(client.activateCredential({ challengeId: challenge.challengeId, secret: realSecret, natsPublicKey: createNkeyUser().publicKey }), { code: 'ENROLL_UNKNOWN_CHALLENGE' });
  await tt.rejects(client.getNode('liar'), { code: 'NODE_NOT_FOUND' });
});

t.test('an AK that is not a restricted signing key is refused: AK_ATTRIBUTES_INVALID', async (tt) => {
  const node = fleet.nodes.get('liar');
  if (node === undefined) throw new Error('no liar node');
  const keys = await node.tpm.ensureKeys({ ekType: 'rsa', akHandle: node.config.akHandle });
  const client = fleet.client();
  tt.teardown(() => client.close());
  // The EK itself as "AK": a decrypt key, not a signing key.
  await tt.rejects(
    client.enroll({ nodeId: 'liar', ekType: 'rsa', ekPublic: keys.ekPublic, ekCertificate: keys.ekCertificate ?? new Uint8Array(0), akPublic: keys.ekPublic, facts: null, nomadNode: '' }),
    { code: 'AK_ATTRIBUTES_INVALID' },
  );
});

t.test('a PCR extended behind the controller\'s back: PCR_CHANGED_WITHIN_BOOT, until re-enrollment is approved', async (tt) => {
  // The security team watches: over gRPC WatchTrust and with `bulwarkctl watch`.
  const client = fleet.client();
  const abort = new AbortController();
  const seen: string[] = [];
  let ready = 0;
  const watching = client.watchTrust(
    'victim',
    (e) => seen.push(`${e.previous}->${e.state}:${e.reasons.map((r) => r.code).join(',')}`),
    abort.signal,
    () => ready++,
  );
  let ctlOut = '';
  const ctlAbort = new AbortController();
  const ctlWatch = runCtl(['--controller', fleet.controllerAddress, '--credentials', fleet.adminCredentials, 'watch', '--json'], {
    out: (s) => (ctlOut += s),
    err: (s) => (ready += s.startsWith('watching') ? 1 : 0),
    env: {},
    signal: ctlAbort.signal,
  });
  await waitFor('both watchers subscribed', () => (ready >= 2 ? true : undefined), 5000, 20);
  tt.equal(ready, 2, 'both watchers are subscribed');
  // The victim's agent is stopped: an honest round first, so it is not merely stale by now.
  await restoreVictim(tt);
  await victim.swtpm.extendPcr(7, randomBytes(32).toString('hex'));
  const { reply } = await manualRound(nc, own());
  await expectUntrusted(tt, 'PCR_CHANGED_WITHIN_BOOT', reply);
  try {
    await waitFor('the transition on both watchers', () => (seen.some((e) => e.includes('PCR_CHANGED_WITHIN_BOOT')) && ctlOut.includes('PCR_CHANGED_WITHIN_BOOT') ? true : undefined), 15_000);
  } finally {
    abort.abort();
    ctlAbort.abort();
  }
  await watching;
  tt.equal(await ctlWatch, 0, 'bulwarkctl watch ends cleanly when stopped');
  client.close();
  tt.ok(seen.includes('trusted->untrusted:PCR_CHANGED_WITHIN_BOOT'), `WatchTrust streamed the transition (saw ${JSON.stringify(seen)})`);
  tt.match(ctlOut, /"nodeId":"victim","previous":"trusted","state":"untrusted","reasons":\[\{"code":"PCR_CHANGED_WITHIN_BOOT"/, 'bulwarkctl watch printed it');
  const again = await manualRound(nc, own());
  tt.equal(again.reply.verdict, 'untrusted', 'the finding is sticky: the next honest-looking round does not clear it');
  const node = await fleet.waitForNode('victim', () => true);
  tt.equal(node.requiresReenrollment, true);
  await tt.rejects(victim.agent.enroll(), { code: 'NODE_REENROLL_NOT_APPROVED' }, 'the host cannot clear it by enrolling again');
  const approved = await ctl(['approve', 'victim']);
  tt.equal(approved.code, 0, 'an operator approves re-enrollment');
  const approvals = (await adminAuditRecords(fleet)).filter((r) => r.action === 'node.reenrollment-approved' && r.subject === 'victim');
  tt.equal(approvals.length, 1, 'the approval is in the audit stream');
  await victim.agent.enroll();
  const reenrolled = await fleet.waitForNode('victim', () => true);
  tt.equal(reenrolled.state, 'enrolled', 're-enrolled, not yet trusted');
  tt.equal(reenrolled.requiresReenrollment, false);
  const fresh = await manualRound(nc, own());
  tt.equal(fresh.reply.verdict, 'trusted', 'trusted again on fresh evidence after re-enrollment');
  const twice = await ctl(['approve', 'victim']);
  tt.equal(twice.code, 2, 'approving a node that needs nothing is a usage error');
});

t.test('a TPM reset the agent does not report: NODE_REBOOT_UNREPORTED', async (tt) => {
  const node = await fleet.addNode('rebooter');
  await node.agent.start();
  await fleet.waitForNode('rebooter', (x) => x.state === 'trusted');
  await node.agent.stop();
  const round = { nodeId: 'rebooter', tpm: node.tpm, akHandle: node.config.akHandle, bootIdPath: node.bootIdPath };
  // A reported reboot (new boot id) is fine.
  await node.swtpm.reboot();
  await writeFile(node.bootIdPath, `${randomUUID()}\n`);
  const reported = await manualRound(nc, round);
  tt.equal(reported.reply.verdict, 'trusted', 'a reboot with a new boot id stays trusted');
  // A reset behind the verifier's back (same boot id) is caught.
  await node.swtpm.reboot();
  const hidden = await manualRound(nc, round);
  tt.not(hidden.reply.verdict, 'trusted');
  tt.ok(hidden.reply.findings.some((f) => f.code === 'NODE_REBOOT_UNREPORTED'));
  const stored = await fleet.waitForNode('rebooter', () => true);
  tt.equal(stored.state, 'untrusted');
  tt.equal(stored.requiresReenrollment, true);
});

t.test('an agent that stops answering goes stale', async (tt) => {
  const node = await fleet.addNode('silent');
  await node.agent.start();
  await fleet.waitForNode('silent', (x) => x.state === 'trusted');
  await node.agent.stop();
  const stale = await fleet.waitForNode('silent', (x) => x.state === 'stale', fleet.controllerConfig.staleAfterMs * 4);
  tt.equal(stale.reasons[0]?.code, 'NODE_STALE');
  const shown = await ctl(['node', 'silent']);
  tt.equal(shown.code, 1, 'bulwarkctl node exits 1 for a node that is not trusted');
  tt.match(shown.out, /NODE_STALE/);
});

t.test('the three healthy nodes were never affected', async (tt) => {
  await assertHealthyUntouched(tt);
  const history = await ctl(['history', 'victim', '--json']);
  tt.equal(history.code, 0);
  const codes = (JSON.parse(history.out) as { reasons: { code: string }[] }[]).flatMap((e) => e.reasons.map((r) => r.code));
  for (const code of ['QUOTE_SIGNATURE_INVALID', 'NONCE_REPLAYED', 'NONCE_EXPIRED', 'QUOTE_PCR_DIGEST_MISMATCH', 'QUOTE_PCR_SELECTION_MISMATCH', 'PCR_CHANGED_WITHIN_BOOT']) {
    tt.ok(codes.includes(code), `the audit history of the victim holds ${code}`);
  }
});

t.test('bulwarkctl refuses bad usage and an unreachable controller with its exit codes', async (tt) => {
  const usage = await runCtl(['frobnicate'], { out: () => undefined, err: () => undefined, env: {} });
  tt.equal(usage, 2);
  let err = '';
  const down = await runCtl(['--controller', '127.0.0.1:1', '--credentials', fleet.adminCredentials, 'nodes'], { out: () => undefined, err: (s) => (err += s), env: {} });
  tt.equal(down, 4);
  tt.notMatch(err, /\n\s+at /, 'no stack trace');
});

