/**
 * With no NATS URL configured the controller starts its own `nats-server -js` in its data
 * directory, keeps its state there across restarts, and stops it again.
 */
import t from 'tap';
import { execa } from 'execa';
import { join } from 'node:path';
import { parseControllerConfig } from '../../controller/config/config.js';
import { Controller } from '../../controller/controller.js';
import { ControllerClient } from '../../proto/grpc.js';
import { silentLogger } from '../../daemon/index.js';
import { freePort, makeTempDir, removeDir } from '../helpers/swtpm.js';

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
  t.match(first.natsUrl, /^nats:\/\/127\.0\.0\.1:\d+$/);
  t.equal(await natsServersFor(join(root, 'data')), 1, 'one nats-server runs in the data directory');
  const client = new ControllerClient(first.grpcAddress);
  t.equal(await client.healthCheck(), 'SERVING');
  client.close();
  await first.stop();
  t.equal(await natsServersFor(join(root, 'data')), 0, 'stopping the controller stops its nats-server');

  const second = new Controller(config, silentLogger());
  await second.start();
  const again = new ControllerClient(second.grpcAddress);
  t.same(await again.listNodes(), [], 'a restart on the same data directory opens the same (empty) store');
  again.close();
  await second.stop();
  t.equal(await natsServersFor(join(root, 'data')), 0);
});
