/**
 * The host side of a baseline: reads SELinux and nftables into what a report holds, plans
 * the corrections a baseline asks for, and carries them out. Judging is lib/baseline's;
 * this only reads, writes and runs nft.
 */
import { isBulwarkError } from '../../lib/index.js';
import {
  effectiveExposure,
  judgeNftables,
  judgeSelinux,
  nftDigest,
  parseNftRuleset,
  parseSelinuxTree,
  renderBulwarkTable,
  type Baseline,
  type EnforcementAction,
  type Exposure,
  type NftRuleset,
  type ReportError,
  type SelinuxState,
} from '../../lib/baseline/index.js';
import type { Logger } from '../../daemon/index.js';
import type { Nftables } from './nft.js';
import { readSelinuxTree } from '../../daemon/index.js';
import { writeSelinuxBooleans, writeSelinuxEnforcing } from './selinux-writer.js';

/** Most characters of an error message kept in a report. */
export const MAX_ERROR_MESSAGE = 1000;
/** An enforcement action's `changed` text (lib/baseline/report.ts schema). */
const MAX_CHANGED_CHARS = 4000;

/** nftables as read this round: the parsed ruleset with its digest and exposure, or why it could not be read. */
export type NftablesPart = { readonly ruleset: NftRuleset; readonly digest: string; readonly exposure: Exposure } | ReportError;
export type SelinuxPart = { readonly state: SelinuxState } | ReportError;

/** The host's state as read once (untrusted: the agent's own reading). */
export interface HostState {
  readonly selinux: SelinuxPart;
  readonly nftables: NftablesPart;
}

/** What enforcement would do: the nft transaction and the SELinux writes, each with the drift it corrects. */
export interface EnforcementPlan {
  readonly nftables: { readonly table: string; readonly transaction: string; readonly drift: readonly string[] } | null;
  readonly selinux: { readonly enforce: boolean; readonly booleans: Readonly<Record<string, boolean>>; readonly drift: readonly string[] } | null;
}

export interface BaselineEnforcerOptions {
  readonly nft: Nftables;
  readonly selinuxRoot: string;
  readonly log: Logger;
}

/** Whether a report part is the error of a part that could not be read. */
export function isReportError(part: object): part is ReportError {
  return 'error' in part;
}

/** A thrown value as a report part: its code (INTERNAL for a non-Bulwark error) and message, capped. */
export function reportError(err: unknown): ReportError {
  const e = isBulwarkError(err) ? err : null;
  const message = err instanceof Error ? err.message : String(err);
  return { error: { code: e?.code ?? 'INTERNAL', message: message.slice(0, MAX_ERROR_MESSAGE) } };
}

/** Reads and corrects the host's SELinux and nftables state. */
export class BaselineEnforcer {
  private readonly opts: BaselineEnforcerOptions;

  constructor(opts: BaselineEnforcerOptions) {
    this.opts = opts;
  }

  /** Reads SELinux and nftables once; what cannot be read or parsed becomes a ReportError part. */
  async readState(): Promise<HostState> {
    let selinux: SelinuxPart;
    try {
      selinux = { state: parseSelinuxTree(await readSelinuxTree(this.opts.selinuxRoot)) };
    } catch (err) {
      selinux = reportError(err);
    }
    let nftables: NftablesPart;
    try {
      const ruleset = parseNftRuleset(await this.opts.nft.listRuleset());
      nftables = { ruleset, digest: nftDigest(ruleset), exposure: effectiveExposure(ruleset) };
    } catch (err) {
      nftables = reportError(err);
    }
    return { selinux, nftables };
  }

  /**
   * What enforcing `baseline` on `state` would do. Only drift the lib's judges find is
   * corrected; `force` (an explicit `baseline apply`) replaces Bulwark's table even
   * without drift. A part that could not be read is not touched.
   */
  plan(baseline: Baseline, state: HostState, force = false): EnforcementPlan {
    let nftables: EnforcementPlan['nftables'] = null;
    if (baseline.nftables !== null && (force || !isReportError(state.nftables))) {
      const drift = isReportError(state.nftables) ? [] : judgeNftables(baseline.nftables, state.nftables.ruleset).map((f) => f.message);
      if (force || drift.length > 0) nftables = { table: baseline.nftables.table, transaction: renderBulwarkTable(baseline.nftables), drift };
    }
    let selinux: EnforcementPlan['selinux'] = null;
    if (baseline.selinux !== null && !isReportError(state.selinux) && state.selinux.state.present) {
      const want = baseline.selinux;
      const have = state.selinux.state;
      const drift = judgeSelinux(want, have).map((f) => f.message);
      const enforce = want.mode === 'enforcing' && have.mode === 'permissive';
      const booleans: Record<string, boolean> = {};
      for (const [name, value] of Object.entries(want.booleans)) {
        const current = have.booleans[name];
        if (current !== undefined && current !== value) booleans[name] = value;
      }
      if (drift.length > 0 && (enforce || Object.keys(booleans).length > 0)) selinux = { enforce, booleans, drift };
    }
    return { nftables, selinux };
  }

  /**
   * Carries out a plan: Bulwark's table replaced by one `nft -f` transaction checked first
   * with `nft -c` (other tables untouched), SELinux set enforcing, each boolean written and
   * committed. Every action is returned with what it changed and whether it worked, and
   * logged at warn (the agent's audit line; the controller audits the report).
   */
  async enforce(plan: EnforcementPlan): Promise<EnforcementAction[]> {
    const actions: EnforcementAction[] = [];
    const attempt = async (target: EnforcementAction['target'], action: string, changed: string, run: () => Promise<void>): Promise<void> => {
      let done: EnforcementAction;
      try {
        await run();
        done = { target, action, changed, ok: true };
      } catch (err) {
        done = { target, action, changed, ok: false, error: (err instanceof Error ? err.message : String(err)).slice(0, MAX_ERROR_MESSAGE) };
      }
      actions.push(done);
      this.opts.log.warn({ ...done }, done.ok ? 'baseline enforced' : 'baseline enforcement failed');
    };
    if (plan.nftables !== null) {
      const { transaction, table, drift } = plan.nftables;
      const changed = drift.length > 0 ? drift.join('; ') : 'applied on request';
      await attempt('nftables', `replaced table inet ${table}`, changed.length > MAX_CHANGED_CHARS ? `${changed.slice(0, MAX_CHANGED_CHARS - 1)}…` : changed, async () => {
        await this.opts.nft.check(transaction);
        await this.opts.nft.apply(transaction);
      });
    }
    if (plan.selinux !== null) {
      const { drift } = plan.selinux;
      if (plan.selinux.enforce) await attempt('selinux', 'setenforce 1', 'mode permissive → enforcing', () => writeSelinuxEnforcing(this.opts.selinuxRoot));
      for (const [name, value] of Object.entries(plan.selinux.booleans)) {
        const changed = drift.find((d) => d.includes(name)) ?? `boolean ${name} → ${value ? 'on' : 'off'}`;
        await attempt('selinux', `setsebool ${name} ${value ? 'on' : 'off'}`, changed, () => writeSelinuxBooleans(this.opts.selinuxRoot, { [name]: value }));
      }
    }
    return actions;
  }
}
