/**
 * How a bulwarkctl command is declared and run on commander: the context an action gets,
 * typed access to its arguments and options, and the rules every option keeps: an option
 * given twice is a usage error (exit 2), except the few declared repeatable, which collect
 * every value; an option that needs a value never takes the next option as it.
 */
import { InvalidArgumentError, Option, type Command } from 'commander';
import { BulwarkError } from '../lib/index.js';
import type { CtlIo } from './io.js';

/** What an action needs besides its own arguments; one per run. */
export interface CtlContext {
  readonly io: CtlIo;
  /** The controller's gRPC address: --controller, else $BULWARK_CONTROLLER, else 127.0.0.1:7443. */
  controllerAddress(): string;
  /** The credential set directory: --credentials, else $BULWARK_CREDENTIALS, else ~/.config/bulwark/credentials. */
  credentialsDir(): string;
  /** Called by every action as it starts, so a usage error can name its command. */
  started(command: Command): void;
  /** The exit code the action ended with. */
  finished(exitCode: number): void;
}

const REPEATABLE = new WeakSet<Option>();

/** Whether `option` collects every value given (instead of refusing a second one). */
export function isRepeatable(option: Option): boolean {
  return REPEATABLE.has(option);
}

/** Adds an option that may be given several times; its value is the list of all of them. */
export function addRepeatableOption(command: Command, flags: string, description: string): Command {
  const option = new Option(flags, description).argParser((value: string, previous: readonly string[] | undefined) => [...(previous ?? []), value]);
  REPEATABLE.add(option);
  return command.addOption(option);
}

/** An option value parser: a positive safe integer. */
export function positiveInteger(value: string): number {
  const n = Number(value);
  if (!/^[0-9]+$/.test(value) || !Number.isSafeInteger(n) || n <= 0) throw new InvalidArgumentError('must be a positive integer');
  return n;
}

/** An option value parser: a non-negative safe integer. */
export function nonNegativeInteger(value: string): number {
  const n = Number(value);
  if (!/^[0-9]+$/.test(value) || !Number.isSafeInteger(n)) throw new InvalidArgumentError('must be a non-negative integer');
  return n;
}

/** Every flag `command` or one of its ancestors accepts, with the help flags. */
function knownFlags(command: Command): Set<string> {
  const flags = new Set(['-h', '--help']);
  for (let c: Command | null = command; c !== null; c = c.parent) {
    for (const o of c.options) {
      if (o.long !== undefined) flags.add(o.long);
      if (o.short !== undefined) flags.add(o.short);
    }
  }
  return flags;
}

/**
 * Holds the options of `root` and its subcommands to two rules: an option is given at most
 * once unless it was added with addRepeatableOption (a switch given twice, `--json --json`,
 * is refused the same way), and an option that takes a value does not take the next option
 * as its value (`--policy --json` lacks the policy, as `--policy` at the end does).
 */
export function holdOptionRules(root: Command): void {
  const visit = (command: Command): void => {
    const flags = knownFlags(command);
    for (const option of command.options) {
      let given = 0;
      command.on(`option:${option.name()}`, (value: unknown) => {
        given++;
        if (given > 1 && !isRepeatable(option)) command.error(`error: option '${option.flags}' given more than once`, { exitCode: 2, code: 'bulwarkctl.repeatedOption' });
        if (option.required && typeof value === 'string' && flags.has(value.split('=')[0] ?? value)) {
          command.error(`error: option '${option.flags}' argument missing (${value} is an option)`, { exitCode: 2, code: 'commander.optionMissingArgument' });
        }
      });
    }
    for (const sub of command.commands) visit(sub);
  };
  visit(root);
}

/** The parsed arguments and options of the command being run. */
export class Call {
  constructor(
    readonly command: Command,
    readonly ctx: CtlContext,
  ) {}

  get io(): CtlIo {
    return this.ctx.io;
  }

  /** A declared required argument (commander has checked it is there). */
  arg(index: number): string {
    const v = this.command.args[index];
    if (v === undefined) throw new BulwarkError('INTERNAL', `${this.command.name()}: argument ${index} missing after parsing`);
    return v;
  }

  /** A declared optional argument. */
  optionalArg(index: number): string | undefined {
    return this.command.args[index];
  }

  private value(flag: string): unknown {
    const option = this.command.options.find((o) => o.long === flag);
    if (option === undefined) throw new BulwarkError('INTERNAL', `${this.command.name()} declares no option ${flag}`);
    const v: unknown = this.command.getOptionValue(option.attributeName());
    return v;
  }

  /** A value option, undefined when not given. */
  string(flag: string): string | undefined {
    const v = this.value(flag);
    if (v === undefined || typeof v === 'string') return v;
    throw new BulwarkError('INTERNAL', `${flag} is not a text option`);
  }

  /** A mandatory value option (declared with requiredOption, so commander has checked it). */
  required(flag: string): string {
    const v = this.string(flag);
    if (v === undefined) throw new BulwarkError('USAGE', `${this.command.name()} needs ${flag}`);
    return v;
  }

  /** A number option (parsed by positiveInteger or nonNegativeInteger), undefined when not given. */
  number(flag: string): number | undefined {
    const v = this.value(flag);
    if (v === undefined || typeof v === 'number') return v;
    throw new BulwarkError('INTERNAL', `${flag} is not a number option`);
  }

  /** A repeatable option: every value given, in order. */
  strings(flag: string): string[] {
    const v = this.value(flag);
    if (v === undefined) return [];
    if (Array.isArray(v) && v.every((x): x is string => typeof x === 'string')) return v;
    throw new BulwarkError('INTERNAL', `${flag} is not a repeatable option`);
  }

  /** A switch. */
  flag(flag: string): boolean {
    return this.value(flag) === true;
  }

  /** Whether --json was given (for commands that declare it). */
  get json(): boolean {
    return this.flag('--json');
  }
}

/** Sets what `command` does: `fn` returns the exit code. */
export function defineAction(command: Command, ctx: CtlContext, fn: (call: Call) => Promise<number>): Command {
  return command.action(async () => {
    ctx.started(command);
    ctx.finished(await fn(new Call(command, ctx)));
  });
}

/** Adds `--json` to a command whose output is a listing or a result. */
export function jsonOption(command: Command): Command {
  return command.option('--json', 'print JSON instead of text');
}
