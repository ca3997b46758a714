/**
 * The effective exposure of a ruleset: what a NEW connection from another host (not on
 * loopback) can reach, with nftables' semantics (nft(8), "CHAINS", "VERDICT STATEMENT"):
 *
 * - every base chain of the hook, in every table of family inet, ip (IPv4) or ip6 (IPv6),
 *   sees the packet, in priority order; `accept` ends only that base chain (the packet
 *   goes on to the next one), `drop` and `reject` are final; so a packet passes a hook
 *   only when every base chain accepts it, and the order does not change the outcome;
 * - within a chain rules run in order; `jump` returns to the next rule, `goto` returns to
 *   the chain's caller; the end of a base chain (or `return` in it) applies its policy.
 *
 * Ports are carried as sets through a chain (one walk per IPv4/IPv6 × tcp/udp/other),
 * not one packet per port. What the evaluator cannot decide (a source address, an
 * interface other than lo, `limit`, an unknown expression) is a condition: an accept
 * under a condition makes the ports reachable-conditional, a drop under a condition
 * does not close them (over-approximation: the result never claims less than the host
 * exposes). Decided: `ct state` (the packet is new), `iif`/`iifname` "lo" and `meta
 * iiftype loopback` (never our packet), `fib daddr type local` (true on input, false on
 * forward), `meta pkttype host` (true), `meta nfproto`/`meta protocol`, the l4 protocol
 * and destination ports. Chains on other hooks (prerouting, ingress) are not evaluated:
 * a drop there is not counted (over-approximation again).
 */
import type { Exposure, PortRange, Protocol } from '../types.js';
import { canonicalJson } from '../../schema/index.js';
import { isRecord, type NftChain, type NftRuleset, type NftTable } from './parse.js';
import { ALL_PORTS, complement, contains, formatRange, intersect, isEmpty, MAX_PORT, NO_PORTS, portSet, subtract, union, type PortSet } from './port-set.js';

/** nftables' jump stack (NFT_JUMP_STACK_SIZE): deeper nesting is refused by the kernel, so a walk that gets there is over-approximated. */
export const MAX_JUMP_DEPTH = 16;
/**
 * Work allowed per walk, in rule evaluations weighted by the size of the port sets they
 * touch (a hostile ruleset of many jumps, or of thousands of single-port rules that split
 * the sets, stays bounded); past it, what is left counts as reachable-conditional.
 */
export const MAX_WALK_STEPS = 2_000_000;
/** Conditional routes kept per base chain; more are merged into one (their ports stay reachable). */
const MAX_ROUTES = 64;

type NfProto = 'ipv4' | 'ipv6';
type Transport = Protocol | 'other';
type Hook = 'input' | 'forward';

interface PacketClass {
  readonly nfproto: NfProto;
  readonly proto: Transport;
  readonly hook: Hook;
}

/** A match's outcome for the packet class: null when it never matches, else the ports it can match and the conditions it needs. */
type MatchOutcome = { readonly ports: PortSet; readonly conds: readonly string[] } | null;

const TRUE: MatchOutcome = { ports: ALL_PORTS, conds: [] };
const cond = (text: string): MatchOutcome => ({ ports: ALL_PORTS, conds: [text] });

function and(a: MatchOutcome, b: MatchOutcome): MatchOutcome {
  if (a === null || b === null) return null;
  const ports = intersect(a.ports, b.ports);
  if (isEmpty(ports)) return null;
  return { ports, conds: [...a.conds, ...b.conds.filter((c) => !a.conds.includes(c))] };
}

const MAX_CONDITION = 160;
function clip(s: string): string {
  return s.length > MAX_CONDITION ? `${s.slice(0, MAX_CONDITION - 1)}…` : s;
}

