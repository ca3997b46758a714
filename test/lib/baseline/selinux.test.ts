/**
 * SELinux trees: the recorded fixtures (test/fixtures/selinux/*, read by daemon's reader the
 * way the agent reads "/") parse to their known states; garbage values are
 * BASELINE_REPORT_INVALID; judging names each deviation; the kernel's own IMA measurements
 * (ima-buf selinux-state / selinux-policy-hash, built in the kernel's format and parsed by
 * lib/ima) win over, and contradict, what an agent reports.
 */
import t from 'tap';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  DEFAULT_BASELINE,
  SELINUX_FILES,
  describeSelinuxChanges,
  judgeSelinux,
  kernelSelinuxFromImaBuf,
  parseSelinuxTree,
  pendingSelinuxPaths,
  selinuxContradictions,
  withKernelSelinux,
  type SelinuxBaseline,
  type SelinuxState,
} from '../../../lib/baseline/index.js';
import { readSelinuxTree } from '../../../daemon/index.js';
import { initialImaReplayState, parseImaAscii, replayImaEntriesOffline } from '../../../lib/ima/index.js';
import { TPM_ALG } from '../../../lib/tpm/index.js';
import { ImaLogBuilder } from '../../helpers/ima-builder.js';

const FIXTURES = fileURLToPath(new URL('../../../../test/fixtures/selinux/', import.meta.url));

const DEFAULT_SELINUX: SelinuxBaseline = (() => {
  const s = DEFAULT_BASELINE.selinux;
  if (s === null) throw new Error('the default baseline judges SELinux');
  return s;
})();

const sha256File = async (p: string): Promise<string> => createHash('sha256').update(await readFile(p)).digest('hex');

t.test('recorded trees parse to their known states', async (t) => {
  const debian = parseSelinuxTree(await readSelinuxTree(join(FIXTURES, 'debian12-enforcing/root')));
  t.same(debian, {
    present: true,
    mode: 'enforcing',
    configMode: 'enforcing',
    policyType: 'default',
    policyVersion: 33,
    policyHash: await sha256File(join(FIXTURES, 'debian12-enforcing/root/sys/fs/selinux/policy')),
    booleans: { allow_execmem: false, allow_execstack: false, httpd_can_network_connect: false, secure_mode_insmod: false, ssh_sysadm_login: false, user_ping: true },
    modules: ['apache', 'base', 'cron', 'dbus', 'logrotate', 'ssh', 'sudo', 'unconfined'],
  });
  t.same(judgeSelinux(DEFAULT_SELINUX, debian), [], 'conforms to the default baseline');

  const fedora = parseSelinuxTree(await readSelinuxTree(join(FIXTURES, 'fedora-targeted/root')));
  t.equal(fedora.policyType, 'targeted');
  t.equal(fedora.booleans['selinuxuser_ping'], true);
  t.ok(fedora.modules.includes('permissivedomains'), 'priority 400 modules count');

  const permissive = parseSelinuxTree(await readSelinuxTree(join(FIXTURES, 'debian12-permissive/root')));
  t.equal(permissive.mode, 'permissive');
  t.equal(permissive.configMode, 'permissive');
  t.notOk(permissive.modules.includes('apache'), 'a disabled module is not installed');
  t.ok(permissive.modules.includes('mylocal'));
  t.same(describeSelinuxChanges(debian, permissive), [
    'SELinux mode: enforcing -> permissive',
    'SELinux mode at next boot: enforcing -> permissive',
    'SELinux boolean httpd_can_network_connect: off -> on',
    'SELinux module mylocal installed',
    'SELinux module apache removed',
  ]);

  const absent = parseSelinuxTree(await readSelinuxTree(join(FIXTURES, 'no-such-root')));
  t.same(absent, { present: false, mode: 'disabled', configMode: null, policyType: null, policyVersion: null, policyHash: null, booleans: {}, modules: [] }, 'no selinuxfs: disabled');
});

t.test('sestatus of a real enforcing system agrees with the parsed targeted tree', async (t) => {
  const text = await readFile(join(FIXTURES, 'sestatus-fedora-enforcing.txt'), 'utf8');
  const field = (name: string): string | undefined => new RegExp(`^${name}:\\s+(.*)$`, 'm').exec(text)?.[1];
  const fedora = parseSelinuxTree(await readSelinuxTree(join(FIXTURES, 'fedora-targeted/root')));
  t.equal(field('SELinux status'), fedora.present ? 'enabled' : 'disabled');
  t.equal(field('Current mode'), fedora.mode);
  t.equal(field('Mode from config file'), fedora.configMode);
  t.equal(field('Loaded policy name'), fedora.policyType);
  t.equal(Number(field('Max kernel policy version')), fedora.policyVersion);
});

function tree(entries: Record<string, string | null>): Map<string, Uint8Array | null> {
  return new Map(Object.entries(entries).map(([k, v]) => [k, v === null ? null : new TextEncoder().encode(v)]));
}

