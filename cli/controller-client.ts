/**
 * The controller's gRPC client for the commands that talk to it. gRPC and protobuf load here,
 * on first use, so `--help` and the offline commands never pay for them. Every call is made
 * over TLS 1.3 with the credential set of --credentials / $BULWARK_CREDENTIALS /
 * ~/.config/bulwark/credentials (ca.pem pins the controller, cert.pem and key.pem are ours).
 */
import { access } from 'node:fs/promises';
import { join } from 'node:path';
import { BulwarkError } from '../lib/index.js';
import type { ClientTls, ControllerClient } from '../proto/index.js';
import type { CtlContext } from './command.js';

/** A node as the controller reports it. */
export type NodeView = Awaited<ReturnType<ControllerClient['getNode']>>;
/** One trust transition from the audit stream. */
export type TrustEventView = Awaited<ReturnType<ControllerClient['history']>>[number];
/** Where an app's allocations run. */
export type AppStatusView = Awaited<ReturnType<ControllerClient['appStatus']>>;
/** A node's host baseline as the controller verified it. */
export type BaselineStatusView = Awaited<ReturnType<ControllerClient['getBaseline']>>;
/** A stored policy with its digest and assignments. */
export type PolicyInfoView = Awaited<ReturnType<ControllerClient['putPolicy']>>;

const FILES = ['ca.pem', 'cert.pem', 'key.pem'] as const;

/** How to get credentials, for the message of a run without them. */
export function credentialsHint(dir: string): string {
  return [
    `no credentials in ${dir} (it needs ca.pem, cert.pem and key.pem).`,
    'Every controller command needs a credential set issued by the controller:',
    '  - on the controller host, the admin set it wrote on first start: <dataDir>/credentials/admin',
    '    (by default /var/lib/bulwark-controller/credentials/admin);',
    '  - or one an admin issued for you: bulwarkctl credentials issue NAME --role viewer|operator|admin --output DIR.',
    'Pass it with --credentials DIR, or set BULWARK_CREDENTIALS=DIR, or copy it to ~/.config/bulwark/credentials.',
  ].join('\n');
}

/** Reads the credential set (AUTH_CREDENTIALS_MISSING with how to get one when it is not there). */
export async function readCtlCredentials(dir: string): Promise<ClientTls> {
  for (const name of FILES) {
    try {
      await access(join(dir, name));
    } catch {
      throw new BulwarkError('AUTH_CREDENTIALS_MISSING', credentialsHint(dir), { path: dir });
    }
  }
  const pki = await import('../controller/pki/index.js');
  const set = await pki.readCredentialSet(dir);
  return { caPem: set.caPem, certPem: set.certPem, keyPem: set.keyPem };
}

/** Runs `fn` with a client of the controller (--controller / $BULWARK_CONTROLLER), closed afterwards. */
export async function withController<T>(ctx: CtlContext, fn: (client: ControllerClient) => Promise<T>): Promise<T> {
  const tls = await readCtlCredentials(ctx.credentialsDir());
  const proto = await import('../proto/index.js');
  const client = new proto.ControllerClient(ctx.controllerAddress(), { tls });
  try {
    return await fn(client);
  } finally {
    client.close();
  }
}
