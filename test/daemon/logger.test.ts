/**
 * The daemons' logger: one JSON line per record with a level label and an ISO time, levels
 * filtered as configured, child loggers carrying node ids and finding codes, and secrets
 * redacted before anything is written.
 */
import t from 'tap';
import { createLogger, isLogLevel, LOG_LEVELS, REDACTED, silentLogger, sleep, type LogLevel } from '../../daemon/index.js';

function capture(level: LogLevel): { log: ReturnType<typeof createLogger>; lines: string[]; records: () => Record<string, unknown>[] } {
  const lines: string[] = [];
  const log = createLogger({ name: 'bulwark-test', level, destination: { write: (line) => void lines.push(line) } });
  const records = (): Record<string, unknown>[] =>
    lines.map((l) => {
      const v: unknown = JSON.parse(l);
      if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error(`not a JSON object: ${l}`);
      return Object.fromEntries(Object.entries(v));
    });
  return { log, lines, records };
}

t.test('one JSON line per record: level label, ISO time, name, message, fields', async (t) => {
  const { log, lines, records } = capture('info');
  log.info({ node: 'node-1', count: 3 }, 'hello');
  log.warn({}, 'second');
  t.equal(lines.length, 2);
  t.ok(lines.every((l) => l.endsWith('\n') && l.indexOf('\n') === l.length - 1), 'each record is exactly one line');
  const [first, second] = records();
  t.match(first, { level: 'info', name: 'bulwark-test', msg: 'hello', node: 'node-1', count: 3 });
  t.equal(second?.['level'], 'warn');
  const time = first?.['time'];
  t.ok(typeof time === 'string' && /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/.test(time), `time is ISO 8601 UTC (${String(time)})`);
});

t.test('levels below the configured one are not written', async (t) => {
  const info = capture('info');
  info.log.trace({}, 't');
  info.log.debug({}, 'd');
  info.log.info({}, 'i');
  info.log.fatal({}, 'f');
  t.same(info.records().map((r) => r['level']), ['info', 'fatal']);
  const trace = capture('trace');
  for (const level of LOG_LEVELS) trace.log[level]({}, level);
  t.same(trace.records().map((r) => r['level']), [...LOG_LEVELS], 'at trace every level is written, each with its label');
  const error = capture('error');
  error.log.warn({}, 'w');
  error.log.error({}, 'e');
  t.same(error.records().map((r) => r['msg']), ['e']);
});

t.test('a child logger carries the node id and finding codes on every record', async (t) => {
  const { log, records } = capture('info');
  const node = log.child({ node: 'node-7' });
  node.info({ from: 'trusted', to: 'untrusted', codes: ['PCR_MISMATCH'] }, 'trust transition');
  node.child({ code: 'NODE_STALE' }).warn({}, 'node is stale');
  t.match(records(), [
    { node: 'node-7', from: 'trusted', to: 'untrusted', codes: ['PCR_MISMATCH'], msg: 'trust transition' },
    { node: 'node-7', code: 'NODE_STALE', msg: 'node is stale' },
  ]);
});

t.test('tokens, PINs, passwords and keys never reach the output', async (t) => {
  const { log, lines, records } = capture('trace');
  const secrets = {
    token: 'SECRET-token-1',
    nomadToken: 'SECRET-nomad-2',
    pin: 'SECRET-pin-3',
    password: 'SECRET-password-4',
    key: 'SECRET-key-5',
    privateKey: 'SECRET-privkey-6',
    secret: 'SECRET-secret-7',
  };
  log.info({ ...secrets, node: 'node-1' }, 'top level');
  log.info({ config: { ...secrets, nomadAddr: 'http://127.0.0.1:4646' } }, 'one level down');
  log.info({ request: { headers: { authorization: 'Bearer SECRET-bearer-8' } }, headers: { authorization: 'Bearer SECRET-bearer-9' } }, 'headers');
  log.child({ token: 'SECRET-child-10' }).info({}, 'child bindings');
  const out = lines.join('');
  t.notMatch(out, /SECRET-/, 'no secret value appears anywhere in the output');
  const [top, nested, headers, child] = records();
  for (const k of Object.keys(secrets)) t.equal(top?.[k], REDACTED, `top-level ${k} is redacted`);
  t.equal(top?.['node'], 'node-1', 'other fields stay');
  t.match(nested, { config: { token: REDACTED, nomadToken: REDACTED, pin: REDACTED, password: REDACTED, key: REDACTED, privateKey: REDACTED, secret: REDACTED, nomadAddr: 'http://127.0.0.1:4646' } });
  t.match(headers, { request: { headers: { authorization: REDACTED } }, headers: { authorization: REDACTED } });
  t.equal(child?.['token'], REDACTED, 'a secret bound to a child logger is redacted too');
});

t.test('silentLogger writes nothing and its children are silent too', async (t) => {
  const log = silentLogger();
  log.info({ token: 'x' }, 'nothing');
  log.child({ node: 'n' }).fatal({}, 'nothing either');
  t.pass('no output and no throw');
});

t.test('isLogLevel accepts exactly the six levels', async (t) => {
  t.ok(LOG_LEVELS.every(isLogLevel));
  t.notOk(isLogLevel('silent'));
  t.notOk(isLogLevel('INFO'));
  t.notOk(isLogLevel(30));
});

t.test('sleep resolves at once when its signal aborts', async (t) => {
  const ctl = new AbortController();
  const slept = sleep(24 * 3600 * 1000, ctl.signal);
  ctl.abort();
  await slept;
  await sleep(24 * 3600 * 1000, ctl.signal);
  t.pass('an abort ends a day-long sleep (the test would time out otherwise)');
});
