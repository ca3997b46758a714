/**
 * Real software TPMs for tests: a local EK CA in the test's own directory, swtpm_setup
 * provisioning (RSA-2048 EK cert at 0x01c00002, ECC P-384 EK cert at 0x01c00016), and a
 * `swtpm socket` child process on free loopback ports.
 */
import { execa, type ResultPromise } from 'execa';
import { mkdir, mkdtemp, rm, writeFile, readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A CA directory that swtpm_localca fills on first use (root + intermediate). */
export interface TestCa {
  readonly dir: string;
  /** PEM files an EK chain is validated against (root and intermediate). */
  readonly bundleDir: string;
}

export async function makeTempDir(prefix: string): Promise<string> {
  return mkdtemp(join(tmpdir(), `bulwark-${prefix}-`));
}

/** Creates the config files pointing swtpm_localca at `dir` (never /var/lib/swtpm-localca). */
export async function createTestCa(dir: string): Promise<TestCa> {
  await mkdir(join(dir, 'state'), { recursive: true });
  await writeFile(
    join(dir, 'localca.conf'),
    [
      `statedir = ${join(dir, 'state')}`,
      `signingkey = ${join(dir, 'state', 'signkey.pem')}`,
      `issuercert = ${join(dir, 'state', 'issuercert.pem')}`,
      `certserial = ${join(dir, 'state', 'certserial')}`,
      '',
    ].join('\n'),
  );
  await writeFile(join(dir, 'localca.options'), '--platform-manufacturer Bulwark\n--platform-version 2.1\n--platform-model swtpm\n');
  await writeFile(
    join(dir, 'swtpm_setup.conf'),
    [
      'create_certs_tool = /usr/bin/swtpm_localca',
      `create_certs_tool_config = ${join(dir, 'localca.conf')}`,
      `create_certs_tool_options = ${join(dir, 'localca.options')}`,
      'active_pcr_banks = sha256',
      '',
    ].join('\n'),
  );
  return { dir, bundleDir: join(dir, 'bundle') };
}

/** After the first provisioning, copies the CA's root and intermediate into `bundleDir`. */
export async function exportCaBundle(ca: TestCa): Promise<string> {
  await mkdir(ca.bundleDir, { recursive: true });
  for (const name of ['swtpm-localca-rootca-cert.pem', 'issuercert.pem']) {
    await writeFile(join(ca.bundleDir, name), await readFile(join(ca.dir, 'state', name)));
  }
  return ca.bundleDir;
}

/** Provisions a fresh TPM state in `stateDir` with EK and platform certificates from `ca`. */
export async function provisionTpm(ca: TestCa, stateDir: string): Promise<void> {
  await mkdir(stateDir, { recursive: true });
  await execa(
    'swtpm_setup',
    ['--tpm2', '--tpmstate', stateDir, '--config', join(ca.dir, 'swtpm_setup.conf'), '--create-ek-cert', '--create-platform-cert', '--overwrite'],
    { timeout: 30_000 },
  );
}

async function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/** Two consecutive free loopback ports (swtpm's server port and its control port). */
export async function freePortPair(): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const port = 20000 + Math.floor(Math.random() * 40000) * 1;
    if ((await portIsFree(port)) && (await portIsFree(port + 1))) return port;
  }
  throw new Error('no free port pair found');
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** A running swtpm child process. */
export class SwtpmProcess {
  readonly stateDir: string;
  readonly port: number;
  private child: ResultPromise | undefined;

  private constructor(stateDir: string, port: number) {
    this.stateDir = stateDir;
    this.port = port;
  }

  /** The TCTI string tpm2-tools and the agent use to reach this TPM. */
  get tcti(): string {
    return `swtpm:host=127.0.0.1,port=${this.port}`;
  }

  get ctrlPort(): number {
    return this.port + 1;
  }

  static async start(stateDir: string): Promise<SwtpmProcess> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const port = await freePortPair();
      const tpm = new SwtpmProcess(stateDir, port);
      try {
        await tpm.spawn();
        return tpm;
      } catch {
        await tpm.stop();
      }
    }
    throw new Error(`swtpm did not start for ${stateDir}`);
  }

  private async spawn(): Promise<void> {
    const child = execa(
      'swtpm',
      [
        'socket',
        '--tpm2',
        '--tpmstate',
        `dir=${this.stateDir}`,
        '--server',
        `type=tcp,port=${this.port},bindaddr=127.0.0.1`,
        '--ctrl',
        `type=tcp,port=${this.ctrlPort},bindaddr=127.0.0.1`,
        '--flags',
        'not-need-init,startup-clear',
      ],
      { reject: false, stdio: 'ignore' },
    );
    this.child = child;
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline) {
      if (child.exitCode !== null) throw new Error('swtpm exited at start');
      if (!(await portIsFree(this.port))) return;
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error('swtpm did not listen');
  }

  /** Runs a tpm2-tools command against this TPM (for test set-up and tampering). */
  async tool(cmd: string, args: readonly string[], cwd?: string): Promise<string> {
    const res = await execa(cmd, [...args], {
      env: { TPM2TOOLS_TCTI: this.tcti },
      timeout: 20_000,
      ...(cwd === undefined ? {} : { cwd }),
    });
    return res.stdout;
  }

  /** Extends a sha256 PCR behind everyone's back (a tamper). */
  async extendPcr(pcr: number, digestHex: string): Promise<void> {
    await this.tool('tpm2_pcrextend', [`${pcr}:sha256=${digestHex}`]);
  }

  /**
   * A TPM reset (a reboot): resetCount grows, PCRs return to zero. The orderly
   * TPM2_Shutdown first keeps the TPM from counting a dictionary-attack failure.
   */
  async reboot(): Promise<void> {
    await this.tool('tpm2_shutdown', ['-c']);
    await execa('swtpm_ioctl', ['--tcp', `127.0.0.1:${this.ctrlPort}`, '-i'], { timeout: 10_000 });
    await this.tool('tpm2_startup', ['-c']);
  }

  async stop(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (child === undefined || child.exitCode !== null) return;
    child.kill('SIGTERM');
    await Promise.race([child, new Promise((r) => setTimeout(r, 3000))]);
    if (child.exitCode === null) child.kill('SIGKILL');
    await child.catch(() => undefined);
  }
}

/** A provisioned TPM plus its CA, started, removed again by `dispose`. */
export interface TestTpm {
  readonly ca: TestCa;
  readonly tpm: SwtpmProcess;
  dispose(): Promise<void>;
}

/** One CA shared by several TPMs, each provisioned in its own directory under `root`. */
export async function startTestTpms(root: string, count: number, ca?: TestCa): Promise<{ ca: TestCa; tpms: SwtpmProcess[]; stop(): Promise<void> }> {
  const theCa = ca ?? (await createTestCa(join(root, 'ca')));
  const tpms: SwtpmProcess[] = [];
  for (let i = 0; i < count; i++) {
    const stateDir = join(root, `tpm${i}`);
    await provisionTpm(theCa, stateDir);
    tpms.push(await SwtpmProcess.start(stateDir));
  }
  await exportCaBundle(theCa);
  return {
    ca: theCa,
    tpms,
    async stop() {
      await Promise.all(tpms.map((t) => t.stop()));
    },
  };
}

export async function removeDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}
