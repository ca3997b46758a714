/** The agent's side of host baselines: reading SELinux and nftables, enforcing, and the TPM-bound report chain. */
export { BaselineSource, parseBaselineBytes, parseReceivedBaseline, type BaselineSourceOptions, type HeldBaseline } from './baseline-source.js';
export { BaselineKeyTrust, MAX_KEYSET_CHAIN, type KeySetReceipt } from './key-trust.js';
export { BaselineEnforcer, isReportError, reportError, type BaselineEnforcerOptions, type EnforcementPlan, type HostState, type NftablesPart, type SelinuxPart } from './enforcer.js';
export { Nftables, MAX_NFT_OUTPUT_BYTES, type NftablesOptions, type NftMonitor } from './nft.js';
export { ReportLog, MAX_REPORTS } from './report-log.js';
export { writeSelinuxBooleans, writeSelinuxEnforcing, BOOLEANS_DIR } from './selinux-writer.js';
export { runBaselineApply, type BaselineApplyOptions } from './apply.js';
