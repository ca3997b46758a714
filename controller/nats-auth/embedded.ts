/**
 * The controller's embedded nats-server, with authentication: started from a rendered
 * config that requires TLS (a certificate for localhost and 127.0.0.1 issued by the
 * controller's CA) and an nkey for every client — the controller's own, with full rights,
 * and one per enrolled node limited to that node's subjects. Files, under the data dir:
 *
 *   nats/            JetStream store (as before authentication)
 *   nats-auth/       0700: controller.nk (the controller's seed, 0600), nats-server.conf
 *                    (0600), tls/cert.pem and tls/key.pem (the server's, reissued every start)
 */
import { access } from 'node:fs/promises';
import { join } from 'node:path';
import { generateKeyPair, issueServerCertificate, validityFor } from '../../lib/pki/index.js';
import { NATS_SERVER_DEFAULTS, renderNatsServerConfig, type NodeNatsIdentity } from '../../lib/nats-auth/index.js';
import { issueNkeySeedFile, readNkeySeedFile, writeSecretFile } from '../../daemon/index.js';
import { ensureControllerCa, loadControllerCa, pkiPaths, privateKeyToPem } from '../pki/index.js';
import { ConfiguredNatsServer } from './server-process.js';

const DAY_MS = 24 * 60 * 60 * 1000;

/** Where the embedded server's files are. */
export function embeddedNatsPaths(dataDir: string): { storeDir: string; dir: string; seedFile: string; configFile: string; certFile: string; keyFile: string; caFile: string } {
  const dir = join(dataDir, 'nats-auth');
  return {
    storeDir: join(dataDir, 'nats'),
    dir,
    seedFile: join(dir, 'controller.nk'),
    configFile: join(dir, 'nats-server.conf'),
    certFile: join(dir, 'tls', 'cert.pem'),
    keyFile: join(dir, 'tls', 'key.pem'),
    caFile: pkiPaths(dataDir).caCert,
  };
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

/** A running embedded server and what a client needs to reach it as the controller. */
export interface EmbeddedNats {
  readonly server: ConfiguredNatsServer;
  readonly url: string;
  /** The controller CA (PEM file): what every client pins. */
  readonly caFile: string;
  /** The controller's nkey seed file (0600). */
  readonly seedFile: string;
  /** Replaces the node identities and reloads the server (resolves once applied). */
  setNodes(nodes: readonly NodeNatsIdentity[]): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Starts the authenticated embedded server: the controller CA is created on first start
 * (or read), a server certificate issued from it, the controller's seed made once and
 * kept. Nodes start empty; the caller adds them from the node records.
 */
export async function startEmbeddedNats(opts: { readonly dataDir: string; readonly port: number; readonly host?: string; readonly binary?: string }): Promise<EmbeddedNats> {
  const host = opts.host ?? '127.0.0.1';
  const paths = embeddedNatsPaths(opts.dataDir);
  const ca = (await exists(paths.caFile)) ? await loadControllerCa(opts.dataDir) : (await ensureControllerCa(opts.dataDir)).ca;
  const { privateKey, publicKey } = generateKeyPair('p256');
  const issued = issueServerCertificate(ca, {
    publicKey,
    commonName: 'bulwark-nats',
    dnsNames: ['localhost'],
    ipAddresses: ['127.0.0.1', '::1'],
    validity: validityFor(new Date(), 365 * DAY_MS),
  });
  await writeSecretFile(paths.keyFile, privateKeyToPem(privateKey));
  await writeSecretFile(paths.certFile, issued.pem);
  const controller = (await exists(paths.seedFile)) ? await readNkeySeedFile(paths.seedFile) : await issueNkeySeedFile(paths.seedFile);
  let nodes: readonly NodeNatsIdentity[] = [];
  const server = await ConfiguredNatsServer.start({
    configPath: paths.configFile,
    host,
    port: opts.port,
    ...(opts.binary === undefined ? {} : { binary: opts.binary }),
    render: (port) =>
      renderNatsServerConfig({
        host,
        port,
        tls: { certFile: paths.certFile, keyFile: paths.keyFile, caFile: paths.caFile, timeoutSeconds: NATS_SERVER_DEFAULTS.tlsTimeoutSeconds },
        storeDir: paths.storeDir,
        controller: { kind: 'nkey', publicKey: controller.publicKey },
        nodes,
      }),
  });
  return {
    server,
    url: server.url,
    caFile: paths.caFile,
    seedFile: paths.seedFile,
    async setNodes(next) {
      nodes = next;
      await server.reload();
    },
    stop: () => server.stop(),
  };
}
