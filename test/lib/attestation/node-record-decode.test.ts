/**
 * Stored node records are read back from KV that other replicas (or anyone with NATS write
 * access) can touch: decodeNodeRecord gives a typed record or throws STORE_CORRUPT, never
 * a SyntaxError or TypeError. Tested through its exported functions only.
 */
import t from 'tap';
import { decodeNodeRecord, encodeNodeRecord, EMPTY_ATTESTATION, type NodeRecord } from '../../../lib/attestation/node-record.js';
import type { HostFacts } from '../../../lib/facts/facts.js';

const PCR = 'ab'.repeat(32);

function testFacts(hostname: string): HostFacts {
  return {
    hostname,
    osDistro: 'Debian GNU/Linux',
    osRelease: '12',
    kernel: '6.1.0-test',
    arch: 'x64',
    cpu: 'Test CPU',
    cpuCores: 2,
    memoryBytes: 2 ** 33,
    disks: [{ device: '/dev/vda', type: 'HD', sizeBytes: 2 ** 36, serial: 'disk-1' }],
    interfaces: [{ name: 'eth0', mac: '52:54:00:00:00:01', addresses: ['192.0.2.10'] }],
    machineId: '0123456789abcdef0123456789abcdef',
    systemManufacturer: 'QEMU',
    systemModel: 'Standard PC',
    systemSerial: 'serial-1',
    systemUuid: '00000000-0000-4000-8000-000000000001',
    boardManufacturer: 'QEMU',
    boardModel: 'Q35',
    boardSerial: '',
  };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function sample(over: Partial<NodeRecord> = {}): NodeRecord {
  return {
    version: 1,
    nodeId: 'node-1',
    state: 'untrusted',
    reasons: [{ code: 'PCR_CHANGED_WITHIN_BOOT', message: 'boot PCR 4 changed', details: { pcr: 4, sticky: true, note: 'x' } }],
    stateSince: '2026-01-01T00:00:00.000Z',
    enrolledAt: '2026-01-01T00:00:00.000Z',
    ekType: 'rsa',
    ekPublic: '0001',
    ekCertificateSubject: 'CN=ek',
    akPublic: '0001',
    akName: '000b',
    facts: testFacts('node-1'),
    factsDigest: 'ff',
    lastEvidenceAt: '2026-01-01T00:01:00.000Z',
    lastVerdictAt: '2026-01-01T00:01:00.000Z',
    attestation: { resetCount: 3, restartCount: 0, clock: '123456', bootId: 'boot-1', bootPcrs: { '0': PCR, '7': PCR } },
    requiresReenrollment: true,
    reenrollApproved: false,
    nomadNode: 'nomad-1',
    ...over,
  };
}

/** The sample as a plain JSON object, with `edit` applied to it. */
function edited(edit: (o: Record<string, unknown>, a: Record<string, unknown>) => void): string {
  const o: unknown = JSON.parse(encodeNodeRecord(sample()));
  const attestation: unknown = isObject(o) ? o['attestation'] : undefined;
  if (!isObject(o) || !isObject(attestation)) throw new Error('sample is not an object with an attestation');
  const copy: Record<string, unknown> = { ...o };
  const a: Record<string, unknown> = { ...attestation };
  copy['attestation'] = a;
  edit(copy, a);
  return JSON.stringify(copy);
}

t.test('a record round-trips through encode and decode', async (t) => {
  const r = sample();
  t.same(decodeNodeRecord(encodeNodeRecord(r)), r);
  const fresh = sample({ state: 'enrolled', reasons: [], facts: null, lastEvidenceAt: null, lastVerdictAt: null, attestation: EMPTY_ATTESTATION, nomadNode: null });
  t.same(decodeNodeRecord(encodeNodeRecord(fresh)), fresh, 'a just-enrolled record with every optional field null');
  for (const state of ['unknown', 'enrolled', 'trusted', 'untrusted', 'stale'] as const) {
    t.equal(decodeNodeRecord(encodeNodeRecord(sample({ state }))).state, state, `state ${state}`);
  }
  t.equal(decodeNodeRecord(encodeNodeRecord(sample({ ekType: 'ecc' }))).ekType, 'ecc');
});

t.test('a record missing a field is STORE_CORRUPT naming it (every release wrote every field)', async (t) => {
  for (const [field, path] of [
    ['lastEvidenceAt', '/lastEvidenceAt'],
    ['nomadNode', '/nomadNode'],
  ] as const) {
    t.throws(() => decodeNodeRecord(edited((o) => delete o[field])), { code: 'STORE_CORRUPT', details: { path } }, `without ${field}`);
  }
  t.throws(() => decodeNodeRecord(edited((_o, a) => delete a['clock'])), { code: 'STORE_CORRUPT', details: { path: '/attestation/clock' } });
});

t.test('a record without version reads as version 1', async (t) => {
  t.equal(decodeNodeRecord(edited((o) => delete o['version'])).version, 1);
});

t.test('a finding code this version does not know is STORE_CORRUPT (fail closed), not a string passed on', async (t) => {
  t.throws(() => decodeNodeRecord(edited((o) => (o['reasons'] = [{ code: 'SOME_FUTURE_CODE', message: 'from a newer controller' }]))), {
    code: 'STORE_CORRUPT',
    details: { path: '/reasons/0/code' },
  });
});

t.test('anything malformed is STORE_CORRUPT, never a SyntaxError or TypeError', async (t) => {
  const cases: Array<[string, string]> = [
    ['not JSON', '{"version":1,'],
    ['empty', ''],
    ['JSON null', 'null'],
    ['an array', '[]'],
    ['a string', '"node"'],
    ['another version', edited((o) => (o['version'] = 2))],
    ['nodeId not a string', edited((o) => (o['nodeId'] = 7))],
    ['nodeId missing', edited((o) => delete o['nodeId'])],
    ['unknown state', edited((o) => (o['state'] = 'probably-fine'))],
    ['state not a string', edited((o) => (o['state'] = 1))],
    ['reasons not a list', edited((o) => (o['reasons'] = 'none'))],
    ['a reason without a message', edited((o) => (o['reasons'] = [{ code: 'NODE_STALE' }]))],
    ['a reason that is not an object', edited((o) => (o['reasons'] = ['NODE_STALE']))],
    ['reason details not an object', edited((o) => (o['reasons'] = [{ code: 'NODE_STALE', message: 'm', details: 'x' }]))],
    ['unknown ekType', edited((o) => (o['ekType'] = 'dsa'))],
    ['akPublic missing', edited((o) => delete o['akPublic'])],
    ['facts not an object', edited((o) => (o['facts'] = 'host'))],
    ['lastEvidenceAt a number', edited((o) => (o['lastEvidenceAt'] = 5))],
    ['attestation missing', edited((o) => delete o['attestation'])],
    ['attestation not an object', edited((o) => (o['attestation'] = []))],
    ['negative resetCount', edited((_, a) => (a['resetCount'] = -1))],
    ['fractional restartCount', edited((_, a) => (a['restartCount'] = 1.5))],
    ['resetCount as text', edited((_, a) => (a['resetCount'] = '3'))],
    ['bootPcrs with a non-numeric index', edited((_, a) => (a['bootPcrs'] = { x: PCR }))],
    ['bootPcrs with a short value', edited((_, a) => (a['bootPcrs'] = { '0': 'abcd' }))],
    ['bootPcrs with upper-case hex', edited((_, a) => (a['bootPcrs'] = { '0': PCR.toUpperCase() }))],
    ['bootPcrs a list', edited((_, a) => (a['bootPcrs'] = [PCR]))],
    ['requiresReenrollment as text', edited((o) => (o['requiresReenrollment'] = 'false'))],
    ['reenrollApproved missing', edited((o) => delete o['reenrollApproved'])],
  ];
  for (const [name, text] of cases) t.throws(() => decodeNodeRecord(text), { code: 'STORE_CORRUPT' }, name);
});

t.test('corrupt stored facts are refused', async (t) => {
  const text = edited((o) => (o['facts'] = { ...testFacts('node-1'), cpuCores: 'many' }));
  t.throws(() => decodeNodeRecord(text), { name: 'BulwarkError' }, 'a coded error, not a TypeError');
  t.throws(() => decodeNodeRecord(text), { code: 'STORE_CORRUPT' }, 'a stored record is not evidence: its facts are corrupt data, not malformed evidence');
});

t.test('reason details hold scalars and lists of numbers; anything else is STORE_CORRUPT', async (t) => {
  const r = decodeNodeRecord(edited((o) => (o['reasons'] = [{ code: 'NODE_STALE', message: 'm', details: { a: 1, b: 'x', c: true, e: [1, 7] } }])));
  t.same(r.reasons[0]?.details, { a: 1, b: 'x', c: true, e: [1, 7] });
  t.throws(() => decodeNodeRecord(edited((o) => (o['reasons'] = [{ code: 'NODE_STALE', message: 'm', details: { d: { nested: 1 } } }]))), {
    code: 'STORE_CORRUPT',
    details: { path: '/reasons/0/details/d' },
  });
});
