/**
 * `--check-config` of both daemons (the real binaries): every layer (file, drop-ins in
 * NAME.d/, environment) is validated and the effective configuration printed as JSON with
 * the keys the schema marks secret (writeOnly) redacted, exit 0; an unknown key, a wrong
 * type or a drop-in that cannot be read is exit 2 with the file and the key path, both
 * with --check-config and when the daemon starts normally (before it touches anything).
 */
import t from 'tap';
import { execa } from 'execa';
import { chmod, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AgentConfigSchema } from '../../agent/config.js';
import { ControllerConfigSchema } from '../../controller/config/config.js';
import { redactConfig, secretKeys } from '../../daemon/config-layers.js';

const MAIN = {
  controller: fileURLToPath(new URL('../../controller/main.js', import.meta.url)),
  agent: fileURLToPath(new URL('../../agent/main.js', import.meta.url)),
} as const;
type Daemon = keyof typeof MAIN;

const root = await mkdtemp(join(tmpdir(), 'bulwark-check-config-'));
// Readable by the unprivileged user the mode-000 case runs as.
await chmod(root, 0o755);
t.teardown(() => rm(root, { recursive: true, force: true }));

let trees = 0;
/** A fresh directory with NAME.json and NAME.d/ holding `files` (name → JSON value, or raw text). */
async function tree(daemon: Daemon, files: Record<string, unknown>): Promise<string> {
  const dir = join(root, `t${trees++}`);
  await mkdir(join(dir, `${daemon}.d`), { recursive: true, mode: 0o755 });
  await chmod(dir, 0o755);
  for (const [name, content] of Object.entries(files)) await writeFile(join(dir, name), typeof content === 'string' ? content : JSON.stringify(content), { mode: 0o644 });
  return join(dir, `${daemon}.json`);
}

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a daemon with `args` and only `env` (no inherited BULWARK_* variable); `asNobody` drops root first. */
async function run(daemon: Daemon, args: readonly string[], env: Record<string, string> = {}, asNobody = false): Promise<Run> {
  const command = asNobody ? ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', process.execPath] : [process.execPath];
  const [file = process.execPath, ...pre] = command;
  const r = await execa(file, [...pre, MAIN[daemon], ...args], { reject: false, extendEnv: false, env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', ...env } });
  return { code: r.exitCode ?? -1, stdout: r.stdout, stderr: r.stderr };
}

const valid = {
  controller: {
    file: { natsPort: 4333, nomadAddr: 'http://127.0.0.1:4646', nomadToken: 'token-from-the-file-0123' },
    dropIn: { statementSigningKey: '/etc/bulwark/secret-statement.pem', intervalMs: 20_000 },
    env: { NOMAD_TOKEN: 'token-from-the-env-4567', BULWARK_GRPC_LISTEN: '127.0.0.1:7999' },
    secrets: ['token-from-the-file-0123', 'token-from-the-env-4567', 'secret-statement.pem'],
    expect: { natsPort: 4333, intervalMs: 20_000, grpcListen: '127.0.0.1:7999', nomadToken: '[redacted]', statementSigningKey: '[redacted]', auditSigningKey: null },
  },
  agent: {
    file: { tcti: 'swtpm:port=2321', signingKey: 'pkcs11:token=host;object=k?pin-value=1234' },
    dropIn: { intervalMs: 5000, nodeId: 'node-7' },
    env: { BULWARK_CONTROLLER: 'ctl.example:7443' },
    secrets: ['pin-value=1234'],
    expect: { tcti: 'swtpm:port=2321', intervalMs: 5000, nodeId: 'node-7', controller: 'ctl.example:7443', signingKey: '[redacted]' },
  },
} as const;

t.test('the schemas mark their secrets', async (t) => {
  t.same(secretKeys(ControllerConfigSchema).sort(), ['auditSigningKey', 'natsCredsFile', 'natsKeyFile', 'natsNkeySeedFile', 'natsPasswordFile', 'nomadToken', 'statementSigningKey']);
  t.same(secretKeys(AgentConfigSchema), ['signingKey']);
  t.same(redactConfig(ControllerConfigSchema, { nomadToken: 'x', natsKeyFile: null, natsPort: 1 }, '[r]'), { nomadToken: '[r]', natsKeyFile: null, natsPort: 1 }, 'a secret that is not set stays null');
});

for (const daemon of ['controller', 'agent'] as const) {
  const name = `bulwark-${daemon}`;
  const v = valid[daemon];

  t.test(`${name} --check-config prints the effective configuration, secrets redacted`, async (t) => {
    const path = await tree(daemon, { [`${daemon}.json`]: v.file, [`${daemon}.d/10-local.json`]: v.dropIn, [`${daemon}.d/README`]: 'ignored' });
    const r = await run(daemon, ['--check-config', '--config', path], v.env);
    t.equal(r.code, 0, r.stderr);
    const printed: unknown = JSON.parse(r.stdout);
    t.match(printed, v.expect, 'file, drop-in and environment layered');
    for (const secret of v.secrets) t.notMatch(r.stdout + r.stderr, secret, `${secret} is not shown`);
    t.match(r.stderr, `${name}: configuration is valid (files: ${path}, ${join(path, '..', `${daemon}.d`, '10-local.json')}; environment: `);
    for (const variable of Object.keys(v.env)) t.match(r.stderr, variable, `${variable} is named as a source`);
  });

  t.test(`${name}: a bad layer is exit 2 naming the file and the key path`, async (t) => {
    // `start`: also run without --check-config (each run costs a Node start, so not every case).
    const cases: Array<{ what: string; files: Record<string, unknown>; env?: Record<string, string>; start?: true; message: (path: string) => string }> = [
      {
        what: 'an unknown key in a drop-in',
        start: true,
        files: { [`${daemon}.json`]: {}, [`${daemon}.d/30-typo.json`]: { intervalMS: 1000 } },
        message: (path) => `${join(path, '..', `${daemon}.d`, '30-typo.json')}: config intervalMS is invalid at /intervalMS: is not a known setting`,
      },
      {
        what: 'a wrong type in the file',
        files: { [`${daemon}.json`]: { intervalMs: 'often' } },
        message: (path) => `${path}: config intervalMs is invalid at /intervalMs: Expected integer`,
      },
      {
        what: 'a wrong type in a nested value',
        files: { [`${daemon}.json`]: daemon === 'agent' ? { nftCommand: ['nft', 7] } : { nomadNodeMap: { a: 7 } } },
        message: (path) => (daemon === 'agent' ? `${path}: config nftCommand is invalid at /nftCommand/1: Expected string` : `${path}: config nomadNodeMap is invalid at /nomadNodeMap/a: Expected string`),
      },
      {
        what: 'a wrong type in the environment',
        files: { [`${daemon}.json`]: {} },
        env: { BULWARK_INTERVAL_MS: 'soon' },
        start: true,
        message: () => 'config intervalMs (BULWARK_INTERVAL_MS) is invalid at /intervalMs: Expected integer',
      },
      {
        what: 'a drop-in that is a directory',
        start: true,
        files: { [`${daemon}.json`]: {}, [`${daemon}.d/40-dir.json/x`]: '' },
        message: (path) => `cannot read config file ${join(path, '..', `${daemon}.d`, '40-dir.json')}: EISDIR`,
      },
      {
        what: 'a drop-in that is not JSON',
        files: { [`${daemon}.json`]: {}, [`${daemon}.d/50-broken.json`]: '{"intervalMs": ' },
        message: (path) => `${daemon} config (${join(path, '..', `${daemon}.d`, '50-broken.json')}) is not JSON`,
      },
    ];
    for (const c of cases) {
      const files = { ...c.files };
      const nested = Object.keys(files).find((f) => f.endsWith('/x'));
      if (nested !== undefined) delete files[nested];
      const path = await tree(daemon, files);
      if (nested !== undefined) await mkdir(join(path, '..', nested, '..'), { recursive: true });
      const check = await run(daemon, ['--check-config', '--config', path], c.env);
      t.equal(check.code, 2, `${c.what}: --check-config exits 2`);
      t.match(check.stderr, `${name}: ${c.message(path)}`, `${c.what}: named`);
      t.equal(check.stdout, '', 'nothing printed as the configuration');
      if (c.start !== true) continue;
      // A normal start stops at the same place, before NATS, the TPM or a port is touched.
      const start = await run(daemon, ['--config', path], c.env);
      t.equal(start.code, 2, `${c.what}: a normal start exits 2`);
      t.match(start.stdout + start.stderr, c.message(path), `${c.what}: the start names it too`);
    }
  });

  t.test(`${name}: a dangling symlink or an unreadable (mode 000) drop-in is exit 2 naming it`, async (t) => {
    const path = await tree(daemon, { [`${daemon}.json`]: {} });
    const link = join(path, '..', `${daemon}.d`, '60-gone.json');
    await symlink(join(root, 'no-such-file.json'), link);
    const dangling = await run(daemon, ['--check-config', '--config', path]);
    t.equal(dangling.code, 2);
    t.match(dangling.stderr, `${name}: cannot read config file ${link}: ENOENT`);
    await rm(link);

    const locked = join(path, '..', `${daemon}.d`, '70-locked.json');
    await writeFile(locked, '{}', { mode: 0o000 });
    await chmod(locked, 0o000);
    // Root reads a mode-000 file anyway: the daemon is run as nobody (setpriv), as the controller's unit runs it as bulwark.
    const asNobody = process.getuid?.() === 0;
    for (const args of [['--check-config', '--config', path], ['--config', path]]) {
      const r = await run(daemon, args, {}, asNobody);
      t.equal(r.code, 2, `${args.join(' ')}: exit 2`);
      t.match(r.stdout + r.stderr, `cannot read config file ${locked}: EACCES`);
    }
  });
}

t.test('--check-config belongs to a run of the agent', async (t) => {
  const r = await run('agent', ['enroll', '--check-config']);
  t.equal(r.code, 2);
  t.match(r.stderr, '--check-config takes no command other than run');
});
