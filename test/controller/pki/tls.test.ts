/**
 * Real TLS 1.3 handshakes (node:tls, loopback, a free port) between the controller's
 * server certificate and client certificates of its CA, as the gRPC wiring will make
 * them: the server requires a client certificate that chains to the CA. Accepted clients
 * are named by parseClientIdentity on the peer certificate; another CA's certificate, an
 * expired one, none at all, and TLS 1.2 are refused by the handshake itself.
 */
import t, { type Test } from 'tap';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect, createServer, type ConnectionOptions, type Server } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BulwarkError } from '../../../lib/errors.js';
import {
  checkNotRevoked,
  createCertificateAuthority,
  emptyRevocationList,
  generateKeyPair,
  issueNodeCertificate,
  issuePersonCertificate,
  parseClientIdentity,
  revokeCertificate,
  spkiOf,
  validityFor,
  type ClientIdentity,
} from '../../../lib/pki/index.js';
import { PKI_DEFAULTS, ensureControllerCa, issueCredential, privateKeyToPem, readCredentialSet, type CredentialSet } from '../../../controller/pki/index.js';

const DAY = 24 * 60 * 60 * 1000;

type ServerOutcome = { readonly ok: true; readonly identity: ClientIdentity; readonly protocol: string | null } | { readonly ok: false; readonly error: string };

interface ClientOutcome {
  /** What the server wrote after an accepted handshake. */
  readonly data: string;
  readonly error: string | undefined;
}

function errorName(err: unknown): string {
  if (err instanceof BulwarkError) return err.code;
  const code = typeof err === 'object' && err !== null ? Reflect.get(err, 'code') : undefined;
  return typeof code === 'string' ? code : err instanceof Error ? err.message : String(err);
}

/**
 * A TLS 1.3 server requiring a client certificate of the CA. Accepted connections are
 * recorded by the client's port; a connection the server refuses is destroyed by node:tls
 * without a 'secureConnection', so "not recorded when the client saw the close" is a
 * refusal (an accepted one is recorded before the server writes its greeting).
 */
async function startServer(server: CredentialSet, diagnose = false): Promise<{ port: number; outcomeFor(clientPort: number): ServerOutcome; close(): Promise<void> }> {
  const accepted = new Map<number, ServerOutcome>();
  const refusals = new Map<number, string>();
  const tlsServer: Server = createServer({
    key: server.keyPem,
    cert: server.certPem,
    ca: [server.caPem],
    requestCert: true,
    rejectUnauthorized: !diagnose,
    minVersion: 'TLSv1.3',
  });
  tlsServer.on('secureConnection', (socket) => {
    let outcome: ServerOutcome;
    try {
      // The diagnostic server lets every handshake finish and reports why node:tls would refuse it.
      if (!socket.authorized) throw new Error(`unauthorized: ${String(socket.authorizationError)}`);
      const peer = socket.getPeerX509Certificate();
      if (peer === undefined) throw new Error('no peer certificate on an authorized connection');
      outcome = { ok: true, identity: parseClientIdentity(peer), protocol: socket.getProtocol() };
    } catch (err) {
      outcome = { ok: false, error: errorName(err) };
    }
    if (socket.remotePort !== undefined) accepted.set(socket.remotePort, outcome);
    socket.on('error', () => undefined);
    socket.end(outcome.ok ? `hello ${outcome.identity.kind}\n` : 'refused\n');
  });
  tlsServer.on('tlsClientError', (err, socket) => {
    if (socket.remotePort !== undefined) refusals.set(socket.remotePort, errorName(err));
  });
  await new Promise<void>((resolve, reject) => {
    tlsServer.once('error', reject);
    tlsServer.listen(0, '127.0.0.1', () => resolve());
  });
  const address = tlsServer.address();
  if (address === null || typeof address === 'string') throw new Error('the server has no TCP address');
  return {
    port: address.port,
    outcomeFor: (clientPort) => accepted.get(clientPort) ?? { ok: false, error: refusals.get(clientPort) ?? 'closed without a verified handshake' },
    close: () => new Promise<void>((resolve) => tlsServer.close(() => resolve())),
  };
}

/** Connects, reads until the connection closes, and reports what it got, the first error and its own port. */
function runClient(options: ConnectionOptions): Promise<ClientOutcome & { readonly port: number }> {
  return new Promise((resolve) => {
    let data = '';
    let error: string | undefined;
    let port = -1;
    const socket = connect({ host: '127.0.0.1', minVersion: 'TLSv1.3', ...options });
    socket.setEncoding('utf8');
    socket.on('connect', () => {
      port = socket.localPort ?? -1;
    });
    socket.on('data', (chunk: string) => {
      data += chunk;
    });
    socket.on('error', (err) => {
      error ??= errorName(err);
    });
    socket.on('close', () => resolve({ data, error, port }));
  });
}

