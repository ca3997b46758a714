/**
 * `sign FILE` (a DSSE envelope) and `sign ima` (IMA file signatures): signatures made through a
 * PKCS #11 token (the work is in cli/dsse-sign.ts and cli/ima-sign.ts, which load pkcs11js on use).
 */
import { Option, type Command } from 'commander';
import { defineAction, type CtlContext } from '../command.js';
import { TOPICS } from '../help.js';
import { BulwarkError } from '../../lib/index.js';

/** Adds the `sign` group (or its `ima` command, when another file has made the group) to the program. */
export function addSignCommands(program: Command, ctx: CtlContext): void {
  const sign = program.commands.find((c) => c.name() === 'sign') ?? program.command('sign').helpGroup(TOPICS.keys).description('signatures made through a PKCS#11 token');
  sign
    .argument('[FILE]', 'the file to sign into a DSSE envelope')
    .option('--key <URI|PEM>', 'the signing key: a PKCS#11 URI (pkcs11:token=...;object=...) or a PEM private key file')
    .option('--payload-type <T>', "the envelope's payloadType (default application/vnd.in-toto+json; policies application/vnd.bulwark.policy+json, baselines ...baseline+json, apps ...app+json, key sets ...keyset+json)")
    .option('--add-to <ENVELOPE>', 'add this signature to an envelope over the same FILE and type (threshold signing)')
    .option('--keyid <ID>', 'the keyid hint written beside the signature (never used to verify)')
    .option('--module <PATH>', 'the PKCS#11 module when the URI names none (default $BULWARK_PKCS11_MODULE)')
    .option('--pin-file <F>', 'a file holding the user PIN, when neither the URI nor $BULWARK_PKCS11_PIN gives one')
    .option('-o, --output <ENVELOPE>', 'where to write the envelope (default stdout)')
    .summary('FILE into a DSSE envelope signed by an HSM or PEM key (or IMA signatures: sign ima)')
    .description('sign FILE into a DSSE envelope with a PKCS#11 key (or a PEM private key), or add a signature to an envelope with --add-to; `sign ima` makes IMA file signatures');
  defineAction(sign, ctx, async (call) => {
    if (call.optionalArg(0) === undefined) throw new BulwarkError('USAGE', 'sign needs a FILE (or a subcommand: sign ima)');
    if (call.string('--key') === undefined) throw new BulwarkError('USAGE', 'sign FILE needs --key URI|PEM');
    return (await import('../dsse-sign.js')).signFile(call);
  });

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
