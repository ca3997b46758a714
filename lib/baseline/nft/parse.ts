/**
 * `nft -j list ruleset` documents: parsed through the schema layer (size and depth caps),
 * validated where the evaluator depends on their shape (tables, chains, rules, sets), and
 * normalised so that a report carries only what decides behaviour: no metainfo, handles
 * or counters; tables, their objects and chains in a fixed order; rules in their order.
 */
import { createHash } from 'node:crypto';
import { Type } from '@sinclair/typebox';
import { BulwarkError } from '../../errors.js';
import { canonicalJson, defineDocument, parseJsonText } from '../../schema/index.js';

/** The only `json_schema_version` of `nft -j` this version reads (nftables 0.9.x to 1.1.x). */
export const NFT_JSON_SCHEMA_VERSION = 1;

/** A base chain's hook, priority and policy. */
export interface NftBaseChain {
  readonly type: string;
  readonly hook: string;
  readonly prio: number;
  readonly policy: 'accept' | 'drop';
}

/** One rule: its expressions and statements as nft prints them (counters removed). */
export interface NftRule {
  readonly expr: readonly unknown[];
  readonly comment?: string;
}

export interface NftChain {
  readonly family: string;
  readonly table: string;
  readonly name: string;
  /** Present for a base chain (one attached to a hook). */
  readonly base?: NftBaseChain;
  readonly rules: readonly NftRule[];
}

/** A named set or map with its elements (element counters and expiry removed). */
export interface NftSet {
  readonly name: string;
  readonly map: boolean;
  readonly elements: readonly unknown[];
}

export interface NftTable {
  readonly family: string;
  readonly name: string;
  readonly chains: readonly NftChain[];
  readonly sets: ReadonlyMap<string, NftSet>;
}

/** A parsed, normalised ruleset (no metainfo, handles or counters; rule order kept). Untrusted content, checked shape. */
export interface NftRuleset {
  /** The normalised document, as stored in reports: `{ nftables: [...] }` without metainfo. */
  readonly json: unknown;
  /** Tables sorted by (family, name), chains by name, each with its rules in order. */
  readonly tables: readonly NftTable[];
}

const what = 'nftables ruleset';
const CODE = 'BASELINE_REPORT_INVALID';
const Name = Type.String({ minLength: 1, maxLength: 256 });

const Document = defineDocument(
  Type.Object({ nftables: Type.Array(Type.Record(Type.String(), Type.Unknown(), { minProperties: 1, maxProperties: 1 }), { maxItems: 200_000 }) }),
  what,
  CODE,
);
const Metainfo = defineDocument(Type.Object({ json_schema_version: Type.Optional(Type.Integer()) }), `${what} metainfo`, CODE);
const TableEntry = defineDocument(Type.Object({ family: Name, name: Name }), `${what} table`, CODE);
const ChainEntry = defineDocument(
  Type.Object({
    family: Name,
    table: Name,
    name: Name,
    type: Type.Optional(Name),
    hook: Type.Optional(Name),
    prio: Type.Optional(Type.Union([Type.Integer(), Name])),
    policy: Type.Optional(Type.Union([Type.Literal('accept'), Type.Literal('drop')])),
  }),
  `${what} chain`,
  CODE,
);
const RuleEntry = defineDocument(
  Type.Object({ family: Name, table: Name, chain: Name, expr: Type.Array(Type.Unknown()), comment: Type.Optional(Type.String()) }),
  `${what} rule`,
  CODE,
);
const SetEntry = defineDocument(
  Type.Object({ family: Name, table: Name, name: Name, elem: Type.Optional(Type.Array(Type.Unknown())) }),
  `${what} set`,
  CODE,
);

/** Named chain priorities of the ip, ip6 and inet families (nft(8), CHAINS). */
export const NAMED_PRIORITIES: Readonly<Record<string, number>> = {
  raw: -300,
  mangle: -150,
  dstnat: -100,
  filter: 0,
  security: 50,
  srcnat: 100,
};

/** A chain priority as nft prints it (a number) or as written ("filter", "filter + 10", "raw - 5"). */
export function parsePriority(prio: number | string, source: string): number {
  if (typeof prio === 'number') return prio;
  const m = /^\s*([a-z]+)\s*(?:([+-])\s*(\d{1,6}))?\s*$/.exec(prio);
  const base = m?.[1] === undefined ? undefined : NAMED_PRIORITIES[m[1]];
  if (m === null || base === undefined) {
    throw new BulwarkError(CODE, `${what}: chain priority ${JSON.stringify(prio.slice(0, 40))} is not a known priority`, { path: source });
  }
  const offset = m[3] === undefined ? 0 : Number(m[3]);
  return m[2] === '-' ? base - offset : base + offset;
}

