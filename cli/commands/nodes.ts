/**
 * The fleet commands: `nodes`, `node ID`, `history ID`, `watch [ID]`, `reattest ID`,
 * `approve ID`, all over the controller's gRPC API.
 */
import type { Command } from 'commander';
import { EXIT_CODES } from '../../lib/index.js';
import { defineAction, jsonOption, positiveInteger, type CtlContext } from '../command.js';
import { withController, type NodeView, type TrustEventView } from '../controller-client.js';
import { TOPICS } from '../help.js';
import { printJson } from '../io.js';
import { formatTable } from '../table.js';

function reasonsText(reasons: NodeView['reasons']): string {
  return reasons.map((r) => r.code).join(',') || '-';
}

function ago(iso: string, now: number): string {
  if (iso === '') return 'never';
  const ms = now - Date.parse(iso);
  if (!Number.isFinite(ms)) return iso;
  if (ms < 1000) return 'just now';
  if (ms < 60_000) return `${Math.round(ms / 1000)}s ago`;
  if (ms < 3_600_000) return `${Math.round(ms / 60_000)}m ago`;
  return `${Math.round(ms / 3_600_000)}h ago`;
}

function eventLine(e: TrustEventView): string {
  const reasons = e.reasons.map((r) => `${r.code}: ${r.message}`).join('; ');
  return `${e.at}  ${e.nodeId}  ${e.previous} -> ${e.state}${reasons === '' ? '' : `  ${reasons}`}\n`;
}

function nodeText(node: NodeView, history: readonly TrustEventView[], now: number): string {
  const lines = [
    `node:           ${node.nodeId}`,
    `state:          ${node.state} (since ${node.stateSince}, ${ago(node.stateSince, now)})`,
    `enrolled:       ${node.enrolledAt}`,
    `last evidence:  ${node.lastEvidenceAt || 'never'}`,
    `AK name:        ${node.akName}`,
    `EK certificate: ${node.ekCertificateSubject}`,
    `TPM counters:   resetCount ${node.resetCount}, restartCount ${node.restartCount}`,
  ];
  if (node.requiresReenrollment) lines.push('re-enrollment:  required (an operator must approve it)');
  lines.push(`reasons:        ${node.reasons.length === 0 ? 'none' : ''}`);
  for (const r of node.reasons) lines.push(`  ${r.code}: ${r.message}`);
  for (const note of node.notes) lines.push(`note:           ${note}`);
  const f = node.facts;
  if (f !== null) {
    lines.push(`host:           ${f.hostname}, ${f.osDistro} ${f.osRelease}, kernel ${f.kernel} (${f.arch})`);
    lines.push(`hardware:       ${f.systemManufacturer} ${f.systemModel} serial ${f.systemSerial || '-'}; ${f.cpu} x${f.cpuCores}; ${Math.round(f.memoryBytes / 2 ** 20)} MiB`);
    if (f.machineId !== '') lines.push(`machine id:     ${f.machineId}`);
    for (const d of f.disks) lines.push(`disk:           ${d.device} ${d.type} ${Math.round(d.sizeBytes / 2 ** 30)} GiB ${d.serial}`);
    for (const i of f.interfaces) lines.push(`interface:      ${i.name} ${i.mac} ${i.addresses.join(' ')}`);
  }
  lines.push('history:');
  return `${lines.join('\n')}\n${history.map((e) => `  ${eventLine(e)}`).join('')}`;
}

