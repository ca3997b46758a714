/**
 * NATS authentication, the I/O half: secret files (0600), nkey seed and password files,
 * nats.js connection options for an identity, and a nats-server started from a rendered
 * config and reloaded in place. The permission model and config rendering are pure, in
 * lib/nats-auth.
 */
export { readSecretFile, writeSecretFile } from './secret-files.js';
export {
  createNatsPassword,
  issueNkeySeedFile,
  natsClientAuthOptions,
  readNatsPasswordFile,
  readNkeySeedFile,
  writeNatsPasswordFile,
  type NatsClientAuthOptions,
  type NatsClientCredentials,
} from './credentials.js';
export { ConfiguredNatsServer, signalNatsServerReload, type ConfiguredNatsServerOptions } from './server-process.js';
