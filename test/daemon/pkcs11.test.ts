/**
 * daemon/pkcs11 against a real SoftHSM2 token: keys of every type made with keygen, every
 * signature checked with node:crypto, and OpenSC's pkcs11-tool (an independent client of the
 * same token) seeing the keys with their type and id, agreeing on the public keys, and
 * making signatures our public keys verify.
 */
import t from 'tap';
import { constants, createPublicKey, verify, type KeyObject } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Hsm, HSM_KEY_TYPES, type HsmKeyType, type HsmSignatureScheme } from '../../daemon/index.js';
import { parsePkcs11Uri } from '../../lib/pkcs11/index.js';
import { SOFTHSM_MODULE, startSoftHsm } from '../helpers/softhsm.js';

const PIN = '246810';
const soft = await startSoftHsm('pkcs11');
t.teardown(() => soft.cleanup());
// Every token of this file exists before the module is first loaded (SoftHSM2 scans at C_Initialize).
await soft.initToken('signing', PIN);
await soft.initToken('second', '1357');

const env = { BULWARK_PKCS11_MODULE: SOFTHSM_MODULE, BULWARK_PKCS11_PIN: PIN };
const hsm = await Hsm.open('pkcs11:token=signing', { env });
t.teardown(() => hsm.close());

const DATA = new TextEncoder().encode('DSSEv1 28 application/vnd.bulwark+json 2 {}');

function verifies(scheme: HsmSignatureScheme, key: KeyObject, data: Uint8Array, sig: Uint8Array): boolean {
  switch (scheme) {
    case 'rsa-pss-sha256':
      return verify('sha256', data, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }, sig);
    case 'rsa-pkcs1v15-sha256':
      return verify('sha256', data, { key, padding: constants.RSA_PKCS1_PADDING }, sig);
    case 'ecdsa-p256-sha256':
      return verify('sha256', data, { key, dsaEncoding: 'der' }, sig);
    case 'ecdsa-p384-sha384':
      return verify('sha384', data, { key, dsaEncoding: 'der' }, sig);
  }
}

const SCHEMES: Record<HsmKeyType, readonly HsmSignatureScheme[]> = {
  'rsa-2048': ['rsa-pss-sha256', 'rsa-pkcs1v15-sha256'],
  'rsa-3072': ['rsa-pss-sha256', 'rsa-pkcs1v15-sha256'],
  'ec-p256': ['ecdsa-p256-sha256'],
  'ec-p384': ['ecdsa-p384-sha384'],
};

const made = new Map<HsmKeyType, { uri: string; id: string; publicKey: KeyObject }>();

