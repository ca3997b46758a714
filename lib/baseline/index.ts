/** Host baselines: SELinux and nftables documents, state, reports and their judgement. */
export type * from './types.js';
export { validateBaseline } from './document.js';
export { parseSelinuxTree, judgeSelinux, SELINUX_FILES, type SelinuxTree } from './selinux.js';
export { encodeReport, decodeReport, extendReport } from './report.js';
export { parseNftRuleset, nftDigest, effectiveExposure, renderBulwarkTable, judgeNftables, describeNftChanges, type NftRuleset } from './nft/index.js';
