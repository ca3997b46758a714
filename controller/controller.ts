/**
 * bulwark-controller, wired: NATS (embedded or configured), the JetStream store, the
 * registrar and verifier behind NATS queue groups and gRPC, and the scheduler that pulls
 * evidence and marks silent nodes stale while this replica holds the lease.
 */
import { createPrivateKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { connect, headers, type ConnectionOptions, type Msg, type MsgHdrs, type NatsConnection, type Subscription } from 'nats';
import { toHex } from '../lib/index.js';
import { hostKeyFingerprint } from '../lib/dsse/index.js';
import { BulwarkError, toBulwarkError } from '../lib/index.js';
import { errorFields, natsClientAuthOptions, NatsReconnect, readBuildInfo, serveMetrics, type Logger, type MetricsEndpoint, type NatsClientCredentials } from '../daemon/index.js';
import { NODE_SUBJECTS, nodeIdFromSubject, type NodeSubjectKind } from '../lib/nats-auth/index.js';
import { NatsIdentitySync, startEmbeddedNats, type EmbeddedNats } from './nats-auth/index.js';
import { parsePemBundle } from '../lib/tpm/index.js';
import { SUBJECTS, wire, type ControllerStatusMsg } from '../proto/index.js';
import { TRUST_STATES } from '../lib/index.js';
import { ControllerMetrics, controllerVersion } from './metrics/index.js';
import { quoteSelection, type ControllerConfig } from './config/index.js';
import { createAppraisers } from './appraisers/index.js';
import { KeySetStore, PolicyStore } from './policies/index.js';
import { GrpcApi } from './api/index.js';
import { KvLease } from './state/index.js';
import { AppCatalogue } from './apps/index.js';
import { NomadHttpClient } from './nomad/index.js';
import { NomadReconciler } from './nomad/index.js';
import { Registrar } from './registrar/index.js';
import { ControllerStore } from './state/index.js';
import { TrustEvents } from './state/index.js';
import { AdminAudit } from './state/index.js';
import { prepareDataFormat } from './upgrade/index.js';
import { Verifier } from './verifier/index.js';
import { ensureControllerCa, RevocationStore } from './pki/index.js';
import { loadStatementKey, StatementIssuer, type StatementKey } from './signing/index.js';
import { AuditLog, loadCheckpointSigner } from './audit/index.js';

const QUEUE = 'bulwark-verifiers';
/** How long `status` waits for each dependency before calling it unreachable. */
const STATUS_PROBE_MS = 3000;

/** `work`, or a rejection once `ms` have passed (the timer does not hold the process). */
async function within<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new BulwarkError('NATS_FAILED', `${what}: no answer within ${ms} ms`)), ms);
    timer.unref();
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function messageOf(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).slice(0, 500);
}
/** Header carrying the BulwarkError code when a NATS request is refused. */
export const ERROR_HEADER = 'Bulwark-Error';

/**
 * The node a request on a node-scoped subject is served for: the subject's (the server lets
 * only that node publish there). The body must name the same node: fail closed, exactly.
 */
export function requestNodeId(kind: NodeSubjectKind, subject: string, bodyNodeId: string): string {
  const nodeId = nodeIdFromSubject(kind, subject);
  if (bodyNodeId !== nodeId) {
    throw new BulwarkError('NATS_AUTH_NODE_MISMATCH', `a ${kind} message on ${nodeId}'s subject names another node`, { subjectNode: nodeId, bodyNode: bodyNodeId.slice(0, 128) });
  }
  return nodeId;
}

