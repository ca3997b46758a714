/**
 * bulwarkctl: the security team's view of the fleet over the controller's gRPC API, and
 * offline forensics on tpm2-tools output. Exit codes: 0 ok/verified, 1 verified as failing
 * (a finding, or a node that is not trusted), 2 usage error, 3 malformed input,
 * 4 controller or dependency unavailable. Bad input never ends in a stack trace.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { fromHex, toHex } from '../lib/index.js';
import { BulwarkError, EXIT_CODES, exitCodeFor, isBulwarkError } from '../lib/index.js';
import { verifyQuote } from '../lib/tpm/index.js';
import { parsePcrSelectionSpec } from '../lib/tpm/index.js';
import { ControllerClient } from '../proto/index.js';

import { CTL_IMA_HELP, isCtlImaCommand, runCtlIma } from './ctl-ima.js';
import { CTL_EVENTLOG_HELP, isEventlogCommand, runEventlogCtl } from './ctl-eventlog.js';
import type { AppStatusMsg, FindingMsg, NodeMsg, TrustEventMsg } from '../proto/index.js';
import { readInput } from './ctl-io.js';

export interface CtlIo {
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Aborts `watch`. */
  readonly signal?: AbortSignal;
}

export const CTL_HELP = `usage: bulwarkctl [--controller HOST:PORT] COMMAND [ARGS] [--json]

Fleet (over the controller's gRPC API; default controller 127.0.0.1:7443 or $BULWARK_CONTROLLER):
  nodes                       every node with its trust state and reasons
  node ID                     one node: state, reasons, keys, host facts, recent history
  history ID [--limit N]      the node's trust transitions from the audit stream
  watch [ID]                  trust transitions as they happen (Ctrl-C to stop)
  reattest ID                 send the node a fresh challenge now
  apps list                   the application catalogue and what is deployed
  apps deploy NAME [--file F] deploy an app (the trust constraint is injected into every group)
  apps status NAME            where its allocations run
  apps stop NAME              stop it
  policy push KIND NAME FILE  store a policy (kinds: measured-boot, runtime); it is checked first
  policy list [KIND]          stored policies with their digests and assignments
  policy show KIND NAME       a stored policy document
  policy assign KIND NAME (--node ID | --group G | --default)
                              which nodes a policy applies to (NAME "none" removes it)
  policy group ID (G | none)  put a node in a policy group (node, then group, then default)
  approve ID                  let a node that must re-enroll (a sticky finding) enroll again

Forensics (offline, on tpm2_quote output files):
  quote verify --ak AK.pem --msg MSG --sig SIG --pcrs PCRS --nonce HEX [--pcr-selection SEL]
      MSG: TPMS_ATTEST (tpm2_quote -m), SIG: TPMT_SIGNATURE (-s),
      PCRS: serialized PCR values (-o FILE -F serialized); with --pcr-selection the quote
      must cover exactly SEL (e.g. sha256:0,1,2,3,4,5,6,7,8,9,10,14), without it any selection is shown

${CTL_IMA_HELP}
${CTL_EVENTLOG_HELP}
Exit codes:
  0  ok; the quote verified; the node is trusted
  1  verified as failing: a finding, or the node is not trusted
  2  usage error
  3  malformed input (a file or value that cannot be decoded)
  4  the controller (or another dependency) is unavailable
`;

interface Args {
  readonly positional: string[];
  readonly flags: Map<string, string>;
  readonly json: boolean;
}

const VALUE_FLAGS = new Set(['--controller', '--ak', '--msg', '--sig', '--pcrs', '--nonce', '--pcr-selection', '--limit', '--node', '--file', '--group']);

function usage(message: string): BulwarkError {
  return new BulwarkError('USAGE', message);
}

function parseArgs(argv: readonly string[]): Args {
  const positional: string[] = [];
  const flags = new Map<string, string>();
  let json = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] ?? '';
    if (a === '--json') json = true;
    else if (a === '--default') flags.set('--default', '');
    else if (a === '--help' || a === '-h') flags.set('--help', '');
    else if (VALUE_FLAGS.has(a)) {
      const v = argv[i + 1];
      if (v === undefined) throw usage(`${a} needs a value`);
      flags.set(a, v);
      i++;
    } else if (a.startsWith('--')) throw usage(`unknown option ${a}`);
    else positional.push(a);
  }
  return { positional, flags, json };
}

function reasonsText(reasons: readonly FindingMsg[]): string {
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

/** Column-aligned table, no dependencies. */
export function formatTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n') + '\n';
}

function nodeJson(n: NodeMsg): Record<string, unknown> {
  return { ...n };
}

