/**
 * The recorded rulesets (test/fixtures/nft/, real `nft -j list ruleset` of nft 1.0.6 in
 * network namespaces): exposure and drift findings of each, normalisation and digests.
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import {
  describeNftChanges,
  effectiveExposure,
  judgeNftables,
  nftDigest,
  parseNftRuleset,
  type Exposure,
  type NftablesBaseline,
  type NftRuleset,
} from '../../../lib/baseline/index.js';
import { DEFAULT_BASELINE } from './nft-netns.js';
import { CNI_BASELINE, FIXTURE_DIR, fixtureScripts, SADDR_BASELINE } from './nft-record.js';

const text = (name: string): string => readFileSync(`${FIXTURE_DIR}${name}.json`, 'utf8');
const load = (name: string): NftRuleset => parseNftRuleset(text(name));
const r = (from: number, to = from): { from: number; to: number } => ({ from, to });

const CLOSED: Exposure = { tcp: [], udp: [], otherProtocols: false, conditional: [], forwardOpen: false };
const ALL_OPEN: Exposure = { tcp: [r(0, 65535)], udp: [r(0, 65535)], otherProtocols: true, conditional: [], forwardOpen: true };
const DEFAULT_EXPOSURE: Exposure = { ...CLOSED, tcp: [r(22), r(443)] };

/** Per fixture: the baseline it is judged against, its exposure, and its findings as `what ports` keys. */
const EXPECTED: Record<string, { baseline: NftablesBaseline; exposure: Exposure; findings: string[] }> = {
  default: { baseline: DEFAULT_BASELINE, exposure: DEFAULT_EXPOSURE, findings: [] },
  'extra-8080': { baseline: DEFAULT_BASELINE, exposure: { ...CLOSED, tcp: [r(22), r(443), r(8080)] }, findings: ['port-reachable tcp 8080'] },
  'bulwark-deleted': {
    baseline: DEFAULT_BASELINE,
    exposure: ALL_OPEN,
    findings: [
      'table-missing',
      'port-reachable tcp 0-21',
      'port-reachable tcp 23-442',
      'port-reachable tcp 444-65535',
      'port-reachable udp 0-65535',
      'other-protocols',
      'forward-open',
    ],
  },
  'input-policy-accept': {
    baseline: DEFAULT_BASELINE,
    exposure: { ...ALL_OPEN, forwardOpen: false },
    findings: ['input-policy input accept', 'port-reachable tcp 0-21', 'port-reachable tcp 23-442', 'port-reachable tcp 444-65535', 'port-reachable udp 0-65535', 'other-protocols'],
  },
  'forward-policy-accept': { baseline: DEFAULT_BASELINE, exposure: { ...DEFAULT_EXPOSURE, forwardOpen: true }, findings: ['forward-open'] },
  'second-table-accept-all': { baseline: DEFAULT_BASELINE, exposure: DEFAULT_EXPOSURE, findings: [] },
  'named-set': {
    baseline: DEFAULT_BASELINE,
    exposure: { ...CLOSED, tcp: [r(22), r(443), r(8080), r(9000, 9010)] },
    findings: ['port-reachable tcp 8080', 'port-reachable tcp 9000-9010'],
  },
  'jump-goto': {
    baseline: DEFAULT_BASELINE,
    exposure: { ...CLOSED, tcp: [r(22), r(80), r(443)], udp: [r(53)] },
    findings: ['port-reachable tcp 80', 'port-reachable udp 53'],
  },
  'saddr-restricted': {
    baseline: SADDR_BASELINE,
    exposure: { ...CLOSED, tcp: [r(443)], conditional: [{ protocol: 'tcp', ports: r(22), condition: 'IPv4: ip saddr 10.0.0.0/8 or IPv6: ip6 saddr 2001:db8::/32' }] },
    findings: [],
  },
  'podman-nomad-cni': { baseline: CNI_BASELINE, exposure: DEFAULT_EXPOSURE, findings: [] },
};

/** Each finding as "what chain policy protocol ports" (what is set); a finding of another code shows as its code. */
function keys(findings: ReturnType<typeof judgeNftables>): string[] {
  return findings.map((f) => {
    if (f.code !== 'NFT_BASELINE_DRIFT') return f.code;
    const d = f.details ?? {};
    return [d['what'], d['chain'], d['policy'], d['protocol'], d['ports']].filter((x) => x !== undefined).join(' ');
  });
}

t.test('every recorded fixture has an expectation', async (t) => {
  t.same(Object.keys(EXPECTED).sort(), fixtureScripts().map(([name]) => name).sort());
});

