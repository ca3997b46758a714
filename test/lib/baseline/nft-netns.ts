/**
 * Real nft in throwaway network namespaces, for the nftables tests, the fixture recorder
 * and the benchmark. Needs root (CI runs as root). Test code.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import type { NftablesBaseline } from '../../../lib/baseline/index.js';

/** The default baseline: ssh and https in, loopback and replies, essential ICMP, forward dropped. */
export const DEFAULT_BASELINE: NftablesBaseline = {
  table: 'bulwark',
  inbound: [
    { protocol: 'tcp', port: 22, comment: 'ssh' },
    { protocol: 'tcp', port: 443, comment: 'https' },
  ],
  loopback: true,
  established: true,
  icmp: 'essential',
  forward: { policy: 'drop', exemptions: [] },
  foreignTables: [],
};

/** A fresh network namespace; `run` executes a command inside it. */
export interface Netns {
  readonly name: string;
  /** Runs argv inside the namespace; returns stdout; throws with stderr on failure. */
  run(argv: readonly string[], input?: string): string;
  /** `nft -f -` with the given text. */
  nft(text: string, check?: boolean): void;
  /** `nft -j list ruleset`. */
  listJson(): string;
  delete(): void;
}

export function createNetns(prefix = 'bwnft'): Netns {
  const name = `${prefix}-${randomBytes(4).toString('hex')}`;
  execFileSync('ip', ['netns', 'add', name]);
  const run = (argv: readonly string[], input?: string): string => {
    const [cmd, ...args] = argv;
    if (cmd === undefined) throw new Error('empty command');
    try {
      return execFileSync('ip', ['netns', 'exec', name, cmd, ...args], { input, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'], maxBuffer: 64 * 1024 * 1024 });
    } catch (err) {
      const stderr = typeof err === 'object' && err !== null && 'stderr' in err ? String(err.stderr) : '';
      throw new Error(`${argv.join(' ')} failed in netns ${name}: ${stderr}`, { cause: err });
    }
  };
  return {
    name,
    run,
    nft: (text, check = false) => void run(check ? ['nft', '-c', '-f', '-'] : ['nft', '-f', '-'], text),
    listJson: () => run(['nft', '-j', 'list', 'ruleset']),
    delete: () => execFileSync('ip', ['netns', 'delete', name]),
  };
}

/** Runs `fn` with a fresh namespace, deleting it afterwards even when `fn` throws. */
export async function withNetns<T>(fn: (ns: Netns) => Promise<T> | T, prefix?: string): Promise<T> {
  const ns = createNetns(prefix);
  try {
    return await fn(ns);
  } finally {
    ns.delete();
  }
}
