/**
 * Node identity tokens: a signed token gives its claims back; a token that does not verify,
 * or whose signed claims are not of the schema, is KEY_INVALID.
 */
import t from 'tap';
import { generateKeyPairSync, sign } from 'node:crypto';
import { signNodeIdentity, verifyNodeIdentity } from '../../../lib/attestation/index.js';

const { privateKey, publicKey } = generateKeyPairSync('ed25519');
const claims = { nodeId: 'node-1', ekName: '000b' + 'aa'.repeat(32), akName: '000b' + 'bb'.repeat(32), issuedAt: '2026-01-01T00:00:00.000Z' };

/** A token over any body, signed with the controller key (what a bug in the issuer could make). */
function signedBody(body: unknown): string {
  const b = Buffer.from(JSON.stringify(body)).toString('base64url');
  return `${b}.${sign(null, Buffer.from(b), privateKey).toString('base64url')}`;
}

t.test('a signed token gives its claims back', async (t) => {
  t.same(verifyNodeIdentity(publicKey, signNodeIdentity(privateKey, claims)), claims);
});

t.test('a token that does not verify is KEY_INVALID', async (t) => {
  const token = signNodeIdentity(privateKey, claims);
  const other = generateKeyPairSync('ed25519').publicKey;
  t.throws(() => verifyNodeIdentity(other, token), { code: 'KEY_INVALID' }, 'another key');
  t.throws(() => verifyNodeIdentity(publicKey, `${token}x`), { code: 'KEY_INVALID' }, 'a changed signature');
  t.throws(() => verifyNodeIdentity(publicKey, 'no-dot'), { code: 'KEY_INVALID' }, 'not two parts');
});

t.test('signed claims that are not of the schema are KEY_INVALID with the JSON pointer', async (t) => {
  const { akName: _drop, ...missing } = claims;
  t.throws(() => verifyNodeIdentity(publicKey, signedBody(missing)), { code: 'KEY_INVALID', details: { path: '/akName' } }, 'a claim missing');
  t.throws(() => verifyNodeIdentity(publicKey, signedBody({ ...claims, nodeId: 7 })), { code: 'KEY_INVALID', details: { path: '/nodeId' } }, 'a claim of the wrong type');
  t.throws(() => verifyNodeIdentity(publicKey, signedBody([claims])), { code: 'KEY_INVALID' }, 'not an object');
  const b = Buffer.from('{"nodeId":').toString('base64url');
  t.throws(() => verifyNodeIdentity(publicKey, `${b}.${sign(null, Buffer.from(b), privateKey).toString('base64url')}`), { code: 'KEY_INVALID' }, 'not JSON');
});
