/**
 * Judging a ruleset against the nftables part of a baseline, and describing what changed
 * between two rulesets. Drift is what changes exposure or Bulwark's own table: a second
 * table that accepts everything while Bulwark's table drops changes nothing, and neither
 * do counters, handles or foreign tables' rules.
 */
import { finding, type Finding } from '../../verdict.js';
import type { Exposure, NftablesBaseline, PortRange, Protocol } from '../types.js';
import { effectiveExposure, formatPorts } from './evaluate.js';
import { canonicalJson } from '../../schema/index.js';
import type { NftChain, NftRuleset } from './parse.js';
import { formatRange, isEmpty, portSet, subtract, union, type PortSet } from './port-set.js';

const CODE = 'NFT_BASELINE_DRIFT';

/** Ports a baseline allows per protocol: for anyone, and (services with sources) for some. */
function allowed(baseline: NftablesBaseline, protocol: Protocol): { anyone: PortSet; some: PortSet } {
  const range = (s: { port: number; toPort?: number }): PortRange => ({ from: s.port, to: s.toPort ?? s.port });
  const mine = baseline.inbound.filter((s) => s.protocol === protocol);
  return { anyone: portSet(mine.filter((s) => s.sources === undefined).map(range)), some: portSet(mine.map(range)) };
}

/** NFT_BASELINE_DRIFT findings: each port reachable beyond the baseline, and each change to Bulwark's table, chain or policy. */
export function judgeNftables(baseline: NftablesBaseline, ruleset: NftRuleset, exposure: Exposure = effectiveExposure(ruleset)): Finding[] {
  const findings: Finding[] = [];
  const table = ruleset.tables.find((t) => t.family === 'inet' && t.name === baseline.table);
  if (table === undefined) {
    findings.push(finding(CODE, `Bulwark's table inet ${baseline.table} is missing`, { table: baseline.table, what: 'table-missing' }));
  } else {
    const input = table.chains.filter((c) => c.base?.hook === 'input');
    if (input.length === 0) {
      findings.push(finding(CODE, `Bulwark's table inet ${baseline.table} has no base chain on the input hook`, { table: baseline.table, what: 'input-chain-missing' }));
    }
    for (const c of input) {
      if (c.base?.policy !== 'drop') {
        findings.push(
          finding(CODE, `chain ${c.name} of Bulwark's table inet ${baseline.table} has policy ${c.base?.policy ?? 'none'}, not drop`, {
            table: baseline.table,
            chain: c.name,
            policy: c.base?.policy ?? 'none',
            what: 'input-policy',
          }),
        );
      }
    }
  }
  for (const protocol of ['tcp', 'udp'] as const) {
    const { anyone, some } = allowed(baseline, protocol);
    for (const r of subtract(exposure[protocol], anyone)) {
      findings.push(
        finding(CODE, `${formatPorts(protocol, r)} is reachable from other hosts beyond the baseline`, {
          protocol,
          ports: formatRange(r),
          conditional: false,
          what: 'port-reachable',
        }),
      );
    }
    for (const c of exposure.conditional.filter((x) => x.protocol === protocol)) {
      for (const r of subtract([c.ports], some)) {
        findings.push(
          finding(CODE, `${formatPorts(protocol, r)} is reachable beyond the baseline when ${c.condition}`, {
            protocol,
            ports: formatRange(r),
            conditional: true,
            condition: c.condition,
            what: 'port-reachable',
          }),
        );
      }
    }
  }
  if (exposure.otherProtocols) {
    findings.push(finding(CODE, 'protocols other than tcp, udp and icmp are accepted from other hosts', { what: 'other-protocols' }));
  }
  if (baseline.forward.policy === 'drop' && exposure.forwardOpen) {
    findings.push(finding(CODE, 'new forwarded connections are accepted while the baseline drops them', { what: 'forward-open' }));
  }
  return findings;
}

function chainKey(c: NftChain): string {
  return `${c.family} ${c.table} ${c.name}`;
}

function describeChain(c: NftChain): string {
  return c.base === undefined ? `chain ${chainKey(c)}` : `base chain ${chainKey(c)} (hook ${c.base.hook}, priority ${c.base.prio}, policy ${c.base.policy})`;
}

function rangesText(protocol: Protocol, ranges: PortSet): string {
  return ranges.map((r) => formatPorts(protocol, r)).join(', ');
}

/** Human-readable changes between two rulesets (tables/chains added, removed or changed, exposure changes). */
export function describeNftChanges(previous: NftRuleset, current: NftRuleset): string[] {
  const lines: string[] = [];
  const tableKeys = (r: NftRuleset): Set<string> => new Set(r.tables.map((t) => `${t.family} ${t.name}`));
  const before = tableKeys(previous);
  const after = tableKeys(current);
  for (const t of after) if (!before.has(t)) lines.push(`table ${t} added`);
  for (const t of before) if (!after.has(t)) lines.push(`table ${t} removed`);
  const chains = (r: NftRuleset): Map<string, NftChain> => new Map(r.tables.flatMap((t) => t.chains.map((c) => [chainKey(c), c] as const)));
  const prevChains = chains(previous);
  const curChains = chains(current);
  for (const [key, c] of curChains) {
    const old = prevChains.get(key);
    if (old === undefined) {
      lines.push(`${describeChain(c)} added with ${c.rules.length} rule(s)`);
      continue;
    }
    if (old.base?.policy !== c.base?.policy || old.base?.hook !== c.base?.hook || old.base?.prio !== c.base?.prio) {
      lines.push(`${describeChain(old)} changed to ${c.base === undefined ? 'a regular chain' : `hook ${c.base.hook}, priority ${c.base.prio}, policy ${c.base.policy}`}`);
    }
    const oldRules = old.rules.map((r) => canonicalJson(r));
    const newRules = c.rules.map((r) => canonicalJson(r));
    const added = newRules.filter((r) => !oldRules.includes(r)).length;
    const removed = oldRules.filter((r) => !newRules.includes(r)).length;
    if (added > 0 || removed > 0) lines.push(`chain ${key}: ${added} rule(s) added, ${removed} rule(s) removed`);
    else if (oldRules.join('\n') !== newRules.join('\n')) lines.push(`chain ${key}: rules reordered`);
  }
  for (const [key, c] of prevChains) if (!curChains.has(key)) lines.push(`${describeChain(c)} removed`);
  const was = effectiveExposure(previous);
  const now = effectiveExposure(current);
  for (const protocol of ['tcp', 'udp'] as const) {
    const reach = (e: Exposure): PortSet => union(e[protocol], portSet(e.conditional.filter((c) => c.protocol === protocol).map((c) => c.ports)));
    const opened = subtract(reach(now), reach(was));
    const closed = subtract(reach(was), reach(now));
    if (!isEmpty(opened)) lines.push(`newly reachable: ${rangesText(protocol, opened)}`);
    if (!isEmpty(closed)) lines.push(`no longer reachable: ${rangesText(protocol, closed)}`);
  }
  if (now.otherProtocols !== was.otherProtocols) lines.push(now.otherProtocols ? 'other protocols newly accepted' : 'other protocols no longer accepted');
  if (now.forwardOpen !== was.forwardOpen) lines.push(now.forwardOpen ? 'forwarded connections newly accepted' : 'forwarded connections no longer accepted');
  return lines;
}
