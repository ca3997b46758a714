/**
 * The Debian packages (packaging/build-deb.sh): built twice to the same bytes, lintian
 * without errors, and installed with apt into clean Debian 12 and 13 roots (debootstrap,
 * cached per machine by test/tools/debian-root.sh), where the installed controller runs
 * with its embedded nats-server and answers the installed bulwarkctl; files, owners and
 * modes as README.md documents them; remove keeps state, purge deletes it; an upgrade from
 * an older version keeps the controller's data and a locally edited conffile.
 * Needs root (chroot, unshare); the first run on a machine debootstraps (minutes).
 */
import t from 'tap';
import { execa } from 'execa';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { buildPackages, DebianRoot, ensureDebianRoot, stopProcess, type DebianSuite, type RootResult } from '../helpers/debian-root.js';
import { freePort } from '../helpers/swtpm.js';
import { waitFor } from '../helpers/wait.js';

/** One command run inside the installed root, and what it must give. */
interface Step {
  readonly name: string;
  readonly argv: readonly string[];
  readonly user?: string;
  readonly exitCode: number;
  readonly stdout?: RegExp;
}

const ADMIN = '/var/lib/bulwark-controller/credentials/admin';

/** Commands on the installed packages with no controller running. */
const OFFLINE_STEPS: readonly Step[] = [
  { name: 'bulwark-agent --help', argv: ['bulwark-agent', '--help'], exitCode: 0, stdout: /usage: bulwark-agent/ },
  { name: 'bulwark-controller --help', argv: ['bulwark-controller', '--help'], exitCode: 0, stdout: /usage: bulwark-controller/ },
  { name: 'bulwarkctl --help', argv: ['bulwarkctl', '--help'], exitCode: 0, stdout: /nodes/ },
  { name: 'bulwark-controller --version', argv: ['bulwark-controller', '--version'], exitCode: 0, stdout: /^bulwark-controller \S+ commit [0-9a-f]{40} node v\d+/ },
  { name: 'bulwark-agent --version', argv: ['bulwark-agent', '--version'], exitCode: 0, stdout: /^bulwark-agent \S+ commit [0-9a-f]{40} node v\d+/ },
  { name: 'bulwarkctl --version', argv: ['bulwarkctl', '--version'], exitCode: 0, stdout: /^bulwarkctl \S+ commit [0-9a-f]{40} node v\d+/ },
  {
    name: 'bulwark-controller --check-config (the shipped config)',
    argv: ['bulwark-controller', '--check-config', '--config', '/etc/bulwark/controller.json'],
    exitCode: 0,
    stdout: /"natsUrl"/,
  },
  { name: 'bulwark-agent --check-config (the shipped config)', argv: ['bulwark-agent', '--check-config', '--config', '/etc/bulwark/agent.json'], exitCode: 0, stdout: /"baselinePcr"/ },
];

