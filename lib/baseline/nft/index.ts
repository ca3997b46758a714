/**
 * nftables rulesets as `nft -j list ruleset` prints them: parsed, normalised and
 * evaluated for the effective inbound exposure. (Contract; implemented in this folder.)
 */
import type { Finding } from '../../verdict.js';
import type { Exposure, NftablesBaseline } from '../types.js';

/** A parsed, normalised ruleset (no metainfo, handles or counters; rule order kept). */
export interface NftRuleset {
  /** The normalised document, as stored in reports: `{ nftables: [...] }` without metainfo. */
  readonly json: unknown;
}

const pending = (): never => {
  throw new Error('not implemented');
};

/** Parses `nft -j list ruleset` output (text) or a normalised document (value); a BulwarkError for anything else. */
export function parseNftRuleset(input: string | Uint8Array | { readonly value: unknown }): NftRuleset {
  void input;
  return pending();
}

/** sha256 hex of a ruleset's canonical normalised form (or of one table of it). */
export function nftDigest(ruleset: NftRuleset, table?: { readonly family: string; readonly name: string }): string {
  void ruleset;
  void table;
  return pending();
}

/** What a new inbound connection from another host can reach, with nftables' semantics. */
export function effectiveExposure(ruleset: NftRuleset): Exposure {
  void ruleset;
  return pending();
}

/** The `nft -f` transaction that replaces Bulwark's own table with the baseline's, atomically. */
export function renderBulwarkTable(baseline: NftablesBaseline): string {
  void baseline;
  return pending();
}

/** NFT_BASELINE_DRIFT findings: each port reachable beyond the baseline, and each change to Bulwark's table, chain or policy. */
export function judgeNftables(baseline: NftablesBaseline, ruleset: NftRuleset): Finding[] {
  void baseline;
  void ruleset;
  return pending();
}

/** Human-readable changes between two rulesets (tables/chains added, removed or changed, exposure changes). */
export function describeNftChanges(previous: NftRuleset, current: NftRuleset): string[] {
  void previous;
  void current;
  return pending();
}
