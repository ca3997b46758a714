/**
 * SELinux trees written for tests (SELinux cannot be enabled on this machine): the files a
 * reader finds under selinuxfs, /etc/selinux and the policy store, with the values of a
 * Debian 12 host running selinux-policy-default in enforcing mode (policyvers 33,
 * SELINUXTYPE=default, the distribution's modules at priority 100) unless told otherwise.
 * Written here, not recorded; values follow selinuxfs' formats (enforce "%d", booleans
 * "%d %d" current and pending, no newline). Test code.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface SelinuxTreeSpec {
  /** "1" enforcing, "0" permissive, anything else a garbage value. */
  readonly enforce?: string;
  readonly config?: string;
  readonly booleans?: Readonly<Record<string, string>>;
  readonly modules?: readonly string[];
  readonly policy?: string;
}

export async function writeSelinuxTree(root: string, spec: SelinuxTreeSpec = {}): Promise<void> {
  const fs = join(root, 'sys/fs/selinux');
  await mkdir(join(fs, 'booleans'), { recursive: true });
  await mkdir(join(root, 'etc/selinux'), { recursive: true });
  await writeFile(join(fs, 'enforce'), spec.enforce ?? '1');
  await writeFile(join(fs, 'policyvers'), '33');
  await writeFile(join(fs, 'policy'), spec.policy ?? 'a loaded binary policy stands here');
  await writeFile(join(fs, 'commit_pending_bools'), '0');
  const booleans = spec.booleans ?? { httpd_can_network_connect: '0 0', ssh_sysadm_login: '0 0' };
  for (const [name, value] of Object.entries(booleans)) await writeFile(join(fs, 'booleans', name), value);
  await writeFile(join(root, 'etc/selinux/config'), spec.config ?? 'SELINUX=enforcing\nSELINUXTYPE=default\n');
  for (const m of spec.modules ?? ['base', 'apache', 'ssh', 'unconfined']) await mkdir(join(root, 'var/lib/selinux/default/active/modules/100', m), { recursive: true });
}
