/**
 * Stored node records: decoded through one schema, a missing version read as 1, every
 * wrong field and every kind of garbage a STORE_CORRUPT naming the JSON path (never a
 * SyntaxError or TypeError), and the stand-in a corrupt record is listed as.
 */
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { BulwarkError } from '../../../lib/errors.js';
import { corruptNodeRecord, decodeNodeRecord, encodeNodeRecord, EMPTY_ATTESTATION, type NodeRecord } from '../../../lib/attestation/node-record.js';
import { testFacts } from '../../helpers/fleet.js';

const record: NodeRecord = {
  version: 1,
  nodeId: 'node-1',
  state: 'untrusted',
  reasons: [
    { code: 'PCR_CHANGED_WITHIN_BOOT', message: 'PCR 7 changed', details: { pcr: 7, bank: 'sha256', sticky: true, pcrs: [0, 7] } },
    { code: 'QUOTE_NONCE_MISMATCH', message: 'wrong nonce' },
  ],
  stateSince: '2026-01-01T00:00:00.000Z',
  enrolledAt: '2025-12-31T00:00:00.000Z',
  ekType: 'ecc',
  ekPublic: '0023000b',
  ekCertificateSubject: 'CN=test',
  akPublic: '0001000b',
  akName: '000b' + 'ab'.repeat(32),
  facts: testFacts('node-1'),
  factsDigest: 'cd'.repeat(32),
  lastEvidenceAt: '2026-01-01T00:00:00.000Z',
  lastVerdictAt: null,
  attestation: { resetCount: 3, restartCount: 0, clock: '123456789', bootId: 'b1', bootPcrs: { '0': 'ef'.repeat(32) } },
  requiresReenrollment: true,
  reenrollApproved: false,
  nomadNode: null,
};

/** The record as a JSON object, with `change` applied. */
function mutated(change: (o: Record<string, unknown>) => void): string {
  const o: Record<string, unknown> = JSON.parse(encodeNodeRecord(record));
  change(o);
  return JSON.stringify(o);
}

t.test('a record round-trips, from text and from bytes', async (t) => {
  t.same(decodeNodeRecord(encodeNodeRecord(record)), record);
  t.same(decodeNodeRecord(new TextEncoder().encode(encodeNodeRecord(record)), 'node-1'), record, 'read under its own key');
  const fresh: NodeRecord = { ...record, state: 'enrolled', reasons: [], facts: null, attestation: EMPTY_ATTESTATION };
  t.same(decodeNodeRecord(encodeNodeRecord(fresh)), fresh, 'a freshly enrolled record without facts');
});

t.test('a record written without version reads as version 1', async (t) => {
  const old = decodeNodeRecord(mutated((o) => delete o['version']), 'node-1');
  t.equal(old.version, 1);
  t.same(old, record);
});

t.test('wrong fields are STORE_CORRUPT with the JSON path', async (t) => {
  const cases: ReadonlyArray<readonly [string, (o: Record<string, unknown>) => void]> = [
    ['/version', (o) => (o['version'] = 2)],
    ['/state', (o) => (o['state'] = 'trusted-ish')],
    ['/nodeId', (o) => (o['nodeId'] = 42)],
    ['/ekType', (o) => (o['ekType'] = 'dsa')],
    ['/reasons/0/code', (o) => (o['reasons'] = [{ code: 'NOT_A_CODE', message: 'x' }])],
    ['/reasons/0/message', (o) => (o['reasons'] = [{ code: 'NODE_STALE' }])],
    ['/attestation/resetCount', (o) => (o['attestation'] = { ...EMPTY_ATTESTATION, resetCount: 'garbage' })],
    ['/attestation/bootPcrs', (o) => (o['attestation'] = { ...EMPTY_ATTESTATION, bootPcrs: { '0': 'XYZ' } })],
    ['/requiresReenrollment', (o) => (o['requiresReenrollment'] = 'yes')],
    ['/akPublic', (o) => (o['akPublic'] = 'not hex')],
    ['/surprise', (o) => (o['surprise'] = true)],
    ['/lastVerdictAt', (o) => delete o['lastVerdictAt']],
    ['/facts', (o) => (o['facts'] = { hostname: 'x' })],
  ];
  for (const [path, change] of cases) {
    t.throws(() => decodeNodeRecord(mutated(change), 'node-1'), { code: 'STORE_CORRUPT', details: { path, source: 'bulwark_nodes/node-1' } }, path);
  }
  t.throws(() => decodeNodeRecord(encodeNodeRecord(record), 'node-2'), { code: 'STORE_CORRUPT', details: { path: '/nodeId' } }, 'a record under another node key');
});

t.test('garbage bytes are STORE_CORRUPT, never another error', async (t) => {
  const garbage: Array<string | Uint8Array> = [
    '',
    'not json',
    '{"version":1,',
    'null',
    '[]',
    '"a string"',
    '42',
    new Uint8Array([0xff, 0xfe, 0x00, 0x7b]),
    '['.repeat(100) + ']'.repeat(100),
    JSON.stringify({ __proto__: null, version: 1 }),
    '{"__proto__": {"state": "trusted"}}',
  ];
  for (let i = 0; i < 200; i++) garbage.push(randomBytes(1 + (i % 64)));
  let ok = 0;
  for (const g of garbage) {
    try {
      decodeNodeRecord(g, 'node-1');
      t.fail(`accepted ${String(g).slice(0, 40)}`);
    } catch (err) {
      if (err instanceof BulwarkError && err.code === 'STORE_CORRUPT' && typeof err.details['path'] === 'string') ok++;
      else t.fail(`not a coded error: ${String(err)}`);
    }
  }
  t.equal(ok, garbage.length, 'every input refused with STORE_CORRUPT and a path');
  t.equal(Reflect.get({}, 'state'), undefined, 'no prototype was polluted');
});

t.test('a corrupt record is listed as an untrusted STATE_CORRUPT stand-in', async (t) => {
  let error: BulwarkError | null = null;
  try {
    decodeNodeRecord(mutated((o) => (o['state'] = 7)), 'node-1');
  } catch (err) {
    if (err instanceof BulwarkError) error = err;
  }
  if (error === null) throw new Error('the mutated record decoded');
  const view = corruptNodeRecord('node-1', error, '2026-01-02T00:00:00.000Z');
  t.equal(view.state, 'untrusted');
  t.same(
    view.reasons.map((r) => [r.code, r.details?.['path']]),
    [['STATE_CORRUPT', '/state']],
  );
  t.equal(view.requiresReenrollment, true, 'only an operator clears it');
  t.equal(view.reenrollApproved, false);
  t.equal(view.akPublic, '', 'no key to verify evidence against');
  t.equal(view.stateSince, '2026-01-02T00:00:00.000Z');
  t.same(decodeNodeRecord(encodeNodeRecord(view)), view, 'the stand-in itself is a valid record (it is still never written)');
});
