/**
 * Trusted key sets (lib/signing): bootstrap self-signed to its threshold, TUF-style
 * rotation (threshold of the current set AND of the new one, distinct keys, serial above),
 * rollback and replay refused, expiry, and verification of signed documents against a set.
 */
import t from 'tap';
import { BulwarkError } from '../../../lib/index.js';
import { parseEnvelope, encodeEnvelope, PAYLOAD_TYPES, trustedKeySet } from '../../../lib/dsse/index.js';
import { createPublicKey } from 'node:crypto';
import { acceptKeySet, acceptKeySetChain, pinnedKeySet, trustKeySet, verifyBaselineEnvelope, verifyWithKeySet, type KeySet } from '../../../lib/signing/index.js';
import { DEFAULT_BASELINE } from '../../../lib/baseline/index.js';
import { keySetDocument, keySetEnvelope, signPolicy, signText, testKey } from '../../helpers/signing.js';

const NOW = Date.parse('2026-12-01T00:00:00Z');
const [a, b, c, d, e] = [testKey('a'), testKey('b', 'ec'), testKey('c'), testKey('d'), testKey('e')];

function accepted(value: KeySet | BulwarkError): KeySet {
  if (value instanceof BulwarkError) throw value;
  return value;
}

function codeOf(value: KeySet | BulwarkError): string {
  return value instanceof BulwarkError ? value.code : 'ACCEPTED';
}

t.test('bootstrap: the first set must be signed by a threshold of its own keys', async (t) => {
  const doc = keySetDocument('runtime', 1, 2, [a, b, c]);
  const first = accepted(acceptKeySet('runtime', null, await keySetEnvelope(doc, [a, b]), NOW));
  t.equal(first.document.serial, 1);
  t.equal(first.document.threshold, 2);
  t.equal(codeOf(acceptKeySet('runtime', null, await keySetEnvelope(doc, [a]), NOW)), 'SIGNATURE_THRESHOLD_NOT_MET', 'one of two');
  t.equal(codeOf(acceptKeySet('runtime', null, await keySetEnvelope(doc, [a, a]), NOW)), 'SIGNATURE_THRESHOLD_NOT_MET', 'one key signing twice counts once');
  t.equal(codeOf(acceptKeySet('runtime', null, await keySetEnvelope(doc, [d, e]), NOW)), 'SIGNATURE_INVALID', 'signed by keys not in the set');
  t.equal(codeOf(acceptKeySet('app', null, await keySetEnvelope(doc, [a, b]), NOW)), 'KEYSET_INVALID', 'a runtime set is not an app set');
  t.equal(codeOf(acceptKeySet('runtime', null, await signText(PAYLOAD_TYPES.policy, doc, [a, b]), NOW)), 'PAYLOAD_TYPE_MISMATCH');
  t.equal(codeOf(acceptKeySet('runtime', null, '{"payload":', NOW)), 'ENVELOPE_MALFORMED');
  t.equal(codeOf(acceptKeySet('runtime', null, await keySetEnvelope(keySetDocument('runtime', 1, 4, [a, b, c]), [a, b, c]), NOW)), 'KEYSET_INVALID', 'threshold above the keys');
  const dupKeys = { ...doc, keys: [...doc.keys, { keyid: 'a-again', publicKeyPem: a.publicKeyPem }], threshold: 4 };
  t.equal(codeOf(acceptKeySet('runtime', null, await keySetEnvelope(dupKeys, [a, b, c]), NOW)), 'KEYSET_INVALID', 'the same key under two keyids is one key');
  const expired = keySetDocument('runtime', 1, 1, [a], { expires: '2026-01-01T00:00:00Z' });
  t.equal(codeOf(acceptKeySet('runtime', null, await keySetEnvelope(expired, [a]), NOW)), 'KEYSET_EXPIRED');
});

