/**
 * nftables rulesets as `nft -j list ruleset` prints them: parsed, normalised and
 * evaluated for the effective inbound exposure; Bulwark's own table rendered for
 * `nft -f`; drift against a baseline judged. Pure: values in, values out.
 */
export { parseNftRuleset, nftDigest, parsePriority, NAMED_PRIORITIES, NFT_JSON_SCHEMA_VERSION } from './parse.js';
export type { NftRuleset, NftTable, NftChain, NftRule, NftSet, NftBaseChain } from './parse.js';
export { effectiveExposure, formatPorts, MAX_JUMP_DEPTH, MAX_WALK_STEPS } from './evaluate.js';
export { renderBulwarkTable, ESSENTIAL_ICMP, ESSENTIAL_ICMPV6 } from './render.js';
export { judgeNftables, describeNftChanges } from './judge.js';
export { portSet, union as unionPorts, subtract as subtractPorts, intersect as intersectPorts, type PortSet } from './port-set.js';
