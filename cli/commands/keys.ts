/**
 * `keys init | rotate | show`: the trusted key sets signed documents are verified with, one
 * per kind (measured-boot, runtime, baseline, app), held by the controller. init installs
 * the first set of a kind (admin; refused when one exists); rotate replaces it TUF-style
 * (the envelope signed by a threshold of the current set and of the new one).
 */
import type { Command } from 'commander';
import { EXIT_CODES } from '../../lib/index.js';
import { defineAction, jsonOption, type CtlContext } from '../command.js';
import { withController } from '../controller-client.js';
import { TOPICS } from '../help.js';
import { printJson, readTextInput } from '../io.js';
import { formatTable } from '../table.js';

const KINDS = 'measured-boot, runtime, baseline or app';

/** Adds the `keys` group to the program. */
export function addKeysCommands(program: Command, ctx: CtlContext): void {
  const keys = program.command('keys').helpGroup(TOPICS.fleetPolicies).description('trusted key sets of signed policies, baselines and app specs (on the controller)');

  for (const [name, init, description] of [
    ['init', true, 'install the first key set of a kind (admin; refused when the kind has one): the envelope must be signed by a threshold of its own keys'],
    ['rotate', false, 'replace the key set of a kind: the envelope must be signed by a threshold of the current set and of the new one, with a higher serial'],
  ] as const) {
    const command = keys.command(name).argument('<KIND>', KINDS).argument('<ENVELOPE>', 'the key set as a DSSE envelope (application/vnd.bulwark.keyset+json)').description(description);
    defineAction(jsonOption(command), ctx, async (call) => {
      const envelope = await readTextInput(call.arg(1), 'key set envelope');
      const info = await withController(ctx, (c) => c.putKeySet(call.arg(0), envelope, init));
      if (call.json) printJson(call.io, { ...info, envelope: undefined });
      else call.io.out(`${init ? 'installed' : 'rotated to'} the ${info.kind} key set serial ${info.serial}: ${info.threshold} of ${info.keys.length} key(s) (sha256 ${info.sha256.slice(0, 16)}...)\n`);
      return EXIT_CODES.ok;
    });
  }

  const show = keys.command('show').argument('<KIND>', KINDS).description('the key set in force for a kind');
  defineAction(jsonOption(show), ctx, async (call) => {
    const info = await withController(ctx, (c) => c.getKeySet(call.arg(0)));
    if (call.json) printJson(call.io, info);
    else {
      call.io.out(`${info.kind} key set serial ${info.serial}: threshold ${info.threshold}, expires ${info.expires || 'never'} (sha256 ${info.sha256.slice(0, 16)}...)\n`);
      call.io.out(formatTable(['KEYID', 'SCHEME'], info.keys.map((k) => [k.keyid, k.scheme || 'any'])));
    }
    return EXIT_CODES.ok;
  });
}
