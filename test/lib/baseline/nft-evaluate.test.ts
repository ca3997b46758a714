/**
 * The evaluator's semantics on hand-written rulesets (the JSON nft -j prints): base chain
 * traversal, verdicts, jumps, matches it decides and conditions it does not, and hostile
 * shapes (loops, blow-ups, unknown expressions) that must end with a defined result.
 */
import t from 'tap';
import { effectiveExposure, judgeNftables, parseNftRuleset, type Exposure } from '../../../lib/baseline/index.js';
import { DEFAULT_BASELINE } from './nft-netns.js';

type Expr = Record<string, unknown>;
const match = (left: unknown, right: unknown, op = '=='): Expr => ({ match: { op, left, right } });
const dport = (proto: string, right: unknown, op = '=='): Expr => match({ payload: { protocol: proto, field: 'dport' } }, right, op);
const meta = (key: string, right: unknown, op = '=='): Expr => match({ meta: { key } }, right, op);
const ctState = (right: unknown, op = 'in'): Expr => match({ ct: { key: 'state' } }, right, op);
const ACCEPT: Expr = { accept: null };
const DROP: Expr = { drop: null };
const jump = (target: string): Expr => ({ jump: { target } });
const goto = (target: string): Expr => ({ goto: { target } });

interface ChainSpec {
  readonly name: string;
  readonly hook?: string;
  readonly prio?: number | string;
  readonly policy?: 'accept' | 'drop';
  readonly rules: readonly (readonly Expr[])[];
}

/** A ruleset document of tables `family name` with their chains (and optional sets). */
function doc(tables: ReadonlyArray<{ family?: string; name: string; chains: readonly ChainSpec[]; sets?: Record<string, unknown[]> }>): { nftables: unknown[] } {
  const out: unknown[] = [{ metainfo: { version: '1.0.6', release_name: 'Lester Gooch #5', json_schema_version: 1 } }];
  for (const t of tables) {
    const family = t.family ?? 'inet';
    out.push({ table: { family, name: t.name, handle: 1 } });
    for (const [name, elem] of Object.entries(t.sets ?? {})) out.push({ set: { family, name, table: t.name, type: 'inet_service', handle: 3, flags: ['interval'], elem } });
    for (const c of t.chains) {
      const base = c.hook === undefined ? {} : { type: 'filter', hook: c.hook, prio: c.prio ?? 0, policy: c.policy ?? 'accept' };
      out.push({ chain: { family, table: t.name, name: c.name, handle: 2, ...base } });
    }
    for (const c of t.chains) for (const expr of c.rules) out.push({ rule: { family, table: t.name, chain: c.name, handle: 9, expr } });
  }
  return { nftables: out };
}

const exposureOf = (d: unknown): Exposure => effectiveExposure(parseNftRuleset({ value: d }));
const input = (rules: readonly (readonly Expr[])[], policy: 'accept' | 'drop' = 'drop', extra: Partial<ChainSpec> = {}): ChainSpec => ({ name: 'input', hook: 'input', policy, rules, ...extra });
const r = (from: number, to = from): { from: number; to: number } => ({ from, to });
const CLOSED: Exposure = { tcp: [], udp: [], otherProtocols: false, conditional: [], forwardOpen: true };

t.test('accept ends one base chain only: every base chain of the hook must accept', async (t) => {
  const a = { name: 'a', chains: [input([[dport('tcp', { set: [22, 80] }), ACCEPT]])] };
  const b = { name: 'b', chains: [input([[dport('tcp', 80), ACCEPT], [dport('tcp', 22), DROP]], 'accept')] };
  t.same(exposureOf(doc([a, b])).tcp, [r(80)], '22 accepted by a, dropped by b');
  const ipOnly = { family: 'ip', name: 'v4', chains: [input([], 'drop')] };
  t.same(exposureOf(doc([a, ipOnly])).tcp, [r(22), r(80)], 'an ip table drops IPv4 only: IPv6 still reaches 22 and 80');
  t.same(exposureOf(doc([a, ipOnly, { family: 'ip6', name: 'v6', chains: [input([], 'drop')] }])).tcp, [], 'ip and ip6 tables together close both');
});

t.test('no base chain on input: everything is open; a forward drop chain closes forwarding', async (t) => {
  const e = exposureOf(doc([{ name: 'x', chains: [{ name: 'forward', hook: 'forward', policy: 'drop', rules: [] }] }]));
  t.same(e, { tcp: [r(0, 65535)], udp: [r(0, 65535)], otherProtocols: true, conditional: [], forwardOpen: false });
  t.equal(exposureOf(doc([])).forwardOpen, true);
});

