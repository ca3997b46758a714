/** `hsm keygen|list|pubkey`: keys on a PKCS #11 token, local (the work is in cli/hsm.ts, which loads pkcs11js on use). */
import { Option, type Command } from 'commander';
import { defineAction, jsonOption, type CtlContext } from '../command.js';
import { TOPICS } from '../help.js';

const KEY_TYPES = ['ec-p256', 'ec-p384', 'rsa-2048', 'rsa-3072'];

/** --module and --pin-file, which every hsm command takes. */
function tokenAccess(command: Command): Command {
  return command
    .option('--module <PATH>', 'the PKCS#11 module when the URI names none (default $BULWARK_PKCS11_MODULE)')
    .option('--pin-file <F>', 'a file holding the user PIN, when neither the URI (pin-source) nor $BULWARK_PKCS11_PIN gives one');
}

/** Adds the `hsm` group to the program. */
export function addHsmCommands(program: Command, ctx: CtlContext): void {
  const hsm = program.command('hsm').helpGroup(TOPICS.keys).description('keys on a PKCS#11 token (an HSM), local');

  const keygen = tokenAccess(
    hsm
      .command('keygen')
      .requiredOption('--token <LABEL>', 'the token label')
      .requiredOption('--label <NAME>', 'the label of the new key pair')
      .addOption(new Option('--type <TYPE>', 'the key type').choices(KEY_TYPES).makeOptionMandatory())
      .option('--id <HEX>', 'the CKA_ID of the new key pair (default: 8 random bytes)')
      .summary('make a key pair on the token: private key sensitive, never extractable, sign only; prints its URI')
      .description('make a key pair on the token (private key sensitive, never extractable, for signing only) and print its PKCS#11 URI'),
  );
  defineAction(jsonOption(keygen), ctx, async (call) => (await import('../hsm.js')).hsmKeygen(call));

  const list = tokenAccess(
    hsm
      .command('list')
      .requiredOption('--token <LABEL>', 'the token label')
      .description('the key pairs on the token: label, id, type, URI (private keys need the PIN)'),
  );
  defineAction(jsonOption(list), ctx, async (call) => (await import('../hsm.js')).hsmList(call));

  const pubkey = tokenAccess(
    hsm
      .command('pubkey')
      .argument('<URI>', 'the key, e.g. pkcs11:token=T;object=NAME')
      .description('the public key of a key pair on the token, as PEM'),
  );
  defineAction(pubkey, ctx, async (call) => (await import('../hsm.js')).hsmPubkey(call));
}