function eventLine(e: TrustEventMsg): string {
  const reasons = e.reasons.map((r) => `${r.code}: ${r.message}`).join('; ');
  return `${e.at}  ${e.nodeId}  ${e.previous} -> ${e.state}${reasons === '' ? '' : `  ${reasons}`}\n`;
}


async function quoteVerify(args: Args, io: CtlIo): Promise<number> {
  const need = (flag: string): string => {
    const v = args.flags.get(flag);
    if (v === undefined) throw usage(`quote verify needs ${flag}`);
    return v;
  };
  const [akPath, msgPath, sigPath, pcrsPath, nonceHex] = [need('--ak'), need('--msg'), need('--sig'), need('--pcrs'), need('--nonce')];
  // Without --pcr-selection any selection is accepted and shown; with it, it must match.
  const selectionSpec = args.flags.get('--pcr-selection');
  const selection = selectionSpec === undefined ? undefined : parsePcrSelectionSpec(selectionSpec);
  const nonce = fromHex(nonceHex.replace(/^0x/i, ''), '--nonce');
  const akPem = await readInput(akPath, 'AK');
  let ak: KeyObject;
  try {
    ak = createPublicKey(Buffer.from(akPem));
  } catch (err) {
    throw new BulwarkError('KEY_INVALID', `${akPath} is not a PEM public key`, {}, { cause: err });
  }
  const result = verifyQuote(
    ak,
    await readInput(msgPath, 'quote message'),
    await readInput(sigPath, 'signature'),
    await readInput(pcrsPath, 'PCR'),
    nonce,
    selection === undefined ? {} : { selection },
  );
  if (args.json) {
    io.out(
      `${JSON.stringify(
        result.ok
          ? {
              verified: true,
              resetCount: result.attest.clockInfo.resetCount,
              restartCount: result.attest.clockInfo.restartCount,
              pcrs: Object.fromEntries([...result.pcrs].map(([alg, bank]) => [alg, Object.fromEntries([...bank].map(([i, v]) => [i, toHex(v)]))])),
            }
          : { verified: false, findings: result.findings },
      )}\n`,
    );
  } else if (result.ok) {
    io.out(`verified: signature, nonce, PCR selection and digest (resetCount ${result.attest.clockInfo.resetCount}, restartCount ${result.attest.clockInfo.restartCount})\n`);
    for (const [alg, bank] of result.pcrs) for (const [i, v] of bank) io.out(`  pcr ${alg === 0x000b ? 'sha256' : `alg 0x${alg.toString(16)}`}:${i} ${toHex(v)}\n`);
  } else {
    io.out('NOT verified:\n');
    for (const f of result.findings) io.out(`  ${f.code}: ${f.message}\n`);
  }
  return result.ok ? EXIT_CODES.ok : EXIT_CODES.finding;
}

function appStatusText(a: AppStatusMsg): string {
  const rows = a.allocations.map((x) => [x.id.slice(0, 8), x.nodeName || x.nodeId.slice(0, 8), x.taskGroup, x.desiredStatus, x.clientStatus]);
  return `${a.name} (job ${a.jobId}): ${a.status}\n${formatTable(['ALLOC', 'NODE', 'GROUP', 'DESIRED', 'STATUS'], rows)}`;
}

/** `apps list|deploy|status|stop`: the catalogue, deployed through the controller. */
async function appsCommand(rest: readonly string[], args: Args, io: CtlIo): Promise<number> {
  const [sub, name] = rest;
  if (sub === 'list') {
    const apps = await withClient(args, io, (c) => c.listApps());
    io.out(args.json ? `${JSON.stringify(apps)}\n` : formatTable(['APP', 'SPEC', 'DEPLOYED'], apps.map((a) => [a.name, a.file, a.deployed ? 'yes' : '-'])));
    return EXIT_CODES.ok;
  }
  if (name === undefined || !['deploy', 'status', 'stop'].includes(sub ?? '')) throw usage('apps takes list, or deploy|status|stop NAME');
  const file = args.flags.get('--file');
  const hcl = file === undefined ? '' : new TextDecoder().decode(await readInput(file, 'job spec'));
  const status = await withClient(args, io, (c) => (sub === 'deploy' ? c.deployApp(name, hcl) : sub === 'status' ? c.appStatus(name) : c.stopApp(name)));
  io.out(args.json ? `${JSON.stringify(status)}\n` : appStatusText(status));
  return EXIT_CODES.ok;
}

