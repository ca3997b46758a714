/**
 * NATS credentials on disk and as nats.js connection options: nkey seed files (0600) for the
 * controller and for nodes, a password file for a controller that uses user/password, and
 * the TLS options that pin the server's CA.
 */
import { readFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { credsAuthenticator, nkeyAuthenticator, usernamePasswordAuthenticator, type Authenticator, type ConnectionOptions } from 'nats';
import { BulwarkError, toBulwarkError } from '../lib/index.js';
import { NODE_SUBJECTS, checkNatsPassword, createNkeyUser, parseNkeyUserSeed, type NatsNodeId, type NkeyUser } from '../lib/nats-auth/index.js';
import { readSecretFile, writeSecretFile } from './secret-files.js';

/** Creates a user nkey and writes its seed to `seedPath` (0600); returns it (the public key goes into the server config). */
export async function issueNkeySeedFile(seedPath: string): Promise<NkeyUser> {
  const user = createNkeyUser();
  await writeSecretFile(seedPath, `${user.seed}\n`);
  return user;
}

/** Reads a seed file written by issueNkeySeedFile (or `nsc`/`nk -gen user`): 0600 and a valid user seed. */
export async function readNkeySeedFile(seedPath: string): Promise<NkeyUser> {
  return parseNkeyUserSeed(await readSecretFile(seedPath));
}

/** A new random password for a user/password controller identity (256 bits, base64url). */
export function createNatsPassword(): string {
  return randomBytes(32).toString('base64url');
}

/** Writes a password file (0600). */
export async function writeNatsPasswordFile(path: string, password: string): Promise<void> {
  await writeSecretFile(path, `${checkNatsPassword(password)}\n`);
}

/** Reads a password file (0600; one line, surrounding whitespace ignored). */
export async function readNatsPasswordFile(path: string): Promise<string> {
  return checkNatsPassword((await readSecretFile(path)).trim());
}

/** How a client proves itself to nats-server. */
export type NatsClientCredentials =
  | { readonly kind: 'nkey'; readonly seedFile: string }
  /** An nkey whose seed is asked for at every (re)connect: an agent that enrolls again switches to its new key. */
  | { readonly kind: 'nkey-seed'; readonly seed: () => string }
  | { readonly kind: 'password'; readonly user: string; readonly passwordFile: string }
  /** A decentralised-auth creds file (JWT and seed, as `nsc` writes it). */
  | { readonly kind: 'creds'; readonly credsFile: string };

/** What a client needs to connect: credentials, the CA to pin, and for a node its inbox prefix. */
export interface NatsClientAuthOptions {
  readonly credentials: NatsClientCredentials;
  /** PEM file of the CA the server's certificate must chain to (pinned: the system store is not used). */
  readonly caFile: string;
  /** A TLS client certificate and its key (PEM files), for a server that verifies clients. */
  readonly clientCertificate?: { readonly certFile: string; readonly keyFile: string };
  /** A node sets its id: requests then use its own inbox, the only one it may subscribe to. */
  readonly nodeId?: NatsNodeId;
}

async function readText(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    throw toBulwarkError(err, 'IO_FAILED', `cannot read the ${what} ${path}`);
  }
}

/**
 * nats.js options (authenticator, TLS with the pinned CA, inbox prefix) for an identity.
 * Secrets are read now, so a bad file fails here and not on the first reconnect.
 */
export async function natsClientAuthOptions(opts: NatsClientAuthOptions): Promise<Pick<ConnectionOptions, 'authenticator' | 'tls' | 'inboxPrefix'>> {
  let authenticator: Authenticator;
  if (opts.credentials.kind === 'nkey') {
    const user = await readNkeySeedFile(opts.credentials.seedFile);
    authenticator = nkeyAuthenticator(new TextEncoder().encode(user.seed));
  } else if (opts.credentials.kind === 'nkey-seed') {
    const seed = opts.credentials.seed;
    authenticator = nkeyAuthenticator(() => new TextEncoder().encode(seed()));
  } else if (opts.credentials.kind === 'password') {
    authenticator = usernamePasswordAuthenticator(opts.credentials.user, await readNatsPasswordFile(opts.credentials.passwordFile));
  } else {
    const creds = await readSecretFile(opts.credentials.credsFile);
    if (!creds.includes('-----BEGIN NATS USER JWT-----')) {
      throw new BulwarkError('NATS_AUTH_CREDENTIAL_INVALID', `${opts.credentials.credsFile} is not a NATS creds file`);
    }
    authenticator = credsAuthenticator(new TextEncoder().encode(creds));
  }
  const ca = await readText(opts.caFile, 'NATS CA');
  const client = opts.clientCertificate;
  const tls =
    client === undefined
      ? { ca }
      : { ca, cert: await readText(client.certFile, 'NATS client certificate'), key: await readSecretFile(client.keyFile) };
  return {
    authenticator,
    tls,
    ...(opts.nodeId === undefined ? {} : { inboxPrefix: NODE_SUBJECTS.inboxPrefix(opts.nodeId) }),
  };
}
