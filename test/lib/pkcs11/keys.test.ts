/**
 * ECDSA r ‖ s ↔ DER against node:crypto's own two encodings of one signature
 * (dsaEncoding 'der' and 'ieee-p1363'), and PKCS #11 public key attributes to JWKs.
 */
import t from 'tap';
import { createPublicKey, generateKeyPairSync, sign, verify } from 'node:crypto';
import { ecdsaDerToRaw, ecdsaRawToDer, ecParamsOf, ecPublicJwk, rsaPublicJwk } from '../../../lib/pkcs11/index.js';
import { DerWriter } from '../../../lib/pki/index.js';

t.test('ECDSA r ‖ s to DER and back, P-256 and P-384', async (t) => {
  for (const [curve, size] of [['P-256', 32], ['P-384', 48]] as const) {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: curve });
    // 200 signatures: some r or s have a high bit set or leading zero bytes.
    for (let i = 0; i < 200; i++) {
      const data = Buffer.from(`message ${i}`);
      const raw = sign('sha256', data, { key: privateKey, dsaEncoding: 'ieee-p1363' });
      const der = ecdsaRawToDer(raw, size);
      t.ok(verify('sha256', data, publicKey, der), 'node verifies the DER form');
      t.same(Buffer.from(ecdsaDerToRaw(der, size)), raw, 'and it converts back');
      const nodeDer = sign('sha256', data, { key: privateKey, dsaEncoding: 'der' });
      t.same(Buffer.from(ecdsaRawToDer(ecdsaDerToRaw(nodeDer, size), size)), nodeDer, 'node DER is canonical ours');
      if (t.passing() === false) break;
    }
  }
});

t.test('bad ECDSA signatures are KEY_INVALID', async (t) => {
  t.throws(() => ecdsaRawToDer(new Uint8Array(63), 32), { code: 'KEY_INVALID' }, 'a wrong length');
  t.throws(() => ecdsaDerToRaw(Uint8Array.of(0x30, 0x00), 32), { code: 'KEY_INVALID' });
  t.throws(() => ecdsaDerToRaw(Uint8Array.of(0x30, 0x03, 0x02, 0x01, 0x80, 0x02, 0x01, 0x01), 32), { code: 'KEY_INVALID' }, 'negative r');
  const big = new DerWriter().sequence((w) => w.unsignedInteger(new Uint8Array(33).fill(1)).unsignedInteger(Uint8Array.of(1))).finish();
  t.throws(() => ecdsaDerToRaw(big, 32), { code: 'KEY_INVALID' }, 'r wider than the curve');
  t.throws(() => ecdsaDerToRaw(Uint8Array.of(0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01, 0x00), 32), { code: 'KEY_INVALID' }, 'trailing bytes');
});

t.test('public key attributes to JWKs node accepts', async (t) => {
  for (const curve of ['P-256', 'P-384'] as const) {
    const { publicKey } = generateKeyPairSync('ec', { namedCurve: curve });
    const jwk = publicKey.export({ format: 'jwk' });
    const point = Buffer.concat([Buffer.of(4), Buffer.from(jwk.x ?? '', 'base64url'), Buffer.from(jwk.y ?? '', 'base64url')]);
    const wrapped = new DerWriter().octetString(point).finish();
    for (const ecPoint of [wrapped, point]) {
      const key = createPublicKey({ key: { ...ecPublicJwk(ecParamsOf(curve), ecPoint) }, format: 'jwk' });
      t.ok(key.equals(publicKey), `${curve} from ${ecPoint === point ? 'a bare' : 'a DER-wrapped'} point`);
    }
  }
  const { publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = publicKey.export({ format: 'jwk' });
  const n = Buffer.concat([Buffer.of(0), Buffer.from(jwk.n ?? '', 'base64url')]);
  const key = createPublicKey({ key: { ...rsaPublicJwk(n, Buffer.from(jwk.e ?? '', 'base64url')) }, format: 'jwk' });
  t.ok(key.equals(publicKey), 'RSA from modulus (with a leading zero) and exponent');
  t.throws(() => ecPublicJwk(new DerWriter().oid('1.3.132.0.10').finish(), Buffer.alloc(65)), { code: 'KEY_INVALID' }, 'secp256k1 is refused');
});