export function isRecord(v: unknown): v is Readonly<Record<string, unknown>> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Keys that change while the ruleset does not: counters anywhere, expiry of set elements. */
const VOLATILE_KEYS = new Set(['packets', 'bytes', 'handle']);

/** A copy without volatile keys (packets, bytes, handle) at any depth. */
function stripVolatile(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(stripVolatile);
  if (!isRecord(v)) return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) if (!VOLATILE_KEYS.has(k)) out[k] = stripVolatile(x);
  return out;
}

/** A rule's statements without anonymous counters (`counter` with its numbers); a named counter reference stays. */
function withoutCounters(expr: readonly unknown[]): unknown[] {
  return expr.filter((s) => !(isRecord(s) && 'counter' in s && typeof s['counter'] !== 'string')).map(stripVolatile);
}

/** A set element without its counter and expiry (`{"elem": {"val": .., "counter": ..}}` becomes its value when nothing else is left). */
function normaliseElement(e: unknown): unknown {
  if (!isRecord(e) || !isRecord(e['elem'])) return stripVolatile(e);
  const inner: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(e['elem'])) if (k !== 'counter' && k !== 'expires') inner[k] = stripVolatile(x);
  const keys = Object.keys(inner);
  return keys.length === 1 && keys[0] === 'val' ? inner['val'] : { elem: inner };
}

function entryKind(entry: Readonly<Record<string, unknown>>): [string, unknown] {
  const [first] = Object.entries(entry);
  return first ?? ['', undefined];
}

const compareStrings = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

interface TableBuild {
  readonly family: string;
  readonly name: string;
  readonly entry: unknown;
  readonly objects: Array<{ kind: string; name: string; entry: unknown }>;
  readonly chains: Map<string, { chain: Omit<NftChain, 'rules'>; entry: unknown; rules: NftRule[]; ruleEntries: unknown[] }>;
  readonly sets: Map<string, NftSet>;
}

const tableKey = (family: string, name: string): string => `${family}\u0000${name}`;

function toText(input: string | Uint8Array | { readonly value: unknown }): string | Uint8Array {
  if (typeof input === 'string' || input instanceof Uint8Array) return input;
  try {
    // The value goes through the same caps as text (size, depth); a cycle or a value JSON cannot hold is refused.
    const text = JSON.stringify(input.value);
    if (typeof text !== 'string') throw new TypeError('not a JSON value');
    return text;
  } catch (err) {
    throw new BulwarkError(CODE, `${what} is not a JSON value`, { path: '' }, { cause: err });
  }
}

