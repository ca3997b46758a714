import t from 'tap';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AGENT_CONFIG_DEFAULTS, DEFAULT_AGENT_CONFIG_PATH, loadAgentConfig, parseAgentConfig } from '../../agent/config.js';
import { BulwarkError } from '../../lib/errors.js';
import { loadBaselineKeys } from '../../agent/sources.js';
import { testKey } from '../helpers/signing.js';

type Asserts = Pick<typeof import('tap').default, 'ok' | 'fail'>;

function invalid(t: Asserts, fn: () => unknown, key: string, what: string): void {
  try {
    fn();
    t.fail(`${what}: accepted`);
  } catch (err) {
    t.ok(err instanceof BulwarkError && err.code === 'CONFIG_INVALID' && err.details['key'] === key && err.message.includes(key), `${what}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

async function invalidAsync(t: Asserts, fn: () => Promise<unknown>, pattern: RegExp, what: string): Promise<void> {
  try {
    await fn();
    t.fail(`${what}: accepted`);
  } catch (err) {
    t.ok(err instanceof BulwarkError && err.code === 'CONFIG_INVALID' && pattern.test(err.message), `${what}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

t.test('defaults with no layers and no environment', async (t) => {
  const c = parseAgentConfig([], {});
  t.same(c, AGENT_CONFIG_DEFAULTS);
  t.equal(c.akHandle, 0x81010002);
  t.equal(c.pcrSelection, 'sha256:0,1,2,3,4,5,6,7,8,9,10,14');
  t.equal(c.natsUrl, null);
  t.equal(c.nodeId, null);
});

t.test('layers apply in order, environment last', async (t) => {
  const c = parseAgentConfig(
    [
      { tcti: 'swtpm:host=127.0.0.1,port=2321', intervalMs: 5000, akHandle: '0x81010010', pcrSelection: 'sha256:0-7,10,14' },
      { intervalMs: 7000, natsUrl: 'nats://10.0.0.1:4222', ekType: 'ecc', akAlg: 'ecc' },
    ],
    {
      BULWARK_CONTROLLER: 'controller.example.org:7443',
      BULWARK_INTERVAL_MS: '2500',
      BULWARK_AK_HANDLE: '0x81010020',
      BULWARK_NODE_ID: 'node-01.rack-3',
      BULWARK_DATA_DIR: '/srv/bulwark',
      BULWARK_TCTI: '',
      UNRELATED: 'x',
    },
  );
  t.equal(c.tcti, 'swtpm:host=127.0.0.1,port=2321', 'an empty variable is unset');
  t.equal(c.intervalMs, 2500, 'env beats both layers');
  t.equal(c.natsUrl, 'nats://10.0.0.1:4222');
  t.equal(c.ekType, 'ecc');
  t.equal(c.akAlg, 'ecc');
  t.equal(c.akHandle, 0x81010020);
  t.equal(c.controller, 'controller.example.org:7443');
  t.equal(c.nodeId, 'node-01.rack-3');
  t.equal(c.dataDir, '/srv/bulwark');
  t.equal(c.pcrSelection, 'sha256:0,1,2,3,4,5,6,7,10,14', 'selection normalized to the form tpm2-tools reads');
  t.equal(parseAgentConfig([{ intervalMs: 7000 }, { intervalMs: 8000 }], {}).intervalMs, 8000);
  t.equal(parseAgentConfig([{ natsUrl: 'nats://a:1' }, { natsUrl: null }], {}).natsUrl, null, 'a later layer may reset to null');
  t.equal(parseAgentConfig([], { BULWARK_AK_HANDLE: '2164326419' }).akHandle, 0x81010013, 'decimal handle');
  t.equal(parseAgentConfig([], { BULWARK_EK_TYPE: 'ecc' }).ekType, 'ecc');
  t.equal(parseAgentConfig([], { BULWARK_CONTROLLER: '[fd00::1]:50051' }).controller, '[fd00::1]:50051');
});

t.test('invalid values name the bad key', async (t) => {
  const file: ReadonlyArray<readonly [string, unknown]> = [
    ['intervalMs', { intervalMs: 'soon' }],
    ['intervalMs', { intervalMs: 0 }],
    ['intervalMs', { intervalMs: 1.5e3 + 0.5 }],
    ['toolTimeoutMs', { toolTimeoutMs: -1 }],
    ['ekType', { ekType: 'dsa' }],
    ['akAlg', { akAlg: 'RSA' }],
    ['akHandle', { akHandle: 0x80000001 }],
    ['akHandle', { akHandle: 0x81800000 }],
    ['akHandle', { akHandle: 0x81010001 }],
    ['akHandle', { akHandle: '0x81010002; rm -rf /' }],
    ['controller', { controller: 'no-port' }],
    ['controller', { controller: 'host:99999' }],
    ['controller', { controller: 'http://host:1' }],
    ['natsUrl', { natsUrl: 'http://nats:4222' }],
    ['natsUrl', { natsUrl: 'not a url' }],
    ['dataDir', { dataDir: 'relative/dir' }],
    ['nodeId', { nodeId: 'has space' }],
    ['nodeId', { nodeId: 'n'.repeat(129) }],
    ['nodeId', { nodeId: 'a.>' }],
    ['tcti', { tcti: '' }],
    ['tcti', { tcti: 42 }],
    ['tcti', { tcti: 'device:/dev/tpm0\n' }],
    ['pcrSelection', { pcrSelection: 'sha256:0,32' }],
    ['pcrSelection', { pcrSelection: '-o/etc/passwd' }],
    ['pcrSelection', { pcrSelection: 'md5:0' }],
    ['tctii', { tctii: 'typo' }],
    ['__proto__', JSON.parse('{"__proto__": {"polluted": true}}')],
  ];
  for (const [key, layer] of file) invalid(t, () => parseAgentConfig([layer], {}), key, `${key} = ${JSON.stringify(layer)}`);
  t.equal(Reflect.get({}, 'polluted'), undefined, 'no prototype was polluted');

  const env: ReadonlyArray<readonly [string, Record<string, string>]> = [
    ['intervalMs', { BULWARK_INTERVAL_MS: '10s' }],
    ['intervalMs', { BULWARK_INTERVAL_MS: '-5' }],
    ['akHandle', { BULWARK_AK_HANDLE: '0x8101000g' }],
    ['ekType', { BULWARK_EK_TYPE: 'ECC' }],
    ['natsUrl', { BULWARK_NATS_URL: 'localhost:4222' }],
    ['controller', { BULWARK_CONTROLLER: ':50051' }],
  ];
  for (const [key, e] of env) {
    invalid(t, () => parseAgentConfig([], e), key, `env ${JSON.stringify(e)}`);
    try {
      parseAgentConfig([], e);
    } catch (err) {
      t.equal(err instanceof BulwarkError ? err.details['source'] : undefined, Object.keys(e)[0], 'the variable is named as the source');
    }
  }
  for (const layer of [null, 'x', 42, ['tcti']]) {
    t.throws(() => parseAgentConfig([layer], {}), { code: 'CONFIG_INVALID' }, `layer ${JSON.stringify(layer)}`);
  }
});

t.test('loadAgentConfig reads the file, env on top', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'bulwark-config-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'agent.json');
  await writeFile(file, JSON.stringify({ tcti: 'swtpm:host=127.0.0.1,port=2321', intervalMs: 9000 }));

  const byArgv = await loadAgentConfig(file, { BULWARK_INTERVAL_MS: '1000' });
  t.equal(byArgv.tcti, 'swtpm:host=127.0.0.1,port=2321');
  t.equal(byArgv.intervalMs, 1000);

  const byEnv = await loadAgentConfig(undefined, { BULWARK_AGENT_CONFIG: file });
  t.equal(byEnv.intervalMs, 9000);

  const other = join(dir, 'other.json');
  await writeFile(other, JSON.stringify({ intervalMs: 4000 }));
  t.equal((await loadAgentConfig(other, { BULWARK_AGENT_CONFIG: file })).intervalMs, 4000, '--config beats BULWARK_AGENT_CONFIG');

  await invalidAsync(t, () => loadAgentConfig(join(dir, 'missing.json'), {}), /missing\.json/, 'a named file that is missing');
  if (existsSync(DEFAULT_AGENT_CONFIG_PATH)) t.comment(`${DEFAULT_AGENT_CONFIG_PATH} exists here: the missing-default case is not tested`);
  else t.same(await loadAgentConfig(undefined, {}), AGENT_CONFIG_DEFAULTS, 'a missing default file means defaults');
  await writeFile(join(dir, 'bad.json'), '{ "tcti": ');
  await invalidAsync(t, () => loadAgentConfig(join(dir, 'bad.json'), {}), /bad\.json.*not JSON/, 'broken JSON');
  await writeFile(join(dir, 'badvalue.json'), JSON.stringify({ ekType: 'dsa' }));
  await invalidAsync(t, () => loadAgentConfig(join(dir, 'badvalue.json'), {}), /badvalue\.json: config ekType/, 'a bad value names the file and key');
  await invalidAsync(t, () => loadAgentConfig(file, { BULWARK_EK_TYPE: 'dsa' }), /^config ekType \(BULWARK_EK_TYPE\)/, 'a bad variable names the variable, not the file');
  await writeFile(join(dir, 'big.json'), `{"tcti":"${'x'.repeat(1024 * 1024)}"}`);
  await invalidAsync(t, () => loadAgentConfig(join(dir, 'big.json'), {}), /larger than/, 'oversized file');
});

t.test('host baseline keys: defaults, layers, variables, and PCRs the boot chain or a reset would clobber', async (t) => {
  const d = parseAgentConfig([], {});
  t.equal(d.baseline, true);
  t.equal(d.selinuxRoot, '/');
  t.same(d.nftCommand, ['nft']);
  t.equal(d.baselinePcr, 13);
  const c = parseAgentConfig([{ baseline: false, nftCommand: ['ip', 'netns', 'exec', 'bw-1', 'nft'], baselinePcr: 15 }], { BULWARK_SELINUX_ROOT: '/srv/tree', BULWARK_BASELINE_PCR: '12' });
  t.equal(c.baseline, false);
  t.same(c.nftCommand, ['ip', 'netns', 'exec', 'bw-1', 'nft']);
  t.equal(c.selinuxRoot, '/srv/tree');
  t.equal(c.baselinePcr, 12, 'the variable beats the layer');
  for (const pcr of [0, 7, 8, 10, 14, 16, 23]) invalid(t, () => parseAgentConfig([{ baselinePcr: pcr }], {}), 'baselinePcr', `PCR ${pcr}`);
  invalid(t, () => parseAgentConfig([{ baselinePcr: 24 }], {}), 'baselinePcr', 'PCR 24');
  invalid(t, () => parseAgentConfig([{ nftCommand: [] }], {}), 'nftCommand', 'an empty command');
  invalid(t, () => parseAgentConfig([{ nftCommand: ['nft\n'] }], {}), 'nftCommand', 'a control character');
  invalid(t, () => parseAgentConfig([{ selinuxRoot: 'relative' }], {}), 'selinuxRoot', 'a relative root');
});

t.test('baselineKeys: none by default; a PEM file of public keys checked at load (threshold within its keys)', async (t) => {
  const d = parseAgentConfig([], {});
  t.equal(d.baselineKeys, null, 'none: baselines are never enforced');
  t.equal(d.baselineKeyThreshold, 1);
  const c = parseAgentConfig([{ baselineKeys: '/etc/bulwark/none.pem', baselineKeyThreshold: 2 }], { BULWARK_BASELINE_KEYS: '/etc/bulwark/baseline-keys.pem' });
  t.equal(c.baselineKeys, '/etc/bulwark/baseline-keys.pem', 'the variable beats the layer');
  t.equal(c.baselineKeyThreshold, 2);
  t.equal(parseAgentConfig([{ baselineKeys: '/x.pem' }], { BULWARK_BASELINE_KEYS: 'none' }).baselineKeys, null, '"none" in the variable');
  invalid(t, () => parseAgentConfig([{ baselineKeys: 'relative.pem' }], {}), 'baselineKeys', 'a relative path');
  invalid(t, () => parseAgentConfig([{ baselineKeyThreshold: 0 }], {}), 'baselineKeyThreshold', 'a threshold of 0');

  const dir = await mkdtemp(join(tmpdir(), 'baseline-keys-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const [a, b] = [testKey('a'), testKey('b', 'ec')];
  const two = join(dir, 'two.pem');
  await writeFile(two, `# the baseline key set\n${a.publicKeyPem}${b.publicKeyPem}`);
  t.equal(loadBaselineKeys(two, 2).prepared.length, 2, 'two keys read from one file');
  t.throws(() => loadBaselineKeys(two, 3), { code: 'CONFIG_INVALID' }, 'a threshold beyond the keys');
  const empty = join(dir, 'empty.pem');
  await writeFile(empty, 'no key here\n');
  t.throws(() => loadBaselineKeys(empty, 1), { code: 'CONFIG_INVALID' }, 'a file without a key');
  const bad = join(dir, 'bad.pem');
  await writeFile(bad, '-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n');
  t.throws(() => loadBaselineKeys(bad, 1), { code: 'CONFIG_INVALID' }, 'a key that does not parse');
  t.throws(() => loadBaselineKeys(join(dir, 'missing.pem'), 1), { code: 'CONFIG_INVALID' }, 'a missing file');
});
