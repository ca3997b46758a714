/**
 * Hostile `nft -j` documents: cut, deep, huge, of another schema version, of wrong types,
 * mutated at random. Every one is a BulwarkError (BASELINE_REPORT_INVALID) or a defined
 * result that the evaluator and the judge take without crashing.
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import { effectiveExposure, judgeNftables, parseNftRuleset } from '../../../lib/baseline/index.js';
import { mutations, newStats, prng, probe, report, SEED } from '../hostile.js';
import { DEFAULT_BASELINE } from './nft-netns.js';
import { FIXTURE_DIR } from './nft-record.js';

const REFUSED = { code: 'BASELINE_REPORT_INVALID', name: 'BulwarkError' };
const fixture = readFileSync(`${FIXTURE_DIR}default.json`, 'utf8').trimEnd();

t.test('every cut of a recorded ruleset is refused', async (t) => {
  let refused = 0;
  for (let n = 0; n < fixture.length; n++) {
    try {
      parseNftRuleset(fixture.slice(0, n));
    } catch (err) {
      if (err instanceof Error && 'code' in err && err.code === 'BASELINE_REPORT_INVALID') refused++;
    }
  }
  t.equal(refused, fixture.length, `all ${fixture.length} prefixes`);
  t.ok(parseNftRuleset(fixture), 'the whole text parses');
});

t.test('nesting 10,000 deep is refused (as text and as a value)', async (t) => {
  const deep = `{"nftables":[{"table":{"family":"inet","name":"x","handle":${'['.repeat(10_000)}${']'.repeat(10_000)}}}]}`;
  t.throws(() => parseNftRuleset(deep), REFUSED);
  let value: unknown = 1;
  for (let i = 0; i < 10_000; i++) value = [value];
  t.throws(() => parseNftRuleset({ value: { nftables: [{ table: { family: 'inet', name: 'x', handle: value } }] } }), REFUSED);
});

t.test('20 MB is refused before it is parsed', async (t) => {
  const big = `{"nftables":[${'{"table":{"family":"inet","name":"x"}},'.repeat(520_000)}{}]}`;
  t.ok(big.length > 20_000_000);
  t.throws(() => parseNftRuleset(big), { ...REFUSED, message: /larger than/ });
});

t.test('json_schema_version 2 is refused; 1 and none are read', async (t) => {
  const withVersion = (v: unknown): string => fixture.replace('"json_schema_version": 1', `"json_schema_version": ${JSON.stringify(v)}`);
  t.throws(() => parseNftRuleset(withVersion(2)), { ...REFUSED, message: /json_schema_version 2 is not known/ });
  t.throws(() => parseNftRuleset(withVersion('1')), REFUSED);
  t.ok(parseNftRuleset(withVersion(1)));
  t.ok(parseNftRuleset(fixture.replace(', "json_schema_version": 1', '')));
});

t.test('wrong types where the shape matters are refused', async (t) => {
  const cases: Array<[string, unknown]> = [
    ['not an object', [1, 2]],
    ['nftables not a list', { nftables: {} }],
    ['an entry with two kinds', { nftables: [{ table: { family: 'inet', name: 'x' }, chain: {} }] }],
    ['a table name that is a number', { nftables: [{ table: { family: 'inet', name: 7 } }] }],
    ['a policy that is not accept or drop', { nftables: [{ table: { family: 'inet', name: 'x' } }, { chain: { family: 'inet', table: 'x', name: 'c', hook: 'input', prio: 0, policy: 'maybe' } }] }],
    ['a priority that is an object', { nftables: [{ table: { family: 'inet', name: 'x' } }, { chain: { family: 'inet', table: 'x', name: 'c', hook: 'input', prio: {} } }] }],
    ['rule expressions that are not a list', { nftables: [{ table: { family: 'inet', name: 'x' } }, { chain: { family: 'inet', table: 'x', name: 'c' } }, { rule: { family: 'inet', table: 'x', chain: 'c', expr: 'accept' } }] }],
    ['set elements that are not a list', { nftables: [{ table: { family: 'inet', name: 'x' } }, { set: { family: 'inet', table: 'x', name: 's', elem: 5 } }] }],
  ];
  for (const [label, value] of cases) {
    t.throws(() => parseNftRuleset({ value }), REFUSED, label);
    t.throws(() => parseNftRuleset(JSON.stringify(value)), REFUSED, `${label} (text)`);
  }
  const cyclic: Record<string, unknown> = {};
  cyclic['nftables'] = [cyclic];
  t.throws(() => parseNftRuleset({ value: cyclic }), REFUSED, 'a cyclic value');
  t.throws(() => parseNftRuleset({ value: { nftables: [{ x: 1n }] } }), REFUSED, 'a BigInt');
  t.throws(() => parseNftRuleset({ value: undefined }), REFUSED, 'undefined');
  t.throws(() => parseNftRuleset(Uint8Array.of(0xff, 0xfe)), REFUSED, 'not UTF-8');
});

t.test('unknown expression kinds and odd values give a defined exposure', async (t) => {
  const odd = [
    { 'ipsec-thing': { dir: 'in' } },
    { match: { op: '==', left: { payload: { protocol: 'tcp', field: 'dport' } }, right: { set: [{ prefix: { addr: 22, len: 'x' } }] } } },
    { match: { op: '~', left: null, right: [] } },
    { match: { op: '==', left: { payload: { protocol: 'tcp', field: 'dport' } }, right: { range: ['a', 99999] } } },
    { vmap: { key: { meta: { key: 'l4proto' } }, data: '@missing' } },
    { jump: { target: 7 } },
    'accept',
    null,
    { accept: null },
  ];
  const value = {
    nftables: [
      { table: { family: 'inet', name: 'bulwark' } },
      { chain: { family: 'inet', table: 'bulwark', name: 'input', type: 'filter', hook: 'input', prio: -10, policy: 'drop' } },
      { rule: { family: 'inet', table: 'bulwark', chain: 'input', expr: odd } },
      { rule: { family: 'inet', table: 'bulwark', chain: 'input', expr: [{ goto: { target: 'nowhere' } }] } },
      { flowtable: { family: 'inet', table: 'bulwark', name: 'f', hook: 'ingress', prio: 0, dev: ['eth0'] } },
      { 'ct helper': { family: 'inet', table: 'bulwark', name: 'ftp', type: 'ftp' } },
    ],
  };
  const ruleset = parseNftRuleset({ value });
  const e = effectiveExposure(ruleset);
  t.same(e.tcp, [], 'nothing open outright');
  t.ok(e.conditional.length > 0 && e.otherProtocols, 'conditional reachability from what cannot be decided');
  t.ok(judgeNftables(DEFAULT_BASELINE, ruleset).length > 0);
  t.same(parseNftRuleset({ value: ruleset.json }).json, ruleset.json, 'unknown objects survive normalisation');
});

t.test('random mutations of a recorded ruleset: a result or a BulwarkError', async (t) => {
  const stats = newStats();
  const rnd = prng(SEED);
  const bytes = new TextEncoder().encode(readFileSync(`${FIXTURE_DIR}jump-goto.json`, 'utf8'));
  for (const [label, input] of mutations(bytes, rnd, { flipSamples: 3000, randomCount: 300, sizes: [0x3939] })) {
    probe(stats, 'parseNftRuleset+effectiveExposure+judgeNftables', label, input, () => {
      const ruleset = parseNftRuleset(input);
      effectiveExposure(ruleset);
      judgeNftables(DEFAULT_BASELINE, ruleset);
    });
  }
  report(t, stats, 5000);
});

t.test('60,000 single-port rules end with a defined result (work is bounded, not quadratic)', async (t) => {
  const nftables: unknown[] = [
    { table: { family: 'inet', name: 'x' } },
    { chain: { family: 'inet', table: 'x', name: 'input', type: 'filter', hook: 'input', prio: 0, policy: 'drop' } },
  ];
  for (let i = 0; i < 60_000; i++) {
    const verdict = i % 2 === 0 ? { drop: null } : { accept: null };
    nftables.push({ rule: { family: 'inet', table: 'x', chain: 'input', expr: [{ match: { op: '==', left: { payload: { protocol: 'tcp', field: 'dport' } }, right: i } }, verdict] } });
  }
  const ruleset = parseNftRuleset({ value: { nftables } });
  const e = effectiveExposure(ruleset);
  t.ok(e.tcp.length > 0 && !e.tcp.some((x) => x.from === 0 && x.to === 0), 'the first rules were evaluated: port 0 dropped');
  t.ok(e.conditional.some((c) => /too complex/.test(c.condition)), 'the rest over-approximated');
});
