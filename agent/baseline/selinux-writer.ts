/**
 * Writes SELinux state back under a root ("/" on a host, a written tree in tests): the
 * mode (setenforce 1) and booleans, the two corrections enforcement makes. Reading the
 * tree is daemon/'s readSelinuxTree, shared with bulwarkctl baseline check.
 */
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { BulwarkError } from '../../lib/index.js';

/** The selinuxfs folder of booleans: one file per boolean ("current pending"). */
export const BOOLEANS_DIR = 'sys/fs/selinux/booleans';

/** A boolean name as selinuxfs lists it: nothing that could leave the booleans folder. */
const BOOLEAN_NAME = /^[A-Za-z0-9_]{1,128}$/;

/** setenforce 1: writes "1" to <root>/sys/fs/selinux/enforce. */
export async function writeSelinuxEnforcing(root: string): Promise<void> {
  await writeValue(join(root, 'sys/fs/selinux/enforce'), '1');
}

/**
 * setsebool (not persistent): writes each boolean's pending value to
 * booleans/<name>, then "1" to commit_pending_bools, which makes every pending value current
 * at once (selinuxfs, security/selinux/selinuxfs.c sel_commit_bools_write).
 */
export async function writeSelinuxBooleans(root: string, values: Readonly<Record<string, boolean>>): Promise<void> {
  for (const [name, on] of Object.entries(values)) {
    if (!BOOLEAN_NAME.test(name)) throw new BulwarkError('USAGE', `${JSON.stringify(name.slice(0, 64))} is not a SELinux boolean name`);
    await writeValue(join(root, BOOLEANS_DIR, name), on ? '1' : '0');
  }
  await writeValue(join(root, 'sys/fs/selinux/commit_pending_bools'), '1');
}

/** Writes `value` at offset 0 of an existing file, as setenforce does (O_RDWR: no create, no truncate on selinuxfs). */
async function writeValue(path: string, value: string): Promise<void> {
  try {
    const handle = await open(path, 'r+');
    try {
      await handle.write(value, 0, 'ascii');
    } finally {
      await handle.close();
    }
  } catch (err) {
    throw new BulwarkError('IO_FAILED', `cannot write ${value} to ${path}: ${err instanceof Error ? err.message : String(err)}`, {}, { cause: err });
  }
}