const MINIMAL = {
  'sys/fs/selinux/enforce': '1',
  'sys/fs/selinux/policyvers': '33',
  'sys/fs/selinux/policy#sha256': null,
  'etc/selinux/config': 'SELINUX=enforcing\nSELINUXTYPE=default\n',
  'sys/fs/selinux/booleans/': 'b1',
  'sys/fs/selinux/booleans/b1': '1 1',
  'var/lib/selinux/default/active/modules/': '',
};

t.test('a reader is told what to read, round by round', async (t) => {
  t.same(pendingSelinuxPaths(new Map()), [...SELINUX_FILES]);
  const partial = tree(MINIMAL);
  partial.delete('sys/fs/selinux/booleans/b1');
  partial.delete('var/lib/selinux/default/active/modules/');
  t.same(pendingSelinuxPaths(partial).sort(), [
    'sys/fs/selinux/booleans/b1',
    'var/lib/selinux/default/active/modules/',
  ]);
  t.same(pendingSelinuxPaths(tree(MINIMAL)), []);
  t.throws(() => parseSelinuxTree(tree({ 'sys/fs/selinux/enforce': '1' })), { code: 'BASELINE_REPORT_INVALID' }, 'an incomplete tree is refused');
});

t.test('garbage values are BASELINE_REPORT_INVALID, never a guess', async (t) => {
  const bad: Record<string, Record<string, string | null>> = {
    'enforce 7': { 'sys/fs/selinux/enforce': '7' },
    'enforce empty': { 'sys/fs/selinux/enforce': '' },
    'policyvers not numeric': { 'sys/fs/selinux/policyvers': '33a' },
    'boolean x y': { 'sys/fs/selinux/booleans/b1': 'x y' },
    'boolean one value': { 'sys/fs/selinux/booleans/b1': '1' },
    'boolean listed, absent': { 'sys/fs/selinux/booleans/b1': null },
    'boolean name': { 'sys/fs/selinux/booleans/': 'b1\n../etc' },
    'config SELINUX unknown': { 'etc/selinux/config': 'SELINUX=enforced\nSELINUXTYPE=default\n' },
    'config SELINUX twice': { 'etc/selinux/config': 'SELINUX=enforcing\nSELINUX=disabled\nSELINUXTYPE=default\n' },
    'config not KEY=VALUE': { 'etc/selinux/config': 'SELINUX enforcing\n' },
    'config type path': { 'etc/selinux/config': 'SELINUX=enforcing\nSELINUXTYPE=../x\n' },
    'policy hash': { 'sys/fs/selinux/policy#sha256': 'zz' },
    'store entry': { 'var/lib/selinux/default/active/modules/': 'tmp' },
    'not UTF-8': { 'etc/selinux/config': '\udcff' },
  };
  for (const [name, change] of Object.entries(bad)) {
    const m = tree({ ...MINIMAL, ...change });
    if (name === 'not UTF-8') m.set('etc/selinux/config', Uint8Array.of(0x53, 0xff));
    t.throws(() => parseSelinuxTree(m), { code: 'BASELINE_REPORT_INVALID' }, name);
  }
  const many = tree({ ...MINIMAL, 'sys/fs/selinux/booleans/': Array.from({ length: 4097 }, (_, i) => `b${i}`).join('\n') });
  t.throws(() => parseSelinuxTree(many), { code: 'BASELINE_REPORT_INVALID', message: /more than 4096/ }, 'capped at 4096 booleans');
});

const ENFORCING: SelinuxState = parseSelinuxTree(tree(MINIMAL));

t.test('judging: one finding per deviation, each naming it', async (t) => {
  const baseline: SelinuxBaseline = {
    mode: 'enforcing',
    policyType: 'default',
    policyHash: 'a'.repeat(64),
    booleans: { b1: false, b2: true },
    requiredModules: ['apache'],
    forbiddenModules: ['unconfined'],
  };
  const state: SelinuxState = { ...ENFORCING, mode: 'permissive', configMode: 'disabled', policyType: 'mls', policyHash: 'b'.repeat(64), modules: ['unconfined'] };
  const findings = judgeSelinux(baseline, state);
  t.same(
    findings.map((f) => f.code),
    ['SELINUX_NOT_ENFORCING', 'SELINUX_POLICY_MISMATCH', 'SELINUX_POLICY_MISMATCH', 'SELINUX_POLICY_MISMATCH', 'SELINUX_POLICY_MISMATCH', 'SELINUX_BOOLEAN_MISMATCH', 'SELINUX_BOOLEAN_MISMATCH'],
  );
  t.match(findings[0]?.message, /permissive now and will be disabled at next boot/, 'names both modes');
  t.match(findings[1]?.details, { item: 'policyType', expected: 'default', actual: 'mls' });
  t.match(findings[2]?.details, { item: 'policyHash' });
  t.match(findings[3]?.message, /required SELinux module apache/);
  t.match(findings[4]?.message, /forbidden SELinux module unconfined/);
  t.match(findings[5]?.details, { boolean: 'b1', expected: 'off', actual: 'on' });
  t.match(findings[6]?.details, { boolean: 'b2', expected: 'on', actual: 'undefined' });
  const onlyBoot = judgeSelinux({ ...baseline, policyHash: undefined, booleans: {}, requiredModules: [], forbiddenModules: [] }, { ...ENFORCING, configMode: 'permissive' });
  t.equal(onlyBoot.length, 1);
  t.match(onlyBoot[0]?.message, /will be permissive at next boot/);
  t.notMatch(onlyBoot[0]?.message, /now/);
});

