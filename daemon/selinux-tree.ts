/**
 * Reads a SELinux tree (lib/baseline SelinuxTree) from a root directory: "/" on a host,
 * a recorded tree in tests and for `bulwarkctl baseline check --selinux-root`. The keys and
 * what each holds are lib/baseline/selinux.ts's: a plain path is the file's bytes, a path
 * ending in "/" the names in that directory one per line, a path ending in "#sha256" the
 * hex sha256 of the file before "#" (streamed, never held whole); null for absent. The
 * reader starts with SELINUX_FILES and reads what pendingSelinuxPaths names until nothing is.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { pendingSelinuxPaths, SELINUX_FILES, SELINUX_TREE_LIMITS, type SelinuxTree } from '../lib/baseline/index.js';
import { BulwarkError } from '../lib/index.js';

function absent(err: unknown): boolean {
  const code = typeof err === 'object' && err !== null && 'code' in err ? err.code : undefined;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

function failed(path: string, err: unknown): BulwarkError {
  return new BulwarkError('IO_FAILED', `cannot read ${path}`, { path }, { cause: err });
}

async function readCapped(path: string): Promise<Uint8Array | null> {
  let handle;
  try {
    handle = await open(path, 'r');
  } catch (err) {
    if (absent(err)) return null;
    throw failed(path, err);
  }
  try {
    // One byte past the cap, so the parser sees (and refuses) an oversized file.
    const buf = Buffer.alloc(SELINUX_TREE_LIMITS.fileBytes + 1);
    let size = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buf, size, buf.length - size, null);
      if (bytesRead === 0 || size + bytesRead >= buf.length) {
        size += bytesRead;
        break;
      }
      size += bytesRead;
    }
    return new Uint8Array(buf.buffer, buf.byteOffset, size);
  } catch (err) {
    throw failed(path, err);
  } finally {
    await handle.close();
  }
}

async function listDirectory(path: string): Promise<Uint8Array | null> {
  try {
    const names = await readdir(path);
    return new TextEncoder().encode(names.sort().join('\n'));
  } catch (err) {
    if (absent(err)) return null;
    throw failed(path, err);
  }
}

/** sha256 of a file, streamed; null when absent or not readable (the policy needs security:read_policy). */
async function hashFile(path: string): Promise<Uint8Array | null> {
  try {
    const h = createHash('sha256');
    for await (const chunk of createReadStream(path)) h.update(chunk);
    return new TextEncoder().encode(h.digest('hex'));
  } catch {
    return null;
  }
}

/** The SELinux tree under `root`. */
export async function readSelinuxTree(root: string): Promise<SelinuxTree> {
  const tree = new Map<string, Uint8Array | null>();
  let paths: readonly string[] = SELINUX_FILES;
  for (let round = 0; paths.length > 0; round++) {
    if (round > SELINUX_TREE_LIMITS.rounds) throw new BulwarkError('INTERNAL', 'the SELinux tree still needs paths after every round');
    for (const p of paths) {
      const abs = join(root, p.replace(/#sha256$/, ''));
      if (p.endsWith('/')) tree.set(p, await listDirectory(abs));
      else if (p.endsWith('#sha256')) tree.set(p, await hashFile(abs));
      else tree.set(p, await readCapped(abs));
    }
    paths = pendingSelinuxPaths(tree);
  }
  return tree;
}
