/**
 * Attestation-bound signatures against the real thing: swtpm, tpm2-tools, nats-server with
 * per-node permissions, the controller, `bulwark-agent sign` (the binary and the function)
 * and `bulwarkctl verify --require-attested`. A trusted host's artifact verifies; an
 * envelope pieced together from an old attestation and a new artifact, one signed after
 * its attestation expired, and one checked against the wrong controller key are refused;
 * once the host is tampered with (PCR 7 extended behind the controller's back) it gets no
 * attestation and `bulwark-agent sign` fails with the reason; another node cannot ask on
 * its behalf.
 */
import t from 'tap';
import { execa } from 'execa';
import { createPublicKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkAttestation, requestAttestation, pemHostSigningKey, signArtifact, fileSha256 } from '../../agent/sign.js';
import { runCtl } from '../../cli/ctl.js';
import { attestedArtifactStatement, encodeEnvelope, encodeSignRequest, hostKeyFingerprint, keySigner, parseStatement, signEnvelope } from '../../lib/dsse/index.js';
import { NODE_SUBJECTS, parseNatsNodeId } from '../../lib/nats-auth/index.js';
import { adminAuditRecords } from '../helpers/audit.js';
import { TestFleet } from '../helpers/fleet.js';
import { SOFTHSM_MODULE, startSoftHsm } from '../helpers/softhsm.js';
import { Hsm } from '../../daemon/index.js';
import { makeTempDir, removeDir } from '../helpers/swtpm.js';

const AGENT_MAIN = fileURLToPath(new URL('../../agent/main.js', import.meta.url));

const root = await makeTempDir('attested-sign');
const fleet = await TestFleet.create({ root });
const controller = await fleet.startController();
t.teardown(async () => {
  await fleet.stop();
  await removeDir(root);
});

/** bulwarkctl, offline (verify needs no controller). */
async function ctl(args: readonly string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runCtl(args, { out: (s) => (out += s), err: (s) => (err += s), env: {} });
  return { code, out, err };
}

const hostPair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const hostKeyPath = join(root, 'host-key.pem');
const hostPubPath = join(root, 'host-key.pub.pem');
const controllerKeyPath = join(root, 'controller-statement.pub.pem');
const wrongKeyPath = join(root, 'wrong-controller.pub.pem');
await writeFile(hostKeyPath, hostPair.privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
await writeFile(hostPubPath, hostPair.publicKey.export({ type: 'spki', format: 'pem' }));
await writeFile(wrongKeyPath, generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'pem' }));

const node = await fleet.addNode('signer');
const other = await fleet.addNode('bystander');
// Each agent pins the controller's statement key (written by the first test with `bulwarkctl statement-key`).
const signerConfig = { ...node.config, statementKey: controllerKeyPath };
const otherConfig = { ...other.config, statementKey: controllerKeyPath };
await node.agent.start();
await other.agent.start();
await fleet.waitForNode('signer', (n) => n.state === 'trusted');
await fleet.waitForNode('bystander', (n) => n.state === 'trusted');

const oldArtifact = join(root, 'release-1.tar');
const newArtifact = join(root, 'release-2.tar');
await writeFile(oldArtifact, randomBytes(4096));
await writeFile(newArtifact, randomBytes(4096));

const verifyArgs = (envelope: string, controllerKey = controllerKeyPath): string[] => ['verify', envelope, '--require-attested', '--trusted-keys', hostPubPath, '--controller-key', controllerKey];

t.test('`bulwarkctl statement-key` (GetStatementKey, viewer) gives the controller\'s attestation key', async (t) => {
  const r = await fleet.ctl(['statement-key', '-o', controllerKeyPath]);
  t.equal(r.code, 0, r.err);
  t.equal(await readFile(controllerKeyPath, 'utf8'), controller.statementPublicKeyPem, 'the key the controller signs with');
  t.match(r.out, /^wrote .* \(sha256 [0-9a-f]{64}\)/);
});

