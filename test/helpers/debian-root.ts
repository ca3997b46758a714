/**
 * Clean Debian roots for the package tests: test/tools/debian-root.sh makes a debootstrap
 * minbase root once per machine and suite (cached in /var/cache/bulwark, a policy-rc.d
 * exiting 101 inside); each test works on its own copy, so the cache stays clean. Commands
 * run in the copy with chroot inside a new mount and PID namespace (unshare) with its own
 * /proc: nothing they mount outlives them, and every process they start (the controller's
 * nats-server) dies with them. Also builds the packages with packaging/build-deb.sh.
 */
import { execa, type ResultPromise } from 'execa';
import { existsSync, lstatSync } from 'node:fs';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

/** The repository root, found from dist/test/helpers (compiled) or test/helpers (source). */
export function repoRoot(): string {
  let dir = here;
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, 'packaging', 'build-deb.sh'))) return dir;
    dir = dirname(dir);
  }
  throw new Error(`no packaging/build-deb.sh above ${here}`);
}

export type DebianSuite = 'bookworm' | 'trixie';

/** The cached root of `suite` (made on first use, minutes), or the reason it cannot be made. */
export async function ensureDebianRoot(suite: DebianSuite): Promise<{ readonly path: string } | { readonly reason: string }> {
  const r = await execa('bash', [join(repoRoot(), 'test', 'tools', 'debian-root.sh'), suite], { reject: false, timeout: 30 * 60_000 });
  const path = String(r.stdout).trim().split('\n').pop() ?? '';
  if (r.exitCode === 0 && path !== '' && existsSync(path)) return { path };
  return { reason: `debian-root.sh ${suite} exited ${String(r.exitCode)}: ${String(r.stderr).trim().split('\n').slice(-3).join(' | ')}` };
}

/** Builds the packages into `outDir` (BULWARK_DEB_VERSION = `version` when given); returns the .deb paths. */
export async function buildPackages(outDir: string, version?: string): Promise<readonly string[]> {
  const env: Record<string, string> = { BULWARK_DEB_OUT: outDir };
  if (version !== undefined) env['BULWARK_DEB_VERSION'] = version;
  const r = await execa('bash', [join(repoRoot(), 'packaging', 'build-deb.sh')], { env, reject: false, timeout: 30 * 60_000 });
  if (r.exitCode !== 0) throw new Error(`build-deb.sh exited ${String(r.exitCode)}: ${String(r.stderr).slice(-2000)}`);
  return String(r.stdout).trim().split('\n').filter((l) => l.endsWith('.deb'));
}

/** What a command in the root gave. */
export interface RootResult {
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** One test's own copy of a cached root. */
export class DebianRoot {
  private constructor(readonly path: string) {}

  /** Copies with `cp -a` (fs.cp keeps neither owners nor device nodes). */
  static async copy(cached: string, dir: string): Promise<DebianRoot> {
    await rm(dir, { recursive: true, force: true });
    await mkdir(dirname(dir), { recursive: true });
    await execa('cp', ['-a', cached, dir]);
    return new DebianRoot(dir);
  }

  /** argv prefixed to run a command inside: its own mount and PID namespace and /proc. */
  private wrap(argv: readonly string[], env: Record<string, string>, user?: string): string[] {
    const asUser = user === undefined ? [] : ['setpriv', `--reuid=${user}`, `--regid=${user}`, '--init-groups'];
    // env -i: tap adds NODE_OPTIONS (--import of its process-info hook, a path on this host)
    // to every child's environment; the root sees only `env`.
    const vars = Object.entries(env).map(([k, v]) => `${k}=${v}`);
    return ['-i', ...vars, 'unshare', '--mount', '--pid', '--fork', `--mount-proc=${join(this.path, 'proc')}`, 'chroot', this.path, ...asUser, ...argv];
  }

  /** Runs `argv` inside (as root, or as `user`) to its end. */
  async run(argv: readonly string[], opts: { readonly user?: string; readonly env?: Record<string, string>; readonly timeoutMs?: number } = {}): Promise<RootResult> {
    const env = { DEBIAN_FRONTEND: 'noninteractive', LC_ALL: 'C.UTF-8', PATH: '/usr/sbin:/usr/bin:/sbin:/bin', ...opts.env };
    const r = await execa('env', this.wrap(argv, env, opts.user), { reject: false, env, extendEnv: false, stdin: 'ignore', timeout: opts.timeoutMs ?? 10 * 60_000 });
    return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
  }

  /** Starts `argv` inside as a long-running process (stop it with {@link stopProcess}). */
  spawn(argv: readonly string[], opts: { readonly user?: string; readonly env?: Record<string, string> } = {}): ResultPromise {
    const env = { LC_ALL: 'C.UTF-8', PATH: '/usr/sbin:/usr/bin:/sbin:/bin', ...opts.env };
    return execa('env', this.wrap(argv, env, opts.user), { reject: false, env, extendEnv: false, stdin: 'ignore', stdout: 'pipe', stderr: 'pipe' });
  }

  /** A file of the root (path as seen inside). */
  async readFile(inside: string): Promise<string> {
    return readFile(join(this.path, inside), 'utf8');
  }

  /** Whether `inside` exists in the root (a symbolic link counts: its target is resolved inside the root, not here). */
  exists(inside: string): boolean {
    try {
      lstatSync(join(this.path, inside));
      return true;
    } catch {
      return false;
    }
  }

  async remove(): Promise<void> {
    await rm(this.path, { recursive: true, force: true });
  }
}

/**
 * Stops a process started with {@link DebianRoot.spawn}: SIGTERM to the namespace's first
 * process (the command itself: chroot, setpriv and the /usr/bin wrappers exec), then waits
 * for unshare to end, which takes everything else in the namespace with it.
 */
export async function stopProcess(child: ResultPromise): Promise<number> {
  const pid = child.pid;
  if (pid !== undefined) {
    const children = await readFile(`/proc/${String(pid)}/task/${String(pid)}/children`, 'utf8').catch(() => '');
    for (const c of children.trim().split(/\s+/).filter((s) => s !== '')) {
      try {
        process.kill(Number(c), 'SIGTERM');
      } catch {
        // Already gone.
      }
    }
  }
  const r = await child;
  return r.exitCode ?? -1;
}