for (const [name, expected] of Object.entries(EXPECTED)) {
  t.test(`fixture ${name}: exposure and findings`, async (t) => {
    const ruleset = load(name);
    t.same(effectiveExposure(ruleset), expected.exposure, 'exposure');
    t.same(keys(judgeNftables(expected.baseline, ruleset)), expected.findings, 'findings');
  });

  t.test(`fixture ${name}: the normalised document parses to itself and keeps its digest`, async (t) => {
    const ruleset = load(name);
    const again = parseNftRuleset({ value: ruleset.json });
    t.same(again.json, ruleset.json);
    t.equal(nftDigest(again), nftDigest(ruleset));
    t.match(nftDigest(ruleset), /^[0-9a-f]{64}$/);
    const serialised = JSON.stringify(ruleset.json);
    t.notMatch(serialised, /"(handle|packets|bytes|metainfo)"/, 'no handles, counters or metainfo');
    t.notMatch(serialised, /"counter":\{/, 'no counter statements or element counters (a set may still declare `counter`)');
  });
}

t.test('a conditional exposure the baseline does not allow at all is drift, with its condition', async (t) => {
  const baseline: NftablesBaseline = { ...DEFAULT_BASELINE, inbound: [{ protocol: 'tcp', port: 443 }] };
  const findings = judgeNftables(baseline, load('saddr-restricted'));
  t.equal(findings.length, 1);
  t.match(findings[0]?.details, { protocol: 'tcp', ports: '22', conditional: true, condition: /ip saddr 10\.0\.0\.0\/8/ });
});

t.test('counters and handles changing change neither the digest nor the findings', async (t) => {
  const original = text('named-set');
  const bumped = original.replace(/"(packets|bytes)": \d+/g, '"$1": 987654').replace(/"handle": (\d+)/g, (_m, h: string) => `"handle": ${Number(h) + 100}`);
  t.not(bumped, original, 'the mutation changed the text');
  t.equal(nftDigest(parseNftRuleset(bumped)), nftDigest(parseNftRuleset(original)));
  t.same(judgeNftables(DEFAULT_BASELINE, parseNftRuleset(bumped)), judgeNftables(DEFAULT_BASELINE, parseNftRuleset(original)));
});

t.test('tables and chains are sorted, rules keep their order', async (t) => {
  const ruleset = load('podman-nomad-cni');
  t.same(
    ruleset.tables.map((x) => `${x.family} ${x.name}`),
    ['inet bulwark', 'inet nomad-bridge', 'ip filter', 'ip nat'],
  );
  const nat = ruleset.tables.find((x) => x.name === 'nat');
  t.same(nat?.chains.map((c) => c.name), ['CNI-8a6e1f', 'CNI-DN-8a6e1f', 'CNI-HOSTPORT-DNAT', 'OUTPUT', 'POSTROUTING', 'PREROUTING']);
  const cni = nat?.chains.find((c) => c.name === 'CNI-8a6e1f');
  t.same(cni?.rules.map((x) => Object.keys(x.expr[1] ?? {})), [['accept'], ['masquerade']], 'rule order kept');
  const bulwark = { family: 'inet', name: 'bulwark' };
  const second = load('second-table-accept-all');
  t.equal(nftDigest(second, bulwark), nftDigest(load('default')), "Bulwark's table (the whole default ruleset) has the same digest beside another table");
  t.not(nftDigest(second), nftDigest(load('default')));
  t.not(nftDigest(ruleset, bulwark), nftDigest(load('default')), 'forward exemptions change the table digest');
});

t.test("rules of foreign tables changing are not drift; Bulwark's table changing is", async (t) => {
  const ruleset = load('podman-nomad-cni');
  const doc = ruleset.json;
  if (typeof doc !== 'object' || doc === null || !('nftables' in doc) || !Array.isArray(doc.nftables)) throw new Error('no document');
  const extra = (table: string, family: string, chain: string, expr: unknown[]): unknown => ({ rule: { family, table, chain, expr } });
  const accept8443 = [{ match: { op: '==', left: { payload: { protocol: 'tcp', field: 'dport' } }, right: 8443 } }, { accept: null }];
  const foreign = parseNftRuleset({ value: { nftables: [...doc.nftables, extra('filter', 'ip', 'INPUT', accept8443), extra('filter', 'ip', 'CNI-ADMIN', [{ accept: null }])] } });
  t.not(nftDigest(foreign), nftDigest(ruleset));
  t.same(judgeNftables(CNI_BASELINE, foreign), [], 'foreign rules accepting more, under Bulwark drop, are no drift');
  const own = parseNftRuleset({ value: { nftables: [...doc.nftables, extra('bulwark', 'inet', 'input', accept8443)] } });
  t.same(keys(judgeNftables(CNI_BASELINE, own)), ['port-reachable tcp 8443']);
});

t.test('describeNftChanges names tables, chains, policies, rules and ports', async (t) => {
  t.same(describeNftChanges(load('default'), load('default')), []);
  t.same(describeNftChanges(load('default'), load('extra-8080')), ['chain inet bulwark input: 1 rule(s) added, 0 rule(s) removed', 'newly reachable: 8080/tcp']);
  const deleted = describeNftChanges(load('default'), load('bulwark-deleted'));
  t.ok(deleted.includes('table inet bulwark removed'));
  t.ok(deleted.some((l) => /^base chain inet bulwark input \(hook input, priority -10, policy drop\) removed$/.test(l)));
  t.ok(deleted.includes('newly reachable: 0-21/tcp, 23-442/tcp, 444-65535/tcp'));
  t.ok(deleted.includes('other protocols newly accepted') && deleted.includes('forwarded connections newly accepted'));
  t.same(describeNftChanges(load('default'), load('input-policy-accept')).slice(0, 1), ['base chain inet bulwark input (hook input, priority -10, policy drop) changed to hook input, priority -10, policy accept']);
  t.ok(describeNftChanges(load('extra-8080'), load('default')).includes('no longer reachable: 8080/tcp'));
  const second = describeNftChanges(load('default'), load('second-table-accept-all'));
  t.same(second, ['table inet other added', 'base chain inet other input (hook input, priority 20, policy accept) added with 1 rule(s)'], 'no exposure change');
});
