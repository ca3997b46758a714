/**
 * `sign FILE` (a DSSE envelope) and `sign ima --rootfs DIR` (IMA file signatures): signatures
 * made through a PKCS #11 token (the work is in cli/dsse-sign.ts and cli/ima-sign.ts, which
 * load pkcs11js on use). One command rather than a group with an `ima` subcommand: both
 * forms take --key, --module and --pin-file, and a group's options would take the
 * subcommand's (bulwarkctl's global options may follow a command, so options are not
 * positional).
 */
import { Option, type Command } from 'commander';
import { BulwarkError } from '../../lib/index.js';
import { defineAction, type CtlContext } from '../command.js';
import { TOPICS } from '../help.js';

/** Adds `sign` to the program. */
export function addSignCommands(program: Command, ctx: CtlContext): void {
  const sign = program
    .command('sign')
    .helpGroup(TOPICS.keys)
    .argument('<FILE|ima>', 'the file to sign into a DSSE envelope, or `ima` for IMA signatures of the files under --rootfs')
    .requiredOption('--key <URI|PEM>', 'the signing key: a PKCS#11 URI (pkcs11:token=...;object=...), or for envelopes also a PEM private key file')
    .option('--payload-type <T>', "the envelope's payloadType (default application/vnd.in-toto+json; policies application/vnd.bulwark.policy+json, baselines ...baseline+json, apps ...app+json, key sets ...keyset+json)")
    .option('--add-to <ENVELOPE>', 'add this signature to an envelope over the same FILE and type (threshold signing)')
    .option('--keyid <ID>', 'the keyid hint written beside the signature (never used to verify)')
    .option('-o, --output <ENVELOPE>', 'where to write the envelope (default stdout)')
    .option('--rootfs <DIR>', 'sign ima: sign every regular file under DIR')
    .addOption(new Option('--hash <ALG>', 'sign ima: the file digest').choices(['sha256', 'sha384', 'sha512']))
    .option('--manifest <FILE>', 'sign ima: write the signatures to a JSON manifest instead of security.ima xattrs')
    .option('--module <PATH>', 'the PKCS#11 module when the URI names none (default $BULWARK_PKCS11_MODULE)')
    .option('--pin-file <F>', 'a file holding the user PIN, when neither the URI nor $BULWARK_PKCS11_PIN gives one')
    .summary('FILE into a DSSE envelope signed by an HSM (or PEM) key; `sign ima`: IMA file signatures made by the HSM')
    .description(
      'sign FILE into a DSSE envelope with a PKCS#11 key (or a PEM private key), or add a signature to an envelope with --add-to; ' +
        '`sign ima --rootfs DIR --key URI` writes IMA v2 file signatures (security.ima, as evmctl ima_sign writes them) of every regular file under DIR, made by the HSM key, as xattrs (root) or to a manifest',
    );
  defineAction(sign, ctx, async (call) => {
    const imaOnly = ['--rootfs', '--hash', '--manifest'].filter((f) => call.string(f) !== undefined);
    const envelopeOnly = ['--payload-type', '--add-to', '--keyid', '--output'].filter((f) => call.string(f) !== undefined);
    if (call.arg(0) === 'ima' && call.string('--rootfs') !== undefined) {
      if (envelopeOnly.length > 0) throw new BulwarkError('USAGE', `sign ima does not take ${envelopeOnly.join(', ')}`);
      return (await import('../ima-sign.js')).signIma(call);
    }
    if (call.arg(0) === 'ima' && imaOnly.length > 0) throw new BulwarkError('USAGE', 'sign ima needs --rootfs DIR');
    if (imaOnly.length > 0) throw new BulwarkError('USAGE', `${imaOnly.join(', ')} belong to sign ima (sign ima --rootfs DIR --key URI)`);
    return (await import('../dsse-sign.js')).signFile(call);
  });
}
