/** `quote verify`: offline forensics on tpm2_quote output (the work is in cli/quote-verify.ts, loaded on use). */
import type { Command } from 'commander';
import { defineAction, jsonOption, type CtlContext } from '../command.js';
import { TOPICS } from '../help.js';

/** The quote files of `tpm2_quote -m MSG -s SIG -o PCRS -F serialized`, as options of `command`. */
export function quoteFileOptions(command: Command, required: boolean): Command {
  const add = (flags: string, description: string): Command => (required ? command.requiredOption(flags, description) : command.option(flags, description));
  add('--ak <AK.pem>', 'the AK public key (PEM)');
  add('--msg <MSG>', 'the quoted TPMS_ATTEST (tpm2_quote -m)');
  add('--sig <SIG>', 'its TPMT_SIGNATURE (tpm2_quote -s)');
  add('--pcrs <PCRS>', 'the PCR values (tpm2_quote -o PCRS -F serialized)');
  add('--nonce <HEX>', 'the nonce the quote must carry (tpm2_quote -q)');
  return command.option('--pcr-selection <SEL>', 'the quote must cover exactly SEL, e.g. sha256:0,1,2,3,4,5,6,7,8,9,10,14 (default: any, shown)');
}

/** Adds the `quote` group to the program. */
export function addQuoteCommands(program: Command, ctx: CtlContext): void {
  const quote = program.command('quote').helpGroup(TOPICS.quote).description('offline forensics on tpm2_quote output');
  const verify = quote.command('verify').description('verify a quote: AK signature, nonce, PCR selection and digest');
  quoteFileOptions(verify, true);
  defineAction(jsonOption(verify), ctx, async (call) => (await import('../quote-verify.js')).quoteVerify(call));
}