/** IMA entries as lib/ima parses them from an ascii_runtime_measurements the kernel would write. */
function kernelEntries(states: readonly string[], policy: Buffer | null): { name: string; data: Uint8Array }[] {
  const b = new ImaLogBuilder();
  b.bootAggregate(Buffer.alloc(32, 1));
  for (const s of states) {
    b.buffer('selinux-state', Buffer.from(s, 'ascii'));
    if (policy !== null) b.buffer('selinux-policy-hash', createHash('sha256').update(policy).digest());
  }
  const parsed = parseImaAscii(b.ascii());
  return parsed.entries.filter((e) => e.template === 'ima-buf' && e.buffer !== null).map((e) => ({ name: e.path, data: e.buffer ?? new Uint8Array() }));
}

const KERNEL_ON =
  'initialized=1;enforcing=1;checkreqprot=0;network_peer_controls=1;open_perms=1;extended_socket_class=1;always_check_network=0;cgroup_seclabel=1;nnp_nosuid_transition=1;genfs_seclabel_symlinks=1;ioctl_skip_cloexec=0;';
const KERNEL_OFF = KERNEL_ON.replace('enforcing=1', 'enforcing=0');

t.test('the kernel measured SELinux: it wins, and an agent saying otherwise is caught', async (t) => {
  const policy = await readFile(join(FIXTURES, 'debian12-enforcing/root/sys/fs/selinux/policy'));
  const reported = parseSelinuxTree(await readSelinuxTree(join(FIXTURES, 'debian12-enforcing/root')));

  const on = kernelSelinuxFromImaBuf(kernelEntries([KERNEL_ON], policy));
  t.same(on, { enforcing: true, policyHash: reported.policyHash });
  t.same(selinuxContradictions(on, reported), [], 'an honest agent');

  // setenforce 0 after boot: the kernel measures again, the last entry wins.
  const off = kernelSelinuxFromImaBuf(kernelEntries([KERNEL_ON, KERNEL_OFF], policy));
  t.equal(off.enforcing, false);
  const lie = selinuxContradictions(off, reported);
  t.equal(lie.length, 1);
  t.equal(lie[0]?.code, 'SELINUX_REPORT_CONTRADICTS_KERNEL');
  t.match(lie[0]?.message, /kernel measured SELinux not enforcing; the agent reported enforcing/);
  const judged = judgeSelinux(DEFAULT_SELINUX, withKernelSelinux(reported, off));
  t.equal(judged[0]?.code, 'SELINUX_NOT_ENFORCING', 'judged on the kernel mode');

  const otherPolicy = kernelSelinuxFromImaBuf(kernelEntries([KERNEL_ON], Buffer.from('another policy')));
  t.match(selinuxContradictions(otherPolicy, reported), [{ code: 'SELINUX_REPORT_CONTRADICTS_KERNEL', details: { item: 'policyHash' } }]);

  t.same(kernelSelinuxFromImaBuf([]), { enforcing: null, policyHash: null }, 'nothing measured');
  t.same(kernelSelinuxFromImaBuf(kernelEntries(['initialized=0;enforcing=1;checkreqprot=0;'], null)), { enforcing: false, policyHash: null }, 'no policy loaded enforces nothing');
  t.equal(kernelSelinuxFromImaBuf([{ name: 'selinux-policy-hash', data: new Uint8Array(20) }]).policyHash, null, 'a sha1 policy digest is not compared');
  for (const garbage of ['enforcing=1', 'initialized=1;enforcing=2;', 'initialized=1;', 'initialized=1;enforcing=1;enforcing=0;', '']) {
    t.throws(() => kernelSelinuxFromImaBuf([{ name: 'selinux-state', data: Buffer.from(garbage) }]), { code: 'IMA_LOG_MALFORMED' }, JSON.stringify(garbage));
  }
});

t.test('recorded IMA lists with the kernel SELinux measurements (test/fixtures/selinux/ima)', async (t) => {
  for (const name of ['enforcing', 'setenforce-0']) {
    const expected = JSON.parse(await readFile(join(FIXTURES, 'ima', `${name}.json`), 'utf8')) as { pcr10: { sha256: string }; kernel: unknown };
    const parsed = parseImaAscii(await readFile(join(FIXTURES, 'ima', `${name}.log`)));
    const replay = replayImaEntriesOffline(initialImaReplayState([TPM_ALG.SHA256]), parsed.entries, new Map([[TPM_ALG.SHA256, new Map([[10, Buffer.from(expected.pcr10.sha256, 'hex')]])]]));
    t.ok(replay.ok, `${name}: replays to its PCR 10`);
    if (!replay.ok) continue;
    const bufs = replay.replayed.filter((e) => e.template === 'ima-buf').map((e) => ({ name: e.path, data: e.buffer ?? new Uint8Array() }));
    t.same(kernelSelinuxFromImaBuf(bufs), expected.kernel, name);
  }
});
