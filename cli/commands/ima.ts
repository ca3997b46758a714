/** `ima check LOG --policy P`: an IMA measurement list, offline (the work is in cli/runtime-integrity.ts, loaded on use). */
import { Option, type Command } from 'commander';
import { defineAction, jsonOption, positiveInteger, type CtlContext } from '../command.js';
import { TOPICS } from '../help.js';

/** Adds the `ima` group to the program. */
export function addImaCommands(program: Command, ctx: CtlContext): void {
  const ima = program.command('ima').helpGroup(TOPICS.runtimeIntegrity).description('an IMA measurement list, offline');

  const check = ima
    .command('check')
    .argument('<LOG>', 'ascii_runtime_measurements or binary_runtime_measurements')
    .requiredOption('--policy <P>', 'the runtime policy (Bulwark or Keylime JSON)')
    .option('--pcr10 <HEX>', 'the quoted PCR 10 to replay against (without it the list is only replayed against itself)')
    .addOption(new Option('--bank <ALG>', 'the PCR bank').choices(['sha1', 'sha256', 'sha384', 'sha512']).default('sha256'))
    .addOption(new Option('--bank-rule <RULE>', 'how a template digest fills a bank').choices(['per-bank', 'sha1-padded']).default('per-bank'))
    .addOption(new Option('--format <FORMAT>', 'the list format (default: detected)').choices(['ascii', 'binary']))
    .addOption(new Option('--template-hash <ALG>', "the list's template hash (default: the policy's)").choices(['sha1', 'sha256', 'sha384', 'sha512']))
    .option('--max-findings <N>', 'stop judging after N findings', positiveInteger, 1000)
    .summary('replay LOG to PCR 10 (against HEX when given) and judge every entry against the runtime policy P')
    .description('replay LOG to PCR 10 and judge every entry against the runtime policy P; the output says which replay it judged');
  defineAction(jsonOption(check), ctx, async (call) => (await import('../runtime-integrity.js')).imaCheck(call));
}
