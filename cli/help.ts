/**
 * bulwarkctl's help, generated from the command definitions: a command's synopsis is built
 * from its declared arguments and options, every help screen lists the commands below it
 * (the root lists them all) grouped by topic, and a command's own help ends with the other
 * commands of its topic and the exit codes.
 */
import { Help, type Command, type HelpConfiguration } from 'commander';
import { isRepeatable } from './command.js';

/** The exit codes every bulwarkctl command keeps (README, section bulwarkctl). */
export const EXIT_CODES_HELP = `Exit codes:
  0  ok; the quote verified; the node is trusted
  1  verified as failing: a finding, or the node is not trusted
  2  usage error
  3  malformed input (a file or value that cannot be decoded)
  4  the controller (or another dependency) is unavailable
  5  refused by the controller: permission denied for your role, or a
     credential it does not accept (another CA's, expired, revoked)
`;

const DEFAULT_TOPIC = 'Commands:';

/** The topic headings commands are listed under. */
export const TOPICS = {
  fleet: 'Fleet (over the controller\'s gRPC API):',
  fleetPolicies: 'Fleet policies (stored on the controller, checked before they are stored):',
  apps: 'Apps (Nomad jobs deployed through the controller):',
  quote: 'Forensics (offline, on tpm2_quote output):',
  measuredBoot: 'Measured boot (offline, on a UEFI event log such as binary_bios_measurements):',
  runtimeIntegrity: 'Runtime integrity (IMA, offline):',
  signing: 'Signed documents (DSSE envelopes, offline):',
  hostBaseline: 'Host baselines (offline, on `nft -j list ruleset` output and a SELinux tree):',
  keys: 'Keys (PKCS#11 tokens, local):',
} as const;

function rootOf(command: Command): Command {
  let c = command;
  while (c.parent !== null) c = c.parent;
  return c;
}

/** The words that run `command` below the program: "policy measured-boot create". */
export function commandPath(command: Command): string {
  const names: string[] = [];
  for (let c: Command | null = command; c !== null && c.parent !== null; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

/** The topic heading of a command: its own help group, else its nearest ancestor's. */
function topicOf(command: Command): string {
  for (let c: Command | null = command; c !== null; c = c.parent) {
    const heading = c.helpGroup();
    if (heading !== '') return heading;
  }
  return DEFAULT_TOPIC;
}

/** The runnable commands at and below `command`, in declaration order. */
function leavesOf(command: Command): Command[] {
  if (command.commands.length === 0) return [command];
  return command.commands.flatMap((c) => leavesOf(c));
}

/** "--ak <AK.pem>" → "--ak AK.pem"; a switch stays as it is. */
function optionWords(flags: string, long: string): string {
  const value = /[<[]([^>\]]+)[>\]]/.exec(flags)?.[1];
  return value === undefined ? long : `${long} ${value}`;
}

/** The synopsis of a runnable command: its path, arguments, then options (required bare, others in brackets). */
export function synopsisParts(command: Command): string[] {
  const parts = [commandPath(command)];
  for (const a of command.registeredArguments) {
    const name = `${a.name()}${a.variadic ? '...' : ''}`;
    parts.push(a.required ? name : `[${name}]`);
  }
  for (const o of command.options) {
    if (o.hidden || o.long === undefined) continue;
    const words = optionWords(o.flags, o.long);
    parts.push(o.mandatory ? words : `[${words}]${isRepeatable(o) ? '...' : ''}`);
  }
  return parts;
}

/** Wraps words into lines of at most `width` characters; later lines start with `indent`. */
function wrapWords(words: readonly string[], width: number, indent: string): string {
  const lines: string[] = [];
  let line = '';
  for (const w of words) {
    if (line !== '' && line.length + 1 + w.length > width) {
      lines.push(line);
      line = `${indent}${w}`;
    } else line = line === '' ? w : `${line} ${w}`;
  }
  if (line !== '') lines.push(line);
  return lines.join('\n');
}

const TERM_COLUMN = 34;

/** One listed command: synopsis and summary on one line when the synopsis is short, else on two. */
function commandItem(command: Command, width: number, helper: Help): string {
  const summary = command.summary() || command.description();
  const wrapped = helper.boxWrap(summary, width - TERM_COLUMN).replace(/\n/g, `\n${' '.repeat(TERM_COLUMN)}`);
  const term = wrapWords(synopsisParts(command), width - 2, '    ');
  if (!term.includes('\n') && term.length + 2 <= TERM_COLUMN - 2) return `  ${term.padEnd(TERM_COLUMN - 2)}${wrapped}`;
  return `  ${term.replace(/\n/g, '\n  ')}\n${' '.repeat(TERM_COLUMN)}${wrapped}`;
}

/** The commands grouped under their topic headings, in declaration order. */
function commandSections(commands: readonly Command[], width: number, helper: Help): string {
  // Topics in the order TOPICS declares them; commands in declaration order within each.
  const topics = new Map<string, Command[]>(Object.values(TOPICS).map((t): [string, Command[]] => [t, []]));
  for (const c of commands) {
    const topic = topicOf(c);
    topics.set(topic, [...(topics.get(topic) ?? []), c]);
  }
  return [...topics]
    .filter(([, list]) => list.length > 0)
    .map(([topic, list]) => `${topic}\n${list.map((c) => commandItem(c, width, helper)).join('\n')}\n`).join('\n');
}

/** Help settings for the program; subcommands inherit them. */
export function ctlHelpConfiguration(): HelpConfiguration {
  return {
    showGlobalOptions: true,
    commandUsage(this: Help, command: Command): string {
      const root = rootOf(command);
      if (command === root) return `${root.name()} ${command.usage()}`;
      if (command.commands.length > 0) return `${root.name()} ${commandPath(command)} COMMAND [ARGS]`;
      // "Usage: " comes before it; later lines line up under the command path.
      return wrapWords([root.name(), ...synopsisParts(command)], (this.helpWidth ?? 80) - 7, ' '.repeat(11));
    },
    formatHelp: (command: Command, helper: Help): string => {
      const width = helper.helpWidth ?? 80;
      // Commander's own layout without its command list: the lists below carry full synopses.
      const plain = Object.assign(new Help(), helper, { visibleCommands: (): Command[] => [] });
      const own = Help.prototype.formatHelp.call(plain, command, plain);
      const sections: string[] = [own.trimEnd(), ''];
      if (command.commands.length > 0) sections.push(commandSections(leavesOf(command), width, helper));
      else {
        const topic = topicOf(command);
        const related = leavesOf(rootOf(command)).filter((c) => c !== command && topicOf(c) === topic);
        if (related.length > 0) sections.push(commandSections(related, width, helper));
      }
      sections.push(EXIT_CODES_HELP);
      return sections.join('\n');
    },
  };
}
