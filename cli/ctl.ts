/**
 * bulwarkctl: the security team's view of the fleet over the controller's gRPC API, and
 * offline forensics on tpm2-tools output and event logs. One commander tree (one file per
 * command group under cli/commands/); help comes from the definitions. Exit codes: 0 ok or
 * verified, 1 verified as failing (a finding, or a node that is not trusted), 2 usage error
 * (also: no credentials), 3 malformed input, 4 controller or dependency unavailable, 5 refused
 * by the controller (permission denied, or a credential it does not accept). Bad input never ends in a stack
 * trace, and runCtl never exits the process: output goes to the given io.
 */
import { homedir } from 'node:os';
import { join } from 'node:path';
import { Command, CommanderError } from 'commander';
import { EXIT_CODES, exitCodeFor, isBulwarkError } from '../lib/index.js';
import { readBuildInfo, versionLine } from '../daemon/index.js';
import { holdOptionRules, type CtlContext } from './command.js';
import { addAppsCommands, addAuditCommands, addBaselineCheckCommand, addBaselineCommands, addCredentialsCommands, addEventlogCommands, addHsmCommands, addImaCommands, addKeysCommands, addNodeCommands, addPolicyCommands, addQuoteCommands, addSignCommands, addVerifyCommands } from './commands/index.js';
import { commandPath, ctlHelpConfiguration } from './help.js';
import type { CtlIo } from './io.js';

export type { CtlIo } from './io.js';

const DEFAULT_CONTROLLER = '127.0.0.1:7443';

/** The state of one run: which command ran and the exit code it chose. */
class CtlRun implements CtlContext {
  exitCode: number = EXIT_CODES.ok;
  command: Command | null = null;

  constructor(
    readonly io: CtlIo,
    private readonly program: Command,
  ) {}

  controllerAddress(): string {
    const given: unknown = this.program.getOptionValue('controller');
    return typeof given === 'string' ? given : (this.io.env['BULWARK_CONTROLLER'] ?? DEFAULT_CONTROLLER);
  }

  credentialsDir(): string {
    const given: unknown = this.program.getOptionValue('credentials');
    if (typeof given === 'string') return given;
    const fromEnv = this.io.env['BULWARK_CREDENTIALS'];
    if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
    return join(this.io.env['HOME'] ?? homedir(), '.config', 'bulwark', 'credentials');
  }

  started(command: Command): void {
    this.command = command;
  }

  finished(exitCode: number): void {
    this.exitCode = exitCode;
  }
}

/** The whole command tree, writing to `io`; parse errors throw CommanderError instead of exiting. */
function buildProgram(io: CtlIo, version: string): { program: Command; run: CtlRun } {
  const program = new Command('bulwarkctl')
    .usage('[--controller HOST:PORT] [--credentials DIR] COMMAND [ARGS]')
    .description("the fleet's trust state over the controller's gRPC API, and offline forensics on quotes, event logs and IMA lists")
    .option('--controller <HOST:PORT>', `the controller's gRPC address (default $BULWARK_CONTROLLER, else ${DEFAULT_CONTROLLER})`)
    .option('--credentials <DIR>', 'the credential set (ca.pem, cert.pem, key.pem) for the controller (default $BULWARK_CREDENTIALS, else ~/.config/bulwark/credentials)')
    .version(version, '--version', 'print the version, commit and Node version')
    .exitOverride()
    .configureOutput({
      writeOut: (text) => io.out(text),
      writeErr: (text) => io.err(text),
      // Errors are printed once, coded, by runCtl.
      outputError: () => undefined,
      getOutHelpWidth: () => 80,
      getErrHelpWidth: () => 80,
      getOutHasColors: () => false,
      getErrHasColors: () => false,
    })
    .configureHelp(ctlHelpConfiguration())
    .showSuggestionAfterError(true);
  const run = new CtlRun(io, program);
  addNodeCommands(program, run);
  addPolicyCommands(program, run);
  addKeysCommands(program, run);
  addBaselineCommands(program, run);
  addAppsCommands(program, run);
  addCredentialsCommands(program, run);
  addAuditCommands(program, run);
  addQuoteCommands(program, run);
  addEventlogCommands(program, run);
  addImaCommands(program, run);
  addVerifyCommands(program, run);
  addBaselineCheckCommand(program, run);
  addHsmCommands(program, run);
  addSignCommands(program, run);
  holdOptionRules(program);
  return { program, run };
}

/** The help of `bulwarkctl --help`, as generated from the command definitions. */
export function ctlHelp(): string {
  return buildProgram({ out: () => undefined, err: () => undefined, env: {} }, '').program.helpInformation();
}

/** The deepest command the words of argv name, for the "run ... --help" hint after a usage error. */
function commandNamedBy(program: Command, argv: readonly string[]): Command {
  let command = program;
  for (const word of argv) {
    const sub = command.commands.find((c) => c.name() === word);
    if (sub !== undefined) command = sub;
  }
  return command;
}

function usageHint(io: CtlIo, command: Command): void {
  const path = commandPath(command);
  io.err(`run 'bulwarkctl ${path === '' ? '' : `${path} `}--help' for usage\n`);
}

/** Runs bulwarkctl with `argv` (without node and script), returning the exit code. */
export async function runCtl(argv: readonly string[], io: CtlIo): Promise<number> {
  // A build whose build-info.json is damaged still runs; only --version says so.
  const version = await readBuildInfo().then(
    (info) => versionLine('bulwarkctl', info).trimEnd(),
    (err: unknown) => `bulwarkctl (build info unreadable: ${err instanceof Error ? err.message : String(err)})`,
  );
  const { program, run } = buildProgram(io, version);
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return run.exitCode;
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and `help COMMAND` end here too, after the help was written to io.out; a command
      // group run without its subcommand has had its help written to io.err (a usage error).
      if (err.code === 'commander.version') return EXIT_CODES.ok;
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.help') return err.exitCode === 0 ? EXIT_CODES.ok : EXIT_CODES.usage;
      io.err(`bulwarkctl: USAGE: ${err.message.replace(/^error: /, '')}\n`);
      usageHint(io, commandNamedBy(program, argv));
      return EXIT_CODES.usage;
    }
    if (isBulwarkError(err)) {
      const code = err.code === 'IO_FAILED' ? EXIT_CODES.malformed : exitCodeFor(err.code);
      io.err(`bulwarkctl: ${err.code}: ${err.message}\n`);
      if (code === EXIT_CODES.usage) usageHint(io, run.command ?? commandNamedBy(program, argv));
      return code;
    }
    io.err(`bulwarkctl: INTERNAL: ${err instanceof Error ? err.message : String(err)}\n`);
    return EXIT_CODES.unavailable;
  }
}
