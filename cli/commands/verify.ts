/** `verify ENVELOPE --trusted-keys DIR|FILE [--require-attested --controller-key PEM]`: a DSSE envelope checked offline against PEM public keys (the work is in cli/dsse-verify.ts, loaded on use). */
import type { Command } from 'commander';
import { defineAction, jsonOption, positiveInteger, type CtlContext } from '../command.js';
import { TOPICS } from '../help.js';

/** Adds `verify` to the program. */
export function addVerifyCommands(program: Command, ctx: CtlContext): void {
  const verify = program
    .command('verify')
    .helpGroup(TOPICS.signing)
    .argument('<ENVELOPE>', 'the DSSE envelope (JSON)')
    .description('a DSSE envelope against trusted PEM public keys: exit 0 verified, 1 not (signature, threshold or type), 3 malformed')
    .requiredOption('--trusted-keys <DIR|FILE>', 'a PEM file of one or more public keys, or a directory of .pem files')
    .option('--threshold <N>', 'distinct trusted keys that must verify (default 1)', positiveInteger)
    .option('--payload-type <T>', 'the payloadType the envelope must have (default: any, and the one it has is printed)')
    .option('--require-attested', 'the envelope must be an attestation-bound artifact signature: signed by a trusted host key (--trusted-keys) while the controller (--controller-key) attested the host trusted')
    .option('--controller-key <FILE>', 'with --require-attested: the controller\'s statement public key(s) (PEM; GetStatementKey, or statement-signing-key.pub.pem in its data dir)')
    .option('--artifact <FILE>', 'with --require-attested: the artifact, whose sha256 must be the signed one');
  defineAction(jsonOption(verify), ctx, async (call) => (await import('../dsse-verify.js')).verifyCommand(call));
}