/** `policy push|list|show|assign`: fleet policies over the API; null for other subcommands. */
async function fleetPolicyCommand(rest: readonly string[], args: Args, io: CtlIo): Promise<number | null> {
  const [sub, kind, name, file] = rest;
  switch (sub) {
    case 'push': {
      if (kind === undefined || name === undefined || file === undefined) throw usage('policy push needs KIND NAME FILE');
      const text = new TextDecoder().decode(await readInput(file, 'policy'));
      const info = await withClient(args, io, (c) => c.putPolicy(kind, name, text));
      io.out(args.json ? `${JSON.stringify(info)}\n` : `stored ${info.kind} policy ${info.name} (revision ${info.revision}, sha256 ${info.sha256.slice(0, 16)}...)\n`);
      return EXIT_CODES.ok;
    }
    case 'list': {
      const list = await withClient(args, io, (c) => c.listPolicies(kind ?? ''));
      if (args.json) io.out(`${JSON.stringify(list)}\n`);
      else
        io.out(
          formatTable(
            ['KIND', 'NAME', 'REVISION', 'SHA256', 'UPDATED', 'ASSIGNED TO'],
            list.map((p) => [p.kind, p.name, String(p.revision), p.sha256.slice(0, 16), p.updatedAt, p.assignedTo.join(',') || '-']),
          ),
        );
      return EXIT_CODES.ok;
    }
    case 'show': {
      if (kind === undefined || name === undefined) throw usage('policy show needs KIND NAME');
      io.out(`${await withClient(args, io, (c) => c.getPolicy(kind, name))}\n`);
      return EXIT_CODES.ok;
    }
    case 'assign': {
      if (kind === undefined || name === undefined) throw usage('policy assign needs KIND NAME');
      const node = args.flags.get('--node');
      const group = args.flags.get('--group');
      const asDefault = args.flags.has('--default');
      if ([node !== undefined, group !== undefined, asDefault].filter(Boolean).length !== 1) {
        throw usage('policy assign needs exactly one of --node ID, --group G or --default');
      }
      const target = node ?? (group === undefined ? null : { group });
      await withClient(args, io, (c) => c.assignPolicy(kind, name === 'none' ? null : name, target));
      const where = node ?? (group === undefined ? 'every node without its own or its group\'s (default)' : `group ${group}`);
      io.out(`${kind} policy ${name === 'none' ? '(none)' : name} assigned to ${where}\n`);
      return EXIT_CODES.ok;
    }
    case 'group': {
      // policy group ID G: here `kind` is the node id and `name` the group.
      if (kind === undefined || name === undefined) throw usage('policy group needs ID and a group name (or none)');
      await withClient(args, io, (c) => c.setNodeGroup(kind, name === 'none' ? null : name));
      io.out(`${kind} is ${name === 'none' ? 'in no group' : `in group ${name}`}\n`);
      return EXIT_CODES.ok;
    }
    default:
      return null;
  }
}

async function withClient<T>(args: Args, io: CtlIo, fn: (c: ControllerClient) => Promise<T>): Promise<T> {
  const address = args.flags.get('--controller') ?? io.env['BULWARK_CONTROLLER'] ?? '127.0.0.1:7443';
  const client = new ControllerClient(address);
  try {
    return await fn(client);
  } finally {
    client.close();
  }
}