/** Adds nodes, node, history, watch, reattest and approve to the program. */
export function addNodeCommands(program: Command, ctx: CtlContext): void {
  const nodes = program.command('nodes').helpGroup(TOPICS.fleet).description('every node with its trust state and reasons');
  defineAction(jsonOption(nodes), ctx, async (call) => {
    const now = Date.now();
    const list = await withController(ctx, (c) => c.listNodes());
    if (call.json) printJson(call.io, list);
    else
      call.io.out(
        formatTable(
          ['NODE', 'STATE', 'SINCE', 'LAST EVIDENCE', 'REASONS', 'NOTES'],
          list.map((n) => [n.nodeId, n.state, ago(n.stateSince, now), ago(n.lastEvidenceAt, now), reasonsText(n.reasons), n.notes.join('; ') || '-']),
        ),
      );
    return EXIT_CODES.ok;
  });

  const node = program
    .command('node')
    .helpGroup(TOPICS.fleet)
    .argument('<ID>', 'the node id')
    .summary('one node: state, reasons, keys, host facts, recent history')
    .description('one node: state, reasons, keys, host facts, recent history (exit 1 when it is not trusted)');
  defineAction(jsonOption(node), ctx, async (call) => {
    const id = call.arg(0);
    const [n, history] = await withController(ctx, async (c) => [await c.getNode(id), await c.history(id, 10)] as const);
    if (call.json) printJson(call.io, { ...n, history });
    else call.io.out(nodeText(n, history, Date.now()));
    return n.state === 'trusted' ? EXIT_CODES.ok : EXIT_CODES.finding;
  });

  const history = program
    .command('history')
    .helpGroup(TOPICS.fleet)
    .argument('<ID>', 'the node id')
    .option('--limit <N>', 'at most N transitions, newest last', positiveInteger, 50)
    .description("the node's trust transitions from the audit stream");
  defineAction(jsonOption(history), ctx, async (call) => {
    const id = call.arg(0);
    const events = await withController(ctx, (c) => c.history(id, call.number('--limit') ?? 50));
    if (call.json) printJson(call.io, events);
    else call.io.out(events.map(eventLine).join(''));
    return EXIT_CODES.ok;
  });

  const watch = program
    .command('watch')
    .helpGroup(TOPICS.fleet)
    .argument('[ID]', 'one node (default: every node)')
    .description('trust transitions as they happen, until Ctrl-C');
  defineAction(jsonOption(watch), ctx, async (call) => {
    const target = call.optionalArg(0) ?? '';
    await withController(ctx, (c) =>
      c.watchTrust(
        target,
        (e) => (call.json ? printJson(call.io, e) : call.io.out(eventLine(e))),
        call.io.signal,
        () => call.io.err(`watching trust transitions of ${target === '' ? 'every node' : target}\n`),
      ),
    );
    return EXIT_CODES.ok;
  });

  const reattest = program.command('reattest').helpGroup(TOPICS.fleet).argument('<ID>', 'the node id').description('send the node a fresh challenge now');
  defineAction(jsonOption(reattest), ctx, async (call) => {
    const id = call.arg(0);
    const nonce = await withController(ctx, (c) => c.reattest(id));
    if (call.json) printJson(call.io, { nodeId: id, nonce });
    else call.io.out(`challenge sent to ${id} (nonce ${nonce})\n`);
    return EXIT_CODES.ok;
  });

  const approve = program
    .command('approve')
    .helpGroup(TOPICS.fleet)
    .argument('<ID>', 'the node id')
    .description('let a node that must re-enroll (a sticky finding) enroll again');
  defineAction(jsonOption(approve), ctx, async (call) => {
    const id = call.arg(0);
    const n = await withController(ctx, (c) => c.approveReenrollment(id));
    if (call.json) printJson(call.io, n);
    else call.io.out(`${id} may enroll again; it stays ${n.state} until it has and its evidence verifies\n`);
    return EXIT_CODES.ok;
  });

  const move = program
    .command('move')
    .helpGroup(TOPICS.fleet)
    .argument('<EK-OR-NODE>', 'the node id the TPM is enrolled as, or the hex of its EK name')
    .requiredOption('--to <NEW-ID>', 'the node id the TPM becomes')
    .description('(admin) bind a TPM to another node id: the old node is removed and the TPM enrolls afresh as NEW-ID; audited');
  defineAction(jsonOption(move), ctx, async (call) => {
    const from = call.arg(0);
    const r = await withController(ctx, (c) => c.moveNode(from, call.required('--to')));
    if (call.json) printJson(call.io, r);
    else call.io.out(`the TPM of ${r.fromNodeId} (EK ${r.ekName.slice(0, 16)}...) is now node ${r.toNodeId}; it enrolls again under that id\n`);
    return EXIT_CODES.ok;
  });

  const enrollments = program.command('enrollments').helpGroup(TOPICS.fleet).description('(admin) enrollments of unknown TPMs waiting for approval (enrollment: approve)');
  const list = enrollments.command('list').description('every enrollment waiting for approval');
  defineAction(jsonOption(list), ctx, async (call) => {
    const held = await withController(ctx, (c) => c.listHeldEnrollments());
    if (call.json) printJson(call.io, held);
    else
      call.io.out(
        formatTable(
          ['NODE', 'EK NAME', 'HELD AT', 'EK CERTIFICATE'],
          held.map((h) => [h.nodeId, `${h.ekName.slice(0, 16)}...`, h.heldAt, h.ekCertificateSubject]),
        ),
      );
    return EXIT_CODES.ok;
  });
  const approveEnrollment = enrollments
    .command('approve')
    .argument('<NODE-OR-EK>', 'the node id the TPM asked for, or the hex of its EK name')
    .description('let a held enrollment proceed: the TPM is bound to that node id; audited');
  defineAction(jsonOption(approveEnrollment), ctx, async (call) => {
    const h = await withController(ctx, (c) => c.approveEnrollment(call.arg(0)));
    if (call.json) printJson(call.io, h);
    else call.io.out(`${h.nodeId} (EK ${h.ekName.slice(0, 16)}...) may enroll; its agent does on its next attempt\n`);
    return EXIT_CODES.ok;
  });
}
