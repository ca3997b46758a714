/**
 * `bulwarkctl sign FILE`: a DSSE envelope over a file signed by a SoftHSM2 token key (a
 * PKCS#11 URI) or a PEM private key, checked by `bulwarkctl verify`; `--add-to` gathers a
 * threshold of signatures from separate key holders and refuses an envelope over another
 * file or type. The built CLI run as a process.
 */
import t from 'tap';
import { generateKeyPairSync } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { parseEnvelope } from '../../lib/dsse/index.js';
import { SOFTHSM_MODULE, startSoftHsm } from '../helpers/softhsm.js';

const CTL_MAIN = fileURLToPath(new URL('../../cli/bulwarkctl.js', import.meta.url));
const PIN = '564738';
const POLICY_TYPE = 'application/vnd.bulwark.policy+json';
const soft = await startSoftHsm('ctl-sign');
t.teardown(() => soft.cleanup());
await soft.initToken('release', PIN);
const dir = soft.dir;
const env = { BULWARK_PKCS11_MODULE: SOFTHSM_MODULE, BULWARK_PKCS11_PIN: PIN };

async function ctl(args: readonly string[]): Promise<{ code: number; out: string; err: string }> {
  const r = await execa('node', [CTL_MAIN, ...args], { env: { ...soft.env, ...env }, extendEnv: false, reject: false, stripFinalNewline: false, timeout: 60_000 });
  return { code: r.exitCode ?? -1, out: r.stdout, err: r.stderr };
}

const made = await ctl(['hsm', 'keygen', '--token', 'release', '--label', 'policy-signer', '--type', 'ec-p256']);
if (made.code !== 0) throw new Error(`keygen failed: ${made.err}`);
const uri = made.out.trim();
const hsmPub = join(dir, 'hsm.pem');
const pub = await ctl(['hsm', 'pubkey', uri]);
await writeFile(hsmPub, pub.out);

