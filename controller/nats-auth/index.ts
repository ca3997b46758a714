/**
 * NATS authentication, the I/O half: secret files (0600), nkey seed and password files,
 * nats.js connection options for an identity, and a nats-server started from a rendered
 * config and reloaded in place. The permission model and config rendering are pure, in
 * lib/nats-auth.
 */
export { readSecretFile, writeSecretFile } from '../../daemon/index.js';
export {
  createNatsPassword,
  issueNkeySeedFile,
  natsClientAuthOptions,
  readNatsPasswordFile,
  readNkeySeedFile,
  writeNatsPasswordFile,
  type NatsClientAuthOptions,
  type NatsClientCredentials,
} from '../../daemon/index.js';
export { ConfiguredNatsServer, signalNatsServerReload, type ConfiguredNatsServerOptions } from './server-process.js';
export { embeddedNatsPaths, startEmbeddedNats, type EmbeddedNats } from './embedded.js';
export { NatsIdentitySync, type NodeKeyWatch } from './identity-sync.js';