t.test('rotation: a threshold of the current set and of the new one, serial above', async (t) => {
  const current = accepted(acceptKeySet('runtime', null, await keySetEnvelope(keySetDocument('runtime', 1, 2, [a, b, c]), [a, b]), NOW));
  const next = keySetDocument('runtime', 2, 2, [c, d, e]);
  const rotated = accepted(acceptKeySet('runtime', current, await keySetEnvelope(next, [a, b, d, e]), NOW));
  t.equal(rotated.document.serial, 2);
  // c is in both sets: it counts once toward each threshold, so c plus one more of each is needed.
  t.equal(codeOf(acceptKeySet('runtime', current, await keySetEnvelope(next, [a, c, d]), NOW)), 'ACCEPTED', 'a shared key counts in both sets');
  const belowOld = acceptKeySet('runtime', current, await keySetEnvelope(next, [a, d, e]), NOW);
  t.equal(codeOf(belowOld), 'SIGNATURE_THRESHOLD_NOT_MET', 'one key of the current set');
  t.equal(belowOld instanceof BulwarkError ? belowOld.details['signedBy'] : '', 'current');
  const belowNew = acceptKeySet('runtime', current, await keySetEnvelope(next, [a, b, d]), NOW);
  t.equal(codeOf(belowNew), 'SIGNATURE_THRESHOLD_NOT_MET', 'one key of the new set');
  t.equal(belowNew instanceof BulwarkError ? belowNew.details['signedBy'] : '', 'new');
  t.equal(codeOf(acceptKeySet('runtime', current, await keySetEnvelope(next, [d, e]), NOW)), 'SIGNATURE_INVALID', 'new keys alone cannot rotate');
  // Rollback and replay: the serial must grow.
  const replay = await keySetEnvelope(keySetDocument('runtime', 1, 2, [a, b, c]), [a, b, c]);
  t.equal(codeOf(acceptKeySet('runtime', rotated, await keySetEnvelope(keySetDocument('runtime', 1, 1, [c]), [c, d, e]), NOW)), 'KEYSET_ROLLBACK', 'an older serial');
  t.equal(codeOf(acceptKeySet('runtime', current, replay, NOW)), 'KEYSET_ROLLBACK', 'the same serial again');
  t.equal(codeOf(acceptKeySet('runtime', rotated, await keySetEnvelope(keySetDocument('runtime', 2, 2, [c, d]), [c, d, e]), NOW)), 'KEYSET_ROLLBACK', 'an equal serial with other keys');
  // An old set's keys cannot rotate the new set.
  t.equal(codeOf(acceptKeySet('runtime', rotated, await keySetEnvelope(keySetDocument('runtime', 3, 1, [a]), [a, b]), NOW)), 'SIGNATURE_INVALID');
  // A stored envelope read back: self-signed check only.
  t.equal(trustKeySet('runtime', await keySetEnvelope(next, [a, b, d, e])).document.serial, 2);
});

t.test('signed documents verify against the set of their kind', async (t) => {
  const set = accepted(acceptKeySet('runtime', null, await keySetEnvelope(keySetDocument('runtime', 1, 2, [a, b, c]), [a, b]), NOW));
  const doc = { version: 1, entries: [] };
  t.same(JSON.parse(new TextDecoder().decode(verifyWithKeySet(await signPolicy('runtime', doc, [a, c]), set, NOW).payload)), doc);
  const refusals: [string, string][] = [
    [await signPolicy('runtime', doc, [d, e]), 'SIGNATURE_INVALID'],
    [await signPolicy('runtime', doc, [a]), 'SIGNATURE_THRESHOLD_NOT_MET'],
    [await signText(PAYLOAD_TYPES.baseline, doc, [a, b]), 'PAYLOAD_TYPE_MISMATCH'],
    ['not an envelope', 'ENVELOPE_MALFORMED'],
  ];
  const env = parseEnvelope(await signPolicy('runtime', doc, [a, b]));
  const altered = new Uint8Array(env.payload);
  altered[altered.length - 2] = (altered[altered.length - 2] ?? 0) ^ 1;
  refusals.push([encodeEnvelope({ ...env, payload: altered }), 'SIGNATURE_INVALID']);
  for (const [text, code] of refusals) t.throws(() => verifyWithKeySet(text, set, NOW), { code }, code);
  const expiring = accepted(acceptKeySet('runtime', null, await keySetEnvelope(keySetDocument('runtime', 1, 1, [a], { expires: '2027-01-01T00:00:00Z' }), [a]), NOW));
  t.throws(() => verifyWithKeySet(signedByA, expiring, Date.parse('2027-02-01T00:00:00Z')), { code: 'KEYSET_EXPIRED' });
});
const signedByA = await signPolicy('runtime', { version: 1 }, [a]);