/** nats.js options for an external NATS from the config (which requires a CA and one identity there). */
async function externalNatsAuth(cfg: ControllerConfig): Promise<Partial<ConnectionOptions>> {
  let credentials: NatsClientCredentials;
  if (cfg.natsNkeySeedFile !== null) credentials = { kind: 'nkey', seedFile: cfg.natsNkeySeedFile };
  else if (cfg.natsCredsFile !== null) credentials = { kind: 'creds', credsFile: cfg.natsCredsFile };
  else if (cfg.natsUser !== null && cfg.natsPasswordFile !== null) credentials = { kind: 'password', user: cfg.natsUser, passwordFile: cfg.natsPasswordFile };
  else throw new BulwarkError('CONFIG_INVALID', 'natsUrl is set without NATS credentials');
  if (cfg.natsCaFile === null) throw new BulwarkError('CONFIG_INVALID', 'natsUrl is set without natsCaFile');
  const clientCertificate = cfg.natsCertFile !== null && cfg.natsKeyFile !== null ? { certFile: cfg.natsCertFile, keyFile: cfg.natsKeyFile } : undefined;
  return natsClientAuthOptions({ credentials, caFile: cfg.natsCaFile, ...(clientCertificate === undefined ? {} : { clientCertificate }) });
}

/** True for a file system error saying the file is not there. */
function isNotFound(err: unknown): boolean {
  return err instanceof Error && 'code' in err && err.code === 'ENOENT';
}

/** Loads the controller's Ed25519 identity key, creating it on first start. */
async function loadIdentityKey(dataDir: string): Promise<KeyObject> {
  const path = join(dataDir, 'identity-ed25519.pem');
  try {
    return createPrivateKey(await readFile(path, 'utf8'));
  } catch (err) {
    if (!isNotFound(err)) throw new BulwarkError('IO_FAILED', `cannot read ${path}`, {}, { cause: err });
  }
  const { privateKey } = generateKeyPairSync('ed25519');
  await writeFile(path, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  return privateKey;
}

/** Reads every PEM certificate in the EK CA directory. */
export async function loadCaBundle(dir: string): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if (isNotFound(err)) return [];
    throw new BulwarkError('IO_FAILED', `cannot read the EK CA directory ${dir}`, {}, { cause: err });
  }
  const out: string[] = [];
  for (const name of names.sort()) {
    if (!/\.(pem|crt)$/.test(name)) continue;
    out.push(...parsePemBundle(await readFile(join(dir, name), 'utf8')));
  }
  return out;
}

export class Controller {
  readonly config: ControllerConfig;
  private readonly log: Logger;
  private natsServer: EmbeddedNats | null = null;
  private identitySync: NatsIdentitySync | null = null;
  private nc: NatsConnection | null = null;
  private api: GrpcApi | null = null;
  private subs: Subscription[] = [];
  private timer: NodeJS.Timeout | null = null;
  private lease: KvLease | null = null;
  private verifier: Verifier | null = null;
  private reconciler: NomadReconciler | null = null;
  private revocations: RevocationStore | null = null;
  private statementKeyValue: StatementKey | null = null;
  private auditLog: AuditLog | null = null;
  private nomadClient: NomadHttpClient | null = null;
  /** Every lease this replica takes part in (scheduler, Nomad, audit checkpoints). */
  private leases: KvLease[] = [];
  private nomadLastPassAt: number | null = null;
  private metricsEndpoint: MetricsEndpoint | null = null;
  /** This controller's Prometheus metrics (its own registry). */
  readonly metrics: ControllerMetrics;
  private readonly replica: string;
  private readonly lastPulled = new Map<string, number>();
  private ticking = false;
  private stopped = false;
  natsUrl = '';
  grpcPort = 0;

  constructor(config: ControllerConfig, log: Logger) {
    this.config = config;
    this.log = log;
    this.replica = config.replicaId || `${hostname()}-${process.pid}`;
    this.metrics = new ControllerMetrics({ replica: this.replica });
  }

  /** Where /metrics is served (host:port), null when metricsListen is off. */
  get metricsAddress(): string | null {
    return this.metricsEndpoint?.address ?? null;
  }

  /** The directory of the admin credential set written on first start. */
  get adminCredentialsDir(): string {
    return join(this.config.dataDir, 'credentials', 'admin');
  }