t.test('mutual TLS 1.3 with the controller CA', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'bulwark-tls-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const dataDir = join(root, 'data');
  const controller = await ensureControllerCa(dataDir);
  const server = await startServer(controller.server);
  t.teardown(server.close);
  const pinned = { ca: [controller.server.caPem], port: server.port, servername: 'localhost' };

  /** One handshake: the server's and the client's view of it. */
  const handshake = async (t: Test, options: ConnectionOptions, to = server): Promise<{ server: ServerOutcome; client: ClientOutcome }> => {
    const client = await runClient(options);
    t.ok(client.port > 0, 'the client connected');
    return { server: to.outcomeFor(client.port), client };
  };

  t.test('the admin credential set from first start is admitted as admin', async (t) => {
    const admin = await readCredentialSet(controller.paths.adminDir);
    const r = await handshake(t, { ...pinned, key: admin.keyPem, cert: admin.certPem });
    t.same(r.server.ok ? [r.server.identity.kind, r.server.identity.kind === 'person' ? r.server.identity.role : '', r.server.protocol] : r.server, ['person', 'admin', 'TLSv1.3']);
    t.equal(r.client.data, 'hello person\n');
  });

  t.test('an issued operator credential, checked against the server by IP address', async (t) => {
    const out = join(root, 'operator');
    await issueCredential(controller.ca, { name: 'olga', role: 'operator', validForMs: DAY, outputDir: out });
    const set = await readCredentialSet(out);
    const r = await handshake(t, { ca: [set.caPem], port: server.port, key: set.keyPem, cert: set.certPem });
    t.same(r.server.ok ? r.server.identity : r.server, { kind: 'person', name: 'olga', role: 'operator', serial: set.certificate.serial, notAfter: set.certificate.notAfter });
  });

  t.test('a node certificate issued for the public key the node sent', async (t) => {
    const nodeKey = generateKeyPair('p256');
    const akName = Uint8Array.from({ length: 34 }, (_, i) => i);
    const cert = issueNodeCertificate(controller.ca, { nodeId: 'host-7', akName, spki: spkiOf(nodeKey.publicKey), validity: validityFor(new Date(), DAY) });
    const r = await handshake(t, { ...pinned, key: privateKeyToPem(nodeKey.privateKey), cert: cert.pem });
    t.same(r.server.ok ? r.server.identity : r.server, { kind: 'node', nodeId: 'host-7', akName: Buffer.from(akName).toString('hex'), serial: cert.serial, notAfter: r.server.ok ? r.server.identity.notAfter : 0 });
    t.equal(r.client.data, 'hello node\n');
  });

  t.test('refused by the handshake', async (t) => {
    const now = new Date();
    const otherCa = createCertificateAuthority({ key: generateKeyPair('p256').privateKey, commonName: PKI_DEFAULTS.caCommonName, validity: validityFor(now, DAY) });
    const cases: Array<[string, ConnectionOptions, string | undefined]> = [];
    {
      const k = generateKeyPair('p256');
      const c = issuePersonCertificate(otherCa, { name: 'admin', role: 'admin', publicKey: k.publicKey, validity: validityFor(now, DAY) });
      cases.push(['a client certificate of another CA with the same CA name', { key: privateKeyToPem(k.privateKey), cert: c.pem }, 'UNABLE_TO_VERIFY_LEAF_SIGNATURE']);
    }
    {
      const k = generateKeyPair('p256');
      const c = issuePersonCertificate(controller.ca, {
        name: 'old',
        role: 'admin',
        publicKey: k.publicKey,
        validity: { notBefore: new Date(now.getTime() - 2 * DAY), notAfter: new Date(now.getTime() - DAY) },
      });
      cases.push(['an expired client certificate', { key: privateKeyToPem(k.privateKey), cert: c.pem }, 'CERT_HAS_EXPIRED']);
    }
    {
      const k = generateKeyPair('p256');
      const c = issuePersonCertificate(controller.ca, {
        name: 'early',
        role: 'admin',
        publicKey: k.publicKey,
        validity: { notBefore: new Date(now.getTime() + DAY), notAfter: new Date(now.getTime() + 2 * DAY) },
      });
      cases.push(['a client certificate not yet valid', { key: privateKeyToPem(k.privateKey), cert: c.pem }, 'CERT_NOT_YET_VALID']);
    }
    cases.push(['no client certificate', {}, undefined]);
    const admin = await readCredentialSet(controller.paths.adminDir);
    cases.push(['TLS 1.2', { key: admin.keyPem, cert: admin.certPem, minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2' }, undefined]);
    const diagnostic = await startServer(controller.server, true);
    t.teardown(diagnostic.close);
    for (const [what, options, reason] of cases) {
      const r = await handshake(t, { ...pinned, ...options });
      t.equal(r.server.ok, false, `${what}: the server refuses (${r.server.ok ? 'accepted' : r.server.error})`);
      t.equal(r.client.data, '', `${what}: the client gets nothing (${r.client.error ?? 'a close without an alert'})`);
      if (reason === undefined) continue;
      const d = await handshake(t, { ...pinned, ...options, port: diagnostic.port }, diagnostic);
      t.equal(d.server.ok ? 'accepted' : d.server.error, `unauthorized: ${reason}`, `${what}: the reason node:tls gives`);
    }
  });

  t.test('revocation is checked on the identity after the handshake', async (t) => {
    const admin = await readCredentialSet(controller.paths.adminDir);
    const r = await handshake(t, { ...pinned, key: admin.keyPem, cert: admin.certPem });
    if (!r.server.ok) return t.fail(`handshake refused: ${r.server.error}`);
    const identity = r.server.identity;
    const revoked = revokeCertificate(emptyRevocationList(), { serial: identity.serial, revokedAt: Date.now(), notAfter: identity.notAfter, subject: 'admin' });
    t.throws(() => checkNotRevoked(revoked, identity), { code: 'PKI_CERT_REVOKED' });
    t.doesNotThrow(() => checkNotRevoked(emptyRevocationList(), identity));
  });

  t.test('the client refuses a server name the certificate does not carry', async (t) => {
    const admin = await readCredentialSet(controller.paths.adminDir);
    const r = await runClient({ ...pinned, servername: 'not-the-controller.example', key: admin.keyPem, cert: admin.certPem });
    t.equal(r.error, 'ERR_TLS_CERT_ALTNAME_INVALID');
    t.equal(r.data, '');
  });
});