function renderValue(v: unknown): string {
  if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (Array.isArray(v)) return v.map(renderValue).join(',');
  if (isRecord(v)) {
    if (Array.isArray(v['set'])) return `{ ${v['set'].map(renderValue).join(', ')} }`;
    const range = v['range'];
    if (Array.isArray(range) && range.length === 2) return `${renderValue(range[0])}-${renderValue(range[1])}`;
    const prefix = v['prefix'];
    if (isRecord(prefix)) return `${renderValue(prefix['addr'])}/${renderValue(prefix['len'])}`;
  }
  return clip(canonicalJson(v));
}

function renderLeft(left: unknown): string {
  if (isRecord(left)) {
    const payload = left['payload'];
    if (isRecord(payload) && typeof payload['protocol'] === 'string') return `${payload['protocol']} ${String(payload['field'])}`;
    const meta = left['meta'];
    if (isRecord(meta)) return `meta ${String(meta['key'])}`;
    const ct = left['ct'];
    if (isRecord(ct)) return `ct ${String(ct['key'])}`;
    const fib = left['fib'];
    if (isRecord(fib)) return `fib ${Array.isArray(fib['flags']) ? fib['flags'].map(String).join(' . ') : renderValue(fib['flags'])} ${String(fib['result'])}`;
  }
  return clip(canonicalJson(left));
}

function renderMatch(op: unknown, left: unknown, right: unknown): string {
  const o = op === '==' || op === 'in' ? '' : ` ${String(op)}`;
  return clip(`${renderLeft(left)}${o} ${renderValue(right)}`);
}

/** The values of a right-hand side: one value, an anonymous set, an array (flags), or a named set's elements. */
function rightValues(right: unknown, table: NftTable): unknown[] | undefined {
  if (Array.isArray(right)) return right;
  if (isRecord(right) && Array.isArray(right['set'])) return right['set'];
  if (typeof right === 'string' && right.startsWith('@')) {
    const set = table.sets.get(right.slice(1));
    return set?.elements.map((e) => (isRecord(e) && isRecord(e['elem']) ? e['elem']['val'] : e));
  }
  return [right];
}

/** Service names nft may print or accept instead of numbers (/etc/services); others stay undecided. */
const SERVICES: Readonly<Record<string, number>> = { ssh: 22, http: 80, https: 443, domain: 53, smtp: 25, ntp: 123, 'http-alt': 8080 };

function portOf(v: unknown): number | undefined {
  if (typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= MAX_PORT) return v;
  if (typeof v === 'string') {
    if (/^\d{1,5}$/.test(v)) return portOf(Number(v));
    return SERVICES[v];
  }
  return undefined;
}

function portsOfValue(v: unknown, table: NftTable, depth = 0): PortSet | undefined {
  const single = portOf(v);
  if (single !== undefined) return [{ from: single, to: single }];
  if (isRecord(v) && Array.isArray(v['range']) && v['range'].length === 2) {
    const from = portOf(v['range'][0]);
    const to = portOf(v['range'][1]);
    return from === undefined || to === undefined ? undefined : portSet([{ from, to }]);
  }
  if (depth > 2) return undefined;
  const values = typeof v === 'string' || Array.isArray(v) || (isRecord(v) && Array.isArray(v['set'])) ? rightValues(v, table) : undefined;
  if (values === undefined) return undefined;
  let out: PortSet = NO_PORTS;
  for (const x of values) {
    const p = portsOfValue(x, table, depth + 1);
    if (p === undefined) return undefined;
    out = union(out, p);
  }
  return out;
}

/** Port sets of anonymous sets and ranges, by their (immutable, parsed) object: each is built once per ruleset, not once per walk. */
const portSetCache = new WeakMap<object, PortSet | null>();

function cachedPortsOfValue(right: unknown, table: NftTable): PortSet | undefined {
  if (!isRecord(right)) return portsOfValue(right, table);
  const hit = portSetCache.get(right);
  if (hit !== undefined) return hit ?? undefined;
  const computed = portsOfValue(right, table);
  portSetCache.set(right, computed ?? null);
  return computed;
}