/** Commands against the installed controller (running as bulwark, whose admin credential set it wrote in its state directory). */
function onlineSteps(grpc: string): readonly Step[] {
  const ctl = ['bulwarkctl', '--controller', grpc, '--credentials', ADMIN];
  return [
    { name: 'bulwarkctl nodes', argv: [...ctl, 'nodes', '--json'], user: 'bulwark', exitCode: 0, stdout: /\[/ },
    { name: 'bulwarkctl status (healthy: embedded NATS, no Nomad configured)', argv: [...ctl, 'status', '--json'], user: 'bulwark', exitCode: 0, stdout: /"healthy":\s*true/ },
  ];
}

/** Paths, owners and modes after install (README.md, "Debian packages"). */
const INSTALLED_FILES: readonly (readonly [path: string, owner: string, mode: string])[] = [
  ['/usr/bin/bulwark-controller', 'root:root', '755'],
  ['/usr/bin/bulwark-agent', 'root:root', '755'],
  ['/usr/bin/bulwarkctl', 'root:root', '755'],
  ['/usr/lib/bulwark/node/bin/node', 'root:root', '755'],
  ['/usr/lib/bulwark/dist/controller/main.js', 'root:root', '644'],
  ['/usr/lib/bulwark/node_modules/pkcs11js/build/Release/pkcs11.node', 'root:root', '644'],
  ['/etc/bulwark', 'root:root', '755'],
  ['/etc/bulwark/controller.json', 'root:root', '644'],
  ['/etc/bulwark/agent.json', 'root:root', '644'],
  ['/etc/bulwark/ek-ca', 'root:root', '755'],
  ['/lib/systemd/system/bulwark-controller.service', 'root:root', '644'],
  ['/lib/systemd/system/bulwark-agent.service', 'root:root', '644'],
  ['/var/lib/bulwark-controller', 'bulwark:bulwark', '700'],
  ['/var/lib/bulwark-agent', 'root:root', '700'],
];
/** Written by the controller on its first start. */
const CONTROLLER_FILES: readonly (readonly [path: string, owner: string, mode: string])[] = [
  [`${ADMIN}/key.pem`, 'bulwark:bulwark', '600'],
  ['/var/lib/bulwark-controller/ca/ca.key', 'bulwark:bulwark', '600'],
];

async function sha256(path: string): Promise<string> {
  return createHash('sha256').update(await readFile(path)).digest('hex');
}

if (process.getuid?.() !== 0) {
  t.plan(0, 'the package tests need root (chroot, unshare, debootstrap)');
} else {
  t.setTimeout(60 * 60_000);
  const work = await mkdtemp(join(tmpdir(), 'bulwark-packages-'));
  t.teardown(() => rm(work, { recursive: true, force: true }));

  const upstream = (JSON.parse(await readFile(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  const current = `${upstream}-1`;
  // Lower than `${upstream}-1` in dpkg's order (~ sorts before anything).
  const previous = `${upstream}~prev-1`;

  const started = performance.now();
  const debs = await buildPackages(join(work, 'a'), current);
  const buildSeconds = (performance.now() - started) / 1000;
  t.comment(`build: ${buildSeconds.toFixed(0)} s; ${debs.map((d) => basename(d)).join(', ')}`);

  t.test('the packages build reproducibly (two builds, same bytes)', async (t) => {
    t.same(debs.map((d) => basename(d)).sort(), [`bulwark-agent_${current}_all.deb`, `bulwark-controller_${current}_all.deb`, `bulwark-runtime_${current}_amd64.deb`, `bulwarkctl_${current}_all.deb`]);
    const again = await buildPackages(join(work, 'b'), current);
    t.equal(again.length, debs.length);
    for (const deb of debs) {
      const other = join(work, 'b', basename(deb));
      const [x, y] = [await sha256(deb), await sha256(other)];
      t.equal(x, y, `${basename(deb)}: sha256 ${x.slice(0, 16)}… both times`);
      t.comment(`${basename(deb)}: ${(await readFile(deb)).length} bytes, sha256 ${x}`);
    }
  });

  t.test('lintian reports no errors on any package', async (t) => {
    const r = await execa('lintian', ['--no-cfg', ...debs], { reject: false, timeout: 20 * 60_000 });
    const lines = `${String(r.stdout)}\n${String(r.stderr)}`.split('\n');
    const errors = lines.filter((l) => l.startsWith('E: '));
    t.comment(`lintian: ${lines.filter((l) => /^[EW]: /.test(l)).length} errors and warnings`);
    t.same(errors, [], 'no E: lines');
    t.not(r.exitCode, null);
  });

  const olds = await buildPackages(join(work, 'old'), previous);

  for (const suite of ['bookworm', 'trixie'] as const satisfies readonly DebianSuite[]) {
    t.test(`in a clean ${suite} root`, async (t) => {
      const cached = await ensureDebianRoot(suite);
      if ('reason' in cached) {
        t.fail(`no ${suite} root: ${cached.reason}`);
        return;
      }
      const root = await DebianRoot.copy(cached.path, join(work, `root-${suite}`));
      t.teardown(() => root.remove());
      await execa('mkdir', ['-p', join(root.path, 'tmp/new'), join(root.path, 'tmp/old')]);
      for (const d of debs) await execa('cp', [d, join(root.path, 'tmp/new/')]);
      for (const d of olds) await execa('cp', [d, join(root.path, 'tmp/old/')]);
      const [grpcPort, natsPort] = [await freePort(), await freePort()];
      const grpc = `127.0.0.1:${String(grpcPort)}`;
      const controllerEnv = { BULWARK_GRPC_LISTEN: grpc, BULWARK_NATS_PORT: String(natsPort) };

      const must = async (what: string, argv: readonly string[], opts: { user?: string } = {}): Promise<RootResult> => {
        const r = await root.run(argv, opts);
        if (r.exitCode !== 0) t.fail(`${what}: exit ${String(r.exitCode)}: ${r.stderr.slice(-1500)}`);
        return r;
      };
      const debsIn = (dir: string, list: readonly string[]): string[] => list.map((d) => `./${basename(d)}`).map((d) => `/tmp/${dir}/${d.slice(2)}`);
      const startController = async () => {
        const child = root.spawn(['bulwark-controller'], { user: 'bulwark', env: controllerEnv });
        let out = '';
        let err = '';
        child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
        child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
        await waitFor(
          `the ${suite} controller's ready line`,
          () => {
            if (child.exitCode !== null) throw new Error(`the controller exited ${String(child.exitCode)}: ${out.slice(-800)} ${err.slice(-1500)}`);
            return /\{"ready":true,/.test(out) ? true : undefined;
          },
          120_000,
          100,
        );
        // Wrapped: an async function returning the subprocess (a thenable) would wait for its end.
        return { child };
      };
      const runSteps = async (steps: readonly Step[]) => {
        for (const step of steps) {
          const r = await root.run(step.argv, step.user === undefined ? {} : { user: step.user });
          t.equal(r.exitCode, step.exitCode, `${step.name}: exit ${String(step.exitCode)}${r.exitCode === step.exitCode ? '' : `: ${r.stderr.slice(-800)}`}`);
          if (step.stdout !== undefined) t.match(r.stdout, step.stdout, `${step.name}: output`);
        }
      };
      const ctl = (user: string, credentials: string, ...args: string[]) => root.run(['bulwarkctl', '--controller', grpc, '--credentials', credentials, ...args], { user });

      // 1. The previous version, from apt, dependencies from Debian.
      const installOld = await must('apt-get install (previous version)', ['apt-get', 'install', '-y', '-q', ...debsIn('old', olds)]);
      t.match(installOld.stdout, /Setting up bulwark-controller/, 'the previous version installs with apt');
      t.ok(root.exists('/etc/systemd/system/multi-user.target.wants/bulwark-controller.service'), 'the controller unit is enabled');
      t.ok(root.exists('/etc/systemd/system/multi-user.target.wants/bulwark-agent.service'), 'the agent unit is enabled');

      // 2. Data stored through bulwarkctl: two credentials, one revoked (KV bulwark_revocations).
      let controller = (await startController()).child;
      await must('credentials issue alice', ['bulwarkctl', '--controller', grpc, '--credentials', ADMIN, 'credentials', 'issue', 'alice', '--role', 'viewer', '--output', '/tmp/alice'], { user: 'bulwark' });
      await must('credentials issue bob', ['bulwarkctl', '--controller', grpc, '--credentials', ADMIN, 'credentials', 'issue', 'bob', '--role', 'viewer', '--output', '/tmp/bob'], { user: 'bulwark' });
      await must('credentials revoke bob', ['bulwarkctl', '--controller', grpc, '--credentials', ADMIN, 'credentials', 'revoke', 'bob'], { user: 'bulwark' });
      t.equal((await ctl('bulwark', '/tmp/bob', 'nodes')).exitCode, 5, 'before the upgrade: bob is refused');
      t.equal(await stopProcess(controller), 0, 'the controller stops on SIGTERM with exit 0');

      // 3. A local edit of a conffile, then the upgrade.
      const confPath = join(root.path, 'etc/bulwark/controller.json');
      const edited = (await readFile(confPath, 'utf8')).replace('"logLevel": "info"', '"logLevel": "warn"');
      t.not(edited, await readFile(confPath, 'utf8'), 'the shipped config has logLevel info');
      await writeFile(confPath, edited);
      const upgrade = await must('apt-get install (upgrade)', ['apt-get', 'install', '-y', '-q', ...debsIn('new', debs)]);
      t.match(upgrade.stdout, new RegExp(`Unpacking bulwark-controller \\(${current.replace(/[.+~]/g, '\\$&')}\\) over`), 'apt upgrades the controller');
      const status = await must('dpkg-query', ['dpkg-query', '-W', '-f', '${Package} ${Version}\\n', 'bulwark-runtime', 'bulwark-controller', 'bulwark-agent', 'bulwarkctl']);
      t.same(status.stdout.trim().split('\n').sort(), [`bulwark-agent ${current}`, `bulwark-controller ${current}`, `bulwark-runtime ${current}`, `bulwarkctl ${current}`]);
      t.equal(await readFile(confPath, 'utf8'), edited, 'the locally edited conffile is kept');

      // 4. The installed binaries, files and modes.
      await runSteps(OFFLINE_STEPS);
      controller = (await startController()).child;
      await runSteps(onlineSteps(grpc));
      t.equal((await ctl('bulwark', '/tmp/alice', 'nodes')).exitCode, 0, 'after the upgrade: alice (issued before) is admitted');
      t.equal((await ctl('bulwark', '/tmp/bob', 'nodes')).exitCode, 5, 'after the upgrade: bob is still revoked (the KV survived)');
      for (const [path, owner, mode] of [...INSTALLED_FILES, ...CONTROLLER_FILES]) {
        const r = await root.run(['stat', '-c', '%U:%G %a', path]);
        t.equal(r.stdout.trim(), `${owner} ${mode}`, `${path}: ${owner} ${mode}`);
      }
      t.equal(await stopProcess(controller), 0, 'the upgraded controller stops with exit 0');

      // 5. remove keeps state and conffiles; purge deletes them.
      await must('dpkg -r', ['dpkg', '-r', 'bulwark-controller', 'bulwark-agent']);
      t.ok(root.exists(`${ADMIN}/key.pem`), 'dpkg -r keeps the controller state');
      t.ok(root.exists('/var/lib/bulwark-agent'), 'dpkg -r keeps the agent state');
      t.ok(root.exists('/etc/bulwark/controller.json'), 'dpkg -r keeps the conffile');
      t.notOk(root.exists('/usr/bin/bulwark-controller'), 'dpkg -r removes the program');
      await must('dpkg -P', ['dpkg', '-P', 'bulwark-controller', 'bulwark-agent']);
      t.notOk(root.exists('/var/lib/bulwark-controller'), 'dpkg -P deletes the controller state');
      t.notOk(root.exists('/var/lib/bulwark-agent'), 'dpkg -P deletes the agent state');
      t.notOk(root.exists('/etc/bulwark/controller.json'), 'dpkg -P deletes the conffiles');
      t.notOk(root.exists('/etc/systemd/system/multi-user.target.wants/bulwark-controller.service'), 'dpkg -P drops the unit enablement');
    });
  }
}
