/**
 * The `policy` group. On the controller: push, list, show, assign, group. Offline, on files:
 * check and measured-boot create (cli/measured-boot.ts), runtime create, import-keylime and
 * export-keylime (cli/runtime-integrity.ts); those modules load only when their command runs.
 */
import type { Command } from 'commander';
import { BulwarkError, EXIT_CODES } from '../../lib/index.js';
import { PAYLOAD_TYPES } from '../../lib/dsse/index.js';
import { documentFormatOf, parseDocumentText } from '../../lib/schema/index.js';
import { addRepeatableOption, defineAction, jsonOption, nonNegativeInteger, type CtlContext } from '../command.js';
import { withController } from '../controller-client.js';
import { TOPICS } from '../help.js';
import { printJson, readTextInput } from '../io.js';
import { formatTable } from '../table.js';
import { quoteFileOptions } from './quote.js';

const KINDS = 'measured-boot, runtime or baseline';

/**
 * A plain JSON (or, for a .yaml/.yml file, YAML) document where an envelope is expected:
 * refused here with how to sign it (the controller refuses it too, ENVELOPE_REQUIRED, when
 * it requires signed policies). Anything that is not an object is left to the controller to name.
 */
function refuseUnsigned(text: string, kind: string, path: string): void {
  let value: unknown;
  try {
    value = parseDocumentText(text, documentFormatOf(path), 'policy envelope', 'ENVELOPE_MALFORMED');
  } catch {
    return;
  }
  if (typeof value !== 'object' || value === null || ('payloadType' in value && 'signatures' in value)) return;
  const type = kind === 'baseline' ? PAYLOAD_TYPES.baseline : PAYLOAD_TYPES.policy;
  throw new BulwarkError(
    'ENVELOPE_REQUIRED',
    `this is an unsigned policy document: sign it first (bulwarkctl sign FILE --key URI --payload-type ${type} -o ENVELOPE; a YAML FILE is signed as its canonical JSON) and push the envelope`,
  );
}

function addFleetPolicyCommands(policy: Command, ctx: CtlContext): void {
  const push = policy
    .command('push')
    .helpGroup(TOPICS.fleetPolicies)
    .argument('<KIND>', KINDS)
    .argument('<NAME>', 'the policy name')
    .argument('<ENVELOPE>', 'the signed policy: a DSSE envelope (bulwarkctl sign --payload-type application/vnd.bulwark.policy+json, or baseline+json)')
    .description("store a signed policy on the controller: verified against the kind's trusted key set, then checked");
  defineAction(jsonOption(push), ctx, async (call) => {
    const text = await readTextInput(call.arg(2), 'policy envelope');
    refuseUnsigned(text, call.arg(0), call.arg(2));
    const info = await withController(ctx, (c) => c.putPolicy(call.arg(0), call.arg(1), text));
    if (call.json) printJson(call.io, info);
    else call.io.out(`stored ${info.kind} policy ${info.name} (revision ${info.revision}, sha256 ${info.sha256.slice(0, 16)}...)\n`);
    return EXIT_CODES.ok;
  });

  const list = policy.command('list').helpGroup(TOPICS.fleetPolicies).argument('[KIND]', KINDS).description('stored policies with their digests and assignments');
  defineAction(jsonOption(list), ctx, async (call) => {
    const policies = await withController(ctx, (c) => c.listPolicies(call.optionalArg(0) ?? ''));
    if (call.json) printJson(call.io, policies);
    else
      call.io.out(
        formatTable(
          ['KIND', 'NAME', 'REVISION', 'SHA256', 'UPDATED', 'ASSIGNED TO'],
          policies.map((p) => [p.kind, p.name, String(p.revision), p.sha256.slice(0, 16), p.updatedAt, p.assignedTo.join(',') || '-']),
        ),
      );
    return EXIT_CODES.ok;
  });

  const show = policy.command('show').helpGroup(TOPICS.fleetPolicies).argument('<KIND>', KINDS).argument('<NAME>', 'the policy name').description('a stored policy document');
  defineAction(show, ctx, async (call) => {
    call.io.out(`${await withController(ctx, (c) => c.getPolicy(call.arg(0), call.arg(1)))}\n`);
    return EXIT_CODES.ok;
  });

  const assign = policy
    .command('assign')
    .helpGroup(TOPICS.fleetPolicies)
    .argument('<KIND>', KINDS)
    .argument('<NAME>', 'the policy name, or "none" to remove the assignment')
    .option('--node <ID>', 'for this node')
    .option('--group <G>', 'for the nodes of this group')
    .option('--default', 'for every node without its own or its group\'s')
    .summary('which nodes a policy applies to (exactly one of --node, --group, --default)')
    .description('which nodes a policy applies to: exactly one of --node, --group, --default (the node\'s own wins, then its group\'s, then the default)');
  defineAction(assign, ctx, async (call) => {
    const [kind, name] = [call.arg(0), call.arg(1)];
    const node = call.string('--node');
    const group = call.string('--group');
    const asDefault = call.flag('--default');
    if ([node !== undefined, group !== undefined, asDefault].filter(Boolean).length !== 1) {
      throw new BulwarkError('USAGE', 'policy assign needs exactly one of --node ID, --group G or --default');
    }
    const target = node ?? (group === undefined ? null : { group });
    await withController(ctx, (c) => c.assignPolicy(kind, name === 'none' ? null : name, target));
    const where = node ?? (group === undefined ? "every node without its own or its group's (default)" : `group ${group}`);
    call.io.out(`${kind} policy ${name === 'none' ? '(none)' : name} assigned to ${where}\n`);
    return EXIT_CODES.ok;
  });

  const group = policy
    .command('group')
    .helpGroup(TOPICS.fleetPolicies)
    .argument('<ID>', 'the node id')
    .argument('<G>', 'the group, or "none" to take it out of its group')
    .description('put a node in a policy group');
  defineAction(group, ctx, async (call) => {
    const [id, g] = [call.arg(0), call.arg(1)];
    await withController(ctx, (c) => c.setNodeGroup(id, g === 'none' ? null : g));
    call.io.out(`${id} is ${g === 'none' ? 'in no group' : `in group ${g}`}\n`);
    return EXIT_CODES.ok;
  });
}

