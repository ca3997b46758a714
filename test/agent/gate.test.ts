/**
 * The host gate fails closed when no controller answers: it keeps retrying (with jittered
 * waits, never past its timeout) and ends untrusted with the reason. Without a node
 * certificate (not enrolled yet) it does not call at all and stays closed.
 */
import t from 'tap';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { waitTrusted } from '../../agent/gate.js';
import { newNodeKey, saveNodeCredential } from '../../agent/node-credentials.js';
import { ensureControllerCa } from '../../controller/pki/index.js';
import { issueNodeCertificate, validityFor } from '../../lib/pki/index.js';
import { freePort, makeTempDir, removeDir } from '../helpers/swtpm.js';

const root = await makeTempDir('bulwark-gate-');
t.teardown(() => removeDir(root));
const pki = await ensureControllerCa(join(root, 'controller'));
const controllerCa = join(root, 'controller', 'ca', 'ca.pem');

t.test('no controller at the address: not trusted, state unreachable', async (t) => {
  const dataDir = join(root, 'agent-x');
  const key = newNodeKey();
  const cert = issueNodeCertificate(pki.ca, { nodeId: 'host-x', akName: new Uint8Array(34).fill(7), spki: key.spki, validity: validityFor(new Date(), 60_000) });
  await mkdir(dataDir, { recursive: true });
  await saveNodeCredential(dataDir, key.keyPem, cert.pem);
  const port = await freePort();
  const lines: string[] = [];
  const result = await waitTrusted({ controller: `127.0.0.1:${port}`, controllerCa, dataDir, nodeId: 'host-x', timeoutMs: 400, pollMs: 50, log: (m) => lines.push(m) });
  t.equal(result.trusted, false);
  t.equal(result.state, 'unreachable');
  t.ok(result.reasons.length > 0, `the reason is given (${result.reasons.join(', ')})`);
  t.ok(result.waitedMs >= 400, 'it gave up only once the timeout had passed');
  t.match(lines[0], /node host-x is unreachable/, 'the wait is reported once');
  t.equal(lines.length, 1, 'and not again while nothing changes');
});

t.test('no node certificate yet: not trusted, state not-enrolled', async (t) => {
  const port = await freePort();
  const result = await waitTrusted({ controller: `127.0.0.1:${port}`, controllerCa, dataDir: join(root, 'agent-none'), nodeId: 'host-y', timeoutMs: 200, pollMs: 50 });
  t.equal(result.trusted, false);
  t.equal(result.state, 'not-enrolled');
  t.same(result.reasons, ['NODE_NOT_ENROLLED']);
});
