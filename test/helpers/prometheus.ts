/**
 * A strict parser of the Prometheus text exposition format 0.0.4 (what `/metrics` serves),
 * for tests: it refuses what a Prometheus server would refuse, and a bit more that a
 * well-formed exporter never writes (a sample before its TYPE, a family split in two,
 * a series given twice, a histogram whose buckets are not cumulative or lack +Inf).
 * Written from https://prometheus.io/docs/instrumenting/exposition_formats/. Test code.
 */
import { request } from 'node:http';

export type MetricType = 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';

export interface Sample {
  /** The sample's own name (a histogram's `_bucket`, `_sum`, `_count`). */
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
  readonly timestampMs?: number;
}

export interface MetricFamily {
  readonly name: string;
  readonly type: MetricType;
  readonly help: string;
  readonly samples: Sample[];
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES: ReadonlySet<string> = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

function isMetricType(t: string): t is MetricType {
  return TYPES.has(t);
}

function fail(lineNo: number, why: string): never {
  throw new Error(`metrics text line ${lineNo}: ${why}`);
}

/**
 * A sample value as Prometheus reads it (Go's strconv.ParseFloat): a decimal float, or
 * NaN, Inf and Infinity in any letter case with an optional sign (prom-client writes "Nan").
 */
function parseValue(text: string, lineNo: number): number {
  const special = /^([+-]?)(inf|infinity|nan)$/i.exec(text);
  if (special !== null) {
    if (special[2]?.toLowerCase() === 'nan') return NaN;
    return special[1] === '-' ? -Infinity : Infinity;
  }
  if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(text)) fail(lineNo, `not a number: ${JSON.stringify(text)}`);
  return Number(text);
}

/** The family a sample name belongs to, given the families declared so far. */
function familyOf(name: string, families: ReadonlyMap<string, { type: MetricType }>): string {
  if (families.has(name)) return name;
  for (const suffix of ['_bucket', '_sum', '_count']) {
    if (!name.endsWith(suffix)) continue;
    const base = name.slice(0, -suffix.length);
    const t = families.get(base)?.type;
    if (t === 'histogram' || (t === 'summary' && suffix !== '_bucket')) return base;
  }
  return name;
}

/** Reads `{a="x",b="y"}` from `line` at `at` (after the name); returns the labels and where they end. */
function parseLabels(line: string, at: number, lineNo: number): { labels: Record<string, string>; end: number } {
  const labels: Record<string, string> = {};
  let i = at + 1;
  for (;;) {
    if (line[i] === '}') return { labels, end: i + 1 };
    const nameMatch = /^[a-zA-Z_][a-zA-Z0-9_]*/.exec(line.slice(i));
    if (nameMatch === null) fail(lineNo, `bad label name at column ${i}`);
    const name = nameMatch[0];
    if (!LABEL_NAME.test(name) || name.startsWith('__')) fail(lineNo, `reserved or bad label name ${name}`);
    if (Object.prototype.hasOwnProperty.call(labels, name)) fail(lineNo, `label ${name} given twice`);
    i += name.length;
    if (line[i] !== '=' || line[i + 1] !== '"') fail(lineNo, `label ${name} without ="value"`);
    i += 2;
    let value = '';
    for (;;) {
      const c = line[i];
      if (c === undefined) fail(lineNo, `label ${name}: unterminated value`);
      if (c === '"') break;
      if (c === '\\') {
        const e = line[i + 1];
        if (e === '\\') value += '\\';
        else if (e === '"') value += '"';
        else if (e === 'n') value += '\n';
        else fail(lineNo, `label ${name}: bad escape \\${e ?? ''}`);
        i += 2;
        continue;
      }
      value += c;
      i++;
    }
    labels[name] = value;
    i++;
    if (line[i] === ',') i++;
    else if (line[i] !== '}') fail(lineNo, `expected , or } after label ${name}`);
  }
}

