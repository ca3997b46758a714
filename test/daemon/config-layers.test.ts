/**
 * Both daemons layer their configuration the same way (daemon/config-layers.ts): schema
 * defaults, the JSON file, the drop-ins beside it in lexical order (deep-merged), then the
 * environment table. Errors name the file or variable and the JSON path.
 */
import t from 'tap';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AGENT_CONFIG_DEFAULTS, loadAgentConfig } from '../../agent/config.js';
import { CONTROLLER_DEFAULTS, loadControllerConfig, parseControllerConfig, quoteSelection } from '../../controller/config/config.js';
import { dropInDirOf, mergeConfig } from '../../daemon/config-layers.js';

const dir = await mkdtemp(join(tmpdir(), 'bulwark-layers-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));

/** Writes `files` (name → JSON value, or raw text) under a fresh directory; returns it. */
async function tree(name: string, files: Record<string, unknown>): Promise<string> {
  const root = join(dir, name);
  for (const [file, content] of Object.entries(files)) {
    const path = join(root, file);
    await mkdir(join(path, '..'), { recursive: true });
    await writeFile(path, typeof content === 'string' ? content : JSON.stringify(content));
  }
  return root;
}

t.test('the drop-in directory sits beside the file and is named after it', async (t) => {
  t.equal(dropInDirOf('/etc/bulwark/agent.json'), '/etc/bulwark/agent.d');
  t.equal(dropInDirOf('/etc/bulwark/controller.json'), '/etc/bulwark/controller.d');
  t.equal(dropInDirOf('/srv/conf/my-agent'), '/srv/conf/my-agent.d');
});

t.test('drop-ins override the file in lexical order, environment last (agent)', async (t) => {
  const root = await tree('agent-dropins', {
    'agent.json': { tcti: 'swtpm:port=1', intervalMs: 5000, imaFormat: 'binary' },
    'agent.d/20-interval.json': { intervalMs: 7000 },
    'agent.d/10-first.json': { intervalMs: 6000, nodeId: 'from-dropin' },
    'agent.d/README': 'not a drop-in: ignored',
  });
  const c = await loadAgentConfig(join(root, 'agent.json'), {});
  t.equal(c.tcti, 'swtpm:port=1', 'the file');
  t.equal(c.intervalMs, 7000, '20-interval.json wins over 10-first.json and the file');
  t.equal(c.nodeId, 'from-dropin');
  t.equal(c.imaFormat, 'binary');
  t.equal(c.dataDir, AGENT_CONFIG_DEFAULTS.dataDir, 'defaults for the rest');
  const env = await loadAgentConfig(join(root, 'agent.json'), { BULWARK_INTERVAL_MS: '0x3e8', BULWARK_IMA_LOG: 'none' });
  t.equal(env.intervalMs, 1000, 'an environment variable beats every file (hex accepted)');
  t.equal(env.imaLogPath, null, '"none" in BULWARK_IMA_LOG turns IMA off');
  const noFile = await tree('agent-only-dropins', { 'agent.d/10.json': { nodeId: 'x' } });
  await t.rejects(loadAgentConfig(join(noFile, 'agent.json'), {}), { code: 'CONFIG_INVALID' }, 'a named file that is missing is still an error');
});

t.test('drop-ins merge deeply (controller)', async (t) => {
  const root = await tree('controller-dropins', {
    'controller.json': { nomadNodeMap: { 'node-1': 'nomad-a' }, ekAllowList: ['aa'.repeat(32)] },
    'controller.d/10-map.json': { nomadNodeMap: { 'node-2': 'nomad-b' } },
    'controller.d/20-list.json': { ekAllowList: ['bb'.repeat(32)], nomadAddr: 'http://127.0.0.1:4646' },
  });
  const c = await loadControllerConfig(join(root, 'controller.json'), { BULWARK_STALE_AFTER_MS: '999999', NOMAD_TOKEN: 'secret' });
  t.same(c.nomadNodeMap, { 'node-1': 'nomad-a', 'node-2': 'nomad-b' }, 'objects merge key by key');
  t.same(c.ekAllowList, ['bb'.repeat(32)], 'arrays are replaced');
  t.equal(c.nomadAddr, 'http://127.0.0.1:4646');
  t.equal(c.staleAfterMs, 999_999, 'environment override');
  t.equal(c.nomadToken, 'secret', 'NOMAD_TOKEN');
  t.equal(c.intervalMs, CONTROLLER_DEFAULTS.intervalMs);
  t.same(parseControllerConfig([], {}), CONTROLLER_DEFAULTS);
});

t.test('an unknown key is an error with its path and file', async (t) => {
  const root = await tree('unknown', { 'controller.json': {}, 'controller.d/30-typo.json': { nomadAdr: 'http://x' } });
  const file = join(root, 'controller.d', '30-typo.json');
  await t.rejects(loadControllerConfig(join(root, 'controller.json'), {}), {
    code: 'CONFIG_INVALID',
    message: `${file}: config nomadAdr is invalid at /nomadAdr: is not a known setting`,
    details: { key: 'nomadAdr', path: '/nomadAdr', source: file },
  });
  const agent = await tree('unknown-agent', { 'agent.json': { tcti: 'x', surprise: 1 } });
  await t.rejects(loadAgentConfig(join(agent, 'agent.json'), {}), { code: 'CONFIG_INVALID', details: { key: 'surprise', path: '/surprise', source: join(agent, 'agent.json') } });
});

t.test('a wrong type is an error with its path and file', async (t) => {
  const root = await tree('wrong-type', { 'controller.json': {}, 'controller.d/10.json': { nomadNodeMap: { 'node-1': 7 } } });
  const file = join(root, 'controller.d', '10.json');
  await t.rejects(loadControllerConfig(join(root, 'controller.json'), {}), {
    code: 'CONFIG_INVALID',
    details: { key: 'nomadNodeMap', path: '/nomadNodeMap/node-1', source: file },
  });
  const agent = await tree('wrong-type-agent', { 'agent.json': {}, 'agent.d/10.json': { intervalMs: '5s' } });
  const agentFile = join(agent, 'agent.d', '10.json');
  await t.rejects(loadAgentConfig(join(agent, 'agent.json'), {}), {
    code: 'CONFIG_INVALID',
    message: new RegExp(`^${agentFile.replaceAll('.', '\\.')}: config intervalMs is invalid at /intervalMs`),
    details: { key: 'intervalMs', path: '/intervalMs' },
  });
  await t.rejects(loadControllerConfig(join(root, 'none.json'), {}), { code: 'CONFIG_INVALID' });
  t.throws(() => parseControllerConfig([{ staleAfterMs: 10 }], {}), { code: 'CONFIG_INVALID', details: { key: 'staleAfterMs', source: 'layer 0' } }, 'a rule between keys names the key');
  t.throws(() => parseControllerConfig([], { BULWARK_NATS_PORT: 'many' }), { code: 'CONFIG_INVALID', details: { key: 'natsPort', source: 'BULWARK_NATS_PORT', path: '/natsPort' } }, 'a bad variable names the variable');
});

t.test('the baseline keys: requireBaseline from a boolean variable, and the baseline PCR in every challenge', async (t) => {
  t.equal(CONTROLLER_DEFAULTS.requireBaseline, true, 'a node without a baseline is untrusted by default');
  t.equal(CONTROLLER_DEFAULTS.baselinePcr, 13);
  t.equal(parseControllerConfig([], { BULWARK_REQUIRE_BASELINE: 'false' }).requireBaseline, false);
  t.equal(parseControllerConfig([{ requireBaseline: false }], { BULWARK_REQUIRE_BASELINE: 'yes' }).requireBaseline, true, 'the variable is the last layer');
  t.throws(() => parseControllerConfig([], { BULWARK_REQUIRE_BASELINE: 'maybe' }), { code: 'CONFIG_INVALID', details: { key: 'requireBaseline', source: 'BULWARK_REQUIRE_BASELINE' } });
  t.throws(() => parseControllerConfig([{ baselinePcr: 24 }], {}), { code: 'CONFIG_INVALID', details: { key: 'baselinePcr' } });
  t.throws(() => parseControllerConfig([{ pcrSelection: 'sha256:0,99' }], {}), { code: 'CONFIG_INVALID', details: { key: 'pcrSelection' } }, 'a selection that does not parse is refused at start');
  t.equal(quoteSelection(CONTROLLER_DEFAULTS), 'sha256:0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15', 'baseline and systemd PCRs added to the sha256 bank, in order');
  t.equal(quoteSelection({ pcrSelection: 'sha256:0,7,11,12,13,15', baselinePcr: 13 }), 'sha256:0,7,11,12,13,15', 'already there');
  t.equal(quoteSelection({ pcrSelection: 'sha1:0,1', baselinePcr: 18 }), 'sha1:0,1+sha256:11,12,15,18', 'a sha256 bank of its own');
  t.equal(quoteSelection(parseControllerConfig([], { BULWARK_BASELINE_PCR: '18' })), 'sha256:0,1,2,3,4,5,6,7,8,9,10,11,12,14,15,18');
});

t.test('an unreadable or invalid drop-in is an error naming it', async (t) => {
  const root = await tree('unreadable', { 'agent.json': {}, 'agent.d/10-ok.json': { intervalMs: 5000 } });
  // A directory where a file should be: read fails (root can read any mode, so not chmod).
  await mkdir(join(root, 'agent.d', '20-dir.json'));
  await t.rejects(loadAgentConfig(join(root, 'agent.json'), {}), { code: 'CONFIG_INVALID', message: /cannot read config file .*20-dir\.json/ }, 'a drop-in that cannot be read');
  const dangling = await tree('dangling', { 'controller.json': {} });
  await mkdir(join(dangling, 'controller.d'));
  await symlink(join(dangling, 'nowhere.json'), join(dangling, 'controller.d', '50-gone.json'));
  await t.rejects(loadControllerConfig(join(dangling, 'controller.json'), {}), { code: 'CONFIG_INVALID', message: /50-gone\.json/ }, 'a dangling drop-in link');
  const broken = await tree('broken', { 'controller.json': {}, 'controller.d/10-broken.json': '{ "intervalMs": ' });
  await t.rejects(loadControllerConfig(join(broken, 'controller.json'), {}), { code: 'CONFIG_INVALID', message: /10-broken\.json.*not JSON/ }, 'a drop-in that is not JSON');
  const notObject = await tree('not-object', { 'controller.json': {}, 'controller.d/10-list.json': '[1]' });
  await t.rejects(loadControllerConfig(join(notObject, 'controller.json'), {}), { code: 'CONFIG_INVALID', message: /10-list\.json: config is not a JSON object/ });
});

t.test('merging never touches a prototype', async (t) => {
  const merged = mergeConfig({ a: { b: 1 } }, JSON.parse('{"__proto__": {"polluted": true}, "a": {"c": 2}}'));
  t.same(merged['a'], { b: 1, c: 2 });
  t.equal(Reflect.get({}, 'polluted'), undefined);
  t.ok(Object.prototype.hasOwnProperty.call(merged, '__proto__'), '"__proto__" stays a plain key');
});