  /** The CA certificate clients pin (the server set's ca.pem). */
  get caPath(): string {
    return join(this.config.dataDir, 'server', 'ca.pem');
  }

  /** The public key attestations are signed with (PEM); set once started. */
  get statementPublicKeyPem(): string {
    if (this.statementKeyValue === null) throw new BulwarkError('INTERNAL', 'the controller has not started');
    return this.statementKeyValue.publicKeyPem;
  }

  /** The audit log (tests and benchmarks: its tree size and checkpoints). */
  get audit(): AuditLog | null {
    return this.auditLog;
  }

  get grpcAddress(): string {
    return `${this.config.grpcListen.replace(/:\d+$/, '')}:${this.grpcPort}`;
  }

  async start(): Promise<void> {
    const cfg = this.config;
    await mkdir(cfg.dataDir, { recursive: true });
    let auth: Partial<ConnectionOptions>;
    if (cfg.natsUrl === null) {
      // TLS from the controller CA, the controller's own nkey; nodes are added from KV below.
      this.natsServer = await startEmbeddedNats({ dataDir: cfg.dataDir, port: cfg.natsPort });
      this.natsUrl = this.natsServer.url;
      auth = await natsClientAuthOptions({ credentials: { kind: 'nkey', seedFile: this.natsServer.seedFile }, caFile: this.natsServer.caFile });
      this.log.info({ url: this.natsUrl }, 'started embedded nats-server (TLS, nkey authentication)');
    } else {
      this.natsUrl = cfg.natsUrl;
      auth = await externalNatsAuth(cfg);
    }
    const reconnect = new NatsReconnect();
    try {
      this.nc = await connect({ servers: this.natsUrl, name: 'bulwark-controller', ...auth, ...reconnect.options() });
    } catch (err) {
      throw toBulwarkError(err, 'NATS_FAILED', `cannot connect to NATS at ${this.natsUrl}`);
    }
    reconnect.follow(this.nc, this.log);
    // Before any bucket is opened or written: refuse records newer than this version, migrate older ones.
    try {
      const build = await readBuildInfo();
      await prepareDataFormat(this.nc, { log: this.log, writtenBy: `bulwark-controller ${build.packageVersion} (${build.commit})` });
    } catch (err) {
      await this.stop();
      throw err;
    }
    const store = await ControllerStore.open(this.nc, { log: this.log, metrics: this.metrics });
    const embedded = this.natsServer;
    if (embedded !== null) {
      // The embedded server's users follow the node records in KV (every replica renders the same set).
      this.identitySync = new NatsIdentitySync({ watch: (onChange, onCaughtUp) => store.watchNodeKeys(onChange, onCaughtUp), apply: (nodes) => embedded.setNodes(nodes), log: this.log });
      await this.identitySync.start();
    }
    // The audit log's tree is rebuilt and checked before anything can append to it; a key that cannot be loaded fails the start.
    const holder = this.replica;
    const auditLease = new KvLease(store.leases, 'audit-checkpoint', holder, Math.max(3 * Math.min(cfg.auditCheckpointIntervalMs, 1000), 3000), this.log);
    this.leases.push(auditLease);
    const signer = await loadCheckpointSigner(cfg.auditSigningKey, cfg.dataDir, this.log);
    this.auditLog = await AuditLog.open({
      nc: this.nc,
      origin: `bulwark.${cfg.auditLogName || hostname()}/audit`,
      signer,
      lease: auditLease,
      intervalMs: cfg.auditCheckpointIntervalMs,
      records: cfg.auditCheckpointRecords,
      holder,
      log: this.log,
    });
    const events = new TrustEvents(store, this.log);
    const adminAudit = new AdminAudit(this.nc.jetstream(), this.log);
    const keysets = await KeySetStore.open(this.nc.jetstream(), adminAudit);
    const policies = await PolicyStore.open(this.nc.jetstream(), adminAudit, cfg.requireSignedPolicies ? keysets : null);
    const appraisers = await createAppraisers({ store, policies, config: cfg, log: this.log, adminAudit, keysets: cfg.requireSignedPolicies ? keysets : null });
    // Every challenge asks for the baseline PCR too (the report chain is replayed against it).
    const selection = quoteSelection(cfg);
    const identityKey = await loadIdentityKey(cfg.dataDir);
    const ekCaBundle = await loadCaBundle(cfg.ekCaDir);
    if (ekCaBundle.length === 0 && cfg.ekAllowList.length === 0) {
      this.log.warn({ ekCaDir: cfg.ekCaDir }, 'no EK CA certificates and no allow-listed EKs: every enrollment will be refused');
    }
    const verifier = new Verifier(
      store,
      events,
      {
        pcrSelection: selection,
        nonceTtlMs: cfg.nonceTtlMs,
        staleAfterMs: cfg.staleAfterMs,
        log: this.log,
        maxOutstandingNonces: cfg.maxOutstandingNonces,
        nonceRequestRate: { ratePerSecond: cfg.nonceRequestRate, burst: cfg.nonceRequestBurst },
        metrics: this.metrics,
      },
      appraisers.list,
    );
    // A pushed or assigned policy judges again what the appraisers kept, without waiting for rounds.
    policies.onChange(async (kind) => {
      try {
        const changed = await verifier.rejudgePolicyKind(kind);
        if (changed.length > 0) this.log.info({ kind, nodes: changed.length }, 'nodes judged again under the changed policy');
      } catch (err) {
        this.log.warn({ kind, error: err instanceof Error ? err.message : String(err) }, 'judging nodes again under the changed policy failed');
      }
    });
    const registrar = new Registrar(store, events, {
      ekCaBundle,
      ekAllowList: cfg.ekAllowList,
      enrollTtlMs: cfg.enrollTtlMs,
      identityKey,
      natsUrl: cfg.natsAdvertiseUrl ?? this.natsUrl,
      pcrSelection: selection,
      intervalMs: cfg.intervalMs,
      resetNodeState: (nodeId) => verifier.resetAppraisers(nodeId),
      log: this.log,
      enrollment: cfg.enrollment,
      maxPendingEnrollments: cfg.maxPendingEnrollments,
      enrollRate: { ratePerSecond: cfg.enrollRate, burst: cfg.enrollBurst },
    });
    this.verifier = verifier;
    const nc = this.nc;
    const statementKey = await loadStatementKey(cfg.dataDir, cfg.statementSigningKey);
    this.statementKeyValue = statementKey;
    const issuer = new StatementIssuer(store, adminAudit, {
      key: statementKey,
      validityMs: cfg.attestationValidityMs,
      freshnessMs: cfg.attestationFreshnessMs || cfg.staleAfterMs,
      log: this.log,
    });

    this.subs.push(
      // Node-scoped subjects: the node id comes from the subject, which only that node may publish on.
      nc.subscribe(NODE_SUBJECTS.nonceAll, {
        queue: QUEUE,
        callback: (err, msg) => {
          if (err !== null) this.log.warn({ subject: NODE_SUBJECTS.nonceAll, ...errorFields(err) }, 'dropped a nonce request: subscription error');
          else void this.answer(msg, async () => wire.challenge.encode(await verifier.requestChallenge(requestNodeId('nonce', msg.subject, wire.nonceRequest.decode(msg.data).nodeId))));
        },
      }),
      nc.subscribe(NODE_SUBJECTS.evidenceAll, {
        queue: QUEUE,
        callback: (err, msg) => {
          if (err !== null) this.log.warn({ subject: NODE_SUBJECTS.evidenceAll, ...errorFields(err) }, 'dropped evidence: subscription error');
          else
            void this.answer(msg, async () => {
              const evidence = wire.evidence.decode(msg.data);
              requestNodeId('evidence', msg.subject, evidence.nodeId);
              return wire.evidenceReply.encode(await verifier.handleEvidence(evidence));
            });
        },
      }),
      // Attestations for attestation-bound signatures: the node is the subject's; the body must name it too.
      nc.subscribe(NODE_SUBJECTS.attestSignAll, {
        queue: QUEUE,
        callback: (err, msg) => {
          if (err !== null) this.log.warn({ subject: NODE_SUBJECTS.attestSignAll, ...errorFields(err) }, 'dropped a signing request: subscription error');
          else void this.answer(msg, async () => issuer.issue(nodeIdFromSubject('attest-sign', msg.subject), msg.data));
        },
      }),
    );

    // The gRPC CA, server certificate and first admin credentials (created on first start).
    // A server certificate that no longer carries the configured names is replaced at start.
    const pki = await ensureControllerCa(cfg.dataDir, { dnsNames: cfg.tlsDnsNames, ipAddresses: cfg.tlsIpAddresses });
    if (pki.created.admin) this.log.info({ path: pki.paths.adminDir }, 'wrote the first admin credentials');
    const revocations = await RevocationStore.open(nc, { log: this.log });
    this.revocations = revocations;
    const nomad = cfg.nomadAddr === null ? null : new NomadHttpClient({ address: cfg.nomadAddr, token: cfg.nomadToken });
    this.nomadClient = nomad;
    const apps = new AppCatalogue(cfg.appsDir, nomad, cfg.requireSignedPolicies ? { keysets, audit: adminAudit } : null);
    this.api = new GrpcApi({
      store,
      registrar,
      verifier,
      policies,
      keysets,
      apps,
      baselines: appraisers.baselines,
      freshnessMs: cfg.nomadFreshnessMs || cfg.staleAfterMs,
      statementKey: { publicKeyPem: statementKey.publicKeyPem, sha256: hostKeyFingerprint(statementKey.publicKey) },
      challengeNow: (nodeId) => this.challenge(verifier, nodeId),
      log: this.log,
      adminAudit,
      tls: { server: pki.server, ca: pki.ca },
      revocations,
      nodeCertificateValidityMs: cfg.nodeCertificateValidityMs,
      audit: this.auditLog,
      status: () => this.status(store),
    });
    this.grpcPort = await this.api.listen(cfg.grpcListen);
    this.lease = new KvLease(store.leases, 'verifier-scheduler', this.replica, Math.max(3 * this.tickMs, 2000), this.log);
    this.leases.push(this.lease);
    this.timer = setInterval(() => void this.tick(store), this.tickMs);
    if (nomad !== null) {
      // The placement gate: one replica at a time (a lease in KV) keeps Nomad's eligibility in line with trust.
      const reconcileMs = cfg.nomadReconcileIntervalMs;
      const nomadLease = new KvLease(store.leases, 'nomad-reconciler', this.replica, Math.max(3 * reconcileMs, 3000), this.log);
      this.leases.push(nomadLease);
      this.reconciler = new NomadReconciler(
        nomad,
        { listNodes: () => store.listNodes(), watch: (onChange) => store.watchNodes(onChange) },
        nomadLease,
        {
          freshnessMs: cfg.nomadFreshnessMs || cfg.staleAfterMs,
          drainUntrusted: cfg.nomadDrain,
          drainDeadlineMs: cfg.nomadDrainDeadlineMs,
          reconcileIntervalMs: reconcileMs,
          nodeMap: cfg.nomadNodeMap,
          log: this.log,
          onAction: (a) => this.metrics.nomadAction(a.action.kind, a.ok),
          onPass: (at) => {
            this.nomadLastPassAt = at;
          },
        },
      );
      this.reconciler.start();
      this.log.info({ nomad: cfg.nomadAddr }, 'Nomad placement gate started');
    }
    const audit = this.auditLog;
    this.metrics.observe({
      nodeStates: async () => (await store.listNodes()).map((r) => r.state),
      leases: () => this.leases.map((l) => ({ name: l.leaseName, held: l.held() })),
      auditCheckpoint: async () => {
        const checkpoint = (await audit.state()).checkpoint;
        return checkpoint === null ? null : { at: Date.parse(checkpoint.at), signedBy: checkpoint.signedBy };
      },
      nomad: cfg.nomadAddr === null ? null : { address: cfg.nomadAddr, lastPassAt: () => this.nomadLastPassAt },
    });
    // Off unless configured; bound exactly where the config says (loopback in the shipped config).
    if (cfg.metricsListen !== null) this.metricsEndpoint = await serveMetrics(this.metrics.withProcessMetrics().registry, cfg.metricsListen, this.log);
    this.log.info({ grpc: this.grpcAddress, nats: this.natsUrl, metrics: this.metricsAddress, ekCaCertificates: ekCaBundle.length }, 'controller started');
  }

