/**
 * A nats-server child process started from a config file (`nats-server -c FILE`), owned by
 * this process: the embedded server once NATS authentication is on, and the real server the
 * tests run against. The config is rendered for the port picked, written 0600, and reloaded
 * in place (SIGHUP) when identities change; a reload counts as applied only once the
 * server logs "Reloaded server configuration".
 */
import { execa, type ResultPromise } from 'execa';
import { createConnection, createServer } from 'node:net';
import { BulwarkError } from '../../lib/index.js';
import { writeSecretFile } from '../../daemon/index.js';

/** What nats-server 2.9/2.10 logs after applying a reload, and after refusing one. */
const RELOADED = 'Reloaded server configuration';
const RELOAD_FAILED = 'Failed to reload server configuration';

export interface ConfiguredNatsServerOptions {
  /** Where the config is written (0600); its directory is created 0700. */
  readonly configPath: string;
  /** Renders the config for a port (the one picked, or `port`). */
  readonly render: (port: number) => string;
  /** Interface probed for readiness; must be the config's `host`. */
  readonly host?: string;
  /** 0 or absent: a free loopback port is picked (and another on a collision). */
  readonly port?: number;
  readonly binary?: string;
  readonly startTimeoutMs?: number;
}

async function pickPort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

async function canConnect(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = createConnection({ host, port });
    sock.once('connect', () => {
      sock.destroy();
      resolve(true);
    });
    sock.once('error', () => resolve(false));
  });
}

async function pause(ms: number): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
}

/** Asks a running nats-server (by pid) to reload its config file: SIGHUP, as `nats-server --signal reload=PID` sends. */
export function signalNatsServerReload(pid: number): void {
  try {
    process.kill(pid, 'SIGHUP');
  } catch (err) {
    throw new BulwarkError('NATS_AUTH_RELOAD_FAILED', `cannot signal nats-server ${pid}`, { pid }, { cause: err });
  }
}

/** A running nats-server started from a config file. */
export class ConfiguredNatsServer {
  readonly host: string;
  readonly port: number;
  readonly configPath: string;
  private readonly child: ResultPromise;
  private readonly render: (port: number) => string;
  private tail = '';
  private partial = '';
  private reloads = 0;
  private reloadFailures: string[] = [];

  private constructor(child: ResultPromise, opts: ConfiguredNatsServerOptions, host: string, port: number) {
    this.child = child;
    this.host = host;
    this.port = port;
    this.configPath = opts.configPath;
    this.render = opts.render;
    const onData = (chunk: Buffer): void => this.onLog(chunk.toString());
    child.stderr?.on('data', onData);
    child.stdout?.on('data', onData);
  }

  /** Renders and writes the config, starts nats-server and waits until it accepts TCP connections. */
  static async start(opts: ConfiguredNatsServerOptions): Promise<ConfiguredNatsServer> {
    const host = opts.host ?? '127.0.0.1';
    const fixed = opts.port !== undefined && opts.port !== 0;
    let why = '';
    for (let attempt = 0; attempt < 5; attempt++) {
      const port = fixed && opts.port !== undefined ? opts.port : await pickPort(host);
      await writeSecretFile(opts.configPath, opts.render(port));
      const child = execa(opts.binary ?? 'nats-server', ['-c', opts.configPath], { reject: false, stdout: 'pipe', stderr: 'pipe' });
      const server = new ConfiguredNatsServer(child, opts, host, port);
      const deadline = Date.now() + (opts.startTimeoutMs ?? 10_000);
      while (Date.now() < deadline && child.exitCode === null) {
        if (await canConnect(host, port)) return server;
        await pause(25);
      }
      why = server.tail.trim().slice(-400);
      await server.stop();
      if (fixed) break;
    }
    throw new BulwarkError('NATS_SERVER_FAILED', `nats-server did not start with ${opts.configPath}: ${why}`);
  }

  /** The server's process id (for `kill -HUP`). */
  get pid(): number {
    const pid = this.child.pid;
    if (pid === undefined) throw new BulwarkError('NATS_SERVER_FAILED', 'nats-server has no process id');
    return pid;
  }

  get url(): string {
    return `tls://${this.host}:${this.port}`;
  }

  /** The last few KiB of the server's log (for failure messages). */
  get log(): string {
    return this.tail;
  }

  private onLog(text: string): void {
    this.tail = (this.tail + text).slice(-8192);
    const lines = (this.partial + text).split('\n');
    this.partial = lines.pop() ?? '';
    for (const line of lines) {
      if (line.includes(RELOAD_FAILED)) this.reloadFailures.push(line.slice(line.indexOf(RELOAD_FAILED)));
      else if (line.includes(RELOADED)) this.reloads++;
    }
  }

  /**
   * Re-renders the config for this port, writes it (0600) and has the server reload it.
   * Resolves once the server reports the reload applied; throws NATS_AUTH_RELOAD_FAILED if
   * it reports an error (it then keeps the previous config), exits, or says nothing in time.
   */
  async reload(timeoutMs = 10_000): Promise<void> {
    await writeSecretFile(this.configPath, this.render(this.port));
    const reloadsBefore = this.reloads;
    const failuresBefore = this.reloadFailures.length;
    signalNatsServerReload(this.pid);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.reloads > reloadsBefore) return;
      const failure = this.reloadFailures[failuresBefore];
      if (failure !== undefined) throw new BulwarkError('NATS_AUTH_RELOAD_FAILED', `nats-server kept its previous config: ${failure.slice(0, 400)}`);
      if (this.child.exitCode !== null) throw new BulwarkError('NATS_AUTH_RELOAD_FAILED', 'nats-server exited during a reload');
      if (Date.now() > deadline) throw new BulwarkError('NATS_AUTH_RELOAD_FAILED', `nats-server did not report a reload within ${timeoutMs} ms`);
      await pause(20);
    }
  }

  /** Stops the server; SIGKILL after a grace period. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill(signal);
    const done = await Promise.race([this.child.then(() => true), pause(5000).then(() => false)]);
    if (!done) {
      this.child.kill('SIGKILL');
      await this.child;
    }
  }
}
