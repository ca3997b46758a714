/**
 * The revocation list as a value: revoke, look up under any spelling of a serial, merge
 * in any order to the same list, prune entries of expired certificates, and refuse a
 * revoked identity.
 */
import t from 'tap';
import { BulwarkError, type ErrorCode } from '../../../lib/errors.js';
import {
  checkNotRevoked,
  emptyRevocationList,
  isRevoked,
  mergeRevocationLists,
  normalizeSerial,
  pruneRevocationList,
  revokeCertificate,
  type ClientIdentity,
  type RevocationList,
} from '../../../lib/pki/index.js';

function codeOf(fn: () => unknown): ErrorCode | 'returned' | 'not-a-BulwarkError' {
  try {
    fn();
    return 'returned';
  } catch (err) {
    return err instanceof BulwarkError ? err.code : 'not-a-BulwarkError';
  }
}

const entry = (serial: string, revokedAt: number, notAfter = 10_000): { serial: string; revokedAt: number; notAfter: number; subject: string } => ({
  serial,
  revokedAt,
  notAfter,
  subject: `s-${serial}`,
});

const sorted = (l: RevocationList): string[] => [...l.entries.values()].map((e) => `${e.serial}@${e.revokedAt}`).sort();

t.test('serials in every spelling are one serial', async (t) => {
  t.equal(normalizeSerial('5A:9D:55:F7'), '5a9d55f7');
  t.equal(normalizeSerial('005a9d'), '5a9d');
  t.equal(normalizeSerial('abc'), '0abc');
  t.equal(normalizeSerial('0080'), '80');
  for (const bad of ['', '00', 'xyz', '12 34', 'a'.repeat(43)]) t.equal(codeOf(() => normalizeSerial(bad)), 'PKI_SERIAL_INVALID', `"${bad}"`);
});

t.test('revoke, look up, refuse', async (t) => {
  const empty = emptyRevocationList();
  const one = revokeCertificate(empty, entry('AB:CD', 5));
  t.equal(empty.entries.size, 0, 'lists are values: the old one is unchanged');
  t.ok(isRevoked(one, 'abcd'));
  t.ok(isRevoked(one, '00ABCD'));
  t.notOk(isRevoked(one, 'abce'));
  t.equal(revokeCertificate(one, entry('abcd', 9)), one, 'revoking again keeps the first revocation');
  t.same(sorted(revokeCertificate(one, entry('abcd', 1))), ['abcd@1'], 'an earlier revocation time wins');
  const person: ClientIdentity = { kind: 'person', name: 'alice', role: 'admin', serial: 'abcd', notAfter: 10_000 };
  const node: ClientIdentity = { kind: 'node', nodeId: 'host-1', akName: '000b', serial: 'abce', notAfter: 10_000 };
  t.equal(codeOf(() => checkNotRevoked(one, person)), 'PKI_CERT_REVOKED');
  t.equal(codeOf(() => checkNotRevoked(one, node)), 'returned');
});

t.test('merging is order-free and keeps the earliest revocation', async (t) => {
  const a = [entry('01', 5), entry('02', 7)].reduce(revokeCertificate, emptyRevocationList());
  const b = [entry('02', 3), entry('03', 9)].reduce(revokeCertificate, emptyRevocationList());
  const ab = mergeRevocationLists(a, b);
  const ba = mergeRevocationLists(b, a);
  t.same(sorted(ab), ['01@5', '02@3', '03@9']);
  t.same(sorted(ba), sorted(ab));
  t.same(sorted(mergeRevocationLists(ab, ab)), sorted(ab), 'idempotent');
});

t.test('pruning drops only entries of expired certificates', async (t) => {
  const l = [entry('01', 1, 100), entry('02', 1, 200)].reduce(revokeCertificate, emptyRevocationList());
  t.same(sorted(pruneRevocationList(l, new Date(150))), ['02@1']);
  t.equal(pruneRevocationList(l, new Date(50)), l, 'nothing to prune gives the same list');
});
