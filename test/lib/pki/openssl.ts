/**
 * The openssl command line as an independent judge of certificates made by lib/pki: run
 * with argument arrays (no shell) through execFile, PEM files in a temporary directory.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface OpensslResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `openssl ...args`; resolves with the exit code and output, never rejects for a non-zero exit. */
export function openssl(args: readonly string[]): Promise<OpensslResult> {
  return new Promise((resolve, reject) => {
    execFile('openssl', [...args], { timeout: 20_000, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err === null) return resolve({ code: 0, stdout, stderr });
      const code = Reflect.get(err, 'code');
      if (typeof code === 'number') return resolve({ code, stdout, stderr });
      reject(err);
    });
  });
}

/** A temporary directory for PEM files, removed by the returned cleanup. */
export async function pemDir(): Promise<{ dir: string; write(name: string, pem: string): Promise<string>; remove(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'bulwark-pki-'));
  return {
    dir,
    async write(name, pem) {
      const path = join(dir, name);
      await writeFile(path, pem);
      return path;
    },
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}

/** `openssl verify -x509_strict` of `leaf` against the CA file, optionally for a purpose (sslclient, sslserver). */
export async function opensslVerify(caFile: string, leafFile: string, purpose?: 'sslclient' | 'sslserver'): Promise<OpensslResult> {
  return openssl(['verify', '-x509_strict', ...(purpose === undefined ? [] : ['-purpose', purpose]), '-CAfile', caFile, leafFile]);
}