t.test('a trusted host signs an artifact with `bulwark-agent sign`; it verifies with --require-attested', async (t) => {
  const configPath = join(root, 'signer-agent.json');
  await writeFile(configPath, JSON.stringify({ ...signerConfig, signingKey: hostKeyPath }));
  const out = join(root, 'release-1.tar.dsse.json');
  const r = await execa('node', [AGENT_MAIN, 'sign', oldArtifact, '-o', out, '--config', configPath], { reject: false, env: { BULWARK_LOG_LEVEL: 'error' } });
  t.equal(r.exitCode, 0, `bulwark-agent sign exits 0 (${r.stderr})`);
  t.match(r.stderr, /signed by signer, attested until /);
  const ok = await ctl([...verifyArgs(out), '--artifact', oldArtifact, '--json']);
  t.equal(ok.code, 0, ok.out + ok.err);
  t.match(ok.out, new RegExp(`"verified":true,"attested":true,"name":"release-1.tar","sha256":"${await fileSha256(oldArtifact)}","nodeId":"signer"`));
  t.match(ok.out, /"artifactChecked":true/);
  const otherFile = await ctl([...verifyArgs(out), '--artifact', newArtifact]);
  t.equal(otherFile.code, 1, 'the envelope is not a signature of another file');
  t.match(otherFile.out, /not verified: ATTESTATION_INVALID: the artifact's sha256 is/);
  const wrong = await ctl(verifyArgs(out, wrongKeyPath));
  t.equal(wrong.code, 1, 'a wrong controller key does not verify the attestation');
  t.match(wrong.out, /not verified: SIGNATURE_INVALID/);
  const plain = await ctl(['verify', out, '--trusted-keys', hostPubPath]);
  t.equal(plain.code, 0, 'it is also an ordinary DSSE envelope of the host key');
  const audit = await adminAuditRecords(fleet);
  t.ok(
    audit.some((a) => a.action === 'sign.statement-issued' && a.subject === 'signer' && a.details['hostKey'] === hostKeyFingerprint(hostPair.publicKey)),
    'the attestation is audited (sign.statement-issued)',
  );
});

t.test('a host key on a PKCS#11 token (SoftHSM2): `bulwark-agent sign --key pkcs11:...` verifies', async (t) => {
  const soft = await startSoftHsm('attested-sign');
  t.teardown(() => soft.cleanup());
  await soft.initToken('host', '2468');
  const env = { ...soft.env, BULWARK_PKCS11_MODULE: SOFTHSM_MODULE, BULWARK_PKCS11_PIN: '2468' };
  const hsm = await Hsm.open('pkcs11:token=host', { env });
  let tokenPub: string;
  try {
    tokenPub = (await hsm.keygen({ label: 'artifact-signing', type: 'ec-p256' })).publicKey.export({ type: 'spki', format: 'pem' }).toString();
  } finally {
    await hsm.close();
  }
  const tokenPubPath = join(root, 'token-key.pub.pem');
  await writeFile(tokenPubPath, tokenPub);
  const configPath = join(root, 'signer-agent.json');
  const out = join(root, 'release-1.tar.hsm.dsse.json');
  const r = await execa('node', [AGENT_MAIN, 'sign', oldArtifact, '-o', out, '--config', configPath, '--key', 'pkcs11:token=host;object=artifact-signing;type=private'], {
    reject: false,
    env: { ...env, BULWARK_LOG_LEVEL: 'error' },
  });
  t.equal(r.exitCode, 0, `bulwark-agent sign with the token key exits 0 (${r.stdout}${r.stderr})`);
  const ok = await ctl(['verify', out, '--require-attested', '--trusted-keys', tokenPubPath, '--controller-key', controllerKeyPath, '--artifact', oldArtifact]);
  t.equal(ok.code, 0, ok.out + ok.err);
  const otherKey = await ctl(verifyArgs(out));
  t.equal(otherKey.code, 1, 'the PEM host key did not sign it');
  t.match(otherKey.out, /SIGNATURE_INVALID/);
});

t.test('an old attestation pieced together with a new artifact is refused', async (t) => {
  const key = await pemHostSigningKey(hostKeyPath);
  const first = await signArtifact({ config: signerConfig, file: oldArtifact, key });
  const newSha = await fileSha256(newArtifact);
  // The host key signs a statement for the new artifact that carries the old attestation.
  const s = attestedArtifactStatement({ name: 'release-2.tar', sha256: newSha }, { nodeId: 'signer', signedAt: new Date().toISOString(), hostKeySha256: hostKeyFingerprint(hostPair.publicKey) }, first.attestation);
  const pieced = join(root, 'pieced.dsse.json');
  await writeFile(pieced, encodeEnvelope(await signEnvelope(s.payloadType, s.payload, [keySigner(hostPair.privateKey)])));
  const r = await ctl(verifyArgs(pieced));
  t.equal(r.code, 1);
  t.match(r.out, /not verified: ATTESTATION_INVALID: the host signed [0-9a-f]{64} but the attestation is for [0-9a-f]{64}/);
});

t.test('a signature made after the attestation expired is refused', async (t) => {
  const sha256 = await fileSha256(newArtifact);
  const { envelope: attestation } = await requestAttestation(node.config, { name: 'release-2.tar', sha256 }, hostPair.publicKey);
  const predicate = parseStatement(attestation.payload).predicate ?? {};
  const expiresAt = Date.parse(String(predicate['expiresAt']));
  t.ok(Number.isFinite(expiresAt), 'the attestation has an expiry');
  const s = attestedArtifactStatement({ name: 'release-2.tar', sha256 }, { nodeId: 'signer', signedAt: new Date(expiresAt + 1).toISOString(), hostKeySha256: hostKeyFingerprint(hostPair.publicKey) }, attestation);
  const late = join(root, 'late.dsse.json');
  await writeFile(late, encodeEnvelope(await signEnvelope(s.payloadType, s.payload, [keySigner(hostPair.privateKey)])));
  const r = await ctl(verifyArgs(late));
  t.equal(r.code, 1);
  t.match(r.out, /not verified: ATTESTATION_INVALID: signed at .* outside the attestation's validity/);
  await t.rejects(signArtifact({ config: signerConfig, file: newArtifact, key: await pemHostSigningKey(hostKeyPath), now: () => Date.now() + fleet.controllerConfig.attestationValidityMs + 60_000 }), { code: 'ATTESTATION_INVALID' }, 'the agent itself will not sign with an expired attestation');
});

t.test('a node cannot ask for an attestation on another node\'s subject', async (t) => {
  const nc = await fleet.nodeNatsConnection('bystander');
  try {
    const body = encodeSignRequest({ version: 1, nodeId: 'signer', artifact: { name: 'x', sha256: await fileSha256(newArtifact) }, hostKey: hostPair.publicKey.export({ type: 'spki', format: 'der' }).toString('base64') });
    await t.rejects(nc.request(NODE_SUBJECTS.attestSign(parseNatsNodeId('signer')), body, { timeout: 2000 }), 'the server does not let bystander publish on signer\'s subject');
  } finally {
    await nc.close();
  }
  const own = await fleet.nodeNatsConnection('bystander');
  try {
    const body = encodeSignRequest({ version: 1, nodeId: 'signer', artifact: { name: 'x', sha256: await fileSha256(newArtifact) }, hostKey: hostPair.publicKey.export({ type: 'spki', format: 'der' }).toString('base64') });
    const msg = await own.request(NODE_SUBJECTS.attestSign(parseNatsNodeId('bystander')), body, { timeout: 5000 });
    t.equal(msg.headers?.get('Bulwark-Error'), 'NATS_AUTH_NODE_MISMATCH', 'on its own subject, a body naming another node is refused');
  } finally {
    await own.close();
  }
});

t.test('the agent verifies the controller\'s attestation with its pinned statement key before using it', async (t) => {
  // The agent binary with another statement key pinned: the real controller's attestation does not verify.
  const wrongConfig = join(root, 'signer-wrong-key.json');
  await writeFile(wrongConfig, JSON.stringify({ ...signerConfig, signingKey: hostKeyPath, statementKey: wrongKeyPath }));
  const out = join(root, 'wrong-key.dsse.json');
  const r = await execa('node', [AGENT_MAIN, 'sign', oldArtifact, '-o', out, '--config', wrongConfig], { reject: false, env: { BULWARK_LOG_LEVEL: 'error' } });
  t.equal(r.exitCode, 1, `bulwark-agent sign fails (${r.stderr})`);
  t.match(r.stdout + r.stderr, /SIGNATURE_INVALID/);
  await t.rejects(execa('test', ['-e', out]), 'no envelope was written');
  const unpinned = join(root, 'signer-no-key.json');
  await writeFile(unpinned, JSON.stringify({ ...node.config, signingKey: hostKeyPath }));
  const none = await execa('node', [AGENT_MAIN, 'sign', oldArtifact, '-o', out, '--config', unpinned], { reject: false, env: { BULWARK_LOG_LEVEL: 'error' } });
  t.not(none.exitCode, 0, 'no statementKey pinned: the agent does not sign');
  t.match(none.stdout + none.stderr, /CONFIG_INVALID.*statementKey|statementKey.*CONFIG_INVALID|statementKey is not set/);
  await t.rejects(execa('test', ['-e', out]), 'no envelope was written');

  // A real attestation from the controller, then altered as a man in the middle could.
  const sha256 = await fileSha256(oldArtifact);
  const { envelope: attestation } = await requestAttestation(node.config, { name: 'release-1.tar', sha256 }, hostPair.publicKey);
  const controllerKey = createPublicKey(await readFile(controllerKeyPath, 'utf8'));
  const expected = { controllerKey, sha256, nodeId: 'signer', hostKeySha256: hostKeyFingerprint(hostPair.publicKey), now: Date.now() };
  t.ok(checkAttestation(attestation, expected).expiresAt, 'the attestation as the controller signed it is accepted');
  const payload = new Uint8Array(attestation.payload);
  // Its verdict or validity edited: one byte of the statement.
  const at = new TextDecoder().decode(payload).indexOf('"expiresAt"') + 15;
  payload[at] = (payload[at] ?? 0) ^ 1;
  t.throws(() => checkAttestation({ ...attestation, payload }, expected), { code: 'SIGNATURE_INVALID' }, 'a statement changed after signing is refused');
  const sig = attestation.signatures.map((s) => ({ ...s, sig: new Uint8Array(s.sig).map((b, i) => (i === 10 ? b ^ 0xff : b)) }));
  t.throws(() => checkAttestation({ ...attestation, signatures: sig }, expected), { code: 'SIGNATURE_INVALID' }, 'a signature with one byte changed is refused');
  const forged = await signEnvelope(attestation.payloadType, attestation.payload, [keySigner(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey)]);
  t.throws(() => checkAttestation(forged, expected), { code: 'SIGNATURE_INVALID' }, 'the same statement signed by another key is refused');
  const wrongKey = createPublicKey(await readFile(wrongKeyPath, 'utf8'));
  t.throws(() => checkAttestation(attestation, { ...expected, controllerKey: wrongKey }), { code: 'SIGNATURE_INVALID' }, 'a wrong pinned key refuses the real one');
});

t.test('once the host is tampered with, `bulwark-agent sign` fails with the reason', async (t) => {
  await node.swtpm.extendPcr(7, randomBytes(32).toString('hex'));
  const n = await fleet.waitForNode('signer', (x) => x.state === 'untrusted');
  t.ok(n.reasons.some((r) => r.code === 'PCR_CHANGED_WITHIN_BOOT'), 'the controller saw the change');
  const configPath = join(root, 'signer-agent.json');
  const out = join(root, 'tampered.dsse.json');
  const r = await execa('node', [AGENT_MAIN, 'sign', newArtifact, '-o', out, '--config', configPath], { reject: false, env: { BULWARK_LOG_LEVEL: 'info' } });
  t.equal(r.exitCode, 1, 'bulwark-agent sign fails');
  t.match(r.stdout + r.stderr, /SIGN_STATEMENT_REFUSED/);
  t.match(r.stdout + r.stderr, /untrusted \(PCR_CHANGED_WITHIN_BOOT/, 'with the finding that made the host untrusted');
  await t.rejects(execa('test', ['-e', out]), 'no envelope was written');
  const audit = await adminAuditRecords(fleet);
  t.ok(
    audit.some((a) => a.action === 'sign.statement-refused' && a.subject === 'signer' && String(a.details['reasons']).includes('PCR_CHANGED_WITHIN_BOOT')),
    'the refusal is audited (sign.statement-refused)',
  );
  const bystander = await signArtifact({ config: otherConfig, file: newArtifact, key: await pemHostSigningKey(hostKeyPath) });
  t.equal(bystander.nodeId, 'bystander', 'a trusted node still gets its attestation');
});

t.test('a host whose evidence stopped (stale) gets no attestation', async (t) => {
  await other.agent.stop();
  await fleet.waitForNode('bystander', (x) => x.state === 'stale');
  await t.rejects(signArtifact({ config: otherConfig, file: newArtifact, key: await pemHostSigningKey(hostKeyPath) }), { code: 'SIGN_STATEMENT_REFUSED', message: /stale \(NODE_STALE/ });
});
