/**
 * Serves a Prometheus registry at `GET /metrics` (text exposition format 0.0.4) on
 * node:http, for bulwark-controller and bulwark-agent. Nothing else is served: any other
 * path is 404, any other method 405. The daemons bind only the address their config
 * names (off by default); the address is taken as given, so a non-loopback one is an
 * operator's explicit choice.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { unlink } from 'node:fs/promises';
import type { Registry } from 'prom-client';
import { BulwarkError } from '../lib/index.js';
import { errorFields, type Logger } from './logger.js';

/** Where a metrics endpoint listens: a TCP host and port, or a unix socket path. */
export type MetricsAddress = { readonly kind: 'tcp'; readonly host: string; readonly port: number } | { readonly kind: 'unix'; readonly path: string };

/**
 * Parses a metrics listen address: `HOST:PORT` (an IPv6 host in brackets, port 0 picks a
 * free one) or `unix:/ABSOLUTE/PATH`. USAGE for anything else.
 */
export function parseMetricsAddress(text: string): MetricsAddress {
  if (text.startsWith('unix:')) {
    const path = text.slice('unix:'.length);
    if (!path.startsWith('/') || path.length > 107) throw new BulwarkError('USAGE', `a metrics unix socket must be an absolute path of at most 107 bytes: ${text.slice(0, 200)}`);
    return { kind: 'unix', path };
  }
  const m = /^(\[([0-9A-Fa-f:.]+)\]|[A-Za-z0-9.-]{1,253}):([0-9]{1,5})$/.exec(text);
  const port = Number(m?.[3]);
  if (m === null || !Number.isInteger(port) || port > 65535) throw new BulwarkError('USAGE', `a metrics address is HOST:PORT or unix:/PATH, not ${text.slice(0, 200)}`);
  return { kind: 'tcp', host: m[2] ?? m[1] ?? '', port };
}

/** A listening metrics endpoint. */
export interface MetricsEndpoint {
  /** `host:port` as bound (the port picked for 0), or `unix:/path`. */
  readonly address: string;
  close(): Promise<void>;
}

/** Scrapes allowed at once; more get 503, so a scraper cannot pile up registry walks. */
const MAX_CONCURRENT_SCRAPES = 4;

/** Starts serving `registry` at `listen` (see parseMetricsAddress). IO_FAILED when the address cannot be bound. */
export async function serveMetrics(registry: Registry, listen: string, log: Logger): Promise<MetricsEndpoint> {
  const address = parseMetricsAddress(listen);
  let scraping = 0;
  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const path = (req.url ?? '').split('?')[0];
    if (path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found: metrics are at /metrics\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' }).end('method not allowed\n');
      return;
    }
    if (scraping >= MAX_CONCURRENT_SCRAPES) {
      res.writeHead(503, { 'content-type': 'text/plain; charset=utf-8', 'retry-after': '1' }).end('too many concurrent scrapes\n');
      return;
    }
    scraping++;
    registry.metrics().then(
      (text) => {
        scraping--;
        res.writeHead(200, { 'content-type': registry.contentType, 'cache-control': 'no-store' }).end(req.method === 'HEAD' ? undefined : text);
      },
      (err: unknown) => {
        scraping--;
        log.warn(errorFields(err), 'metrics scrape failed');
        res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end('metrics collection failed\n');
      },
    );
  };
  const server: Server = createServer(handle);
  // Idle keep-alive connections do not hold the daemon's stop.
  server.keepAliveTimeout = 5000;
  if (address.kind === 'unix') await unlink(address.path).catch(() => undefined);
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => reject(new BulwarkError('IO_FAILED', `cannot serve metrics on ${listen}: ${err.message}`, {}, { cause: err })));
    if (address.kind === 'unix') server.listen(address.path, resolve);
    else server.listen(address.port, address.host, resolve);
  });
  server.on('error', (err) => log.warn(errorFields(err), 'metrics server error'));
  const bound = server.address();
  const shown =
    address.kind === 'unix' ? `unix:${address.path}` : typeof bound === 'object' && bound !== null ? `${bound.family === 'IPv6' ? `[${bound.address}]` : bound.address}:${bound.port}` : listen;
  log.info({ metrics: shown }, 'serving Prometheus metrics at /metrics');
  return {
    address: shown,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
