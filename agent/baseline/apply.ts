/**
 * `bulwark-agent baseline apply [--dry-run] [--baseline FILE]`: enforces the held baseline
 * (or the one in FILE) on this host now, whatever its mode, and prints what it did; with
 * --dry-run it prints the nft transaction and the SELinux changes and applies nothing.
 * It writes no report and extends no PCR: a running agent notices the change (nft monitor,
 * or its next round) and reports it with the changes.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BulwarkError } from '../../lib/index.js';
import { WIRE_LIMITS } from '../../proto/index.js';
import type { Logger } from '../../daemon/index.js';
import { parseBaselineBytes } from './baseline-source.js';
import { BaselineEnforcer, isReportError } from './enforcer.js';
import { Nftables } from './nft.js';

export interface BaselineApplyOptions {
  readonly dataDir: string;
  readonly selinuxRoot: string;
  readonly nftCommand: readonly string[];
  readonly toolTimeoutMs: number;
  readonly dryRun: boolean;
  /** A baseline document to apply instead of the held one (dataDir/baseline.json). */
  readonly baselinePath?: string;
  readonly out: (text: string) => void;
  readonly log: Logger;
}

async function readBaselineFile(path: string, explicit: boolean): Promise<Uint8Array> {
  try {
    const bytes = await readFile(path);
    if (bytes.length > WIRE_LIMITS.baseline) throw new BulwarkError('USAGE', `${path} is larger than ${WIRE_LIMITS.baseline} bytes`);
    return new Uint8Array(bytes);
  } catch (err) {
    if (err instanceof BulwarkError) throw err;
    const missing = err instanceof Error && 'code' in err && err.code === 'ENOENT';
    if (missing && !explicit) throw new BulwarkError('USAGE', `no baseline is held (${path} does not exist): give one with --baseline FILE`);
    throw new BulwarkError('IO_FAILED', `cannot read ${path}: ${err instanceof Error ? err.message : String(err)}`, {}, { cause: err });
  }
}

/** Prints (and unless dry-run applies) the corrections; exit status 0 when every action worked (or none was needed), 1 otherwise. */
export async function runBaselineApply(opts: BaselineApplyOptions): Promise<number> {
  const path = opts.baselinePath ?? join(opts.dataDir, 'baseline.json');
  const held = parseBaselineBytes(await readBaselineFile(path, opts.baselinePath !== undefined), path);
  const enforcer = new BaselineEnforcer({ nft: new Nftables({ command: opts.nftCommand, timeoutMs: opts.toolTimeoutMs }), selinuxRoot: opts.selinuxRoot, log: opts.log });
  const state = await enforcer.readState();
  const plan = enforcer.plan(held.baseline, state, true);
  const out = opts.out;
  out(`baseline ${held.baseline.name} (mode ${held.baseline.mode}, sha256 ${held.sha256})\n`);
  if (isReportError(state.nftables)) out(`nftables: current ruleset unreadable (${state.nftables.error.code}: ${state.nftables.error.message})\n`);
  if (plan.nftables === null) {
    out('nftables: the baseline has no nftables part\n');
  } else {
    out(`nftables: ${plan.nftables.drift.length === 0 ? 'no drift' : `drift: ${plan.nftables.drift.join('; ')}`}\n`);
    out(`nftables: transaction for table inet ${plan.nftables.table} (checked with nft -c, applied with nft -f):\n${plan.nftables.transaction}${plan.nftables.transaction.endsWith('\n') ? '' : '\n'}`);
  }
  if (isReportError(state.selinux)) {
    out(`selinux: state unreadable (${state.selinux.error.code}: ${state.selinux.error.message}): nothing to change\n`);
  } else if (plan.selinux === null) {
    out(held.baseline.selinux === null ? 'selinux: the baseline has no SELinux part\n' : 'selinux: nothing to change\n');
  } else {
    if (plan.selinux.enforce) out('selinux: would setenforce 1 (permissive → enforcing)\n');
    for (const [name, value] of Object.entries(plan.selinux.booleans)) out(`selinux: would set boolean ${name} ${value ? 'on' : 'off'}\n`);
  }
  if (opts.dryRun) {
    out('dry run: nothing applied\n');
    return 0;
  }
  const actions = await enforcer.enforce(plan);
  for (const a of actions) out(`${a.ok ? 'done' : 'FAILED'}: ${a.target}: ${a.action} (${a.changed})${a.error === undefined ? '' : `: ${a.error}`}\n`);
  if (actions.length === 0) out('nothing applied: nothing to change\n');
  return actions.every((a) => a.ok) ? 0 : 1;
}
