/**
 * `apps list | deploy NAME | status NAME | stop NAME`: the app catalogue, deployed through
 * the controller (which injects the trust constraint into every task group).
 */
import type { Command } from 'commander';
import { EXIT_CODES } from '../../lib/index.js';
import { defineAction, jsonOption, type Call, type CtlContext } from '../command.js';
import { withController, type AppStatusView } from '../controller-client.js';
import { TOPICS } from '../help.js';
import { printJson, readTextInput } from '../io.js';
import { formatTable } from '../table.js';

function appStatusText(a: AppStatusView): string {
  const rows = a.allocations.map((x) => [x.id.slice(0, 8), x.nodeName || x.nodeId.slice(0, 8), x.taskGroup, x.desiredStatus, x.clientStatus]);
  return `${a.name} (job ${a.jobId}): ${a.status}\n${formatTable(['ALLOC', 'NODE', 'GROUP', 'DESIRED', 'STATUS'], rows)}`;
}

function printStatus(call: Call, status: AppStatusView): number {
  if (call.json) printJson(call.io, status);
  else call.io.out(appStatusText(status));
  return EXIT_CODES.ok;
}

/** Adds the `apps` group to the program. */
export function addAppsCommands(program: Command, ctx: CtlContext): void {
  const apps = program.command('apps').helpGroup(TOPICS.apps).description('the application catalogue on Nomad, through the controller');

  const list = apps.command('list').description('the application catalogue and what is deployed');
  defineAction(jsonOption(list), ctx, async (call) => {
    const entries = await withController(ctx, (c) => c.listApps());
    if (call.json) printJson(call.io, entries);
    else call.io.out(formatTable(['APP', 'SPEC', 'DEPLOYED'], entries.map((a) => [a.name, a.file, a.deployed ? 'yes' : '-'])));
    return EXIT_CODES.ok;
  });

  const deploy = apps
    .command('deploy')
    .argument('<NAME>', 'the app, as named in the catalogue')
    .option('--envelope <E>', 'the signed spec: a DSSE envelope (application/vnd.bulwark.app+json) of {version: 1, name, hcl}')
    .option('--file <F>', "a job spec (HCL) to use instead of the catalogue's (must equal the signed one)")
    .description('deploy a signed app (verified against the app key set; the trust constraint is injected into every group) and report where it landed');
  defineAction(jsonOption(deploy), ctx, async (call) => {
    const file = call.string('--file');
    const envelopeFile = call.string('--envelope');
    const hcl = file === undefined ? '' : await readTextInput(file, 'job spec');
    const envelope = envelopeFile === undefined ? '' : await readTextInput(envelopeFile, 'app spec envelope');
    return printStatus(call, await withController(ctx, (c) => c.deployApp(call.arg(0), hcl, envelope)));
  });

  const status = apps.command('status').argument('<NAME>', 'the app').description('where its allocations run');
  defineAction(jsonOption(status), ctx, async (call) => printStatus(call, await withController(ctx, (c) => c.appStatus(call.arg(0)))));

  const stop = apps.command('stop').argument('<NAME>', 'the app').description('stop it');
  defineAction(jsonOption(stop), ctx, async (call) => printStatus(call, await withController(ctx, (c) => c.stopApp(call.arg(0)))));
}
