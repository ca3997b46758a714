/**
 * Reads a SELinux tree under a root ("/" on a host, a recorded tree in tests) into the
 * lib's SelinuxTree, in the lib's key forms (lib/baseline/selinux.ts): a file's bytes, a
 * directory listing for a key ending in "/", the streamed sha256 of the loaded policy for
 * "sys/fs/selinux/policy#sha256". It starts with SELINUX_FILES and reads what
 * pendingSelinuxPaths asks for next (booleans listed, the policy type's module store)
 * until nothing is pending. Nothing is interpreted here: parseSelinuxTree does that and
 * refuses garbage. Writing the state back (setenforce, booleans) is `writeSelinux*` below.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { BulwarkError } from '../../lib/index.js';
import { pendingSelinuxPaths, SELINUX_FILES, SELINUX_TREE_LIMITS, type SelinuxTree } from '../../lib/baseline/index.js';

/** The selinuxfs folder of booleans: one file per boolean ("current pending"). */
export const BOOLEANS_DIR = 'sys/fs/selinux/booleans';
/** The loaded binary policy is 3-8 MiB on Debian and Fedora; hashing stops past this. */
const MAX_POLICY_BYTES = 256 * 1024 * 1024;
/** Suffix of a key whose value is the sha256 of the file it names. */
const SHA256_SUFFIX = '#sha256';

function absent(err: unknown): boolean {
  return err instanceof Error && 'code' in err && (err.code === 'ENOENT' || err.code === 'ENOTDIR');
}

function unreadable(what: string, err: unknown): BulwarkError {
  return new BulwarkError('SELINUX_TREE_UNREADABLE', `cannot read ${what}: ${err instanceof Error ? err.message : String(err)}`, {}, { cause: err });
}

/** Reads one file, at most `cap` bytes; null when it does not exist. */
async function readFileCapped(path: string, cap: number): Promise<Uint8Array | null> {
  let handle;
  try {
    handle = await open(path, 'r');
  } catch (err) {
    if (absent(err)) return null;
    throw unreadable(path, err);
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
    throw unreadable(path, err);
  } finally {
    await handle.close();
  }
}

/** A directory's entry names, one per line; null when it does not exist. */
async function listing(path: string): Promise<Uint8Array | null> {
  let names: string[];
  try {
    names = await readdir(path);
  } catch (err) {
    if (absent(err)) return null;
    throw unreadable(path, err);
  }
  const text = names.sort().join('\n');
  if (Buffer.byteLength(text) > SELINUX_TREE_LIMITS.fileBytes) throw new BulwarkError('SELINUX_TREE_UNREADABLE', `${path} lists more than ${SELINUX_TREE_LIMITS.fileBytes} bytes of names`, { cap: SELINUX_TREE_LIMITS.fileBytes });
  return new TextEncoder().encode(text);
}

/** The sha256 (hex) of a file, streamed; null when it is absent or unreadable (reading the policy needs security:read_policy). */
async function sha256File(path: string): Promise<Uint8Array | null> {
  const hash = createHash('sha256');
  try {
    let total = 0;
    for await (const chunk of createReadStream(path)) {
      if (!(chunk instanceof Buffer)) return null;
      total += chunk.length;
      if (total > MAX_POLICY_BYTES) throw new BulwarkError('SELINUX_TREE_UNREADABLE', `${path} is larger than ${MAX_POLICY_BYTES} bytes`, { cap: MAX_POLICY_BYTES });
      hash.update(chunk);
    }
  } catch (err) {
    if (err instanceof BulwarkError) throw err;
    return null;
  }
  return new TextEncoder().encode(hash.digest('hex'));
}

/** One key of the tree, in the lib's key forms. */
async function readKey(root: string, key: string): Promise<Uint8Array | null> {
  // Keys come from SELINUX_FILES and names the lib checked; still, nothing may leave the root.
  if (key.split('/').some((part) => part === '..' || part === '.') || key.startsWith('/')) {
    throw new BulwarkError('SELINUX_TREE_UNREADABLE', `the SELinux tree key ${JSON.stringify(key.slice(0, 80))} leaves the root`);
  }
  if (key.endsWith(SHA256_SUFFIX)) return sha256File(join(root, key.slice(0, -SHA256_SUFFIX.length)));
  if (key.endsWith('/')) return listing(join(root, key));
  return readFileCapped(join(root, key), SELINUX_TREE_LIMITS.fileBytes);
}

/**
 * The SELinux tree under `root`: SELINUX_FILES, then what pendingSelinuxPaths asks for,
 * until the tree is complete. Untrusted: parseSelinuxTree judges it; a garbage value
 * that decides what to read next (a policy type) throws its BulwarkError here already.
 */
export async function readSelinuxTree(root: string): Promise<SelinuxTree> {
  const tree = new Map<string, Uint8Array | null>();
  let keys: readonly string[] = SELINUX_FILES;
  for (let round = 0; keys.length > 0; round++) {
    if (round > SELINUX_TREE_LIMITS.rounds) throw new BulwarkError('SELINUX_TREE_UNREADABLE', `the SELinux tree under ${root} still names paths to read after ${SELINUX_TREE_LIMITS.rounds} rounds`);
    for (const key of keys) tree.set(key, await readKey(root, key));
    keys = pendingSelinuxPaths(tree).filter((k) => !tree.has(k));
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
