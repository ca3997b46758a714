/**
 * `bulwarkctl baseline check`: a host's nftables ruleset and SELinux tree judged against a
 * baseline, offline, with the same lib/baseline code the controller judges reports with.
 * Loaded on use by cli/commands/baseline-check.ts; a thrown BulwarkError becomes the exit
 * code (2 usage, 3 malformed input).
 */
import { stat } from 'node:fs/promises';
import { effectiveExposure, judgeNftables, judgeSelinux, parseBaselineJson, parseNftRuleset, parseSelinuxTree, type Exposure, type PortRange, type SelinuxState } from '../lib/baseline/index.js';
import { BulwarkError, EXIT_CODES, type Finding } from '../lib/index.js';
import { readSelinuxTree } from '../daemon/index.js';
import type { Call } from './command.js';
import { printJson, readInput } from './io.js';

function ports(list: readonly PortRange[]): string {
  return list.map((r) => (r.from === r.to ? String(r.from) : `${r.from}-${r.to}`)).join(',') || 'none';
}

function exposureText(e: Exposure): string {
  const lines = [`inbound exposure: tcp ${ports(e.tcp)}; udp ${ports(e.udp)}${e.otherProtocols ? '; every other protocol accepted' : ''}`];
  for (const c of e.conditional) lines.push(`  conditional: ${c.protocol} ${ports([c.ports])} when ${c.condition}`);
  lines.push(`forwarding: ${e.forwardOpen ? 'OPEN (new forwarded connections accepted)' : 'dropped'}`);
  return `${lines.join('\n')}\n`;
}

function selinuxText(s: SelinuxState): string {
  if (!s.present) return `SELinux: disabled (no selinuxfs)${s.configMode === null ? '' : `; ${s.configMode} at next boot`}\n`;
  const details = [`${s.configMode ?? 'no mode'} at next boot`, `policy ${s.policyType ?? 'unknown'}`];
  if (s.policyVersion !== null) details.push(`version ${s.policyVersion}`);
  details.push(`${Object.keys(s.booleans).length} booleans, ${s.modules.length} modules`);
  return `SELinux: ${s.mode} (${details.join(', ')})\n`;
}

async function selinuxFrom(root: string): Promise<SelinuxState> {
  try {
    if (!(await stat(root)).isDirectory()) throw new Error('not a directory');
  } catch (err) {
    throw new BulwarkError('IO_FAILED', `--selinux-root ${root} is not a directory`, {}, { cause: err });
  }
  return parseSelinuxTree(await readSelinuxTree(root));
}

/** `baseline check --baseline FILE [--nft-json FILE] [--selinux-root DIR] [--json]`. */
export async function baselineCheck(call: Call): Promise<number> {
  const nftFile = call.string('--nft-json');
  const selinuxRoot = call.string('--selinux-root');
  if (nftFile === undefined && selinuxRoot === undefined) throw new BulwarkError('USAGE', 'baseline check needs --nft-json FILE, --selinux-root DIR, or both');
  const baselineFile = call.required('--baseline');
  const baseline = parseBaselineJson(await readInput(baselineFile, 'baseline'), baselineFile);

  const findings: Finding[] = [];
  let exposure: Exposure | null = null;
  if (nftFile !== undefined) {
    const ruleset = parseNftRuleset(await readInput(nftFile, 'nft JSON'));
    exposure = effectiveExposure(ruleset);
    if (baseline.nftables !== null) findings.push(...judgeNftables(baseline.nftables, ruleset, exposure));
  }
  let selinux: SelinuxState | null = null;
  if (selinuxRoot !== undefined) {
    selinux = await selinuxFrom(selinuxRoot);
    if (baseline.selinux !== null) findings.push(...judgeSelinux(baseline.selinux, selinux));
  }

  const io = call.io;
  if (call.json) {
    printJson(io, { baseline: { name: baseline.name, mode: baseline.mode }, exposure, selinux, conforms: findings.length === 0, findings });
  } else {
    io.out(`baseline: ${baseline.name} (${baseline.mode})\n`);
    if (exposure !== null) io.out(exposureText(exposure));
    if (selinux !== null) io.out(selinuxText(selinux));
    const unjudged = [nftFile !== undefined && baseline.nftables === null ? 'nftables' : null, selinuxRoot !== undefined && baseline.selinux === null ? 'SELinux' : null].filter((x) => x !== null);
    if (unjudged.length > 0) io.out(`not judged (the baseline leaves it out): ${unjudged.join(', ')}\n`);
    io.out(findings.length === 0 ? 'conforms: no deviations\n' : `${findings.length} deviations:\n`);
    for (const f of findings) io.out(`  ${f.code}: ${f.message}\n`);
  }
  return findings.length === 0 ? EXIT_CODES.ok : EXIT_CODES.finding;
}