function addMeasuredBootPolicyCommands(policy: Command, ctx: CtlContext): void {
  const check = policy
    .command('check')
    .helpGroup(TOPICS.measuredBoot)
    .requiredOption('--policy <P>', 'the measured-boot policy document (JSON, or YAML when named .yaml/.yml)')
    .requiredOption('--eventlog <FILE>', 'the event log')
    .option('--name <NAME>', 'the policy to use when P holds several');
  quoteFileOptions(check, false);
  check.summary('judge an event log against a measured-boot policy, against a verified quote when its files are given').description(
    'judge an event log against a measured-boot policy; with the tpm2_quote files (all of --ak --msg --sig --pcrs --nonce) the log is replayed against the verified quote, without them against itself, and the output says so',
  );
  defineAction(jsonOption(check), ctx, async (call) => (await import('../measured-boot.js')).measuredBootPolicyCheck(call));

  const measuredBoot = policy.command('measured-boot').helpGroup(TOPICS.measuredBoot).description('measured-boot policies, offline');
  const create = measuredBoot
    .command('create')
    .requiredOption('--from-eventlog <FILE>', 'the event log of a known-good host')
    .option('--name <NAME>', 'the policy name', 'reference')
    .option('--bank <ALG>', 'the bank whose digests the policy lists (default sha256)')
    .option('--description <TEXT>', 'a description stored in the policy')
    .description('a reference policy (JSON on stdout) that accepts exactly the boot of a known-good host');
  defineAction(create, ctx, async (call) => (await import('../measured-boot.js')).measuredBootPolicyCreate(call));
}

function addRuntimePolicyCommands(policy: Command, ctx: CtlContext): void {
  const runtime = policy.command('runtime').helpGroup(TOPICS.runtimeIntegrity).description('runtime (IMA) policies, offline');
  const create = runtime
    .command('create')
    .requiredOption('--rootfs <DIR>', 'a mounted or unpacked Debian root filesystem')
    .option('--output <FILE>', 'write the policy here (atomically) instead of stdout')
    .option('--release <N>', 'the policy release (default: one more than --base, else 1)', nonNegativeInteger)
    .option('--base <POLICY>', 'roll this policy forward: its digests stay allowed during the rollout');
  addRepeatableOption(create, '--exclude <REGEX>', 'paths to leave out (repeatable)');
  create.description('hash what IMA would measure in a root filesystem into a runtime policy');
  defineAction(create, ctx, async (call) => (await import('../runtime-integrity.js')).runtimePolicyCreate(call));

  const importKeylime = policy
    .command('import-keylime')
    .helpGroup(TOPICS.runtimeIntegrity)
    .argument('<FILE>', 'a Keylime runtime policy')
    .option('--output <FILE>', 'write the policy here (atomically) instead of stdout')
    .description("a Keylime runtime policy as Bulwark's");
  defineAction(importKeylime, ctx, async (call) => (await import('../runtime-integrity.js')).keylimePolicyImport(call));

  const exportKeylime = policy
    .command('export-keylime')
    .helpGroup(TOPICS.runtimeIntegrity)
    .argument('<FILE>', 'a runtime policy')
    .option('--output <FILE>', 'write the policy here (atomically) instead of stdout')
    .description("a runtime policy as Keylime's");
  defineAction(exportKeylime, ctx, async (call) => (await import('../runtime-integrity.js')).keylimePolicyExport(call));
}

/** Adds the `policy` group to the program. */
export function addPolicyCommands(program: Command, ctx: CtlContext): void {
  const policy = program.command('policy').helpGroup(TOPICS.fleetPolicies).description('policies: stored on the controller, or checked and generated offline');
  addFleetPolicyCommands(policy, ctx);
  addMeasuredBootPolicyCommands(policy, ctx);
  addRuntimePolicyCommands(policy, ctx);
}