const pemKey = generateKeyPairSync('ed25519');
const pemPriv = join(dir, 'offline.key');
const pemPub = join(dir, 'offline.pem');
await writeFile(pemPriv, pemKey.privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
await writeFile(pemPub, pemKey.publicKey.export({ type: 'spki', format: 'pem' }));
const bothPubs = join(dir, 'both.pem');
await writeFile(bothPubs, `${pub.out}${await readFile(pemPub, 'utf8')}`);

const policy = join(dir, 'runtime.json');
await writeFile(policy, '{"version":1,"name":"web"}\n');

t.test('an HSM signature verifies; a PEM signature added makes a 2-of-2 threshold', async (t) => {
  const envPath = join(dir, 'runtime.dsse');
  const signed = await ctl(['sign', policy, '--key', uri, '--payload-type', POLICY_TYPE, '-o', envPath]);
  t.equal(signed.code, 0, signed.err);
  t.match(signed.err, /1 signature\n$/);
  const envelope = parseEnvelope(await readFile(envPath, 'utf8'));
  t.equal(envelope.payloadType, POLICY_TYPE);
  t.equal(Buffer.from(envelope.payload).toString(), '{"version":1,"name":"web"}\n', 'the payload is the file, byte for byte');

  t.equal((await ctl(['verify', envPath, '--trusted-keys', hsmPub, '--payload-type', POLICY_TYPE])).code, 0, 'the token signature verifies');
  t.equal((await ctl(['verify', envPath, '--trusted-keys', bothPubs, '--threshold', '2'])).code, 1, 'one signature is below a threshold of 2');

  const added = await ctl(['sign', policy, '--key', pemPriv, '--payload-type', POLICY_TYPE, '--add-to', envPath, '-o', envPath]);
  t.equal(added.code, 0, added.err);
  t.match(added.err, /2 signatures\n$/);
  const both = await ctl(['verify', envPath, '--trusted-keys', bothPubs, '--threshold', '2', '--payload-type', POLICY_TYPE]);
  t.equal(both.code, 0, both.err + both.out);
});

t.test('--add-to refuses an envelope over another file or of another type, and writes nothing', async (t) => {
  const envPath = join(dir, 'first.dsse');
  t.equal((await ctl(['sign', policy, '--key', pemPriv, '--payload-type', POLICY_TYPE, '-o', envPath])).code, 0);
  const before = await readFile(envPath, 'utf8');
  const other = join(dir, 'other.json');
  await writeFile(other, '{"version":1,"name":"other"}\n');
  const wrongFile = await ctl(['sign', other, '--key', uri, '--payload-type', POLICY_TYPE, '--add-to', envPath, '-o', envPath]);
  t.equal(wrongFile.code, 2, 'another file is a usage error');
  t.match(wrongFile.err, /payload differs/);
  const wrongType = await ctl(['sign', policy, '--key', uri, '--payload-type', 'application/vnd.bulwark.app+json', '--add-to', envPath, '-o', envPath]);
  t.not(wrongType.code, 0, 'another type is refused');
  t.match(wrongType.err, /PAYLOAD_TYPE_MISMATCH/);
  t.equal(await readFile(envPath, 'utf8'), before, 'the envelope is unchanged');
});

t.test('failures: no key, a wrong PIN, a missing file; the PIN never printed', async (t) => {
  t.equal((await ctl(['sign', policy])).code, 2, 'no --key');
  const missing = await ctl(['sign', join(dir, 'nope.json'), '--key', pemPriv]);
  t.equal(missing.code, 3, missing.err);
  const r = await execa('node', [CTL_MAIN, 'sign', policy, '--key', uri], { env: { ...soft.env, BULWARK_PKCS11_MODULE: SOFTHSM_MODULE, BULWARK_PKCS11_PIN: '000000' }, extendEnv: false, reject: false, timeout: 60_000 });
  t.not(r.exitCode, 0, 'a wrong PIN fails');
  t.match(r.stderr, /PKCS11_PIN_INCORRECT/);
  t.notMatch(`${r.stdout}${r.stderr}`, /000000/, 'the PIN appears nowhere');
  t.equal(r.stdout, '', 'no envelope written');
});

t.test('a YAML policy is signed as the canonical JSON of its document', async (t) => {
  const a = join(dir, 'mb.yaml');
  const b = join(dir, 'mb-reformatted.yml');
  await writeFile(a, '# measured boot\nname: lab\nacceptAll: true\nbank: sha256\n');
  await writeFile(b, '{bank: "sha256", "acceptAll": true,\n   name: lab}  # same document, other text\n');
  const envA = join(dir, 'mb.yaml.dsse');
  const envB = join(dir, 'mb-reformatted.yml.dsse');
  t.equal((await ctl(['sign', a, '--key', pemPriv, '--payload-type', POLICY_TYPE, '-o', envA])).code, 0);
  t.equal((await ctl(['sign', b, '--key', pemPriv, '--payload-type', POLICY_TYPE, '-o', envB])).code, 0);
  const ea = parseEnvelope(await readFile(envA, 'utf8'));
  const eb = parseEnvelope(await readFile(envB, 'utf8'));
  t.equal(Buffer.from(ea.payload).toString(), '{"acceptAll":true,"bank":"sha256","name":"lab"}', 'canonical JSON, not the YAML text');
  t.same(ea.payload, eb.payload, 'the payload does not depend on YAML formatting');
  t.equal((await ctl(['verify', envA, '--trusted-keys', pemPub, '--payload-type', POLICY_TYPE])).code, 0, 'the signature verifies');
  t.equal((await ctl(['sign', b, '--key', pemPriv, '--payload-type', POLICY_TYPE, '--add-to', envA, '-o', envA])).code, 0, 'a co-signer of the reformatted file adds to the same payload');
  await writeFile(join(dir, 'tagged.yaml'), 'name: !!js/function x\n');
  const tagged = await ctl(['sign', join(dir, 'tagged.yaml'), '--key', pemPriv, '--payload-type', POLICY_TYPE]);
  t.equal(tagged.code, 3, 'hostile YAML is malformed input');
  t.match(tagged.err, /YAML_INVALID: .*tag/);
  const push = await ctl(['policy', 'push', 'measured-boot', 'lab', a]);
  t.match(push.err, /ENVELOPE_REQUIRED: this is an unsigned policy document: sign it first/, 'an unsigned YAML policy is refused before any connection');
});