/** The destination ports `op right` matches, or undefined when the right-hand side is not a port expression. */
function portsOf(op: unknown, right: unknown, table: NftTable): PortSet | undefined {
  if (op === '==' || op === 'in' || op === '!=') {
    const s = cachedPortsOfValue(right, table);
    if (s === undefined) return undefined;
    return op === '!=' ? complement(s) : s;
  }
  const n = portOf(right);
  if (n === undefined) return undefined;
  if (op === '<') return portSet([{ from: 0, to: n - 1 }]);
  if (op === '<=') return portSet([{ from: 0, to: n }]);
  if (op === '>') return portSet([{ from: n + 1, to: MAX_PORT }]);
  if (op === '>=') return portSet([{ from: n, to: MAX_PORT }]);
  return undefined;
}

/** A decided equality (for `==`/`in`) turned into the outcome of `op`; other operators stay undecided. */
function decide(op: unknown, matches: boolean, text: () => string): MatchOutcome {
  if (op === '==' || op === 'in') return matches ? TRUE : null;
  if (op === '!=') return matches ? null : TRUE;
  return cond(text());
}

const PROTOCOL_NAMES: Readonly<Record<string, string>> = {
  tcp: 'tcp',
  '6': 'tcp',
  udp: 'udp',
  '17': 'udp',
  icmp: 'icmp',
  '1': 'icmp',
  'ipv6-icmp': 'icmpv6',
  icmpv6: 'icmpv6',
  '58': 'icmpv6',
};

function protocolMatch(op: unknown, right: unknown, table: NftTable, pkt: PacketClass, text: () => string): MatchOutcome {
  const values = rightValues(right, table);
  if (values === undefined || (op !== '==' && op !== 'in' && op !== '!=')) return cond(text());
  const names = values.map((v) => (typeof v === 'string' || typeof v === 'number' ? (PROTOCOL_NAMES[String(v)] ?? `other:${String(v)}`) : undefined));
  if (names.some((n) => n === undefined)) return cond(text());
  if (pkt.proto === 'other') {
    // "other" stands for every protocol that is not tcp, udp or icmp: a named other protocol matches some of them.
    if (names.some((n) => n?.startsWith('other:') === true)) return cond(text());
    return decide(op, false, text);
  }
  return decide(op, names.includes(pkt.proto), text);
}

const TRANSPORT_HEADERS = new Set(['tcp', 'udp', 'udplite', 'sctp', 'dccp', 'icmp', 'icmpv6', 'igmp', 'ah', 'esp', 'comp', 'gre']);

function interfaceMatch(key: string, op: unknown, right: unknown, table: NftTable, pkt: PacketClass, text: () => string): MatchOutcome {
  // Our packet never arrives on loopback; another interface name is a condition.
  const incoming = key === 'iif' || key === 'iifname' || key === 'iiftype';
  if (!incoming) return cond(text());
  const values = rightValues(right, table);
  if (values === undefined) return cond(text());
  const loopback = (v: unknown): boolean => (key === 'iiftype' ? v === 'loopback' || v === 772 : v === 'lo');
  if (values.length > 0 && values.every(loopback)) return decide(op, false, text);
  void pkt;
  return cond(text());
}

