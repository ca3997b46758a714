/**
 * The shipped systemd units pass `systemd-analyze verify` without a single warning (it
 * only warns, exit 0, on unknown keys, so stderr is read) and keep their exposure scores
 * (`systemd-analyze security --offline=true`, printed): the controller at most 2.0; the
 * agent at most 2.0, its documented limit (uid 0 for securityfs, /dev/tpmrm0 and selinuxfs;
 * CAP_NET_ADMIN for nft; a writable selinuxfs), every capability it keeps commented in the
 * unit. Both check their configuration in ExecStartPre=. ExecStart and ExecStartPre are
 * pointed at /bin/true because the binaries are not installed here.
 */
import t from 'tap';
import { execa } from 'execa';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const UNITS: ReadonlyArray<readonly [string, number]> = [
  ['bulwark-controller', 2.0],
  // The agent's limit: see the comments in the unit for what it keeps and why.
  ['bulwark-agent', 2.0],
];

const available = await execa('systemd-analyze', ['--version'], { reject: false });

for (const [name, maxExposure] of UNITS) {
  t.test(`${name}.service`, { skip: available.exitCode === 0 ? false : 'systemd-analyze is not installed' }, async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'bulwark-units-'));
    t.teardown(() => rm(dir, { recursive: true, force: true }));
    const text = await readFile(new URL(`../../../systemd/${name}.service`, import.meta.url), 'utf8');
    t.match(text, new RegExp(`^ExecStart=/usr/bin/${name} `, 'm'), 'runs the packaged binary');
    t.match(text, new RegExp(`^ExecStartPre=/usr/bin/${name} --check-config --config /etc/bulwark/\\S+\\.json$`, 'm'), 'checks the configuration before the start');
    const capabilities = /^CapabilityBoundingSet=(.*)$/m.exec(text)?.[1]?.split(/\s+/).filter((c) => c !== '') ?? null;
    t.ok(capabilities !== null, 'the capability bounding set is explicit');
    const comments = text.split('\n').filter((l) => l.startsWith('#')).join('\n');
    for (const capability of capabilities ?? []) t.match(comments, `Granted: ${capability}`, `${capability} is commented`);
    const path = join(dir, `${name}.service`);
    await writeFile(path, text.replaceAll(`/usr/bin/${name}`, '/bin/true'));
    const verify = await execa('systemd-analyze', ['verify', path], { reject: false });
    const warnings = verify.stderr
      .split('\n')
      .filter((l) => l.trim() !== '' && !/network-online\.target|Cannot add dependency job/.test(l));
    t.same(warnings, [], 'systemd-analyze verify prints no warning');
    t.equal(verify.exitCode, 0);
    const security = await execa('systemd-analyze', ['security', '--offline=true', path], { reject: false });
    const m = /Overall exposure level for .*: ([0-9.]+)/.exec(security.stdout);
    t.ok(m, 'an exposure score is printed');
    t.comment(`${name}.service: systemd-analyze security --offline=true exposure ${m?.[1] ?? '?'} (limit ${maxExposure})`);
    t.ok(Number(m?.[1]) <= maxExposure, `exposure ${m?.[1]} is at most ${maxExposure}`);
  });
}

t.test('the Nomad gate drop-in', { skip: available.exitCode === 0 ? false : 'systemd-analyze is not installed' }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'bulwark-units-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const dropIn = await readFile(new URL('../../../systemd/nomad.service.d/bulwark-gate.conf', import.meta.url), 'utf8');
  t.match(dropIn, /^ExecStartPre=\/usr\/bin\/bulwark-agent gate --wait-trusted --timeout \S+$/m, 'the Nomad client waits for the gate');
  // A stand-in nomad.service with the drop-in beside it, as systemd would merge them.
  await writeFile(join(dir, 'nomad.service'), '[Unit]\nDescription=Nomad\n[Service]\nExecStart=/bin/true\n');
  await writeFile(join(dir, 'bulwark-agent.service'), '[Service]\nExecStart=/bin/true\n');
  await mkdir(join(dir, 'nomad.service.d'));
  await writeFile(join(dir, 'nomad.service.d', 'bulwark-gate.conf'), dropIn.replace('/usr/bin/bulwark-agent', '/bin/true'));
  const verify = await execa('systemd-analyze', ['verify', join(dir, 'nomad.service')], { reject: false, env: { SYSTEMD_UNIT_PATH: `${dir}:` } });
  const warnings = verify.stderr.split('\n').filter((l) => l.trim() !== '' && !/Cannot add dependency job|network-online/.test(l));
  t.same(warnings, [], 'systemd-analyze verify accepts nomad.service with the drop-in');
});
