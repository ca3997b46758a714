/**
 * daemon/pkcs11 failing closed against a real SoftHSM2: a missing module, a missing token,
 * a wrong or missing PIN, a missing key, a token removed under an open session each give
 * their typed error (with the CKR_* name in details), and no error of any of them carries
 * the PIN in its message, details, stack or cause.
 */
import t, { type Test } from 'tap';
import { inspect } from 'node:util';
import { readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Hsm, openPkcs11Signer, type HsmOptions } from '../../daemon/index.js';
import { BulwarkError } from '../../lib/errors.js';
import { SOFTHSM_MODULE, startSoftHsm } from '../helpers/softhsm.js';

const PIN = 'Pin-4711-secret';
const WRONG_PIN = 'Wrong-0815-secret';
const soft = await startSoftHsm('pkcs11-errors');
t.teardown(() => soft.cleanup());
await soft.initToken('main', PIN);
await soft.initToken('locked', PIN);
const before = new Set(await readdir(soft.tokenDir));
await soft.initToken('removable', PIN);
const removableDir = (await readdir(soft.tokenDir)).find((d) => !before.has(d));

const env = { BULWARK_PKCS11_MODULE: SOFTHSM_MODULE, BULWARK_PKCS11_PIN: PIN };
/** Every error raised here, checked for the PINs at the end. */
const errors: unknown[] = [];

async function expectCode(t: Test, run: () => Promise<unknown>, code: string, what: string): Promise<BulwarkError | undefined> {
  try {
    await run();
    t.fail(`${what}: no error`);
    return undefined;
  } catch (err) {
    errors.push(err);
    t.ok(err instanceof BulwarkError, `${what}: a BulwarkError`);
    t.equal(err instanceof BulwarkError ? err.code : String(err), code, what);
    return err instanceof BulwarkError ? err : undefined;
  }
}

const main = await Hsm.open('pkcs11:token=main', { env });
t.teardown(() => main.close());
const key = await main.keygen({ label: 'signer', type: 'ec-p256' });

t.test('module: none named, missing, not a library', async (t) => {
  await expectCode(t, () => Hsm.open('pkcs11:token=main', { env: { BULWARK_PKCS11_PIN: PIN } }), 'PKCS11_MODULE_MISSING', 'no module anywhere');
  const missing = await expectCode(t, () => Hsm.open(`pkcs11:token=main?module-path=/nonexistent/libp11.so&pin-value=${PIN}`, { env: {} }), 'PKCS11_MODULE_MISSING', 'a module file that does not exist');
  t.equal(missing?.details['module'], '/nonexistent/libp11.so');
  const notLib = join(soft.dir, 'not-a-library.so');
  await writeFile(notLib, 'not ELF');
  await expectCode(t, () => Hsm.open('pkcs11:token=main', { env, modulePath: notLib }).then((h) => h.close()), 'PKCS11_MODULE_MISSING', 'a file that is not a library (URI and env do not name one)');
});

t.test('token: none with the label, and an unknown path attribute', async (t) => {
  const e = await expectCode(t, () => Hsm.open('pkcs11:token=no-such-token', { env }), 'PKCS11_TOKEN_MISSING', 'no such token');
  t.equal(e?.details['token'], 'no-such-token');
  await expectCode(t, () => Hsm.open('pkcs11:token=main;x-vendor=1', { env }), 'PKCS11_TOKEN_MISSING', 'RFC 7512: an unknown attribute matches nothing');
  await expectCode(t, () => Hsm.open('pkcs11:token=main;object=a;object=b', { env }), 'PKCS11_URI_INVALID', 'a malformed URI');
});

t.test('PIN: wrong, missing, from files', async (t) => {
  const wrong = await Hsm.open(`pkcs11:token=locked?pin-value=${WRONG_PIN}`, { env });
  t.teardown(() => wrong.close());
  const e = await expectCode(t, () => wrong.keygen({ label: 'x', type: 'ec-p256' }), 'PKCS11_PIN_INCORRECT', 'a wrong PIN');
  t.equal(e?.details['ckr'], 'CKR_PIN_INCORRECT', 'details name the CKR');
  t.equal(e?.details['operation'], 'C_Login');
  t.equal(e?.details['token'], 'locked');
  await expectCode(t, () => wrong.list(), 'PKCS11_PIN_INCORRECT', 'still wrong: nothing was cached as logged in');

  const noPin = await Hsm.open('pkcs11:token=locked', { env: { BULWARK_PKCS11_MODULE: SOFTHSM_MODULE } });
  t.teardown(() => noPin.close());
  await expectCode(t, () => noPin.keygen({ label: 'x', type: 'ec-p256' }), 'PKCS11_PIN_MISSING', 'no PIN given anywhere');

  await expectCode(t, () => Hsm.open('pkcs11:token=locked?pin-source=file:/nonexistent/pin', { env }), 'PKCS11_PIN_MISSING', 'a pin-source that does not exist');
  await expectCode(t, () => Hsm.open('pkcs11:token=locked', { env: { BULWARK_PKCS11_MODULE: SOFTHSM_MODULE }, pinFile: '/nonexistent/pin' }), 'PKCS11_PIN_MISSING', 'a PIN file that does not exist');

  // The right PIN from a file with a trailing newline, via pin-source and via the caller's PIN file.
  const pinFile = join(soft.dir, 'pin');
  await writeFile(pinFile, `${PIN}\n`, { mode: 0o600 });
  const viaUri = await Hsm.open(`pkcs11:token=locked?pin-source=file:${pinFile}`, { env: { BULWARK_PKCS11_MODULE: SOFTHSM_MODULE } });
  const made = await viaUri.keygen({ label: 'after-wrong-pin', type: 'ec-p256' });
  await viaUri.close();
  const options: HsmOptions = { env: { BULWARK_PKCS11_MODULE: SOFTHSM_MODULE }, pinFile };
  const { signer, hsm } = await openPkcs11Signer(made.uri, options);
  t.equal((await signer.sign(Uint8Array.of(1))).length > 0, true, 'signs with the PIN from the caller\'s file');
  await hsm.close();
});