function evaluateMatch(match: unknown, table: NftTable, pkt: PacketClass): MatchOutcome {
  if (!isRecord(match)) return cond(clip(canonicalJson(match)));
  const { op, left, right } = match;
  const text = (): string => renderMatch(op, left, right);
  if (!isRecord(left)) return cond(text());
  const payload = left['payload'];
  if (isRecord(payload) && typeof payload['protocol'] === 'string') {
    const protocol = payload['protocol'];
    const field = payload['field'];
    if (protocol === 'tcp' || protocol === 'udp') {
      // A transport header match carries an implicit `meta l4proto` dependency: it never matches another protocol, whatever the operator.
      if (pkt.proto !== protocol) return null;
      if (field !== 'dport') return cond(text());
      const ports = portsOf(op, right, table);
      return ports === undefined ? cond(text()) : isEmpty(ports) ? null : { ports, conds: [] };
    }
    if (protocol === 'th') {
      if (pkt.proto === 'other' || field !== 'dport') return cond(text());
      const ports = portsOf(op, right, table);
      return ports === undefined ? cond(text()) : isEmpty(ports) ? null : { ports, conds: [] };
    }
    if (TRANSPORT_HEADERS.has(protocol)) return pkt.proto === 'other' && protocol !== 'icmp' && protocol !== 'icmpv6' ? cond(text()) : null;
    if (protocol === 'ip') {
      if (pkt.nfproto !== 'ipv4') return null;
      return field === 'protocol' ? protocolMatch(op, right, table, pkt, text) : cond(text());
    }
    if (protocol === 'ip6') {
      if (pkt.nfproto !== 'ipv6') return null;
      return field === 'nexthdr' ? protocolMatch(op, right, table, pkt, text) : cond(text());
    }
    return cond(text());
  }
  const meta = left['meta'];
  if (isRecord(meta) && typeof meta['key'] === 'string') {
    const key = meta['key'];
    if (key === 'l4proto') return protocolMatch(op, right, table, pkt, text);
    if (key === 'nfproto' || key === 'protocol') {
      const values = rightValues(right, table);
      if (values === undefined) return cond(text());
      const own = key === 'nfproto' ? pkt.nfproto : pkt.nfproto === 'ipv4' ? 'ip' : 'ip6';
      return decide(op, values.includes(own), text);
    }
    if (/^[io]if(name|type)?$/.test(key)) return interfaceMatch(key, op, right, table, pkt, text);
    if (key === 'pkttype') {
      const values = rightValues(right, table);
      return values === undefined ? cond(text()) : decide(op, values.includes('host'), text);
    }
    return cond(text());
  }
  const ct = left['ct'];
  if (isRecord(ct) && ct['key'] === 'state' && ct['dir'] === undefined) {
    const values = rightValues(right, table);
    if (values === undefined || !values.every((v) => typeof v === 'string')) return cond(text());
    return decide(op, values.includes('new'), text);
  }
  const fib = left['fib'];
  if (isRecord(fib) && fib['result'] === 'type' && Array.isArray(fib['flags']) && fib['flags'].length === 1 && fib['flags'][0] === 'daddr') {
    const values = rightValues(right, table);
    if (values !== undefined && values.length === 1 && values[0] === 'local') return decide(op, pkt.hook === 'input', text);
  }
  return cond(text());
}

/** Statements that neither match nor end a rule here (logging, marking, NAT, set updates): the rule goes on. */
const NEUTRAL_STATEMENTS = new Set([
  'counter',
  'log',
  'mangle',
  'notrack',
  'set',
  'map',
  'ct helper',
  'ct timeout',
  'ct expectation',
  'ct count',
  'dup',
  'fwd',
  'flow',
  'secmark',
  'snat',
  'dnat',
  'masquerade',
  'redirect',
  'tproxy',
  'synproxy',
  'last',
  'continue',
]);

type Verdict = { readonly kind: 'accept' | 'drop' | 'return' } | { readonly kind: 'jump' | 'goto'; readonly target: string };

function verdictOf(statement: Readonly<Record<string, unknown>>): Verdict | undefined {
  if ('accept' in statement || 'queue' in statement) return { kind: 'accept' };
  if ('drop' in statement || 'reject' in statement) return { kind: 'drop' };
  if ('return' in statement) return { kind: 'return' };
  for (const kind of ['jump', 'goto'] as const) {
    const v = statement[kind];
    if (isRecord(v) && typeof v['target'] === 'string') return { kind, target: v['target'] };
  }
  return undefined;
}

interface Route {
  readonly ports: PortSet;
  readonly conds: readonly string[];
}

/** One walk of one packet class through one base chain (and the chains it jumps to). */
class ChainWalk {
  open: PortSet = NO_PORTS;
  readonly routes: Route[] = [];
  private steps = 0;

