/**
 * Writes test/fixtures/selinux/ima/*.log: ascii_runtime_measurements lists holding the
 * kernel's SELinux critical-data entries (ima-buf, Linux security/selinux/ima.c), built by
 * test/helpers/ima-builder.ts, with the expected KernelSelinux in NAME.json:
 * `npx tsc -p . && node dist/test/lib/baseline/make-selinux-ima-fixtures.js`.
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ImaLogBuilder } from '../../helpers/ima-builder.js';

const DIR = fileURLToPath(new URL('../../../../test/fixtures/selinux/', import.meta.url));

/** selinux_ima_collect_state on Linux 6.1: the fixed fields, then every policy capability of selinux_policycap_names[]. */
export function selinuxStateBuffer(enforcing: boolean): string {
  const caps = ['network_peer_controls', 'open_perms', 'extended_socket_class', 'always_check_network', 'cgroup_seclabel', 'nnp_nosuid_transition', 'genfs_seclabel_symlinks', 'ioctl_skip_cloexec'];
  const values = [1, 1, 1, 0, 1, 1, 1, 0];
  return `initialized=1;enforcing=${enforcing ? 1 : 0};checkreqprot=0;${caps.map((c, i) => `${c}=${values[i] ?? 0};`).join('')}`;
}

const policy = await readFile(join(DIR, 'debian12-enforcing/root/sys/fs/selinux/policy'));
const policyHash = createHash('sha256').update(policy).digest();
await mkdir(join(DIR, 'ima'), { recursive: true });

const fixtures: { name: string; states: boolean[]; expected: { enforcing: boolean | null; policyHash: string | null } }[] = [
  { name: 'enforcing', states: [true], expected: { enforcing: true, policyHash: policyHash.toString('hex') } },
  { name: 'setenforce-0', states: [true, false], expected: { enforcing: false, policyHash: policyHash.toString('hex') } },
];
for (const f of fixtures) {
  const b = new ImaLogBuilder();
  b.bootAggregate(createHash('sha256').update('PCRs 0-7 of the fixture boot').digest());
  b.buffer('kernel_version', Buffer.from('6.1.0-18-amd64'));
  // The kernel measures state and policy hash at policy load and again at every setenforce.
  for (const enforcing of f.states) {
    b.buffer('selinux-state', Buffer.from(selinuxStateBuffer(enforcing), 'ascii'));
    b.buffer('selinux-policy-hash', policyHash);
  }
  await writeFile(join(DIR, 'ima', `${f.name}.log`), b.ascii());
  await writeFile(join(DIR, 'ima', `${f.name}.json`), `${JSON.stringify({ file: `${f.name}.log`, pcr10: { sha256: b.pcr10('sha256').toString('hex') }, kernel: f.expected }, null, 2)}\n`);
  process.stdout.write(`wrote ima/${f.name}.log\n`);
}
