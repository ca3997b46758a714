/**
 * Judging a node's baseline reports against the baseline assigned to it. The reports must
 * come from a chain that replayed to the quoted baseline PCR (replayReportChain): this file
 * judges what they say, not whether they are the host's.
 */
import { isBulwarkError } from '../errors.js';
import { finding, type Finding } from '../verdict.js';
import { judgeNftables, nftDigest, parseNftRuleset } from './nft/index.js';
import { judgeSelinux, selinuxContradictions, withKernelSelinux, type KernelSelinux } from './selinux.js';
import type { Baseline, BaselineReport } from './types.js';

/** What judgeBaseline needs. */
export interface BaselineJudgement {
  /** The baseline assigned to the node. */
  readonly baseline: Baseline;
  /** sha256 hex of the assigned baseline's document, to notice a report made under another one. */
  readonly baselineSha256?: string;
  /** Decoded reports new this round (or the latest one when none is new), in chain order. */
  readonly reports: readonly BaselineReport[];
  /** SELinux as the kernel measured it into verified IMA entries; null when it measured nothing. */
  readonly kernel: KernelSelinux | null;
}

/** The findings of one round's baseline reports: empty when the node conforms. */
export function judgeBaseline(input: BaselineJudgement): Finding[] {
  const { baseline, baselineSha256, reports, kernel } = input;
  if (reports.length === 0) {
    return [finding('BASELINE_REPORT_MISSING', `baseline ${baseline.name} applies but the host sent no baseline report`, { baseline: baseline.name })];
  }
  const out: Finding[] = [];
  for (const report of reports) {
    const note: Record<string, string | number> = { seq: report.seq };
    if (baselineSha256 !== undefined && report.baseline?.sha256 !== baselineSha256) {
      // Judged against the assigned baseline anyway: the agent may not have fetched it yet.
      note['reportedBaseline'] = report.baseline === null ? 'none' : `${report.baseline.name} ${report.baseline.sha256}`;
      note['assignedBaseline'] = `${baseline.name} ${baselineSha256}`;
    }
    const add = (f: Finding): void => {
      out.push(finding(f.code, f.message, { ...f.details, ...note }));
    };

    if ('error' in report.selinux) {
      add(finding('BASELINE_REPORT_INVALID', `the agent could not read SELinux: ${report.selinux.error.code}: ${report.selinux.error.message}`, { part: 'selinux', error: report.selinux.error.code }));
    } else {
      const reported = report.selinux.state;
      if (baseline.selinux !== null) {
        for (const f of judgeSelinux(baseline.selinux, kernel === null ? reported : withKernelSelinux(reported, kernel))) add(f);
      }
      if (kernel !== null) for (const f of selinuxContradictions(kernel, reported)) add(f);
    }

    if ('error' in report.nftables) {
      add(finding('BASELINE_REPORT_INVALID', `the agent could not read nftables: ${report.nftables.error.code}: ${report.nftables.error.message}`, { part: 'nftables', error: report.nftables.error.code }));
    } else {
      try {
        const ruleset = parseNftRuleset({ value: report.nftables.ruleset });
        // The digest is the agent's claim about the ruleset it sent; the controller judges the ruleset itself.
        const digest = nftDigest(ruleset);
        if (digest !== report.nftables.digest) {
          add(finding('BASELINE_REPORT_INVALID', `the reported nftables digest ${report.nftables.digest} is not that of the reported ruleset (${digest})`, { part: 'nftables', digest }));
        }
        if (baseline.nftables !== null) for (const f of judgeNftables(baseline.nftables, ruleset)) add(f);
      } catch (err) {
        if (!isBulwarkError(err)) throw err;
        add(finding('BASELINE_REPORT_INVALID', `the reported nftables ruleset does not parse: ${err.message}`, { part: 'nftables', error: err.code }));
      }
    }
  }
  return dedupe(out);
}

/** One finding per code and message (the same drift in several reports of a round is said once, with the first report's details). */
function dedupe(findings: readonly Finding[]): Finding[] {
  const seen = new Set<string>();
  const out: Finding[] = [];
  for (const f of findings) {
    const key = `${f.code}\u0000${f.message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(f);
  }
  return out;
}
