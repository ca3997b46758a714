/** `baseline check`: a host's nftables ruleset and SELinux tree against a baseline, offline (the work is in cli/baseline-check.ts, loaded on use). */
import type { Command } from 'commander';
import { defineAction, jsonOption, type CtlContext } from '../command.js';
import { TOPICS } from '../help.js';

/** Adds `baseline check` to the program's `baseline` group (made here when no other file has made it). */
export function addBaselineCheckCommand(program: Command, ctx: CtlContext): void {
  const baseline = program.commands.find((c) => c.name() === 'baseline') ?? program.command('baseline').helpGroup(TOPICS.fleet).description('host baselines: SELinux and nftables');

  const check = baseline
    .command('check')
    .helpGroup(TOPICS.hostBaseline)
    .requiredOption('--baseline <FILE>', 'the baseline document (policies/baselines/schema.json)')
    .option('--nft-json <FILE>', 'the host\'s ruleset as `nft -j list ruleset` prints it')
    .option('--selinux-root <DIR>', 'a root to read SELinux from (DIR/sys/fs/selinux, DIR/etc/selinux, DIR/var/lib/selinux); / on the host itself')
    .summary('judge an nft ruleset and/or a SELinux tree against a baseline: the open inbound ports and each deviation')
    .description(
      'judge a host\'s nftables ruleset (--nft-json) and/or its SELinux state (--selinux-root) against a baseline: prints the effective inbound exposure (tcp/udp ports a new connection from another host reaches, conditional ones with their condition) and each deviation; exit 0 conforms, 1 drift, 3 malformed input. Give at least one of --nft-json and --selinux-root.',
    );
  defineAction(jsonOption(check), ctx, async (call) => (await import('../baseline-check.js')).baselineCheck(call));
}
