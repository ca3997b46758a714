/** `sign ima`: signatures made through a PKCS #11 token (the work is in cli/ima-sign.ts, which loads pkcs11js on use). */
import { Option, type Command } from 'commander';
import { defineAction, type CtlContext } from '../command.js';
import { TOPICS } from '../help.js';

/** Adds the `sign` group (or its `ima` command, when another file has made the group) to the program. */
export function addSignCommands(program: Command, ctx: CtlContext): void {
  const sign = program.commands.find((c) => c.name() === 'sign') ?? program.command('sign').helpGroup(TOPICS.keys).description('signatures made through a PKCS#11 token');

  const ima = sign
    .command('ima')
    .requiredOption('--rootfs <DIR>', 'sign every regular file under DIR')
    .requiredOption('--key <URI>', 'the signing key, a PKCS#11 URI (RSA or EC)')
    .addOption(new Option('--hash <ALG>', 'the file digest').choices(['sha256', 'sha384', 'sha512']).default('sha256'))
    .option('--manifest <FILE>', 'write the signatures to a JSON manifest instead of security.ima xattrs')
    .option('--module <PATH>', 'the PKCS#11 module when the URI names none (default $BULWARK_PKCS11_MODULE)')
    .option('--pin-file <F>', 'a file holding the user PIN, when neither the URI nor $BULWARK_PKCS11_PIN gives one')
    .summary('IMA v2 signatures (as evmctl ima_sign writes them) of every file under DIR, made by the HSM')
    .description('IMA v2 file signatures (security.ima, as evmctl ima_sign writes them) of every regular file under DIR, made by the HSM key; written as xattrs (root), or to a manifest');
  defineAction(ima, ctx, async (call) => (await import('../ima-sign.js')).signIma(call));
}
