/**
 * NATS reconnects wait by the shared full-jitter backoff, and a lost and regained
 * connection is logged (warn, then info) against a real nats-server that stops and comes
 * back on the same port.
 */
import t from 'tap';
import { join } from 'node:path';
import { connect } from 'nats';
import { NatsReconnect } from '../../daemon/index.js';
import { NatsServerProcess } from '../../controller/state/index.js';
import { recordingLogger, type LogRecord } from '../helpers/logs.js';
import { freePort, makeTempDir, removeDir } from '../helpers/swtpm.js';
import { waitFor } from '../helpers/wait.js';

t.test('the delay handler hands out the backoff: ceilings double up to the cap', async (t) => {
  const top = new NatsReconnect({ baseMs: 100, capMs: 400 }, () => 0.999999999).options();
  t.equal(top.maxReconnectAttempts, -1, 'reconnects forever');
  const handler = top.reconnectDelayHandler;
  if (handler === undefined) throw new Error('no reconnectDelayHandler');
  t.same([handler(), handler(), handler(), handler()], [100, 200, 400, 400], 'random near 1: each wait is its ceiling');
  const bottom = new NatsReconnect({ baseMs: 100, capMs: 400 }, () => 0).options().reconnectDelayHandler;
  t.same([bottom?.(), bottom?.()], [0, 0], 'random 0: no wait');
});

t.test('a lost connection is a warning, its return an info record, and the client is back', async (t) => {
  const root = await makeTempDir('nats-reconnect');
  t.teardown(() => removeDir(root));
  const port = await freePort();
  const storeDir = join(root, 'nats');
  let server = await NatsServerProcess.start({ storeDir, port });
  t.teardown(() => server.stop());
  const records: LogRecord[] = [];
  const reconnect = new NatsReconnect({ baseMs: 50, capMs: 200 });
  const nc = await connect({ servers: server.url, ...reconnect.options() });
  t.teardown(() => nc.close());
  reconnect.follow(nc, recordingLogger((r) => records.push(r)));

  await server.stop();
  await waitFor('the loss logged', () => (records.some((r) => r.msg === 'lost the NATS connection; reconnecting') ? true : undefined), 10_000);
  server = await NatsServerProcess.start({ storeDir, port });
  await waitFor('the return logged', () => (records.some((r) => r.msg === 'NATS connection is back') ? true : undefined), 15_000);
  t.match(records.find((r) => r.msg === 'lost the NATS connection; reconnecting'), { level: 'warn' });
  t.match(records.find((r) => r.msg === 'NATS connection is back'), { level: 'info', fields: { attempts: Number } });
  await nc.flush();
  t.notOk(nc.isClosed(), 'the client is connected again');
});