async function run(args: Args, io: CtlIo): Promise<number> {
  const [command, ...rest] = args.positional;
  const now = Date.now();
  switch (command) {
    case undefined:
      io.err(CTL_HELP);
      return EXIT_CODES.usage;
    case 'nodes': {
      const nodes = await withClient(args, io, (c) => c.listNodes());
      if (args.json) io.out(`${JSON.stringify(nodes.map(nodeJson))}\n`);
      else
        io.out(
          formatTable(
            ['NODE', 'STATE', 'SINCE', 'LAST EVIDENCE', 'REASONS'],
            nodes.map((n) => [n.nodeId, n.state, ago(n.stateSince, now), ago(n.lastEvidenceAt, now), reasonsText(n.reasons)]),
          ),
        );
      return EXIT_CODES.ok;
    }
    case 'node': {
      const id = rest[0];
      if (id === undefined) throw usage('node needs an ID');
      const [node, history] = await withClient(args, io, async (c) => [await c.getNode(id), await c.history(id, 10)] as const);
      if (args.json) io.out(`${JSON.stringify({ ...nodeJson(node), history })}\n`);
      else {
        io.out(`node:           ${node.nodeId}\nstate:          ${node.state} (since ${node.stateSince}, ${ago(node.stateSince, now)})\n`);
        io.out(`enrolled:       ${node.enrolledAt}\nlast evidence:  ${node.lastEvidenceAt || 'never'}\n`);
        io.out(`AK name:        ${node.akName}\nEK certificate: ${node.ekCertificateSubject}\n`);
        io.out(`TPM counters:   resetCount ${node.resetCount}, restartCount ${node.restartCount}\n`);
        if (node.requiresReenrollment) io.out('re-enrollment:  required (an operator must approve it)\n');
        io.out(`reasons:        ${node.reasons.length === 0 ? 'none' : ''}\n`);
        for (const r of node.reasons) io.out(`  ${r.code}: ${r.message}\n`);
        const f = node.facts;
        if (f !== null) {
          io.out(`host:           ${f.hostname}, ${f.osDistro} ${f.osRelease}, kernel ${f.kernel} (${f.arch})\n`);
          io.out(`hardware:       ${f.systemManufacturer} ${f.systemModel} serial ${f.systemSerial || '-'}; ${f.cpu} x${f.cpuCores}; ${Math.round(f.memoryBytes / 2 ** 20)} MiB\n`);
          if (f.machineId !== '') io.out(`machine id:     ${f.machineId}\n`);
          for (const d of f.disks) io.out(`disk:           ${d.device} ${d.type} ${Math.round(d.sizeBytes / 2 ** 30)} GiB ${d.serial}\n`);
          for (const i of f.interfaces) io.out(`interface:      ${i.name} ${i.mac} ${i.addresses.join(' ')}\n`);
        }
        io.out('history:\n');
        for (const e of history) io.out(`  ${eventLine(e)}`);
      }
      return node.state === 'trusted' ? EXIT_CODES.ok : EXIT_CODES.finding;
    }
    case 'history': {
      const id = rest[0];
      if (id === undefined) throw usage('history needs an ID');
      const limitText = args.flags.get('--limit') ?? '50';
      const limit = Number(limitText);
      if (!Number.isSafeInteger(limit) || limit <= 0) throw usage('--limit must be a positive integer');
      const events = await withClient(args, io, (c) => c.history(id, limit));
      if (args.json) io.out(`${JSON.stringify(events)}\n`);
      else for (const e of events) io.out(eventLine(e));
      return EXIT_CODES.ok;
    }
    case 'watch': {
      const target = rest[0] ?? '';
      await withClient(args, io, (c) =>
        c.watchTrust(
          target,
          (e) => io.out(args.json ? `${JSON.stringify(e)}\n` : eventLine(e)),
          io.signal,
          () => io.err(`watching trust transitions of ${target === '' ? 'every node' : target}\n`),
        ),
      );
      return EXIT_CODES.ok;
    }
    case 'reattest': {
      const id = rest[0];
      if (id === undefined) throw usage('reattest needs an ID');
      const nonce = await withClient(args, io, (c) => c.reattest(id));
      io.out(args.json ? `${JSON.stringify({ nodeId: id, nonce })}\n` : `challenge sent to ${id} (nonce ${nonce})\n`);
      return EXIT_CODES.ok;
    }
    case 'approve': {
      const id = rest[0];
      if (id === undefined) throw usage('approve needs an ID');
      const node = await withClient(args, io, (c) => c.approveReenrollment(id));
      io.out(args.json ? `${JSON.stringify(node)}\n` : `${id} may enroll again; it stays ${node.state} until it has and its evidence verifies\n`);
      return EXIT_CODES.ok;
    }
    case 'apps':
      return appsCommand(rest, args, io);
    case 'policy': {
      const fleet = await fleetPolicyCommand(rest, args, io);
      if (fleet !== null) return fleet;
      throw usage(`unknown policy subcommand ${rest[0] ?? ''}`);
    }
    case 'quote': {
      if (rest[0] !== 'verify') throw usage('quote takes the subcommand verify');
      return quoteVerify(args, io);
    }
    default:
      throw usage(`unknown command ${command}`);
  }
}

/** Runs bulwarkctl with `argv` (without node and script), returning the exit code. */
export async function runCtl(argv: readonly string[], io: CtlIo): Promise<number> {
  let args: Args;
  try {
    // IMA runtime-integrity commands parse their own arguments (controller/ctl-ima.ts).
    if (isCtlImaCommand(argv)) return await runCtlIma(argv, io);
    // Measured-boot commands parse their own arguments (controller/ctl-eventlog.ts).
    if (isEventlogCommand(argv)) return await runEventlogCtl(argv, io);
    args = parseArgs(argv);
    if (args.flags.has('--help')) {
      io.out(CTL_HELP);
      return EXIT_CODES.ok;
    }
    return await run(args, io);
  } catch (err) {
    if (isBulwarkError(err)) {
      const code = err.code === 'IO_FAILED' ? EXIT_CODES.malformed : exitCodeFor(err.code);
      io.err(`bulwarkctl: ${err.code}: ${err.message}\n`);
      if (code === EXIT_CODES.usage) io.err('run bulwarkctl --help for usage\n');
      return code;
    }
    io.err(`bulwarkctl: INTERNAL: ${err instanceof Error ? err.message : String(err)}\n`);
    return EXIT_CODES.unavailable;
  }
}