  constructor(
    private readonly table: NftTable,
    private readonly pkt: PacketClass,
  ) {}

  accept(ports: PortSet, conds: readonly string[]): void {
    if (isEmpty(ports)) return;
    if (conds.length === 0) {
      this.open = union(this.open, ports);
      return;
    }
    if (this.routes.length < MAX_ROUTES) {
      this.routes.push({ ports, conds });
      return;
    }
    const last = this.routes.pop();
    this.routes.push({ ports: union(last?.ports ?? NO_PORTS, ports), conds: ['one of several conditions'] });
  }

  /** Walks `chain` with the ports `live` that reach it under `conds`; returns the ports that come back (end of chain or `return`). */
  walk(chain: NftChain, live: PortSet, conds: readonly string[], depth: number): PortSet {
    let returned: PortSet = NO_PORTS;
    for (const rule of chain.rules) {
      if (isEmpty(live)) break;
      this.steps += 1 + live.length + this.open.length;
      if (this.steps > MAX_WALK_STEPS) {
        this.accept(live, [...conds, 'ruleset too complex to evaluate']);
        return union(returned, live);
      }
      let acc: MatchOutcome = TRUE;
      for (const statement of rule.expr) {
        if (acc === null) break;
        if (!isRecord(statement)) {
          acc = and(acc, cond(clip(canonicalJson(statement))));
          continue;
        }
        if ('match' in statement) {
          acc = and(acc, evaluateMatch(statement['match'], this.table, this.pkt));
          continue;
        }
        const verdict = verdictOf(statement);
        if (verdict !== undefined) {
          const r = this.apply(verdict, acc, live, conds, depth);
          live = r.live;
          returned = union(returned, r.returned);
          break;
        }
        const vmap = statement['vmap'];
        if (isRecord(vmap)) {
          const r = this.applyVerdictMap(vmap, acc, live, conds, depth);
          live = r.live;
          returned = union(returned, r.returned);
          break;
        }
        const [kind] = Object.keys(statement);
        if (kind !== undefined && NEUTRAL_STATEMENTS.has(kind)) continue;
        // limit, quota, meter, xt and anything unknown: may or may not let the rule go on.
        acc = and(acc, cond(kind === 'limit' || kind === 'quota' ? `${kind} ${renderValue(statement[kind])}` : `unknown statement ${clip(canonicalJson(statement))}`));
      }
    }
    return union(returned, live);
  }

  private apply(verdict: Verdict, acc: MatchOutcome, live: PortSet, conds: readonly string[], depth: number): { live: PortSet; returned: PortSet } {
    if (acc === null) return { live, returned: NO_PORTS };
    const matched = intersect(live, acc.ports);
    if (isEmpty(matched)) return { live, returned: NO_PORTS };
    const decided = acc.conds.length === 0;
    const all = [...conds, ...acc.conds.filter((c) => !conds.includes(c))];
    const rest = decided ? subtract(live, matched) : live;
    switch (verdict.kind) {
      case 'accept':
        this.accept(matched, all);
        return { live: rest, returned: NO_PORTS };
      case 'drop':
        return { live: rest, returned: NO_PORTS };
      case 'return':
        return { live: rest, returned: decided ? matched : NO_PORTS };
      case 'jump':
      case 'goto': {
        const target = this.table.chains.find((c) => c.name === verdict.target);
        let back: PortSet;
        if (target === undefined || depth >= MAX_JUMP_DEPTH) {
          this.accept(matched, [...all, target === undefined ? `${verdict.kind} to missing chain ${verdict.target}` : `chains nested deeper than ${MAX_JUMP_DEPTH}`]);
          back = matched;
        } else back = this.walk(target, matched, all, depth + 1);
        if (!decided) return { live, returned: NO_PORTS };
        return verdict.kind === 'jump' ? { live: union(rest, back), returned: NO_PORTS } : { live: rest, returned: back };
      }
    }
  }

