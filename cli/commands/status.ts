/**
 * `bulwarkctl status`: the answering controller replica's version and uptime, whether it
 * reaches NATS and Nomad, who holds each lease, and the nodes by trust state. The exit code
 * is the health: 0 healthy, 1 degraded (a configured dependency unreachable), 4 the
 * controller itself unreachable.
 */
import type { Command } from 'commander';
import { EXIT_CODES, isBulwarkError } from '../../lib/index.js';
import { defineAction, jsonOption, type CtlContext } from '../command.js';
import { withController } from '../controller-client.js';
import { TOPICS } from '../help.js';
import { printJson } from '../io.js';
import { formatTable } from '../table.js';

/** Seconds, minutes, hours, days: "3d 4h", "12m 5s". */
function duration(ms: number): string {
  const s = Math.floor(ms / 1000);
  const parts: [number, string][] = [
    [Math.floor(s / 86_400), 'd'],
    [Math.floor((s % 86_400) / 3600), 'h'],
    [Math.floor((s % 3600) / 60), 'm'],
    [s % 60, 's'],
  ];
  const first = parts.findIndex(([n]) => n > 0);
  if (first < 0) return '0s';
  return parts
    .slice(first, first + 2)
    .map(([n, unit]) => `${n}${unit}`)
    .join(' ');
}

/** Adds `status` to the program. */
export function addStatusCommand(program: Command, ctx: CtlContext): void {
  const status = program
    .command('status')
    .helpGroup(TOPICS.fleet)
    .summary('the controller: version, uptime, NATS and Nomad, leases, nodes by state')
    .description(
      'the answering controller replica: version, uptime, NATS and Nomad reachability, lease holders, nodes by trust state (exit 0 healthy, 1 degraded: a configured dependency is unreachable, 4 the controller is unreachable)',
    );
  defineAction(jsonOption(status), ctx, async (call) => {
    let st;
    try {
      st = await withController(ctx, (c) => c.status());
    } catch (err) {
      if (!isBulwarkError(err) || err.kind !== 'unavailable') throw err;
      if (call.json) printJson(call.io, { controller: ctx.controllerAddress(), reachable: false, healthy: false, error: err.message });
      else call.io.err(`controller ${ctx.controllerAddress()} is unreachable: ${err.message}\n`);
      return EXIT_CODES.unavailable;
    }
    const down = st.dependencies.filter((d) => d.configured && !d.reachable);
    const healthy = down.length === 0;
    if (call.json) {
      printJson(call.io, { controller: ctx.controllerAddress(), reachable: true, healthy, ...st });
    } else {
      const lines = [
        `controller:  ${ctx.controllerAddress()} (replica ${st.replica})`,
        `version:     ${st.version} (Node ${st.nodeVersion})`,
        `uptime:      ${duration(st.uptimeMs)} (since ${st.startedAt})`,
        `health:      ${healthy ? 'healthy' : `degraded: ${down.map((d) => `${d.name} unreachable`).join(', ')}`}`,
        '',
        formatTable(
          ['DEPENDENCY', 'STATE', 'DETAIL'],
          st.dependencies.map((d) => [d.name, !d.configured ? 'off' : d.reachable ? 'reachable' : 'UNREACHABLE', d.detail]),
        ).trimEnd(),
        '',
        formatTable(
          ['LEASE', 'HOLDER', 'THIS REPLICA', 'EXPIRES'],
          st.leases.map((l) => [l.name, l.holder || '-', l.heldByThisReplica ? 'yes' : 'no', l.expiresAt || '-']),
        ).trimEnd(),
        '',
        st.nodes.length === 0 ? 'nodes:       unknown (the node records cannot be read)' : `nodes:       ${st.nodes.map((n) => `${n.state} ${n.count}`).join(', ')}`,
      ];
      call.io.out(`${lines.join('\n')}\n`);
    }
    return healthy ? EXIT_CODES.ok : EXIT_CODES.finding;
  });
}