  /**
   * This replica's status (Attestation.GetStatus): version, uptime, NATS and Nomad as it
   * reaches them now, the leases and who holds them, nodes by trust state. Each probe is
   * bounded (STATUS_PROBE_MS), so a dependency that hangs shows as unreachable.
   */
  private async status(store: ControllerStore): Promise<ControllerStatusMsg> {
    const nc = this.nc;
    const nats = { name: 'nats', configured: true, reachable: false, detail: this.natsUrl };
    try {
      if (nc === null || nc.isClosed()) throw new BulwarkError('NATS_FAILED', 'the connection is closed');
      await within(nc.rtt(), STATUS_PROBE_MS, 'NATS round trip');
      nats.reachable = true;
    } catch (err) {
      nats.detail = `${this.natsUrl}: ${messageOf(err)}`;
    }
    const nomadAddr = this.config.nomadAddr;
    const nomad = { name: 'nomad', configured: nomadAddr !== null, reachable: false, detail: nomadAddr ?? 'not configured (no placement gate)' };
    if (this.nomadClient !== null && nomadAddr !== null) {
      try {
        await within(this.nomadClient.leader(), STATUS_PROBE_MS, 'Nomad leader');
        nomad.reachable = true;
      } catch (err) {
        nomad.detail = `${nomadAddr}: ${messageOf(err)}`;
      }
    }
    const leases: ControllerStatusMsg['leases'][number][] = [];
    for (const lease of this.leases) {
      let record: { holder: string; expiresAt: number } | null = null;
      if (nats.reachable) record = await within(lease.current(), STATUS_PROBE_MS, 'lease').catch(() => null);
      const live = record !== null && record.expiresAt > Date.now() ? record : null;
      leases.push({
        name: lease.leaseName,
        holder: live?.holder ?? '',
        heldByThisReplica: lease.held(),
        expiresAt: live === null ? '' : new Date(live.expiresAt).toISOString(),
      });
    }
    let nodes: ControllerStatusMsg['nodes'][number][] = [];
    if (nats.reachable) {
      try {
        const states = (await within(store.listNodes(), STATUS_PROBE_MS, 'node records')).map((r) => r.state);
        nodes = TRUST_STATES.map((state) => ({ state, count: states.filter((s) => s === state).length }));
      } catch (err) {
        this.log.warn(errorFields(err), 'status: cannot read the node records');
      }
    }
    const startedAt = this.metrics.startTime;
    return {
      version: controllerVersion(),
      replica: this.replica,
      startedAt: new Date(startedAt).toISOString(),
      uptimeMs: Math.max(0, Date.now() - startedAt),
      nodeVersion: process.version,
      dependencies: [nats, nomad],
      leases,
      nodes,
    };
  }