/** Parses `nft -j list ruleset` output (text) or a normalised document (value); a BulwarkError (BASELINE_REPORT_INVALID) for anything else. */
export function parseNftRuleset(input: string | Uint8Array | { readonly value: unknown }): NftRuleset {
  const doc = Document.parse(parseJsonText(toText(input), what, CODE));
  const tables = new Map<string, TableBuild>();
  const others: unknown[] = [];
  const pending: Array<{ kind: string; body: unknown; at: string }> = [];
  doc.nftables.forEach((entry, i) => {
    const at = `/nftables/${i}`;
    const [kind, body] = entryKind(entry);
    if (kind === 'metainfo') {
      const meta = Metainfo.parse(body, at);
      if (meta.json_schema_version !== undefined && meta.json_schema_version !== NFT_JSON_SCHEMA_VERSION) {
        throw new BulwarkError(CODE, `${what}: json_schema_version ${meta.json_schema_version} is not known (only ${NFT_JSON_SCHEMA_VERSION})`, {
          path: `${at}/metainfo/json_schema_version`,
        });
      }
    } else if (kind === 'table') {
      const t = TableEntry.parse(body, at);
      const key = tableKey(t.family, t.name);
      if (tables.has(key)) throw new BulwarkError(CODE, `${what}: table ${t.family} ${t.name} appears twice`, { path: at });
      tables.set(key, { family: t.family, name: t.name, entry: { table: stripVolatile(body) }, objects: [], chains: new Map(), sets: new Map() });
    } else pending.push({ kind, body, at });
  });
  const tableOf = (family: string, name: string, at: string): TableBuild => {
    const t = tables.get(tableKey(family, name));
    if (t === undefined) throw new BulwarkError(CODE, `${what}: ${at} belongs to table ${family} ${name}, which is not in the ruleset`, { path: at });
    return t;
  };
  // Chains and sets before rules: nft prints them first, but a normalised document need not.
  for (const { kind, body, at } of pending) {
    if (kind === 'chain') {
      const c = ChainEntry.parse(body, at);
      const t = tableOf(c.family, c.table, at);
      if (t.chains.has(c.name)) throw new BulwarkError(CODE, `${what}: chain ${c.name} of table ${c.family} ${c.table} appears twice`, { path: at });
      const base: NftBaseChain | undefined =
        c.hook === undefined
          ? undefined
          : { type: c.type ?? 'filter', hook: c.hook, prio: parsePriority(c.prio ?? 0, `${at}/chain/prio`), policy: c.policy ?? 'accept' };
      const chain: Omit<NftChain, 'rules'> = base === undefined ? { family: c.family, table: c.table, name: c.name } : { family: c.family, table: c.table, name: c.name, base };
      t.chains.set(c.name, { chain, entry: { chain: stripVolatile(body) }, rules: [], ruleEntries: [] });
    } else if (kind === 'set' || kind === 'map') {
      const s = SetEntry.parse(body, at);
      const t = tableOf(s.family, s.table, at);
      const elements = (s.elem ?? []).map(normaliseElement);
      if (t.sets.has(s.name)) throw new BulwarkError(CODE, `${what}: set ${s.name} of table ${s.family} ${s.table} appears twice`, { path: at });
      t.sets.set(s.name, { name: s.name, map: kind === 'map', elements });
      const normalised: Record<string, unknown> = {};
      if (isRecord(body)) for (const [k, x] of Object.entries(body)) if (k !== 'elem' && !VOLATILE_KEYS.has(k)) normalised[k] = stripVolatile(x);
      if (s.elem !== undefined) normalised['elem'] = elements;
      t.objects.push({ kind, name: s.name, entry: { [kind]: normalised } });
    }
  }
  for (const { kind, body, at } of pending) {
    if (kind === 'chain' || kind === 'set' || kind === 'map') continue;
    if (kind === 'rule') {
      const r = RuleEntry.parse(body, at);
      const c = tableOf(r.family, r.table, at).chains.get(r.chain);
      if (c === undefined) throw new BulwarkError(CODE, `${what}: rule at ${at} belongs to chain ${r.chain}, which is not in table ${r.family} ${r.table}`, { path: at });
      const expr = withoutCounters(r.expr);
      c.rules.push(r.comment === undefined ? { expr } : { expr, comment: r.comment });
      const normalised: Record<string, unknown> = {};
      if (isRecord(body)) for (const [k, x] of Object.entries(body)) if (k !== 'expr' && !VOLATILE_KEYS.has(k)) normalised[k] = stripVolatile(x);
      normalised['expr'] = expr;
      c.ruleEntries.push({ rule: normalised });
      continue;
    }
    // Other objects (flowtables, named counters, quotas, ct helpers, ...) are kept as they are, without volatile keys.
    const family = isRecord(body) ? body['family'] : undefined;
    const table = isRecord(body) ? body['table'] : undefined;
    const name = isRecord(body) && typeof body['name'] === 'string' ? body['name'] : '';
    const owner = typeof family === 'string' && typeof table === 'string' ? tables.get(tableKey(family, table)) : undefined;
    const entry = { [kind]: kind === 'quota' && isRecord(body) ? stripVolatile({ ...body, used: undefined }) : stripVolatile(body) };
    if (owner === undefined) others.push(entry);
    else owner.objects.push({ kind, name, entry });
  }
  const sortedTables = [...tables.values()].sort((a, b) => compareStrings(a.family, b.family) || compareStrings(a.name, b.name));
  const json: unknown[] = [];
  const out: NftTable[] = [];
  for (const t of sortedTables) {
    json.push(t.entry);
    for (const o of [...t.objects].sort((a, b) => compareStrings(a.kind, b.kind) || compareStrings(a.name, b.name) || compareStrings(canonicalJson(a.entry), canonicalJson(b.entry)))) {
      json.push(o.entry);
    }
    const chains: NftChain[] = [];
    for (const c of [...t.chains.values()].sort((a, b) => compareStrings(a.chain.name, b.chain.name))) {
      json.push(c.entry, ...c.ruleEntries);
      chains.push({ ...c.chain, rules: c.rules });
    }
    out.push({ family: t.family, name: t.name, chains, sets: t.sets });
  }
  json.push(...others.sort((a, b) => compareStrings(canonicalJson(a), canonicalJson(b))));
  return { json: { nftables: json }, tables: out };
}

function entriesOf(json: unknown): readonly unknown[] {
  return isRecord(json) && Array.isArray(json['nftables']) ? json['nftables'] : [];
}

/** sha256 hex of a ruleset's canonical normalised form (or of one table of it: its table entry and every object of that table). */
export function nftDigest(ruleset: NftRuleset, table?: { readonly family: string; readonly name: string }): string {
  let value: unknown = ruleset.json;
  if (table !== undefined) {
    value = {
      nftables: entriesOf(ruleset.json).filter((entry) => {
        if (!isRecord(entry)) return false;
        const [kind, body] = entryKind(entry);
        if (!isRecord(body) || body['family'] !== table.family) return false;
        return kind === 'table' ? body['name'] === table.name : body['table'] === table.name;
      }),
    };
  }
  return createHash('sha256').update(canonicalJson(value)).digest('hex');
}
