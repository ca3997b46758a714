/**
 * `bulwark-agent gate --wait-trusted`: the host-side half of the placement gate. Run as
 * ExecStartPre of nomad.service, it keeps the Nomad client from starting until the
 * controller says this host is trusted with a fresh verdict (Placement.IsTrusted). It
 * fails closed: an unreachable controller, an unknown node or a timeout is exit 1.
 */
import { Backoff, isBulwarkError } from '../lib/index.js';
import { ControllerClient } from '../proto/index.js';
import { nodeTls } from './node-credentials.js';

export interface GateOptions {
  readonly controller: string;
  readonly nodeId: string;
  /** The pinned controller CA (PEM file). */
  readonly controllerCa: string;
  /** The agent's data directory: the node certificate the call is made with is read there, at every poll. */
  readonly dataDir: string;
  readonly timeoutMs: number;
  readonly pollMs?: number;
  readonly log?: (msg: string) => void;
}

export interface GateResult {
  readonly trusted: boolean;
  readonly state: string;
  readonly reasons: readonly string[];
  readonly waitedMs: number;
}

/**
 * Polls until the node is trusted or the timeout passes: every pollMs while the controller
 * answers; while it does not, after jittered waits growing to 5·pollMs (a rack that booted
 * together does not hammer a controller that is still starting).
 */
export async function waitTrusted(opts: GateOptions): Promise<GateResult> {
  const started = Date.now();
  const timeoutMs = Math.min(5000, Math.max(500, opts.timeoutMs));
  let last: GateResult = { trusted: false, state: 'unknown', reasons: [], waitedMs: 0 };
  let lastReport = '';
  const pollMs = Math.max(1, opts.pollMs ?? 1000);
  const unreachable = new Backoff({ baseMs: pollMs, capMs: 5 * pollMs });
  for (;;) {
    // The node certificate is read at every poll: the agent may enroll, or renew it, meanwhile.
    const tls = await nodeTls(opts.controllerCa, opts.dataDir).catch(() => null);
    if (tls === null) {
      last = { trusted: false, state: 'not-enrolled', reasons: ['NODE_NOT_ENROLLED'], waitedMs: Date.now() - started };
    } else {
      const client = new ControllerClient(opts.controller, { tls, timeoutMs });
      try {
        const r = await client.isTrusted(opts.nodeId);
        last = { ...r, waitedMs: Date.now() - started };
      } catch (err) {
        last = { trusted: false, state: 'unreachable', reasons: [isBulwarkError(err) ? err.code : 'RPC_FAILED'], waitedMs: Date.now() - started };
      } finally {
        client.close();
      }
    }
    if (last.trusted) return last;
    const report = `${last.state} ${last.reasons.join(',')}`;
    if (report !== lastReport) opts.log?.(`node ${opts.nodeId} is ${last.state}${last.reasons.length > 0 ? ` (${last.reasons.join(', ')})` : ''}; waiting`);
    lastReport = report;
    const waited = Date.now() - started;
    if (waited >= opts.timeoutMs) return { ...last, waitedMs: waited };
    if (last.state === 'unreachable') {
      await new Promise((r) => setTimeout(r, Math.min(unreachable.next().delayMs, opts.timeoutMs - waited)));
    } else {
      unreachable.reset();
      await new Promise((r) => setTimeout(r, pollMs));
    }
  }
}

/** Parses a duration: "90", "90s", "5m", "500ms". */
export function parseDuration(text: string): number | null {
  const m = /^(\d+)(ms|s|m|h)?$/.exec(text.trim());
  if (m === null) return null;
  const n = Number(m[1]);
  const unit = m[2] ?? 's';
  const factor = unit === 'ms' ? 1 : unit === 's' ? 1000 : unit === 'm' ? 60_000 : 3_600_000;
  return Number.isSafeInteger(n * factor) ? n * factor : null;
}
