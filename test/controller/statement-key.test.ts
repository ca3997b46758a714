/**
 * The controller's statement (attestation) key: an ECDSA P-256 key made in the data dir at
 * first start (0600) and reused after, a configured PEM file, or a key on a SoftHSM2 token
 * named by a pkcs11: URI; each signs envelopes that verify with the public key written
 * beside it (what `bulwarkctl statement-key` and GetStatementKey give out).
 */
import t from 'tap';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import { join } from 'node:path';
import { loadStatementKey, STATEMENT_KEY_FILES } from '../../controller/signing/index.js';
import { Hsm } from '../../daemon/index.js';
import { PAYLOAD_TYPES, signEnvelope, verifyEnvelope } from '../../lib/dsse/index.js';
import { SOFTHSM_MODULE, startSoftHsm } from '../helpers/softhsm.js';
import { makeTempDir, removeDir } from '../helpers/swtpm.js';

const dir = await makeTempDir('statement-key');
t.teardown(() => removeDir(dir));
const payload = new TextEncoder().encode('{"_type":"x"}');

async function roundTrip(key: Awaited<ReturnType<typeof loadStatementKey>>): Promise<void> {
  const env = await signEnvelope(PAYLOAD_TYPES.inToto, payload, [key.signer]);
  const pem = await readFile(join(dir, STATEMENT_KEY_FILES.publicKey), 'utf8');
  verifyEnvelope(env, { trustedKeys: [createPublicKey(pem)], payloadType: PAYLOAD_TYPES.inToto });
}

t.test('generated at first start (0600), the same key after', async (t) => {
  const first = await loadStatementKey(dir, null);
  t.equal((await stat(join(dir, STATEMENT_KEY_FILES.key))).mode & 0o777, 0o600);
  t.equal(first.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
  await roundTrip(first);
  const again = await loadStatementKey(dir, null);
  t.equal(again.publicKeyPem, first.publicKeyPem, 'reused, not regenerated');
});

t.test('a configured PEM file; one readable by others is refused', async (t) => {
  const path = join(dir, 'configured.pem');
  await writeFile(path, generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  const key = await loadStatementKey(dir, path);
  t.equal(key.publicKey.asymmetricKeyType, 'ed25519');
  await roundTrip(key);
  const loose = join(dir, 'loose.pem');
  await writeFile(loose, generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o644 });
  await t.rejects(loadStatementKey(dir, loose), { code: 'PKI_KEY_PERMISSIONS' });
});

t.test('a pkcs11: URI (SoftHSM2)', async (t) => {
  const soft = await startSoftHsm('statement-key');
  t.teardown(() => soft.cleanup());
  await soft.initToken('controller', '1234');
  process.env['BULWARK_PKCS11_MODULE'] = SOFTHSM_MODULE;
  process.env['BULWARK_PKCS11_PIN'] = '1234';
  const hsm = await Hsm.open('pkcs11:token=controller', {});
  await hsm.keygen({ label: 'statements', type: 'ec-p256' });
  await hsm.close();
  const key = await loadStatementKey(dir, 'pkcs11:token=controller;object=statements;type=private');
  try {
    await roundTrip(key);
  } finally {
    await key.close();
  }
  await t.rejects(loadStatementKey(dir, 'pkcs11:token=controller;object=missing;type=private'), { code: 'PKCS11_KEY_NOT_FOUND' });
});
