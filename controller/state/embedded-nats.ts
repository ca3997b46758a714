/**
 * A `nats-server -js` child process: the controller's embedded default when no NATS URL
 * is configured, and the real server the tests run against.
 */
import { execa, type ResultPromise } from 'execa';
import { mkdir } from 'node:fs/promises';
import { createConnection, createServer } from 'node:net';
import { BulwarkError } from '../../lib/index.js';

export interface NatsServerOptions {
  /** JetStream store directory. */
  readonly storeDir: string;
  /** 0 picks a free loopback port. */
  readonly port?: number;
  readonly host?: string;
  readonly binary?: string;
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

/** A running nats-server with JetStream, owned by this process. */
export class NatsServerProcess {
  readonly url: string;
  readonly port: number;
  private readonly child: ResultPromise;
  private stderr = '';

  private constructor(child: ResultPromise, host: string, port: number) {
    this.child = child;
    this.port = port;
    this.url = `nats://${host}:${port}`;
    child.stderr?.on('data', (chunk: Buffer) => {
      this.stderr = (this.stderr + chunk.toString()).slice(-4096);
    });
  }

  static async start(opts: NatsServerOptions): Promise<NatsServerProcess> {
    const host = opts.host ?? '127.0.0.1';
    await mkdir(opts.storeDir, { recursive: true });
    for (let attempt = 0; attempt < 5; attempt++) {
      const port = opts.port !== undefined && opts.port !== 0 ? opts.port : await pickPort(host);
      const child = execa(opts.binary ?? 'nats-server', ['-js', '-a', host, '-p', String(port), '-sd', opts.storeDir], {
        reject: false,
        stdout: 'ignore',
        stderr: 'pipe',
      });
      const server = new NatsServerProcess(child, host, port);
      const deadline = Date.now() + 10_000;
      while (Date.now() < deadline) {
        if (child.exitCode !== null) break;
        if (await canConnect(host, port)) return server;
        await new Promise((r) => setTimeout(r, 25));
      }
      const why = server.stderr;
      await server.stop();
      if (opts.port !== undefined && opts.port !== 0) {
        throw new BulwarkError('NATS_SERVER_FAILED', `nats-server did not start on ${host}:${port}: ${why.trim().slice(-300)}`);
      }
    }
    throw new BulwarkError('NATS_SERVER_FAILED', 'nats-server did not start after 5 attempts');
  }

  /** Stops the server; SIGKILL after a grace period. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    if (this.child.exitCode !== null) return;
    this.child.kill(signal);
    const done = await Promise.race([this.child.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 5000))]);
    if (!done) {
      this.child.kill('SIGKILL');
      await this.child;
    }
  }
}
