/**
 * Waiting between retries, for both daemons: an abortable sleep, and NATS reconnect delays
 * drawn from the shared full-jitter backoff (lib/backoff.ts), so a fleet that lost its NATS
 * server (a controller with an embedded one restarted) does not reconnect in lockstep.
 */
import type { ConnectionOptions, NatsConnection } from 'nats';
import { Backoff, type BackoffPolicy, type RandomSource } from '../lib/index.js';
import type { Logger } from './logger.js';

/** Resolves after `ms`, or at once when `signal` aborts (never rejects). */
export async function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted === true) return;
  await new Promise<void>((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** Reconnect waits of a NATS client: at most 250 ms after the first failure, growing to 2 s. */
export const NATS_RECONNECT_BACKOFF: BackoffPolicy = { baseMs: 250, capMs: 2000 };

/**
 * Reconnect delays for one NATS connection. nats.js asks its `reconnectDelayHandler` once
 * per pass of its dial loop (a dial, or a wait before one), so the attempt count grows
 * with the time spent disconnected; it starts again at 0 once the client is reconnected.
 */
export class NatsReconnect {
  private readonly backoff: Backoff;

  constructor(policy: BackoffPolicy = NATS_RECONNECT_BACKOFF, random?: RandomSource) {
    this.backoff = new Backoff(policy, random);
  }

  /** Connection options that make nats.js wait as this backoff says, forever. */
  options(): Pick<ConnectionOptions, 'maxReconnectAttempts' | 'reconnectDelayHandler'> {
    return { maxReconnectAttempts: -1, reconnectDelayHandler: () => this.backoff.next().delayMs };
  }

  /** Logs the connection going away (warn) and coming back (info), and resets the backoff then. */
  follow(nc: NatsConnection, log: Logger): void {
    void (async () => {
      for await (const s of nc.status()) {
        if (s.type === 'disconnect' && !nc.isClosed() && !nc.isDraining()) log.warn({ server: String(s.data) }, 'lost the NATS connection; reconnecting');
        if (s.type === 'reconnect') {
          log.info({ server: String(s.data), attempts: this.backoff.attempt }, 'NATS connection is back');
          this.backoff.reset();
        }
      }
    })().catch(() => undefined);
  }
}
