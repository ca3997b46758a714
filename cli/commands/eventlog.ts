/** `eventlog show|replay|export FILE`: a UEFI event log, offline (the work is in cli/measured-boot.ts, loaded on use). */
import type { Command } from 'commander';
import { defineAction, jsonOption, type CtlContext } from '../command.js';
import { TOPICS } from '../help.js';

/** Adds the `eventlog` group to the program. */
export function addEventlogCommands(program: Command, ctx: CtlContext): void {
  const eventlog = program.command('eventlog').helpGroup(TOPICS.measuredBoot).description('a UEFI event log (binary_bios_measurements), offline');

  const show = eventlog
    .command('show')
    .argument('<FILE>', 'the event log')
    .description('the decoded events: PCR, type, digest, what each event says');
  defineAction(jsonOption(show), ctx, async (call) => (await import('../measured-boot.js')).eventlogShow(call));

  const replay = eventlog
    .command('replay')
    .argument('<FILE>', 'the event log')
    .description('PCR values per bank the log replays to (not checked against a quote)');
  defineAction(jsonOption(replay), ctx, async (call) => (await import('../measured-boot.js')).eventlogReplay(call));

  const exportCmd = eventlog
    .command('export')
    .argument('<FILE>', 'the event log')
    .option('--cel', 'as TCG Canonical Event Log JSON (CEL-JSON, content type pcclient_std); the only format so far, and required')
    .option('-o, --output <OUT>', 'write here (atomically) instead of stdout')
    .description('the event log in a format other tools read: --cel writes TCG Canonical Event Log JSON, every event as logged');
  defineAction(exportCmd, ctx, async (call) => (await import('../measured-boot.js')).eventlogExport(call));
}