t.test('verifyBaselineEnvelope: the agent verifies a baseline before parsing it', async (t) => {
  const set = accepted(acceptKeySet('baseline', null, await keySetEnvelope(keySetDocument('baseline', 1, 1, [a]), [a]), NOW));
  const baseline = JSON.stringify(DEFAULT_BASELINE);
  const good = await signPolicy('baseline', baseline, [a]);
  t.equal(verifyBaselineEnvelope(good, set, NOW).verified.keys.length, 1);
  t.same(verifyBaselineEnvelope(new TextEncoder().encode(good), set, NOW).baseline, DEFAULT_BASELINE, 'bytes in, the signed baseline out');
  const untrusted = await signPolicy('baseline', baseline, [b]);
  t.throws(() => verifyBaselineEnvelope(untrusted, set, NOW), { code: 'SIGNATURE_INVALID' });
  t.throws(() => verifyBaselineEnvelope(signedByA, set, NOW), { code: 'PAYLOAD_TYPE_MISMATCH' });
  const notBaseline = await signPolicy('baseline', '{"not":"a baseline"}', [a]);
  t.throws(() => verifyBaselineEnvelope(notBaseline, set, NOW), { code: 'BASELINE_INVALID' });
  const runtimeSet = accepted(acceptKeySet('runtime', null, await keySetEnvelope(keySetDocument('runtime', 1, 1, [a]), [a]), NOW));
  t.throws(() => verifyBaselineEnvelope(good, runtimeSet, NOW), { code: 'USAGE' });
});

t.test('acceptKeySetChain: rotations walked in order, stopping at the first refused; only the last set must not have expired', async (t) => {
  const first = accepted(acceptKeySet('baseline', null, await keySetEnvelope(keySetDocument('baseline', 1, 1, [a]), [a]), NOW));
  const expiredSecond = await keySetEnvelope(keySetDocument('baseline', 2, 1, [b], { expires: '2026-06-01T00:00:00Z' }), [a, b]);
  const third = await keySetEnvelope(keySetDocument('baseline', 3, 1, [c]), [b, c]);
  const walked = acceptKeySetChain('baseline', first, [expiredSecond, third], NOW);
  t.same([walked.keyset.document.serial, walked.accepted, walked.refused], [3, 2, null], 'an intermediate set that expired since still hands trust on (TUF 5.3)');
  const last = acceptKeySetChain('baseline', first, [expiredSecond], NOW);
  t.same([last.keyset.document.serial, last.accepted, last.refused?.code], [1, 0, 'KEYSET_EXPIRED'], 'the set reached must not have expired');
  const forged = await keySetEnvelope(keySetDocument('baseline', 2, 1, [d]), [d]);
  const stopped = acceptKeySetChain('baseline', first, [forged, third], NOW);
  t.same([stopped.keyset.document.serial, stopped.accepted, stopped.refused?.code], [1, 0, 'SIGNATURE_INVALID'], 'a forged set ends the walk');
  t.same(acceptKeySetChain('baseline', first, [], NOW).accepted, 0);
});

t.test('pinnedKeySet: PEM keys as a set of serial 0 that rotates to a set signed by a threshold of them', async (t) => {
  const pinned = pinnedKeySet('baseline', trustedKeySet([createPublicKey(a.publicKeyPem), createPublicKey(c.publicKeyPem)]), 2);
  t.same([pinned.document.serial, pinned.document.threshold, pinned.document.keys.length, pinned.expiresAt], [0, 2, 2, null]);
  t.equal(trustKeySet('baseline', await keySetEnvelope({ ...pinned.document, serial: 1 }, [a, c])).document.keys[0]?.publicKeyPem, a.publicKeyPem, 'the PEM keys round-trip');
  const next = await keySetEnvelope(keySetDocument('baseline', 1, 1, [b]), [a, c, b]);
  t.equal(codeOf(acceptKeySet('baseline', pinned, next, NOW)), 'ACCEPTED');
  t.equal(codeOf(acceptKeySet('baseline', pinned, await keySetEnvelope(keySetDocument('baseline', 1, 1, [b]), [a, b]), NOW)), 'SIGNATURE_THRESHOLD_NOT_MET', 'one of two pinned keys');
  t.throws(() => pinnedKeySet('baseline', trustedKeySet([createPublicKey(a.publicKeyPem)]), 2), { code: 'KEYSET_INVALID' });
});
