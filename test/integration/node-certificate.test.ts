/**
 * Node certificates with a real agent on a swtpm host: issued at enrollment for a key the
 * agent generated (0600 in its data directory), bound to the node id and the AK name,
 * renewed by the agent on its own before it expires, and accepted by the host gate
 * (Placement.IsTrusted for the node itself).
 */
import t from 'tap';
import { readFile, stat } from 'node:fs/promises';
import { waitTrusted } from '../../agent/gate.js';
import { nodeCredentialPaths, readNodeCredential } from '../../agent/node-credentials.js';
import { toHex } from '../../lib/index.js';
import { certificateFromPem, parseClientIdentity } from '../../lib/pki/index.js';
import { TestFleet } from '../helpers/fleet.js';
import { makeTempDir, removeDir } from '../helpers/swtpm.js';
import { waitFor } from '../helpers/wait.js';

const root = await makeTempDir('bulwark-node-cert-');
// Four seconds: the agent renews at half of it.
const fleet = await TestFleet.create({ root, controller: { nodeCertificateValidityMs: 4000 } });
t.teardown(async () => {
  await fleet.stop();
  await removeDir(root);
});
await fleet.startController();

t.test('enrollment issues a node certificate the agent renews on its own', async (t) => {
  const node = await fleet.addNode('host-1');
  await node.agent.start();
  await fleet.waitForNode('host-1', (n) => n.state === 'trusted');
  const paths = nodeCredentialPaths(node.config.dataDir);
  t.equal((await stat(paths.key)).mode & 0o777, 0o600, 'the private key is 0600');
  const first = await readNodeCredential(node.config.dataDir);
  if (first === null) throw new Error('no node certificate after enrollment');
  const identity = parseClientIdentity(certificateFromPem(await readFile(paths.cert, 'utf8')));
  t.match(identity, { kind: 'node', nodeId: 'host-1' }, 'the certificate names the node');
  t.equal(identity.kind === 'node' ? identity.akName : '', toHex((await node.tpm.ensureKeys({ ekType: node.config.ekType, akHandle: node.config.akHandle })).akName), 'and its AK');
  const renewed = await waitFor(
    'the agent to renew its certificate',
    async () => {
      const now = await readNodeCredential(node.config.dataDir);
      return now !== null && now.serial !== first.serial ? now : undefined;
    },
    15_000,
    100,
  );
  t.not(renewed.keyPem, first.keyPem, 'with a new key');
  t.ok(renewed.notAfter > first.notAfter, 'valid for longer');
  const gate = await waitTrusted({ ...fleet.gateOptions('host-1'), timeoutMs: 5000, pollMs: 100 });
  t.equal(gate.trusted, true, 'the host gate asks with the renewed certificate');
  const other = await waitTrusted({ ...fleet.gateOptions('host-1'), nodeId: 'host-2', timeoutMs: 300, pollMs: 100 });
  t.same(other.reasons, ['AUTH_PERMISSION_DENIED'], 'and may not ask about another node');
});
