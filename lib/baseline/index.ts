/** Host baselines: SELinux and nftables documents, state, reports and their judgement. */
export type {
  AllowedService,
  Baseline,
  BaselineReport,
  EnforcementAction,
  Exposure,
  ForeignTable,
  ForwardExemption,
  NftablesBaseline,
  PortRange,
  Protocol,
  ReportError,
  SelinuxBaseline,
  SelinuxState,
} from './types.js';
export {
  validateBaseline,
  parseBaselineJson,
  cidrProblem,
  DEFAULT_BASELINE,
  BASELINE_LIMITS,
  BASELINE_NAME_PATTERNS,
  BaselineDocumentSchema,
  NftablesBaselineSchema,
  SelinuxBaselineSchema,
} from './document.js';
export {
  parseSelinuxTree,
  pendingSelinuxPaths,
  judgeSelinux,
  kernelSelinuxFromImaBuf,
  selinuxContradictions,
  withKernelSelinux,
  describeSelinuxChanges,
  SELINUX_FILES,
  SELINUX_TREE_LIMITS,
  SELINUX_IMA_EVENTS,
  type SelinuxTree,
  type KernelSelinux,
} from './selinux.js';
export { encodeReport, decodeReport, extendReport, replayReportChain, BaselineReportSchema, MAX_REPORT_BYTES, type ReportChainReplay } from './report.js';
export { judgeBaseline, type BaselineJudgement } from './judge.js';
export { parseNftRuleset, nftDigest, effectiveExposure, renderBulwarkTable, judgeNftables, describeNftChanges, type NftRuleset } from './nft/index.js';
