/**
 * With no NATS URL configured the controller starts its own `nats-server -js` in its data
 * directory (TLS from the controller CA, nkey authentication), keeps its state there across
 * restarts, and stops it again. A client without TLS or without credentials is refused.
 */
import t from 'tap';
import { execa } from 'execa';
import { connect } from 'nats';
import { embeddedNatsPaths } from '../../controller/nats-auth/index.js';
import { natsClientAuthOptions } from '../../daemon/index.js';
import { join } from 'node:path';
import { parseControllerConfig } from '../../controller/config/config.js';
import { Controller } from '../../controller/controller.js';
import { ControllerStore } from '../../controller/state/store.js';
import { ControllerClient } from '../../proto/grpc.js';
import { silentLogger } from '../../daemon/index.js';
import { SoftTpm } from '../helpers/soft-tpm.js';
import { freePort, makeTempDir, removeDir } from '../helpers/swtpm.js';
import { enrolledRecord } from './state-bed.js';
import { adminTlsFor } from '../helpers/fleet.js';

const root = await makeTempDir('embedded');
t.teardown(() => removeDir(root));

async function natsServersFor(dir: string): Promise<number> {
  const ps = await execa('ps', ['-eo', 'args'], { reject: false });
  return ps.stdout.split('\n').filter((l) => l.startsWith('nats-server') && l.includes(dir)).length;
}

t.test('the embedded nats-server starts, keeps state and stops with the controller', async (t) => {
  const config = parseControllerConfig([{ dataDir: join(root, 'data'), natsPort: 0, grpcListen: `127.0.0.1:${await freePort()}`, ekCaDir: join(root, 'none') }], {});
  t.equal(config.natsUrl, null, 'no NATS URL configured');
  const first = new Controller(config, silentLogger());
  await first.start();
  t.match(first.natsUrl, /^tls:\/\/127\.0\.0\.1:\d+$/);
  const paths = embeddedNatsPaths(join(root, 'data'));
  await t.rejects(connect({ servers: first.natsUrl, reconnect: false }), 'no credentials: refused');
  await t.rejects(connect({ servers: first.natsUrl.replace('tls://', 'nats://'), reconnect: false, tls: null }), 'plaintext: refused');
  t.equal(await natsServersFor(join(root, 'data')), 1, 'one nats-server runs in the data directory');
  const client = new ControllerClient(first.grpcAddress, { tls: adminTlsFor(config.dataDir) });
  t.equal(await client.healthCheck(), 'SERVING');
  t.same(await client.listNodes(), [], 'a new data directory starts empty');
  // A node record written into the embedded server's KV, as the registrar would.
  const nc = await connect({ servers: first.natsUrl, ...(await natsClientAuthOptions({ credentials: { kind: 'nkey', seedFile: paths.seedFile }, caFile: paths.caFile })) });
  await (await ControllerStore.open(nc)).putNode(enrolledRecord('kept-node', new SoftTpm()), 0);
  await nc.close();
  t.same(
    (await client.listNodes()).map((n) => n.nodeId),
    ['kept-node'],
  );
  client.close();
  await first.stop();
  t.equal(await natsServersFor(join(root, 'data')), 0, 'stopping the controller stops its nats-server');

  const second = new Controller(config, silentLogger());
  await second.start();
  const again = new ControllerClient(second.grpcAddress, { tls: adminTlsFor(config.dataDir) });
  const after = await again.listNodes();
  // Only the node's presence is compared: its trust state may have moved on meanwhile (the stale sweep).
  t.same(
    after.map((n) => n.nodeId),
    ['kept-node'],
    'state written before the restart is read back after it',
  );
  again.close();
  await second.stop();
  t.equal(await natsServersFor(join(root, 'data')), 0);
});
