/**
 * Files holding secrets (nkey seeds, passwords, the server config that lists them): written
 * atomically with mode 0600 in a directory created 0700, read only when no one but the owner
 * can read or write them (as ssh treats private keys).
 */
import { chmod, mkdir, open, readFile, rename, stat, unlink } from 'node:fs/promises';
import { dirname, join, basename } from 'node:path';
import { randomBytes } from 'node:crypto';
import { BulwarkError, toBulwarkError } from '../lib/index.js';

/** Largest secret file read (a config for a large fleet is the biggest). */
const MAX_SECRET_FILE_BYTES = 16 * 1024 * 1024;

/** Writes `text` to `path` with mode 0600: a temp file in the same directory, fsync, rename. */
export async function writeSecretFile(path: string, text: string): Promise<void> {
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const fh = await open(tmp, 'wx', 0o600);
    try {
      await fh.writeFile(text, 'utf8');
      await fh.sync();
    } finally {
      await fh.close();
    }
    // The mode given to open() is masked by the umask; make sure it is exactly 0600.
    await chmod(tmp, 0o600);
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw toBulwarkError(err, 'IO_FAILED', `cannot write ${path}`);
  }
}

/** Reads a secret file; refuses (NATS_AUTH_CREDENTIAL_INVALID) one that group or others may read or write. */
export async function readSecretFile(path: string): Promise<string> {
  let mode: number;
  let size: number;
  try {
    const st = await stat(path);
    mode = st.mode;
    size = st.size;
  } catch (err) {
    throw toBulwarkError(err, 'IO_FAILED', `cannot read ${path}`);
  }
  if ((mode & 0o077) !== 0) {
    throw new BulwarkError('NATS_AUTH_CREDENTIAL_INVALID', `${path} may be read or written by others (mode ${(mode & 0o777).toString(8)}); chmod 600 it`, {
      mode: mode & 0o777,
    });
  }
  if (size > MAX_SECRET_FILE_BYTES) throw new BulwarkError('NATS_AUTH_CREDENTIAL_INVALID', `${path} is larger than ${MAX_SECRET_FILE_BYTES} bytes`, { size });
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    throw toBulwarkError(err, 'IO_FAILED', `cannot read ${path}`);
  }
}