/** Parses a whole exposition; throws (with the line number) on anything out of the format. */
export function parsePrometheusText(text: string): Map<string, MetricFamily> {
  const families = new Map<string, MetricFamily & { samples: Sample[] }>();
  const declared = new Map<string, { type: MetricType; help: string | null }>();
  const series = new Set<string>();
  const finished = new Set<string>();
  let current: string | null = null;
  if (text.length > 0 && !text.endsWith('\n')) fail(text.split('\n').length, 'the text does not end with a newline');
  const lines = text.split('\n');
  lines.pop();
  lines.forEach((line, index) => {
    const lineNo = index + 1;
    if (line.trim() === '') return;
    if (line.startsWith('#')) {
      const m = /^#\s+(HELP|TYPE)\s+(\S+)(?:\s(.*))?$/.exec(line);
      if (m === null) return; // any other comment
      const [, kind, name = '', rest = ''] = m;
      if (!METRIC_NAME.test(name)) fail(lineNo, `bad metric name ${name}`);
      if (finished.has(name) || (families.get(name)?.samples.length ?? 0) > 0) fail(lineNo, `${kind} for ${name} after its samples`);
      const d = declared.get(name) ?? { type: 'untyped', help: null };
      if (kind === 'TYPE') {
        const type = rest.trim();
        if (!isMetricType(type)) fail(lineNo, `unknown type ${rest}`);
        if (families.has(name)) fail(lineNo, `TYPE for ${name} given twice`);
        declared.set(name, { ...d, type });
        families.set(name, { name, type, help: d.help ?? '', samples: [] });
      } else {
        if (d.help !== null) fail(lineNo, `HELP for ${name} given twice`);
        declared.set(name, { ...d, help: rest });
        const f = families.get(name);
        if (f !== undefined) families.set(name, { ...f, help: rest });
      }
      if (current !== null && current !== name) finished.add(current);
      current = name;
      return;
    }
    const nameMatch = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line);
    if (nameMatch === null) fail(lineNo, 'a sample must start with a metric name');
    const name = nameMatch[0];
    let at = name.length;
    let labels: Record<string, string> = {};
    if (line[at] === '{') ({ labels, end: at } = parseLabels(line, at, lineNo));
    const rest = line.slice(at);
    const parts = /^ +(\S+)(?: +(-?\d+))?$/.exec(rest);
    if (parts === null) fail(lineNo, `expected " value [timestamp]" after ${name}, got ${JSON.stringify(rest)}`);
    const value = parseValue(parts[1] ?? '', lineNo);
    const family = familyOf(name, families);
    if (finished.has(family)) fail(lineNo, `samples of ${family} are not together`);
    if (current !== null && current !== family) finished.add(current);
    current = family;
    let f = families.get(family);
    if (f === undefined) {
      f = { name: family, type: 'untyped', help: declared.get(family)?.help ?? '', samples: [] };
      families.set(family, f);
    }
    const key = `${name}{${Object.keys(labels)
      .sort()
      .map((k) => `${k}=${JSON.stringify(labels[k])}`)
      .join(',')}}`;
    if (series.has(key)) fail(lineNo, `series ${key} given twice`);
    series.add(key);
    if (f.type === 'counter' && (value < 0 || Number.isNaN(value))) fail(lineNo, `counter ${name} is ${value}`);
    if (f.type === 'histogram' && name === `${family}_bucket` && labels['le'] === undefined) fail(lineNo, `histogram bucket ${name} without le`);
    f.samples.push({ name, labels, value, ...(parts[2] === undefined ? {} : { timestampMs: Number(parts[2]) }) });
  });
  for (const f of families.values()) if (f.type === 'histogram') checkHistogram(f);
  return families;
}

/** Buckets cumulative per series, ending in +Inf equal to _count. */
function checkHistogram(f: MetricFamily): void {
  const groups = new Map<string, { buckets: { le: number; value: number }[]; count?: number }>();
  for (const s of f.samples) {
    const { le, ...rest } = s.labels;
    const key = JSON.stringify(Object.entries(rest).sort());
    const g = groups.get(key) ?? { buckets: [] };
    groups.set(key, g);
    if (s.name === `${f.name}_bucket`) g.buckets.push({ le: parseValue(le ?? '', 0), value: s.value });
    else if (s.name === `${f.name}_count`) g.count = s.value;
  }
  for (const [key, g] of groups) {
    const sorted = [...g.buckets].sort((a, b) => a.le - b.le);
    for (let i = 1; i < sorted.length; i++) {
      const prev = sorted[i - 1];
      const cur = sorted[i];
      if (prev !== undefined && cur !== undefined && cur.value < prev.value) throw new Error(`histogram ${f.name} ${key}: buckets are not cumulative`);
    }
    const inf = sorted[sorted.length - 1];
    if (inf === undefined || inf.le !== Infinity) throw new Error(`histogram ${f.name} ${key}: no +Inf bucket`);
    if (g.count !== inf.value) throw new Error(`histogram ${f.name} ${key}: _count ${String(g.count)} differs from the +Inf bucket ${inf.value}`);
  }
}

/** The value of the one sample of `name` whose labels include `labels`; undefined when there is none. */
export function sampleValue(families: ReadonlyMap<string, MetricFamily>, name: string, labels: Readonly<Record<string, string>> = {}): number | undefined {
  for (const f of families.values()) {
    const matching = f.samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
    if (matching.length > 1) throw new Error(`${name} ${JSON.stringify(labels)} matches ${matching.length} series`);
    if (matching[0] !== undefined) return matching[0].value;
  }
  return undefined;
}

/** The sum of every sample of `name` whose labels include `labels` (0 when none). */
export function sampleSum(families: ReadonlyMap<string, MetricFamily>, name: string, labels: Readonly<Record<string, string>> = {}): number {
  let sum = 0;
  for (const f of families.values()) for (const s of f.samples) if (s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)) sum += s.value;
  return sum;
}

/** GET /metrics at `HOST:PORT` or `unix:/PATH`, parsed strictly; rejects on any other status. */
export function scrapeMetrics(address: string): Promise<Map<string, MetricFamily>> {
  const target = address.startsWith('unix:')
    ? { socketPath: address.slice('unix:'.length) }
    : { host: address.replace(/:\d+$/, '').replace(/^\[|\]$/g, ''), port: Number(/:(\d+)$/.exec(address)?.[1]) };
  return new Promise((resolve, reject) => {
    const req = request({ ...target, path: '/metrics' }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => {
        if (res.statusCode !== 200) {
          reject(new Error(`/metrics at ${address} answered ${String(res.statusCode)}`));
          return;
        }
        try {
          resolve(parsePrometheusText(body));
        } catch (err) {
          reject(err instanceof Error ? err : new Error(String(err)));
        }
      });
    });
    req.on('error', reject);
    req.end();
  });
}