t.test('named and numeric priorities', async (t) => {
  const parsed = parseNftRuleset({ value: doc([{ name: 'x', chains: [input([], 'drop', { prio: 'filter + 10' }), { name: 'raw', hook: 'prerouting', prio: 'raw - 5', rules: [] }] }]) });
  t.same(
    parsed.tables[0]?.chains.map((c) => c.base?.prio),
    [10, -305],
  );
  t.throws(() => parseNftRuleset({ value: doc([{ name: 'x', chains: [input([], 'drop', { prio: 'sideways' })] }]) }), { code: 'BASELINE_REPORT_INVALID' });
});

t.test('ct state, loopback, l4proto and th dport are decided', async (t) => {
  const e = exposureOf(
    doc([
      {
        name: 'x',
        chains: [
          input([
            [meta('iif', 'lo'), ACCEPT],
            [meta('iifname', { set: ['lo'] }), ACCEPT],
            [ctState(['established', 'related']), ACCEPT],
            [ctState('invalid'), DROP],
            [ctState('new', '!='), ACCEPT],
            [ctState({ set: ['new', 'untracked'] }, '=='), dport('tcp', 80), ACCEPT],
            [meta('l4proto', { set: ['tcp', 'udp'] }), dport('th', { range: [5000, 5010] }), ACCEPT],
            [match({ payload: { protocol: 'ip6', field: 'nexthdr' } }, 'udp'), dport('udp', 53), ACCEPT],
            [dport('tcp', 1024, '<'), dport('tcp', 1000, '>='), ACCEPT],
            [meta('l4proto', 'icmp'), ACCEPT],
          ]),
        ],
      },
    ]),
  );
  t.same(e, { ...CLOSED, tcp: [r(80), r(1000, 1023), r(5000, 5010)], udp: [r(53), r(5000, 5010)] });
});

t.test('undecided matches: an accept is conditional, a drop does not close', async (t) => {
  const e = exposureOf(
    doc([
      {
        name: 'x',
        chains: [
          input([
            [meta('iifname', 'eth0'), dport('tcp', 81), ACCEPT],
            [match({ payload: { protocol: 'ip', field: 'saddr' } }, '192.0.2.1'), DROP],
            [dport('tcp', 82), ACCEPT],
            [{ frobnicate: { x: 1 } }, dport('tcp', 83), ACCEPT],
            [{ limit: { rate: 10, per: 'second' } }, dport('udp', 84), ACCEPT],
            [match({ payload: { protocol: 'ip', field: 'saddr' } }, '@nets'), match({ weird: true }, 7), ACCEPT],
          ]),
        ],
      },
    ]),
  );
  t.same(e.tcp, [r(82)]);
  t.equal(e.otherProtocols, true, 'an accept of everything under an unknown condition counts');
  const at = (port: number): string | undefined => e.conditional.find((c) => c.protocol === 'tcp' && c.ports.from <= port && port <= c.ports.to)?.condition;
  t.equal(at(81), 'IPv4: (meta iifname eth0) or (ip saddr @nets and {"weird":true} 7) or IPv6: meta iifname eth0');
  t.equal(at(83), 'IPv4: (unknown statement {"frobnicate":{"x":1}}) or (ip saddr @nets and {"weird":true} 7) or IPv6: unknown statement {"frobnicate":{"x":1}}');
  t.equal(at(1000), 'IPv4: ip saddr @nets and {"weird":true} 7', 'the last rule accepts every IPv4 port under its conditions');
  t.ok(e.conditional.some((c) => c.protocol === 'udp' && c.ports.from === 84 && /limit/.test(c.condition)));
  t.ok(e.conditional.some((c) => c.protocol === 'tcp' && /ip saddr @nets and \{"weird":true\} 7/.test(c.condition)), 'the IPv4-only match condition is named');
});

t.test('jump returns, goto returns to the caller, named sets and verdict maps', async (t) => {
  const e = exposureOf(
    doc([
      {
        name: 'x',
        sets: { web: [80, { range: [8000, 8002] }, { elem: { val: 9000, counter: { packets: 1, bytes: 2 } } }] },
        chains: [
          input([[jump('a')], [dport('tcp', 23), ACCEPT], [dport('tcp', '@web'), ACCEPT], [{ vmap: { key: { payload: { protocol: 'udp', field: 'dport' } }, data: { set: [[53, ACCEPT], [54, DROP], [55, jump('b')]] } } }]]),
          { name: 'a', rules: [[dport('tcp', 23), DROP], [dport('tcp', 24), { return: null }], [goto('b')]] },
          { name: 'b', rules: [[dport('tcp', { set: [24, 25] }), ACCEPT], [dport('udp', 55), ACCEPT]] },
        ],
      },
    ]),
  );
  t.same(e, { ...CLOSED, tcp: [r(25), r(80), r(8000, 8002), r(9000)], udp: [r(53), r(55)] });
});

