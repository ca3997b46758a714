/** The `baseline` group: `baseline show NODE`, a node's host baseline over the controller's gRPC API. */
import type { Command } from 'commander';
import { EXIT_CODES } from '../../lib/index.js';
import { defineAction, jsonOption, type CtlContext } from '../command.js';
import { withController, type BaselineStatusView } from '../controller-client.js';
import { TOPICS } from '../help.js';
import { printJson } from '../io.js';

function ranges(list: BaselineStatusView['tcp']): string {
  return list.map((r) => (r.from === r.to ? String(r.from) : `${r.from}-${r.to}`)).join(',') || '-';
}

function baselineText(b: BaselineStatusView): string {
  const lines = [
    `node:           ${b.nodeId}`,
    `baseline:       ${b.baselineName === '' ? 'none assigned' : `${b.baselineName} (${b.baselineMode}, sha256 ${b.baselineSha256.slice(0, 16)}...)`}`,
    `report chain:   ${b.chainLength} report(s) this boot${b.bootId === '' ? '' : ` (boot ${b.bootId})`}, replayed against the quoted PCR`,
    `latest report:  ${b.latestReportAt === '' ? 'none' : `${b.latestReportAt} (received ${b.latestReceivedAt})`}`,
  ];
  if (b.reportBaselineSha256 !== '' && b.reportBaselineSha256 !== b.baselineSha256) lines.push(`                written under another baseline (sha256 ${b.reportBaselineSha256.slice(0, 16)}...)`);
  if (b.reportError !== '') lines.push(`report error:   ${b.reportError}`);
  if (b.exposureKnown) {
    lines.push(`open inbound:   tcp ${ranges(b.tcp)}; udp ${ranges(b.udp)}${b.otherProtocols ? '; other protocols accepted' : ''}`);
    for (const c of b.conditional) lines.push(`  conditional:  ${c.protocol} ${ranges([c.ports])} when ${c.condition}`);
    lines.push(`forwarding:     ${b.forwardOpen ? 'open' : 'dropped'}`);
  } else lines.push('open inbound:   unknown');
  lines.push(`SELinux:        ${b.selinuxMode || 'unknown'}`);
  for (const c of b.changes) lines.push(`changed:        ${c}`);
  lines.push(`findings:       ${b.findings.length === 0 ? (b.judgedAt === '' ? 'not judged yet' : 'none') : ''}`);
  for (const f of b.findings) lines.push(`  ${f.code}: ${f.message}`);
  if (b.enforcement.length === 0) lines.push('enforcement:    none reported');
  else {
    lines.push(`enforcement:    ${b.enforcedAt}`);
    for (const e of b.enforcement) lines.push(`  ${e.target}: ${e.action} (changed: ${e.changed})${e.ok ? '' : ` FAILED: ${e.error}`}`);
  }
  return `${lines.join('\n')}\n`;
}

/** Adds the `baseline` group to the program. */
export function addBaselineCommands(program: Command, ctx: CtlContext): void {
  const baseline = program.command('baseline').helpGroup(TOPICS.fleet).description('host baselines: SELinux and nftables');

  const show = baseline
    .command('show')
    .argument('<NODE>', 'the node id')
    .summary("a node's baseline: its report chain, open ports, SELinux mode, findings, last enforcement")
    .description("a node's host baseline as the controller verified it: the baseline that applies, the TPM-bound report chain, the effective inbound exposure and SELinux mode of the latest report, the findings and the last corrections the agent made (exit 1 when there are findings)");
  defineAction(jsonOption(show), ctx, async (call) => {
    const b = await withController(ctx, (c) => c.getBaseline(call.arg(0)));
    if (call.json) printJson(call.io, b);
    else call.io.out(baselineText(b));
    return b.findings.length === 0 ? EXIT_CODES.ok : EXIT_CODES.finding;
  });
}