t.test('key: not found, ambiguous, wrong type', async (t) => {
  await expectCode(t, () => main.signer('pkcs11:token=main;object=nope'), 'PKCS11_KEY_NOT_FOUND', 'no key with the label');
  await expectCode(t, () => main.signer('pkcs11:token=main;id=%FF%FF'), 'PKCS11_KEY_NOT_FOUND', 'no key with the id');
  await expectCode(t, () => main.signer('pkcs11:token=main'), 'PKCS11_KEY_NOT_FOUND', 'a URI naming no key');
  await expectCode(t, () => main.signer('pkcs11:token=main;object=signer;type=public'), 'PKCS11_KEY_NOT_FOUND', 'a public key cannot sign');
  await expectCode(t, () => main.signer('pkcs11:token=main;object=signer;vendor-x=1'), 'PKCS11_KEY_NOT_FOUND', 'an unknown attribute matches no key');
  await main.keygen({ label: 'twin', id: Uint8Array.of(1), type: 'ec-p256' });
  await expectCode(t, () => main.keygen({ label: 'twin', id: Uint8Array.of(2), type: 'ec-p256' }), 'PKCS11_KEY_EXISTS', 'a label in use');
  await expectCode(t, () => main.keygen({ label: 'twin2', id: Uint8Array.of(1), type: 'ec-p256' }), 'PKCS11_KEY_EXISTS', 'an id in use');
  await expectCode(t, () => openPkcs11Signer(`pkcs11:token=main;object=nope?pin-value=${PIN}`, { env }), 'PKCS11_KEY_NOT_FOUND', 'openPkcs11Signer closes what it opened and rethrows');
});

t.test('a token removed under an open session: a typed error, then still one', async (t) => {
  if (removableDir === undefined) throw new Error('no token directory found');
  const hsm = await Hsm.open(`pkcs11:token=removable?pin-value=${PIN}`, { env });
  t.teardown(() => hsm.close());
  const k = await hsm.keygen({ label: 'doomed', type: 'rsa-2048' });
  const signer = await hsm.signer(k.uri);
  t.ok((await signer.sign(Uint8Array.of(1, 2, 3))).length === 256, 'signs while the token is there');
  await rm(join(soft.tokenDir, removableDir), { recursive: true, force: true });
  const e = await expectCode(t, () => signer.sign(Uint8Array.of(1, 2, 3)), 'PKCS11_TOKEN_REMOVED', 'the next sign after removal');
  t.match(String(e?.details['ckr']), /^CKR_/, 'details name the CKR');
  t.equal(e?.details['token'], 'removable');
  const again = await expectCode(t, () => signer.sign(Uint8Array.of(1, 2, 3)), 'PKCS11_TOKEN_MISSING', 'and the one after: the token is looked for and not found');
  t.ok(again !== undefined);
  await expectCode(t, () => hsm.list(), 'PKCS11_TOKEN_MISSING', 'list too');
  const sig = await (await main.signer(key.uri)).sign(Uint8Array.of(9));
  t.ok(sig.length > 0, 'other tokens of the module still sign');
});

t.test('a closed Hsm refuses to work', async (t) => {
  const h = await Hsm.open('pkcs11:token=main', { env });
  const signer = await h.signer(key.uri);
  await h.close();
  await expectCode(t, () => signer.sign(Uint8Array.of(1)), 'PKCS11_FAILED', 'sign after close');
  t.ok((await (await main.signer(key.uri)).sign(Uint8Array.of(1))).length > 0, 'the module stays loaded for its other user');
});

t.test('no error carries a PIN: message, details, stack, cause, JSON, inspect', async (t) => {
  t.ok(errors.length >= 20, `${errors.length} errors collected`);
  for (const err of errors) {
    const parts: string[] = [inspect(err, { depth: 10, showHidden: true }), JSON.stringify(err)];
    for (let e: unknown = err; e instanceof Error; e = e.cause) parts.push(e.message, e.stack ?? '', JSON.stringify(e instanceof BulwarkError ? e.details : {}));
    const text = parts.join('\n');
    for (const pin of [PIN, WRONG_PIN]) t.notOk(text.includes(pin), `${err instanceof BulwarkError ? err.code : 'error'}: no PIN`);
  }
});
