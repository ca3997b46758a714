/**
 * nftables through the `nft` command (nftables 1.0), run with execa: argument arrays after
 * a configurable prefix (["nft"], or ["ip", "netns", "exec", NS, "nft"] in tests), a
 * timeout per command, output capped. What nft prints is returned as text; parsing and
 * judging it is lib/baseline's job.
 */
import { execa, type ResultPromise } from 'execa';
import { Backoff } from '../../lib/index.js';
import { BulwarkError } from '../../lib/index.js';

/** `nft -j list ruleset` of a host with a few hundred rules is well under a MiB; anything past 16 MiB is refused. */
export const MAX_NFT_OUTPUT_BYTES = 16 * 1024 * 1024;
/** A ruleset handed to `nft -f` (Bulwark's own table is a few KiB). */
const MAX_NFT_INPUT_BYTES = 1024 * 1024;
/** Most stderr kept in an error message. */
const MAX_STDERR_CHARS = 2000;
/** Waits before `nft monitor` is started again after it exited: full jitter, ceilings 100 ms doubling to 5 s. */
const MONITOR_RESTART = { baseMs: 100, capMs: 5000 } as const;

export interface NftablesOptions {
  /** The command and its leading arguments; nft's own arguments follow. */
  readonly command: readonly string[];
  /** Each command is killed after this long (NFT_TOOL_TIMEOUT). */
  readonly timeoutMs?: number;
  /** Captured output per command (NFT_TOOL_OUTPUT_TOO_LARGE beyond it). */
  readonly maxOutputBytes?: number;
}

/** A running `nft monitor ruleset`, restarted when it exits until stopped. */
export interface NftMonitor {
  /** Process id of the current monitor process (undefined between restarts). */
  readonly pid: number | undefined;
  /** Times the monitor process was started. */
  readonly starts: number;
  stop(): Promise<void>;
}

/** nftables over the nft command; what nft prints is returned unparsed (untrusted text). */
export class Nftables {
  private readonly command: readonly string[];
  private readonly timeoutMs: number;
  private readonly maxOutputBytes: number;

  constructor(opts: NftablesOptions) {
    if (opts.command.length === 0 || opts.command.some((a) => a.length === 0)) throw new BulwarkError('USAGE', 'the nft command needs a program and no empty arguments');
    this.command = [...opts.command];
    this.timeoutMs = opts.timeoutMs ?? 30_000;
    this.maxOutputBytes = opts.maxOutputBytes ?? MAX_NFT_OUTPUT_BYTES;
  }

  /** The whole ruleset as `nft -j list ruleset` prints it (JSON text, unparsed). */
  async listRuleset(): Promise<string> {
    return this.run(['-j', 'list', 'ruleset']);
  }

  /** `nft -c -f -`: checks a transaction without applying it; NFT_TOOL_FAILED with nft's complaint when it does not pass. */
  async check(text: string): Promise<void> {
    await this.run(['-c', '-f', '-'], text);
  }

  /** `nft -f -`: applies a transaction; nft commits a file as one transaction, so it applies whole or not at all. */
  async apply(text: string): Promise<void> {
    await this.run(['-f', '-'], text);
  }

  /**
   * `nft monitor ruleset`: every output (one line per changed table, chain, set or rule)
   * calls `onChange`. When the process exits it is started again after a jittered wait,
   * so a killed monitor costs a moment of notice, never the watch itself; the round timer
   * still catches what happened meanwhile.
   */
  monitor(onChange: () => void, onExit: (reason: string) => void = () => undefined): NftMonitor {
    const [program, ...prefix] = this.command;
    if (program === undefined) throw new BulwarkError('USAGE', 'no nft command');
    const backoff = new Backoff(MONITOR_RESTART);
    let child: ResultPromise | undefined;
    let stopped = false;
    let restartTimer: NodeJS.Timeout | undefined;
    let starts = 0;
    const spawn = (): void => {
      if (stopped) return;
      starts++;
      const proc = execa(program, [...prefix, 'monitor', 'ruleset'], { buffer: false, reject: false, stdin: 'ignore', stderr: 'ignore' });
      child = proc;
      let seenOutput = false;
      proc.stdout.on('data', () => {
        // Nothing is kept: the ruleset is read again in the round this asks for.
        if (!seenOutput) {
          seenOutput = true;
          backoff.reset();
        }
        onChange();
      });
      void proc.then((result) => {
        if (child === proc) child = undefined;
        if (stopped) return;
        onExit(result.failed ? (result.shortMessage ?? 'failed') : 'exited');
        restartTimer = setTimeout(spawn, backoff.next().delayMs);
      });
    };
    spawn();
    return {
      get pid() {
        return child?.pid;
      },
      get starts() {
        return starts;
      },
      async stop(): Promise<void> {
        stopped = true;
        if (restartTimer !== undefined) clearTimeout(restartTimer);
        const proc = child;
        child = undefined;
        if (proc === undefined) return;
        proc.kill('SIGTERM');
        await proc.catch(() => undefined);
      },
    };
  }

  /** Runs nft with `args` (and `input` on stdin); returns stdout. */
  private async run(args: readonly string[], input?: string): Promise<string> {
    const [program, ...prefix] = this.command;
    if (program === undefined) throw new BulwarkError('USAGE', 'no nft command');
    if (input !== undefined && Buffer.byteLength(input) > MAX_NFT_INPUT_BYTES) {
      throw new BulwarkError('USAGE', `an nft transaction of more than ${MAX_NFT_INPUT_BYTES} bytes`, { bytes: Buffer.byteLength(input) });
    }
    const what = `nft ${args.join(' ')}`;
    const result = await execa(program, [...prefix, ...args], {
      timeout: this.timeoutMs,
      forceKillAfterDelay: 1000,
      reject: false,
      maxBuffer: this.maxOutputBytes,
      encoding: 'utf8',
      ...(input === undefined ? { stdin: 'ignore' as const } : { input }),
    });
    if (result.timedOut) throw new BulwarkError('NFT_TOOL_TIMEOUT', `${what} did not finish within ${this.timeoutMs} ms`, { timeoutMs: this.timeoutMs });
    if (result.isMaxBuffer) throw new BulwarkError('NFT_TOOL_OUTPUT_TOO_LARGE', `${what} printed more than ${this.maxOutputBytes} bytes`, { cap: this.maxOutputBytes });
    if (result.failed) {
      const stderr = typeof result.stderr === 'string' ? result.stderr.trim().slice(0, MAX_STDERR_CHARS) : '';
      const status = result.exitCode === undefined ? (result.signal === undefined ? '' : ` (${result.signal})`) : ` (exit ${result.exitCode})`;
      throw new BulwarkError('NFT_TOOL_FAILED', `${what} failed${status}: ${stderr === '' ? (result.shortMessage ?? 'no error output') : stderr}`, { exitCode: result.exitCode }, { cause: new Error(result.shortMessage ?? 'nft failed') });
    }
    return typeof result.stdout === 'string' ? result.stdout : '';
  }
}
