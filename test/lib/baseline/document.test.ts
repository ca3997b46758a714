/**
 * Baseline documents: policies/baselines/default.json is DEFAULT_BASELINE and validates;
 * every kind of bad document is BASELINE_INVALID naming the JSON path of the problem.
 */
import t from 'tap';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DEFAULT_BASELINE, cidrProblem, parseBaselineJson, validateBaseline, type NftablesBaseline, type SelinuxBaseline } from '../../../lib/baseline/index.js';
import { BulwarkError } from '../../../lib/errors.js';
import { REPO_ROOT } from '../../tools/schemas.js';

t.test('policies/baselines/default.json validates and is DEFAULT_BASELINE', async (t) => {
  const text = await readFile(join(REPO_ROOT, 'policies/baselines/default.json'), 'utf8');
  const parsed = parseBaselineJson(text, 'default.json');
  t.same(parsed, DEFAULT_BASELINE);
  t.same(validateBaseline(DEFAULT_BASELINE), DEFAULT_BASELINE);
  t.same(
    DEFAULT_BASELINE.nftables?.inbound.map((s) => `${s.protocol}/${s.port}`),
    ['tcp/22', 'tcp/443'],
    'only ssh and https inbound',
  );
  t.equal(DEFAULT_BASELINE.nftables?.forward.policy, 'drop');
  t.ok(DEFAULT_BASELINE.nftables?.foreignTables.some((f) => f.family === 'inet' && f.name === 'f2b-table'), 'fail2ban');
});

type Mutable<T> = T extends readonly (infer U)[] ? Mutable<U>[] : T extends object ? { -readonly [K in keyof T]: Mutable<T[K]> } : T;

/** A default document to break, its parts writable (and open to keys the schema refuses). */
interface Doc {
  version: number;
  mode: string;
  nftables: Mutable<NftablesBaseline> & Record<string, unknown>;
  selinux: Mutable<SelinuxBaseline>;
}

function clone(): Doc {
  return JSON.parse(JSON.stringify(DEFAULT_BASELINE)) as Doc;
}

function at<T>(list: readonly T[], i: number): T {
  const v = list[i];
  if (v === undefined) throw new Error(`no item ${i}`);
  return v;
}

const cases: readonly [string, (d: Doc) => void, string][] = [
  ['version 2', (d) => (d.version = 2), '/version'],
  ['mode', (d) => (d.mode = 'audit'), '/mode'],
  ['port 0', (d) => (at(d.nftables.inbound, 0).port = 0), '/nftables/inbound/0/port'],
  ['port 65536', (d) => (at(d.nftables.inbound, 1).port = 65536), '/nftables/inbound/1/port'],
  ['toPort below port', (d) => (at(d.nftables.inbound, 1).toPort = 80), '/nftables/inbound/1/toPort'],
  ['bad CIDR', (d) => (at(d.nftables.inbound, 0).sources = ['10.0.0.0/33']), '/nftables/inbound/0/sources/0'],
  ['host bits', (d) => (at(d.nftables.inbound, 0).sources = ['192.0.2.1/24']), '/nftables/inbound/0/sources/0'],
  ['not an address', (d) => (at(d.nftables.inbound, 0).sources = ['example.com']), '/nftables/inbound/0/sources/0'],
  ['table name', (d) => (d.nftables.table = 'bul wark'), '/nftables/table'],
  ['foreign family', (d) => (at(d.nftables.foreignTables, 0).family = 'ipx' as 'ip'), '/nftables/foreignTables/0/family'],
  ['foreign twice', (d) => d.nftables.foreignTables.push({ ...at(d.nftables.foreignTables, 0) }), '/nftables/foreignTables/8'],
  ['foreign is own', (d) => d.nftables.foreignTables.push({ family: 'inet', name: 'bul*', owner: 'x' }), '/nftables/foreignTables/8'],
  ['exemption without interface', (d) => d.nftables.forward.exemptions.push({ comment: 'x' }), '/nftables/forward/exemptions/0'],
  ['unknown key', (d) => (d.nftables.extra = 1), '/nftables'],
  ['boolean name', (d) => (d.selinux.booleans['bad name'] = true), '/selinux/booleans'],
  ['policy hash', (d) => (d.selinux.policyHash = 'ABC'), '/selinux/policyHash'],
  ['required and forbidden', (d) => ((d.selinux.requiredModules = ['apache']), (d.selinux.forbiddenModules = ['apache'])), '/selinux/forbiddenModules/0'],
];

t.test('bad documents: BASELINE_INVALID at the JSON path', async (t) => {
  for (const [name, mutate, path] of cases) {
    const d = clone();
    mutate(d);
    const err = t.throws(() => validateBaseline(d), name);
    t.ok(err instanceof BulwarkError && err.code === 'BASELINE_INVALID', `${name}: code`);
    if (err instanceof BulwarkError) t.match(String(err.details['path']), path, `${name}: path ${String(err.details['path'])}`);
  }
  t.throws(() => parseBaselineJson('{"version":1,'), { code: 'BASELINE_INVALID' }, 'not JSON');
  const nulls = { ...clone(), selinux: null, nftables: null };
  t.same(validateBaseline(nulls).selinux, null, 'either part may be null');
});

t.test('CIDR checks', async (t) => {
  for (const ok of ['0.0.0.0/0', '10.0.0.0/8', '192.0.2.7', '2001:db8::/32', '::/0', '::1', 'fe80::1:2/128', '::ffff:192.0.2.0/120']) t.equal(cidrProblem(ok), null, ok);
  for (const bad of ['10.0.0.0/8/8', '256.0.0.0/8', '10.0.0/8', '1:2:3:4:5:6:7:8:9', '2001:db8::1/32', '01.2.3.4', '::/129', 'fe80:::1']) t.not(cidrProblem(bad), null, bad);
});
