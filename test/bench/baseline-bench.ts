/**
 * nftables evaluation throughput per core: `effectiveExposure` + `judgeNftables` of a
 * 500-rule ruleset (the shape `nft -j` prints: port matches, sets, ranges, saddr
 * conditions, jumps into regular chains, a second table), next to plain JSON.parse of
 * the same document text in the same run, and the full parse + normalise as well.
 *
 *   npx tsc -p . && node dist/test/bench/baseline-bench.js
 */
import { fileURLToPath } from 'node:url';
import { effectiveExposure, judgeNftables, parseNftRuleset } from '../../lib/baseline/index.js';
import { DEFAULT_BASELINE } from '../lib/baseline/nft-netns.js';
import { measurePair } from './measure.js';
import { printResults, type BenchResult } from './result.js';

/** An `nft -j list ruleset` document of `count` rules over an inet table (input, three regular chains, a set) and an ip table. */
export function syntheticRuleset(count: number): string {
  const out: unknown[] = [{ metainfo: { version: '1.0.6', release_name: 'Lester Gooch #5', json_schema_version: 1 } }];
  const dport = (proto: string, right: unknown): unknown => ({ match: { op: '==', left: { payload: { protocol: proto, field: 'dport' } }, right } });
  const saddr = (net: string): unknown => ({ match: { op: '==', left: { payload: { protocol: 'ip', field: 'saddr' } }, right: { prefix: { addr: net, len: 24 } } } });
  out.push({ table: { family: 'inet', name: 'bulwark', handle: 1 } });
  out.push({ set: { family: 'inet', name: 'web', table: 'bulwark', type: 'inet_service', handle: 2, flags: ['interval'], elem: [80, { range: [8000, 8099] }] } });
  out.push({ chain: { family: 'inet', table: 'bulwark', name: 'input', handle: 3, type: 'filter', hook: 'input', prio: -10, policy: 'drop' } });
  for (const c of ['svc-a', 'svc-b', 'svc-c']) out.push({ chain: { family: 'inet', table: 'bulwark', name: c, handle: 4 } });
  out.push({ table: { family: 'ip', name: 'filter', handle: 5 } });
  out.push({ chain: { family: 'ip', table: 'filter', name: 'INPUT', handle: 6, type: 'filter', hook: 'input', prio: 0, policy: 'accept' } });
  const rule = (family: string, table: string, chain: string, expr: unknown[], handle: number): unknown => ({ rule: { family, table, chain, handle, expr } });
  const base = [
    [{ match: { op: '==', left: { meta: { key: 'iif' } }, right: 'lo' } }, { accept: null }],
    [{ match: { op: 'in', left: { ct: { key: 'state' } }, right: ['established', 'related'] } }, { accept: null }],
    [{ match: { op: 'in', left: { ct: { key: 'state' } }, right: 'invalid' } }, { drop: null }],
  ];
  base.forEach((expr, i) => out.push(rule('inet', 'bulwark', 'input', expr, 10 + i)));
  for (let i = 0; out.length < count + 10; i++) {
    const port = 1000 + ((i * 37) % 60000);
    const chain = i % 5 === 0 ? 'input' : (['svc-a', 'svc-b', 'svc-c'][i % 3] ?? 'svc-a');
    const counter = { counter: { packets: i, bytes: i * 60 } };
    switch (i % 6) {
      case 0:
        out.push(rule('inet', 'bulwark', 'input', [dport('tcp', { set: [port, port + 1] }), { jump: { target: ['svc-a', 'svc-b', 'svc-c'][i % 3] } }], 100 + i));
        break;
      case 1:
        out.push(rule('inet', 'bulwark', chain, [saddr(`10.${i % 250}.0.0`), dport('tcp', port), counter, { accept: null }], 100 + i));
        break;
      case 2:
        out.push(rule('inet', 'bulwark', chain, [dport('udp', { range: [port, port + 9] }), { drop: null }], 100 + i));
        break;
      case 3:
        out.push(rule('ip', 'filter', 'INPUT', [dport('tcp', port), counter, { accept: null }], 100 + i));
        break;
      case 4:
        out.push(rule('inet', 'bulwark', chain, [dport('tcp', '@web'), { accept: null }], 100 + i));
        break;
      default:
        out.push(rule('inet', 'bulwark', chain, [dport('tcp', port), { return: null }], 100 + i));
    }
  }
  out.push(rule('inet', 'bulwark', 'input', [dport('tcp', { set: [22, 443] }), { accept: null }], 99_999));
  return JSON.stringify({ nftables: out });
}

/** Exposure + judgement per second of a 500-rule ruleset, against JSON.parse of its text. */
export async function benchBaseline(): Promise<BenchResult[]> {
  const text = syntheticRuleset(500);
  const ruleset = parseNftRuleset(text);
  const rules = ruleset.tables.reduce((n, t) => n + t.chains.reduce((m, c) => m + c.rules.length, 0), 0);
  if (rules < 500) throw new Error(`only ${rules} rules: the benchmark would measure less than it says`);
  let sink = 0;
  const evaluate = (): void => {
    sink += judgeNftables(DEFAULT_BASELINE, ruleset, effectiveExposure(ruleset)).length;
  };
  const full = (): void => {
    const r = parseNftRuleset(text);
    sink += judgeNftables(DEFAULT_BASELINE, r, effectiveExposure(r)).length;
  };
  const jsonParseOnly = (): void => {
    sink += JSON.parse(text) === null ? 0 : 1;
  };
  const ev = measurePair(jsonParseOnly, evaluate);
  const all = measurePair(jsonParseOnly, full);
  if (sink === 0) throw new Error('nothing measured');
  const baseName = `JSON.parse of the same ${Math.round(text.length / 1024)} KiB text`;
  return [
    { name: baseName, value: ev.base, unit: 'docs/s' },
    { name: `effectiveExposure + judgeNftables, ${rules} rules`, value: ev.cand, unit: 'evals/s', baseline: { name: baseName, value: ev.base }, ratio: ev.ratio },
    { name: `parseNftRuleset + effectiveExposure + judgeNftables, ${rules} rules`, value: all.cand, unit: 'evals/s', baseline: { name: baseName, value: all.base }, ratio: all.ratio },
  ];
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  printResults(await benchBaseline());
}
