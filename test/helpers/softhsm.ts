/**
 * SoftHSM2 tokens in a temporary directory, for tests. SoftHSM2 reads SOFTHSM2_CONF once, at
 * C_Initialize, and Bulwark loads a module once per process: so one test file uses one
 * SoftHSM2 (this directory, set in process.env before the first Hsm is opened) and makes
 * as many tokens in it as it needs. Tokens are made with softhsm2-util, an independent
 * client; pkcs11-tool (OpenSC) reads them back.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';

export const SOFTHSM_MODULE = '/usr/lib/softhsm/libsofthsm2.so';

export interface SoftHsm {
  readonly dir: string;
  readonly tokenDir: string;
  /** The environment every child (softhsm2-util, pkcs11-tool, bulwarkctl) needs. */
  readonly env: Record<string, string>;
  /** Makes a token with this label, user PIN and SO PIN; returns its directory's parent. */
  initToken(label: string, pin: string, soPin?: string): Promise<void>;
  /** pkcs11-tool with --module and the token label, returning stdout. */
  pkcs11Tool(args: readonly string[]): Promise<string>;
  cleanup(): Promise<void>;
}

/** A SoftHSM2 configuration in a temp dir; sets process.env.SOFTHSM2_CONF for this process. */
export async function startSoftHsm(prefix = 'softhsm'): Promise<SoftHsm> {
  const dir = await mkdtemp(join(tmpdir(), `bulwark-${prefix}-`));
  const tokenDir = join(dir, 'tokens');
  await execa('mkdir', ['-p', tokenDir]);
  const conf = join(dir, 'softhsm2.conf');
  await writeFile(conf, `directories.tokendir = ${tokenDir}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n`);
  process.env['SOFTHSM2_CONF'] = conf;
  const env = { SOFTHSM2_CONF: conf };
  return {
    dir,
    tokenDir,
    env,
    async initToken(label, pin, soPin = '5678') {
      await execa('softhsm2-util', ['--init-token', '--free', '--label', label, '--pin', pin, '--so-pin', soPin], { env, timeout: 30_000 });
    },
    async pkcs11Tool(args) {
      const r = await execa('pkcs11-tool', ['--module', SOFTHSM_MODULE, ...args], { env, timeout: 30_000 });
      return r.stdout;
    },
    async cleanup() {
      await rm(dir, { recursive: true, force: true });
    },
  };
}