  private get tickMs(): number {
    return Math.max(50, Math.min(1000, Math.floor(this.config.staleAfterMs / 4), Math.floor(this.config.pullIntervalMs / 2)));
  }

  /** Replies to a NATS request; a refusal carries its code in a header and no body. */
  private async answer(msg: Msg, produce: () => Promise<Uint8Array>): Promise<void> {
    let reply: Uint8Array;
    try {
      reply = await produce();
    } catch (err) {
      const e = toBulwarkError(err, 'INTERNAL', 'request failed');
      if (e.kind === 'internal' || e.kind === 'unavailable') this.log.error({ subject: msg.subject, code: e.code, error: e.message }, 'request failed');
      else this.log.debug({ subject: msg.subject, code: e.code, error: e.message }, 'request refused');
      const h = headers();
      h.set(ERROR_HEADER, e.code);
      h.set('Bulwark-Message', e.message.slice(0, 200));
      this.respond(msg, new Uint8Array(0), { headers: h });
      return;
    }
    this.respond(msg, reply);
  }

  /** Sends a reply; one that cannot be sent (the connection closed) is logged, not thrown. */
  private respond(msg: Msg, data: Uint8Array, opts?: { headers: MsgHdrs }): void {
    try {
      if (!msg.respond(data, opts)) this.log.warn({ subject: msg.subject }, 'dropped a reply: the request has no reply subject');
    } catch (err) {
      this.log.warn({ subject: msg.subject, ...errorFields(err) }, 'dropped a reply: the NATS connection closed');
    }
  }