t.test('keygen makes each key type; every signature verifies with node:crypto', async (t) => {
  for (const type of HSM_KEY_TYPES) {
    const key = await hsm.keygen({ label: `key-${type}`, type });
    made.set(type, key);
    t.match(key.uri, /^pkcs11:token=signing;object=key-[a-z0-9-]+;id=(%[0-9A-F]{2})+;type=private$/, `${type} URI`);
    for (const scheme of SCHEMES[type]) {
      const signer = await hsm.signer(key.uri, { scheme, keyid: 'k1' });
      t.equal(signer.keyid, 'k1');
      t.ok((await signer.publicKey()).equals(key.publicKey), 'the signer names the same public key');
      const sig = await signer.sign(DATA);
      t.ok(verifies(scheme, key.publicKey, DATA, sig), `${type} ${scheme} verifies`);
      const other = Uint8Array.from(DATA);
      other[0] = (other[0] ?? 0) ^ 1;
      t.notOk(verifies(scheme, key.publicKey, other, sig), `${type} ${scheme} does not verify other data`);
    }
  }
  const ec = made.get('ec-p256');
  if (ec === undefined) throw new Error('no P-256 key');
  t.equal(ec.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
  t.equal(made.get('rsa-3072')?.publicKey.asymmetricKeyDetails?.modulusLength, 3072);
});

t.test('the default scheme, key lookup by id only, and publicKey', async (t) => {
  const ec = made.get('ec-p384');
  const rsa = made.get('rsa-2048');
  if (ec === undefined || rsa === undefined) throw new Error('keys missing');
  t.equal((await hsm.signer(rsa.uri)).scheme, 'rsa-pss-sha256', 'RSA defaults to PSS');
  const byId = await hsm.signer(`pkcs11:token=signing;id=${rsa.id.replace(/../g, '%$&')}`);
  t.ok(verifies('rsa-pss-sha256', rsa.publicKey, DATA, await byId.sign(DATA)), 'found by id alone');
  t.ok((await hsm.publicKey(`pkcs11:token=signing;object=key-ec-p384;type=public`)).equals(ec.publicKey), 'publicKey by object label');
  await t.rejects(hsm.signer(ec.uri, { scheme: 'rsa-pss-sha256' }), { code: 'PKCS11_KEY_UNSUPPORTED' }, 'an EC key does not sign RSA');
  await t.rejects(hsm.keygen({ label: 'key-ec-p256', type: 'ec-p256' }), { code: 'PKCS11_KEY_EXISTS' }, 'a label in use');
});

t.test('signDigest: RSA PKCS#1 v1.5 and ECDSA over a digest made elsewhere', async (t) => {
  const { createHash } = await import('node:crypto');
  const digest = createHash('sha256').update(DATA).digest();
  for (const type of ['rsa-2048', 'ec-p256'] as const) {
    const key = made.get(type);
    if (key === undefined) throw new Error('key missing');
    const sig = await (await hsm.signer(key.uri, { scheme: type === 'rsa-2048' ? 'rsa-pkcs1v15-sha256' : 'ecdsa-p256-sha256' })).signDigest(digest, 'sha256');
    t.ok(verify('sha256', DATA, type === 'rsa-2048' ? key.publicKey : { key: key.publicKey, dsaEncoding: 'der' }, sig), `${type} digest signature verifies over the data`);
  }
});

t.test('signers are concurrent-safe on one session', async (t) => {
  const key = made.get('ec-p256');
  if (key === undefined) throw new Error('key missing');
  const signer = await hsm.signer(key.uri);
  const datas = Array.from({ length: 50 }, (_, i) => new TextEncoder().encode(`item ${i}`));
  const sigs = await Promise.all(datas.map((d) => signer.sign(d)));
  sigs.forEach((sig, i) => t.ok(verify('sha256', datas[i] ?? new Uint8Array(), { key: key.publicKey, dsaEncoding: 'der' }, sig), `signature ${i}`));
});

t.test('list() and pkcs11-tool agree on the keys, their types and ids', async (t) => {
  const listed = await hsm.list();
  t.same(
    listed.map((k) => [k.label, k.type]),
    [...HSM_KEY_TYPES].sort().map((type) => [`key-${type}`, type]),
    'by label',
  );
  for (const k of listed) {
    const uri = parsePkcs11Uri(k.uri);
    t.equal(Buffer.from(uri.id ?? []).toString('hex'), k.id, 'the URI carries the id');
    t.equal(uri.type, 'private');
  }
  const out = await soft.pkcs11Tool(['--token-label', 'signing', '--login', '--pin', PIN, '--list-objects']);
  for (const type of HSM_KEY_TYPES) {
    const key = made.get(type);
    if (key === undefined) throw new Error('key missing');
    const bits = { 'rsa-2048': 'RSA 2048 bits', 'rsa-3072': 'RSA 3072 bits', 'ec-p256': 'EC  EC_POINT 256 bits', 'ec-p384': 'EC  EC_POINT 384 bits' }[type];
    t.match(out, new RegExp(`Public Key Object; ${bits}[\\s\\S]*?label:\\s+key-${type}\\s+ID:\\s+${key.id}\\s+Usage:\\s+verify`), `pkcs11-tool sees the public ${type} key`);
    t.match(out, new RegExp(`Private Key Object; ${type.startsWith('rsa') ? 'RSA' : 'EC'}[\\s\\S]*?label:\\s+key-${type}\\s+ID:\\s+${key.id}\\s+Usage:\\s+sign\\s+Access:\\s+sensitive, always sensitive, never extractable`), `pkcs11-tool sees the private ${type} key: sign only, sensitive, never extractable`);
    // The public key as pkcs11-tool reads it (DER SubjectPublicKeyInfo) is ours. OpenSC 0.23
    // cannot export a P-384 public key ("cannot create EVP_PKEY"); its signatures are checked below.
    if (type === 'ec-p384') continue;
    const der = join(soft.dir, `${type}.pub.der`);
    await soft.pkcs11Tool(['--token-label', 'signing', '--read-object', '--type', 'pubkey', '--id', key.id, '-o', der]);
    t.ok(createPublicKey({ key: await readFile(der), format: 'der', type: 'spki' }).equals(key.publicKey), `pkcs11-tool reads the same ${type} public key`);
  }
});

t.test('pkcs11-tool signatures verify with the public keys daemon/pkcs11 gives', async (t) => {
  const input = join(soft.dir, 'data.bin');
  await writeFile(input, DATA);
  for (const [type, mechanism, scheme] of [
    ['rsa-2048', 'SHA256-RSA-PKCS', 'rsa-pkcs1v15-sha256'],
    ['rsa-2048', 'SHA256-RSA-PKCS-PSS', 'rsa-pss-sha256'],
  ] as const) {
    const key = made.get(type);
    if (key === undefined) throw new Error('key missing');
    const out = join(soft.dir, `${mechanism}.sig`);
    await soft.pkcs11Tool(['--token-label', 'signing', '--login', '--pin', PIN, '--sign', '--id', key.id, '--mechanism', mechanism, ...(scheme === 'rsa-pss-sha256' ? ['--mgf', 'MGF1-SHA256', '--salt-len', '32'] : []), '-i', input, '-o', out]);
    t.ok(verifies(scheme, await hsm.publicKey(key.uri.replace('type=private', 'type=public')), DATA, await readFile(out)), `pkcs11-tool ${mechanism} verifies`);
  }
  const { createHash } = await import('node:crypto');
  for (const [type, hash, scheme] of [
    ['ec-p256', 'sha256', 'ecdsa-p256-sha256'],
    ['ec-p384', 'sha384', 'ecdsa-p384-sha384'],
  ] as const) {
    const ec = made.get(type);
    if (ec === undefined) throw new Error('key missing');
    const digestFile = join(soft.dir, `digest-${hash}.bin`);
    await writeFile(digestFile, createHash(hash).update(DATA).digest());
    const out = join(soft.dir, `ecdsa-${type}.sig`);
    await soft.pkcs11Tool(['--token-label', 'signing', '--login', '--pin', PIN, '--sign', '--id', ec.id, '--mechanism', 'ECDSA', '--signature-format', 'openssl', '-i', digestFile, '-o', out]);
    t.ok(verifies(scheme, ec.publicKey, DATA, await readFile(out)), `pkcs11-tool ECDSA ${type} (DER) verifies`);
  }
});

t.test('a second token of the same module, with its own PIN', async (t) => {
  const second = await Hsm.open(`pkcs11:token=second?pin-value=1357&module-path=${SOFTHSM_MODULE}`, { env: {} });
  t.teardown(() => second.close());
  const key = await second.keygen({ label: 'other', id: Uint8Array.of(7), type: 'ec-p256' });
  t.equal(key.id, '07');
  t.equal(key.uri, 'pkcs11:token=second;object=other;id=%07;type=private');
  const sig = await (await second.signer(key.uri)).sign(DATA);
  t.ok(verifies('ecdsa-p256-sha256', key.publicKey, DATA, sig));
  t.same((await hsm.list()).map((k) => k.label).includes('other'), false, 'keys stay on their token');
});

t.test('HSM signers are DSSE signers: an envelope signed by the token verifies with lib/dsse', async (t) => {
  const { signEnvelope, verifyEnvelope } = await import('../../lib/dsse/index.js');
  type DsseSigner = import('../../lib/dsse/index.js').DsseSigner;
  const signers: DsseSigner[] = [];
  const trusted = [];
  for (const [type, scheme] of [
    ['ec-p256', 'ecdsa-p256-sha256'],
    ['ec-p384', 'ecdsa-p384-sha384'],
    ['rsa-2048', 'rsa-pss-sha256'],
    ['rsa-3072', 'rsa-pkcs1v15-sha256'],
  ] as const) {
    const key = made.get(type);
    if (key === undefined) throw new Error('key missing');
    signers.push(await hsm.signer(key.uri, { scheme, keyid: type }));
    trusted.push({ key: key.publicKey, keyid: type, scheme });
  }
  const payload = new TextEncoder().encode('{"kind":"runtime-policy"}');
  const envelope = await signEnvelope('application/vnd.bulwark.policy+json', payload, signers);
  const verified = verifyEnvelope(envelope, { trustedKeys: trusted, threshold: 4, payloadType: 'application/vnd.bulwark.policy+json' });
  t.same(Buffer.from(verified.payload), Buffer.from(payload), 'all four HSM signatures count toward a threshold of 4');
});
