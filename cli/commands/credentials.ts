/**
 * `credentials issue NAME --role R --valid-for D --output DIR` and `credentials revoke
 * NAME|SERIAL` (admin). The key pair of a new credential is generated here; only its public
 * key goes to the controller, which signs it. The set is written 0700/0600 and never
 * overwrites one that exists.
 */
import type { Command } from 'commander';
import { EXIT_CODES, BulwarkError } from '../../lib/index.js';
import { defineAction, jsonOption, type CtlContext } from '../command.js';
import { withController } from '../controller-client.js';
import { TOPICS } from '../help.js';
import { printJson } from '../io.js';

/** A duration: "90d", "12h", "30m", "45s" (a bare number is days). */
function parseValidity(text: string): number {
  const m = /^(\d{1,6})(d|h|m|s)?$/.exec(text.trim());
  if (m === null) throw new BulwarkError('USAGE', `--valid-for "${text.slice(0, 40)}" is not a duration such as 90d, 12h or 30m`);
  const unit = m[2] ?? 'd';
  const factor = unit === 'd' ? 86_400_000 : unit === 'h' ? 3_600_000 : unit === 'm' ? 60_000 : 1000;
  return Number(m[1]) * factor;
}

/** Adds the `credentials` group to the program. */
export function addCredentialsCommands(program: Command, ctx: CtlContext): void {
  const credentials = program.command('credentials').helpGroup(TOPICS.fleet).description("people's credentials for the controller (admin)");

  const issue = credentials
    .command('issue')
    .argument('<NAME>', 'the user name the credential names')
    .requiredOption('--role <R>', 'viewer, operator or admin')
    .requiredOption('--output <DIR>', 'where to write ca.pem, cert.pem and key.pem (a new directory, 0700)')
    .option('--valid-for <D>', 'how long it is valid: 90d, 12h, 30m (default 90d)')
    .description('issue a credential: the key pair is made here, the controller signs its public key');
  defineAction(jsonOption(issue), ctx, async (call) => {
    const name = call.arg(0);
    const role = call.required('--role');
    const output = call.required('--output');
    const validForMs = parseValidity(call.string('--valid-for') ?? '90d');
    const pki = await import('../../lib/pki/index.js');
    const files = await import('../../controller/pki/index.js');
    const { privateKey, publicKey } = pki.generateKeyPair('p256');
    const spki = new Uint8Array(publicKey.export({ type: 'spki', format: 'der' }));
    const issued = await withController(ctx, (c) => c.issueCredential(name, role, validForMs, spki));
    await files.writeCredentialSet(output, { caPem: issued.ca, certPem: issued.certificate, keyPem: files.privateKeyToPem(privateKey) });
    if (call.json) printJson(call.io, { name, role, serial: issued.serial, notAfter: issued.notAfter, output });
    else call.io.out(`issued ${name} (${role}), serial ${issued.serial}, valid until ${issued.notAfter}: ${output}\n`);
    return EXIT_CODES.ok;
  });

  const revoke = credentials
    .command('revoke')
    .argument('<NAME|SERIAL>', 'a user name (every unexpired credential issued to it) or a certificate serial in hex')
    .description('revoke credentials: refused on every controller replica from their next call');
  defineAction(jsonOption(revoke), ctx, async (call) => {
    const target = call.arg(0);
    const serials = await withController(ctx, (c) => c.revokeCredential(target));
    if (call.json) printJson(call.io, { revoked: serials });
    else call.io.out(`revoked ${serials.join(', ')}\n`);
    return EXIT_CODES.ok;
  });
}
