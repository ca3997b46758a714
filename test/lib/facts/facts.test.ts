import t from 'tap';
import { BulwarkError } from '../../../lib/errors.js';
import { FACTS_LIMITS, factsDigest, sanitizeFactText, validateHostFacts, type HostFacts } from '../../../lib/facts/facts.js';

const GOOD: HostFacts = {
  hostname: 'node-01.example.org',
  osDistro: 'Debian GNU/Linux',
  osRelease: '12',
  kernel: '6.1.0-18-amd64',
  arch: 'x64',
  cpu: 'AMD EPYC 7302',
  cpuCores: 32,
  memoryBytes: 68719476736,
  disks: [{ device: '/dev/nvme0n1', type: 'NVMe', sizeBytes: 960197124096, serial: 'S4EWNX0R123456' }],
  interfaces: [{ name: 'eno1', mac: '3c:ec:ef:01:02:03', addresses: ['192.0.2.10', 'fe80::3eec:efff:fe01:203'] }],
  machineId: '3d1219c7c4c5404aaa1f6d2a48adfda4',
  systemManufacturer: 'Supermicro',
  systemModel: 'AS-1114S-WN10RT',
  systemSerial: 'S123456X1234567',
  systemUuid: '00000000-0000-0000-0000-3cecef010203',
  boardManufacturer: 'Supermicro',
  boardModel: 'H12SSW-NT',
  boardSerial: 'UM123456789',
};

/** A JSON round trip: what the controller would get from a peer. */
function fromJson(json: string): unknown {
  return JSON.parse(json);
}

function refused(t: Pick<typeof import('tap').default, 'ok' | 'fail'>, value: unknown, what: string, field?: string): void {
  try {
    validateHostFacts(value);
    t.fail(`${what}: accepted`);
  } catch (err) {
    const ok = err instanceof BulwarkError && err.code === 'EVIDENCE_MALFORMED' && (field === undefined || err.details['path'] === field);
    t.ok(ok, `${what}: ${err instanceof BulwarkError ? `${err.code} ${err.message}` : String(err)}`);
  }
}

t.test('valid facts pass and come back as a fresh copy', async (t) => {
  const input = fromJson(JSON.stringify(GOOD));
  const out = validateHostFacts(input);
  t.same(out, GOOD);
  t.not(out, input);
  t.not(out.disks, GOOD.disks);
  const empty = { ...GOOD, disks: [], interfaces: [], hostname: '', machineId: '', cpuCores: 0 };
  t.same(validateHostFacts(empty), empty, 'empty values are allowed (containers)');
  t.same(validateHostFacts(Object.assign(Object.create(null), GOOD)), GOOD, 'null-prototype objects are plain too');
});

t.test('wrong types are refused, naming the field', async (t) => {
  const cases: ReadonlyArray<readonly [string, unknown, string]> = [
    ['hostname number', { ...GOOD, hostname: 42 }, '/hostname'],
    ['hostname null', { ...GOOD, hostname: null }, '/hostname'],
    ['cpuCores string', { ...GOOD, cpuCores: '32' }, '/cpuCores'],
    ['cpuCores negative', { ...GOOD, cpuCores: -1 }, '/cpuCores'],
    ['cpuCores fraction', { ...GOOD, cpuCores: 1.5 }, '/cpuCores'],
    ['memory NaN', { ...GOOD, memoryBytes: Number.NaN }, '/memoryBytes'],
    ['memory beyond 2^53', { ...GOOD, memoryBytes: 2 ** 60 }, '/memoryBytes'],
    ['memory bigint', { ...GOOD, memoryBytes: 10n }, '/memoryBytes'],
    ['disks object', { ...GOOD, disks: { 0: GOOD.disks[0] } }, '/disks'],
    ['disk size string', { ...GOOD, disks: [{ ...GOOD.disks[0], sizeBytes: '1' }] }, '/disks/0/sizeBytes'],
    ['disk missing serial', { ...GOOD, disks: [{ device: '/dev/sda', type: 'HDD', sizeBytes: 1 }] }, '/disks/0/serial'],
    ['address number', { ...GOOD, interfaces: [{ name: 'e', mac: '', addresses: [1] }] }, '/interfaces/0/addresses/0'],
    ['interface array', { ...GOOD, interfaces: [['eth0']] }, '/interfaces/0'],
    ['missing key', (({ boardSerial: _drop, ...rest }) => rest)(GOOD), '/boardSerial'],
  ];
  for (const [what, value, field] of cases) refused(t, value, what, field);
  for (const v of [null, undefined, 'facts', 42, [], new Date(), new Map()]) refused(t, v, `top level ${Object.prototype.toString.call(v)}`);
});

