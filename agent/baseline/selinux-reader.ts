/**
 * Reads a SELinux tree under a root ("/" on a host, a recorded tree in tests) into the
 * lib's SelinuxTree: the files of SELINUX_FILES plus the listed directories (booleans in
 * selinuxfs, installed policy modules in the policy store), each capped. Nothing is
 * interpreted here: parseSelinuxTree (lib/baseline) does that, and refuses garbage.
 * Writing the state back (setenforce, booleans) is `writeSelinux*` below.
 */
import { open, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { BulwarkError } from '../../lib/index.js';
import { SELINUX_FILES, type SelinuxTree } from '../../lib/baseline/index.js';

/** Files read besides the lib's list: selinuxfs' mode and policy version, the loaded policy, the boot-time config. */
const BASE_FILES: readonly string[] = ['sys/fs/selinux/enforce', 'sys/fs/selinux/policyvers', 'sys/fs/selinux/policy', 'etc/selinux/config'];
/** The selinuxfs folder of booleans: one file per boolean ("current pending"). */
export const BOOLEANS_DIR = 'sys/fs/selinux/booleans';
/** The policy store: var/lib/selinux/<type>/active/modules/<priority>/<module>/. */
const POLICY_STORE = 'var/lib/selinux';
/** A selinuxfs value or the config file: a few bytes; the cap is for a hostile or broken tree. */
const MAX_VALUE_BYTES = 64 * 1024;
/** The loaded binary policy: 3-8 MiB on Debian and Fedora. */
const MAX_POLICY_BYTES = 64 * 1024 * 1024;
/** Most booleans or modules listed (a Fedora targeted policy has about 350 booleans and 450 modules). */
const MAX_ENTRIES = 8192;

/** Reads one file, at most `cap` bytes; null when it does not exist. */
async function readFileCapped(path: string, cap: number): Promise<Uint8Array | null> {
  let handle;
  try {
    handle = await open(path, 'r');
  } catch (err) {
    if (err instanceof Error && 'code' in err && (err.code === 'ENOENT' || err.code === 'ENOTDIR')) return null;
    throw new BulwarkError('SELINUX_TREE_UNREADABLE', `cannot open ${path}: ${err instanceof Error ? err.message : String(err)}`, {}, { cause: err });
  }
  try {
    // selinuxfs reports sizes of 0: read until EOF.
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const buf = Buffer.alloc(Math.min(64 * 1024, cap + 1));
      const { bytesRead } = await handle.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      total += bytesRead;
      if (total > cap) throw new BulwarkError('SELINUX_TREE_UNREADABLE', `${path} is larger than ${cap} bytes`, { cap });
      chunks.push(buf.subarray(0, bytesRead));
    }
    return new Uint8Array(Buffer.concat(chunks, total));
  } catch (err) {
    if (err instanceof BulwarkError) throw err;
    throw new BulwarkError('SELINUX_TREE_UNREADABLE', `cannot read ${path}: ${err instanceof Error ? err.message : String(err)}`, {}, { cause: err });
  } finally {
    await handle.close();
  }
}

/** Names in a directory (sorted); empty when it does not exist. */
async function list(path: string): Promise<string[]> {
  try {
    const names = await readdir(path);
    if (names.length > MAX_ENTRIES) throw new BulwarkError('SELINUX_TREE_UNREADABLE', `${path} has more than ${MAX_ENTRIES} entries`, { cap: MAX_ENTRIES });
    return names.sort();
  } catch (err) {
    if (err instanceof BulwarkError) throw err;
    if (err instanceof Error && 'code' in err && (err.code === 'ENOENT' || err.code === 'ENOTDIR')) return [];
    throw new BulwarkError('SELINUX_TREE_UNREADABLE', `cannot list ${path}: ${err instanceof Error ? err.message : String(err)}`, {}, { cause: err });
  }
}

/**
 * The SELinux tree under `root`: every file of SELINUX_FILES and BASE_FILES (null when
 * absent), each boolean as `sys/fs/selinux/booleans/<name>`, and each installed module
 * as `var/lib/selinux/<type>/active/modules/<priority>/<name>` with empty contents (a
 * module is a folder; its presence is what counts). Untrusted: parseSelinuxTree judges it.
 */
export async function readSelinuxTree(root: string): Promise<SelinuxTree> {
  const tree = new Map<string, Uint8Array | null>();
  for (const rel of new Set([...BASE_FILES, ...SELINUX_FILES])) {
    tree.set(rel, await readFileCapped(join(root, rel), rel === 'sys/fs/selinux/policy' ? MAX_POLICY_BYTES : MAX_VALUE_BYTES));
  }
  for (const name of await list(join(root, BOOLEANS_DIR))) {
    tree.set(`${BOOLEANS_DIR}/${name}`, await readFileCapped(join(root, BOOLEANS_DIR, name), MAX_VALUE_BYTES));
  }
  let modules = 0;
  for (const type of await list(join(root, POLICY_STORE))) {
    const store = `${POLICY_STORE}/${type}/active/modules`;
    for (const priority of await list(join(root, store))) {
      for (const name of await list(join(root, store, priority))) {
        if (++modules > MAX_ENTRIES) throw new BulwarkError('SELINUX_TREE_UNREADABLE', `more than ${MAX_ENTRIES} policy modules under ${join(root, POLICY_STORE)}`, { cap: MAX_ENTRIES });
        tree.set(`${store}/${priority}/${name}`, new Uint8Array(0));
      }
    }
  }
  return tree;
}

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
