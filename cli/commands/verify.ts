/** `verify ENVELOPE --trusted-keys DIR|FILE [--require-attested --controller-key PEM]`: a DSSE envelope checked offline against PEM public keys (the work is in cli/dsse-verify.ts, loaded on use). */
import type { Command } from 'commander';
import { writeFile } from 'node:fs/promises';
import { BulwarkError, EXIT_CODES } from '../../lib/index.js';
import { defineAction, jsonOption, positiveInteger, type CtlContext } from '../command.js';
import { withController } from '../controller-client.js';
import { TOPICS } from '../help.js';
import { printJson } from '../io.js';

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

  const key = program
    .command('statement-key')
    .helpGroup(TOPICS.signing)
    .description("the controller's attestation public key (PEM), for verify --require-attested --controller-key (GetStatementKey)")
    .option('-o, --output <FILE>', 'write the PEM to FILE instead of stdout');
  defineAction(jsonOption(key), ctx, async (call) => {
    const k = await withController(ctx, (c) => c.getStatementKey());
    const out = call.string('--output');
    if (out !== undefined) {
      try {
        await writeFile(out, k.publicKeyPem);
      } catch (err) {
        throw new BulwarkError('IO_FAILED', `cannot write ${out}`, {}, { cause: err });
      }
    }
    if (call.json) printJson(call.io, k);
    else if (out === undefined) call.io.out(k.publicKeyPem);
    else call.io.out(`wrote ${out} (sha256 ${k.sha256})\n`);
    return EXIT_CODES.ok;
  });
}