t.test('a jump loop and a jump blow-up end with a defined, over-approximated result', async (t) => {
  const loop = exposureOf(doc([{ name: 'x', chains: [input([[jump('a')]]), { name: 'a', rules: [[jump('b')]] }, { name: 'b', rules: [[jump('a')]] }] }]));
  t.ok(loop.conditional.some((c) => /nested deeper than 16/.test(c.condition)), 'the loop is cut at 16 jumps');
  // 40 chains, each jumping twice to the next: 2^16 paths before the depth cap.
  const chains: ChainSpec[] = [input([[jump('c0')]])];
  for (let i = 0; i < 40; i++) chains.push({ name: `c${i}`, rules: [[dport('tcp', i), jump(`c${i + 1}`)], [jump(`c${i + 1}`)]] });
  chains.push({ name: 'c40', rules: [] });
  const blowup = exposureOf(doc([{ name: 'x', chains }]));
  t.ok(blowup.conditional.some((c) => /too complex|deeper than 16/.test(c.condition)));
  t.same(blowup.tcp, [], 'nothing claimed open outright');
});

t.test('findings for a ruleset that opens other protocols and keeps the table', async (t) => {
  const d = doc([{ name: 'bulwark', chains: [input([[meta('l4proto', 'gre'), ACCEPT], [dport('tcp', 22), ACCEPT], [dport('tcp', 443), ACCEPT]]), { name: 'forward', hook: 'forward', policy: 'drop', rules: [] }] }]);
  const findings = judgeNftables(DEFAULT_BASELINE, parseNftRuleset({ value: d }));
  t.same(findings.map((f) => f.details?.['what']), ['other-protocols']);
});

t.test('an input chain of Bulwark that is not a base chain is a missing chain', async (t) => {
  const d = doc([{ name: 'bulwark', chains: [{ name: 'input', rules: [] }] }]);
  const whats = judgeNftables(DEFAULT_BASELINE, parseNftRuleset({ value: d })).map((f) => f.details?.['what']);
  t.ok(whats.includes('input-chain-missing'));
});

t.test('rules, chains and sets of tables that are not there are refused', async (t) => {
  const bad = (nftables: unknown[]): void => {
    t.throws(() => parseNftRuleset({ value: { nftables } }), { code: 'BASELINE_REPORT_INVALID' });
  };
  bad([{ chain: { family: 'inet', table: 'nope', name: 'input' } }]);
  bad([{ table: { family: 'inet', name: 'x' } }, { rule: { family: 'inet', table: 'x', chain: 'nope', expr: [] } }]);
  bad([{ table: { family: 'inet', name: 'x' } }, { table: { family: 'inet', name: 'x' } }]);
});

t.test('a condition both families share is named once; one family only is labelled', async (t) => {
  const e = exposureOf(
    doc([
      {
        name: 'x',
        chains: [
          input([
            [meta('iifname', 'eth1'), dport('tcp', 90), ACCEPT],
            [match({ payload: { protocol: 'ip', field: 'saddr' } }, { prefix: { addr: '192.0.2.0', len: 24 } }), dport('tcp', 91), ACCEPT],
          ]),
        ],
      },
    ]),
  );
  t.same(e.conditional, [
    { protocol: 'tcp', ports: r(90), condition: 'meta iifname eth1' },
    { protocol: 'tcp', ports: r(91), condition: 'IPv4: ip saddr 192.0.2.0/24' },
  ]);
  const findings = judgeNftables({ ...DEFAULT_BASELINE, inbound: [{ protocol: 'tcp', port: 91, sources: ['192.0.2.0/24'] }] }, parseNftRuleset({ value: doc([{ name: 'bulwark', chains: [input([[meta('iifname', 'eth1'), dport('tcp', 90), ACCEPT], [dport('tcp', 91), ACCEPT]]), { name: 'forward', hook: 'forward', policy: 'drop', rules: [] }] }]) }));
  t.same(
    findings.map((f) => [f.details?.['ports'], f.details?.['conditional']]),
    [
      ['91', false],
      ['90', true],
    ],
    '91 open to anyone while the baseline allows it from some sources only; 90 conditional and not allowed',
  );
});