  /** `<key> vmap { k : verdict, ... }`: keys are disjoint, so the elements apply one after the other. */
  private applyVerdictMap(
    vmap: Readonly<Record<string, unknown>>,
    acc: MatchOutcome,
    live: PortSet,
    conds: readonly string[],
    depth: number,
  ): { live: PortSet; returned: PortSet } {
    const data = vmap['data'];
    const elements =
      typeof data === 'string' && data.startsWith('@') ? this.table.sets.get(data.slice(1))?.elements : isRecord(data) && Array.isArray(data['set']) ? data['set'] : undefined;
    let returned: PortSet = NO_PORTS;
    if (elements === undefined) {
      // A map we cannot read: every verdict is possible.
      const matched = acc === null ? NO_PORTS : intersect(live, acc.ports);
      this.accept(matched, [...conds, ...(acc?.conds ?? []), `verdict map ${clip(renderValue(data))}`]);
      return { live, returned };
    }
    for (const element of elements) {
      if (!Array.isArray(element) || element.length !== 2 || !isRecord(element[1])) continue;
      const verdict = verdictOf(element[1]);
      if (verdict === undefined) continue;
      const keyMatch = and(acc, evaluateMatch({ op: '==', left: vmap['key'], right: element[0] }, this.table, this.pkt));
      const r = this.apply(verdict, keyMatch, live, conds, depth);
      live = r.live;
      returned = union(returned, r.returned);
    }
    return { live, returned };
  }
}

/** What one base chain lets through for one packet class: ports accepted outright, and conditional routes. */
interface ChainOutcome {
  readonly open: PortSet;
  readonly routes: readonly Route[];
}

function baseChains(ruleset: NftRuleset, nfproto: NfProto, hook: Hook): Array<{ table: NftTable; chain: NftChain }> {
  const families = nfproto === 'ipv4' ? ['inet', 'ip'] : ['inet', 'ip6'];
  const out: Array<{ table: NftTable; chain: NftChain; prio: number }> = [];
  for (const table of ruleset.tables) {
    if (!families.includes(table.family)) continue;
    for (const chain of table.chains) if (chain.base?.hook === hook) out.push({ table, chain, prio: chain.base.prio });
  }
  return out.sort((a, b) => a.prio - b.prio);
}

function walkBaseChain(table: NftTable, chain: NftChain, pkt: PacketClass): ChainOutcome {
  const w = new ChainWalk(table, pkt);
  const fallthrough = w.walk(chain, ALL_PORTS, [], 0);
  if (chain.base?.policy !== 'drop') w.accept(fallthrough, []);
  return { open: w.open, routes: w.routes };
}

/** Segments of 0..65535 on which every given set is constant. */
function segments(sets: readonly PortSet[]): PortRange[] {
  const starts = new Set<number>([0]);
  for (const s of sets) for (const r of s) {
    starts.add(r.from);
    if (r.to < MAX_PORT) starts.add(r.to + 1);
  }
  const sorted = [...starts].sort((a, b) => a - b);
  return sorted.map((from, i) => ({ from, to: (sorted[i + 1] ?? MAX_PORT + 1) - 1 }));
}

interface ClassOutcome {
  readonly open: PortSet;
  readonly conditional: ReadonlyArray<{ readonly ports: PortRange; readonly condition: string }>;
}

const joinConds = (conds: readonly string[]): string => conds.join(' and ');