t.test('hostile values are refused', async (t) => {
  refused(t, { ...GOOD, hostname: 'a'.repeat(FACTS_LIMITS.hostname + 1) }, 'hostname over the cap', '/hostname');
  refused(t, { ...GOOD, kernel: 'k'.repeat(10 * 1024 * 1024) }, '10 MiB string', '/kernel');
  refused(t, { ...GOOD, disks: Array.from({ length: FACTS_LIMITS.disks + 1 }, () => GOOD.disks[0]) }, 'too many disks', '/disks');
  refused(t, { ...GOOD, interfaces: [{ name: 'e', mac: '', addresses: Array.from({ length: 65 }, () => '10.0.0.1') }] }, 'too many addresses', '/interfaces/0/addresses');
  refused(t, { ...GOOD, hostname: 'evil\u001b[2J' }, 'terminal escape', '/hostname');
  refused(t, { ...GOOD, systemSerial: 'a\u0000b' }, 'NUL', '/systemSerial');
  refused(t, { ...GOOD, cpu: 'x\u0085y' }, 'C1 control', '/cpu');
  refused(t, { ...GOOD, boardModel: 'bad\uD800' }, 'lone surrogate', '/boardModel');
  refused(t, { ...GOOD, extra: 'x' }, 'unknown key', '/extra');
  // JSON.parse makes "__proto__" an own property (it does not set the prototype).
  refused(t, fromJson(JSON.stringify(GOOD).replace(/^\{/, '{"__proto__":{"isAdmin":true},')), '__proto__ key', '/__proto__');
  refused(t, fromJson(JSON.stringify(GOOD).replace(/^\{/, '{"constructor":{"prototype":{"x":1}},')), 'constructor key', '/constructor');
  refused(t, { ...GOOD, disks: [fromJson(JSON.stringify(GOOD.disks[0]).replace(/^\{/, '{"__proto__":null,'))] }, 'nested __proto__');
  refused(t, { ...GOOD, [Symbol('s')]: 1 }, 'symbol key');
  refused(t, Object.assign(Object.create({ inherited: true }), GOOD), 'non-plain prototype');
  const withGetter = { ...GOOD };
  Object.defineProperty(withGetter, 'hostname', { get: () => 'x', enumerable: true });
  refused(t, withGetter, 'accessor property', '/hostname');
  const sparse: unknown[] = [];
  sparse.length = 1;
  refused(t, { ...GOOD, disks: sparse }, 'sparse array', '/disks/0');
  const trap = new Proxy(
    {},
    {
      ownKeys() {
        throw new Error('trap');
      },
    },
  );
  refused(t, trap, 'proxy whose trap throws');
  t.equal(Reflect.get({}, 'isAdmin'), undefined, 'no prototype was polluted');
});

t.test('factsDigest: canonical (key order does not matter), sensitive to every value', async (t) => {
  const d = factsDigest(GOOD);
  t.match(d, /^[0-9a-f]{64}$/);
  const reordered = fromJson(JSON.stringify(Object.fromEntries(Object.entries(GOOD).reverse())));
  t.equal(factsDigest(validateHostFacts(reordered)), d, 'same facts, other key order, same digest');
  t.not(factsDigest({ ...GOOD, kernel: '6.1.0-19-amd64' }), d);
  t.not(factsDigest({ ...GOOD, disks: [] }), d);
  t.not(factsDigest({ ...GOOD, interfaces: [{ name: 'eno1', mac: '3c:ec:ef:01:02:03', addresses: ['192.0.2.11'] }] }), d);
  t.not(factsDigest({ ...GOOD, memoryBytes: GOOD.memoryBytes + 1 }), d);
  // Field boundaries cannot be shifted: "ab" + "c" differs from "a" + "bc".
  t.not(factsDigest({ ...GOOD, osDistro: 'ab', osRelease: 'c' }), factsDigest({ ...GOOD, osDistro: 'a', osRelease: 'bc' }));
  t.throws(() => factsDigest({ ...GOOD, hostname: 'x\u0000' }), { code: 'EVIDENCE_MALFORMED' }, 'only valid facts have a digest');
});

t.test('sanitizeFactText makes collected text valid', async (t) => {
  t.equal(sanitizeFactText('  Super\u0000micro\n '), 'Super micro');
  t.equal(sanitizeFactText(undefined), '');
  t.equal(sanitizeFactText(12), '');
  t.equal(sanitizeFactText('x'.repeat(1000)).length, FACTS_LIMITS.string);
  t.equal(sanitizeFactText('bad\uDC00'), 'bad\uFFFD');
  // A cut that would split a surrogate pair drops the high half.
  const cut = sanitizeFactText('a'.repeat(FACTS_LIMITS.string - 1) + '😀');
  t.equal(cut, 'a'.repeat(FACTS_LIMITS.string - 1));
  const kept = sanitizeFactText('a'.repeat(FACTS_LIMITS.string - 2) + '😀');
  t.equal(kept, 'a'.repeat(FACTS_LIMITS.string - 2) + '😀');
  t.same(validateHostFacts({ ...GOOD, cpu: cut, kernel: kept }).cpu, cut);
});