  private async challenge(verifier: Verifier, nodeId: string): Promise<string> {
    const nc = this.nc;
    if (nc === null) throw new BulwarkError('NATS_FAILED', 'not connected');
    const ch = await verifier.issueChallenge(nodeId);
    nc.publish(SUBJECTS.challenge(nodeId), wire.challenge.encode(ch));
    this.lastPulled.set(nodeId, Date.now());
    return toHex(ch.nonce);
  }

  /** While holding the lease: mark silent nodes stale and pull evidence from the rest. */
  private async tick(store: ControllerStore): Promise<void> {
    if (this.ticking || this.stopped || this.lease === null || this.verifier === null) return;
    this.ticking = true;
    try {
      if (!(await this.lease.tryAcquire())) return;
      const now = Date.now();
      const sweepFailed = (nodeId: string, err: unknown): void => {
        if (!this.stopped) this.log.warn({ node: nodeId, ...errorFields(err) }, 'cannot mark node stale');
      };
      for (const nodeId of await this.verifier.sweepStale(now, sweepFailed)) this.log.warn({ node: nodeId, code: 'NODE_STALE' }, 'node is stale');
      for (const record of await store.listNodes()) {
        if (record.requiresReenrollment) continue;
        const last = this.lastPulled.get(record.nodeId) ?? 0;
        if (now - last < this.config.pullIntervalMs) continue;
        try {
          await this.challenge(this.verifier, record.nodeId);
        } catch (err) {
          // One node that cannot be challenged does not stop the pulls of the rest.
          if (!this.stopped) this.log.warn({ node: record.nodeId, ...errorFields(err) }, 'cannot challenge node');
        }
      }
    } catch (err) {
      if (!this.stopped) this.log.error(errorFields(err), 'scheduler tick failed');
    } finally {
      this.ticking = false;
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.metricsEndpoint?.close();
    this.metricsEndpoint = null;
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    await this.reconciler?.stop();
    this.reconciler = null;
    await this.lease?.release();
    await this.api?.close();
    await this.auditLog?.close();
    this.auditLog = null;
    this.revocations?.close();
    this.revocations = null;
    for (const s of this.subs) s.unsubscribe();
    this.subs = [];
    this.identitySync?.stop();
    this.identitySync = null;
    if (this.nc !== null) {
      await this.nc.drain().catch(() => undefined);
      this.nc = null;
    }
    await this.natsServer?.stop();
    this.natsServer = null;
    // After the NATS drain: no signing request is still being answered.
    await this.statementKeyValue?.close();
    this.statementKeyValue = null;
  }
}