/** A hook passes a packet only when every base chain accepts it. */
function evaluateClass(ruleset: NftRuleset, pkt: PacketClass): ClassOutcome {
  const outcomes = baseChains(ruleset, pkt.nfproto, pkt.hook).map(({ table, chain }) => walkBaseChain(table, chain, pkt));
  let open: PortSet = ALL_PORTS;
  for (const o of outcomes) open = intersect(open, o.open);
  const conditional: Array<{ ports: PortRange; condition: string }> = [];
  if (outcomes.every((o) => o.routes.length === 0)) return { open, conditional };
  for (const seg of segments(outcomes.flatMap((o) => [o.open, ...o.routes.map((r) => r.ports)]))) {
    const parts: string[] = [];
    let reachable = true;
    for (const o of outcomes) {
      if (contains(o.open, seg.from)) continue;
      const alternatives = [...new Set(o.routes.filter((r) => contains(r.ports, seg.from)).map((r) => joinConds(r.conds)))];
      if (alternatives.length === 0) {
        reachable = false;
        break;
      }
      parts.push(alternatives.length === 1 ? (alternatives[0] ?? '') : alternatives.map((a) => `(${a})`).join(' or '));
    }
    if (reachable && parts.length > 0) conditional.push({ ports: seg, condition: clip([...new Set(parts)].join(' and ')) });
  }
  return { open, conditional };
}

/** Adjacent ranges with one condition become one range. */
function mergeConditional(
  pieces: ReadonlyArray<{ readonly ports: PortRange; readonly condition: string }>,
): Array<{ ports: PortRange; condition: string }> {
  const sorted = [...pieces].sort((a, b) => a.ports.from - b.ports.from);
  const out: Array<{ ports: PortRange; condition: string }> = [];
  for (const p of sorted) {
    const last = out[out.length - 1];
    if (last !== undefined && last.condition === p.condition && last.ports.to + 1 === p.ports.from) out[out.length - 1] = { ports: { from: last.ports.from, to: p.ports.to }, condition: p.condition };
    else out.push({ ports: p.ports, condition: p.condition });
  }
  return out;
}

/**
 * IPv4 and IPv6 together: open in either is open; conditional in either (and not open) is
 * conditional. The condition names its family unless both families need the same one.
 */
function combineFamilies(v4: ClassOutcome, v6: ClassOutcome): ClassOutcome {
  const open = union(v4.open, v6.open);
  const pieces = [
    ...v4.conditional.map((c) => ({ family: 'IPv4', ports: subtract([c.ports], open), condition: c.condition })),
    ...v6.conditional.map((c) => ({ family: 'IPv6', ports: subtract([c.ports], open), condition: c.condition })),
  ].filter((p) => !isEmpty(p.ports));
  const conditional: Array<{ ports: PortRange; condition: string }> = [];
  for (const seg of segments(pieces.map((p) => p.ports))) {
    const here = pieces.filter((p) => contains(p.ports, seg.from));
    const [first, second] = here;
    if (first === undefined) continue;
    const same = here.length === 2 && second !== undefined && first.condition === second.condition;
    conditional.push({ ports: seg, condition: same ? first.condition : clip(here.map((p) => `${p.family}: ${p.condition}`).join(' or ')) });
  }
  return { open, conditional: mergeConditional(conditional) };
}

/** What a new inbound connection from another host can reach, with nftables' semantics (see the module comment). */
export function effectiveExposure(ruleset: NftRuleset): Exposure {
  const outcome = (proto: Transport, hook: Hook): ClassOutcome =>
    combineFamilies(evaluateClass(ruleset, { nfproto: 'ipv4', proto, hook }), evaluateClass(ruleset, { nfproto: 'ipv6', proto, hook }));
  const tcp = outcome('tcp', 'input');
  const udp = outcome('udp', 'input');
  const other = outcome('other', 'input');
  const forwardOpen = (['tcp', 'udp', 'other'] as const).some((proto) => !isEmpty(outcome(proto, 'forward').open));
  return {
    tcp: tcp.open,
    udp: udp.open,
    otherProtocols: !isEmpty(other.open) || other.conditional.length > 0,
    conditional: [
      ...tcp.conditional.map((c) => ({ protocol: 'tcp' as const, ports: c.ports, condition: c.condition })),
      ...udp.conditional.map((c) => ({ protocol: 'udp' as const, ports: c.ports, condition: c.condition })),
    ],
    forwardOpen,
  };
}

/** "22/tcp", "8000-8100/udp". */
export function formatPorts(protocol: Protocol, r: PortRange): string {
  return `${formatRange(r)}/${protocol}`;
}
