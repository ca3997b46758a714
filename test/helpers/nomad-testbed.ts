/**
 * Everything the Nomad gate runs against, real: a nats-server with the controller's JetStream
 * store (trust records, the lease), a Nomad server with clients, the HTTP client, and
 * reconcilers (replicas) started on demand. Trusted nodes get a fresh verdict every second,
 * as the verifier's rounds would give them. Used by the integration tests and the benchmark.
 */
import { join } from 'node:path';
import { connect, type NatsConnection } from 'nats';
import { NomadHttpClient } from '../../controller/nomad/client.js';
import { NomadReconciler, type AppliedAction, type NomadReconcilerOptions, type ReconcilerLease, type TrustSource } from '../../controller/nomad/reconciler.js';
import { KvLease } from '../../controller/state/lease.js';
import { NatsServerProcess } from '../../controller/state/embedded-nats.js';
import { ControllerStore } from '../../controller/state/store.js';
import type { NomadNode } from '../../lib/nomad/nodes.js';
import type { TrustState } from '../../lib/verdict.js';
import { NomadCluster } from './nomad.js';
import { setTrust, storeTrustSource } from './nomad-trust.js';
import { removeDir } from './swtpm.js';
import { recordingLogger } from './logs.js';

/** A log line a reconciler wrote. */
export interface LoggedLine {
  readonly replica: string;
  readonly level: string;
  readonly msg: string;
  readonly fields: Record<string, unknown>;
  readonly at: number;
}

/** One Node event as a test-side observer saw it arrive. */
export interface ObservedNodeEvent {
  readonly at: number;
  readonly index: number;
  readonly type: string;
  readonly name: string;
  readonly status: string;
  readonly eligibility: string;
  readonly drain: boolean;
}

/** Fast gate timings for tests: a 4 s freshness window, 5 s drain deadline, 0.5 s passes. */
export const GATE_DEFAULTS = {
  freshnessMs: 4000,
  drainUntrusted: true,
  drainDeadlineMs: 5000,
  reconcileIntervalMs: 500,
  backoff: { initialMs: 200, maxMs: 1000 },
} as const satisfies NomadReconcilerOptions;

/** NATS + store + Nomad cluster + HTTP client + reconciler replicas, all real (test code). */
export class NomadTestbed {
  readonly root: string;
  readonly nats: NatsServerProcess;
  readonly nc: NatsConnection;
  readonly store: ControllerStore;
  readonly trust: TrustSource & { close(): Promise<void> };
  readonly cluster: NomadCluster;
  readonly nomad: NomadHttpClient;
  readonly actions: (AppliedAction & { readonly replica: string })[] = [];
  readonly logs: LoggedLine[] = [];
  readonly events: ObservedNodeEvent[] = [];
  /** Every lease attempt of every replica, in order, and whether it got the lease. */
  readonly leaseAttempts: { readonly replica: string; readonly held: boolean }[] = [];
  /** Nodes whose trusted verdict is renewed every second (an attesting agent). */
  readonly fresh = new Set<string>();
  private readonly reconcilers = new Map<string, NomadReconciler>();
  private readonly refresher: NodeJS.Timeout;
  private readonly observer = new AbortController();
  private readonly observed: Promise<void>;

  private constructor(root: string, nats: NatsServerProcess, nc: NatsConnection, store: ControllerStore, trust: TrustSource & { close(): Promise<void> }, cluster: NomadCluster) {
    this.root = root;
    this.nats = nats;
    this.nc = nc;
    this.store = store;
    this.trust = trust;
    this.cluster = cluster;
    this.nomad = new NomadHttpClient({ address: cluster.address, timeoutMs: 3000, env: {} });
    this.refresher = setInterval(() => void this.refresh(), 1000);
    this.observed = this.observe();
  }

  /** Starts NATS, the store and a Nomad cluster whose clients are named after Bulwark node ids. */
  static async start(root: string, nodeIds: readonly string[]): Promise<NomadTestbed> {
    const nats = await NatsServerProcess.start({ storeDir: join(root, 'nats') });
    let nc: NatsConnection | null = null;
    try {
      nc = await connect({ servers: nats.url, name: 'bulwark-nomad-test' });
      const store = await ControllerStore.open(nc);
      const trust = await storeTrustSource(store);
      const cluster = await NomadCluster.start({ root: join(root, 'nomad'), clientNames: nodeIds });
      return new NomadTestbed(root, nats, nc, store, trust, cluster);
    } catch (err) {
      await nc?.close();
      await nats.stop();
      throw err;
    }
  }

  private async refresh(): Promise<void> {
    for (const id of this.fresh) {
      try {
        await setTrust(this.store, id, 'trusted');
      } catch {
        // NATS going away at the end of a test
      }
    }
  }

  /** Records every Node event with its arrival time (the test's own view of Nomad). */
  private async observe(): Promise<void> {
    while (!this.observer.signal.aborted) {
      try {
        for await (const frame of this.nomad.streamEvents({ topics: ['Node'], signal: this.observer.signal })) {
          if (frame.kind !== 'events') continue;
          const at = performance.now();
          for (const e of frame.events) {
            if (e.node === null) continue;
            this.events.push({ at, index: e.index, type: e.type, name: e.node.name, status: e.node.status, eligibility: e.node.eligibility, drain: e.node.drain });
          }
        }
      } catch {
        // Nomad restarting: try again
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  /** Sets a node's trust state in the store; `trusted` also keeps its verdicts fresh from now on. */
  async setTrust(nodeId: string, state: TrustState, opts: { keepFresh?: boolean } = {}): Promise<void> {
    if (state === 'trusted' && opts.keepFresh !== false) this.fresh.add(nodeId);
    else this.fresh.delete(nodeId);
    await setTrust(this.store, nodeId, state);
  }

  /** Starts a reconciler replica with its own lease holder id. */
  startReconciler(replica: string, overrides: Partial<NomadReconcilerOptions> = {}): NomadReconciler {
    const kv = new KvLease(this.store.leases, 'nomad-reconciler', replica, 3000);
    const lease: ReconcilerLease = {
      tryAcquire: async (now) => {
        const held = await kv.tryAcquire(now);
        this.leaseAttempts.push({ replica, held });
        return held;
      },
      release: () => kv.release(),
    };
    const r = new NomadReconciler(this.nomad, this.trust, lease, {
      ...GATE_DEFAULTS,
      ...overrides,
      onAction: (a) => this.actions.push({ ...a, replica }),
      log: recordingLogger(({ level, msg, fields }) => this.logs.push({ replica, level, msg, fields, at: Date.now() })),
    });
    this.reconcilers.set(replica, r);
    r.start();
    return r;
  }

  async stopReconciler(replica: string): Promise<void> {
    await this.reconcilers.get(replica)?.stop();
    this.reconcilers.delete(replica);
  }

  /** The Nomad node ID of a node name. */
  async nodeId(name: string): Promise<string> {
    const stub = (await this.nomad.listNodes()).find((n) => n.name === name);
    if (stub === undefined) throw new Error(`no Nomad node named ${name}`);
    return stub.id;
  }

  async node(name: string): Promise<NomadNode> {
    return this.nomad.readNode(await this.nodeId(name));
  }

  async stop(): Promise<void> {
    clearInterval(this.refresher);
    this.fresh.clear();
    for (const replica of [...this.reconcilers.keys()]) await this.stopReconciler(replica);
    this.observer.abort();
    await this.observed;
    await this.cluster.stop();
    await this.trust.close();
    await this.nc.close();
    await this.nats.stop();
    await removeDir(this.root);
  }
}
