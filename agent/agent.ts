/**
 * The attestation loop of bulwark-agent: enroll once (EK certificate, AK, credential
 * activation), then answer every challenge the controller sends and push a round of
 * evidence on a timer. Rounds are serialized: the TPM does one thing at a time.
 */
import { mkdir, readFile, writeFile, rename } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { Type, type Static } from '@sinclair/typebox';
import { connect, type Msg, type NatsConnection, type Subscription } from 'nats';
import { toHex } from '../lib/index.js';
import { verdictOf } from '../lib/attestation/index.js';
import { defineDocument } from '../lib/schema/index.js';
import { BulwarkError, isBulwarkError, toBulwarkError } from '../lib/index.js';
import { factsDigest, type HostFacts } from '../lib/facts/index.js';
import { Backoff } from '../lib/index.js';
import { errorFields, issueNkeySeedFile, natsClientAuthOptions, NatsReconnect, readNkeySeedFile, serveMetrics, sleep, type Logger, type MetricsEndpoint } from '../daemon/index.js';
import { NODE_SUBJECTS, parseNatsNodeId } from '../lib/nats-auth/index.js';
import { ControllerClient } from '../proto/index.js';
import { checkNodeId, NO_LOGS, wire, type ChallengeMsg, type EvidenceReplyMsg } from '../proto/index.js';
import type { AgentConfig } from './config.js';
import { newNodeKey, readControllerCa, readNodeCredential, saveNodeCredential } from './node-credentials.js';
import type { EvidenceSource, SourceFields } from './evidence-source.js';
import type { Tpm, TpmKeys } from './tpm.js';
import { AgentMetrics } from './metrics.js';

/** What the agent remembers between starts (data dir `enrollment.json`); written without `version` before it existed. */
export const EnrollmentSchema = Type.Object(
  {
    version: Type.Optional(Type.Literal(1)),
    nodeId: Type.String({ maxLength: 128 }),
    akName: Type.String({ pattern: '^([0-9a-f]{2})*$', maxLength: 256 }),
    nodeIdentity: Type.String({ maxLength: 16_384 }),
    natsUrl: Type.String({ maxLength: 1024 }),
    pcrSelection: Type.String({ maxLength: 1024 }),
    intervalMs: Type.Integer({ minimum: 0 }),
    /** The public half of the NATS nkey whose seed is `nats-seed.nk` in the data dir; absent: enrolled before NATS authentication. */
    natsPublicKey: Type.Optional(Type.String({ pattern: '^U[A-Z2-7]{55}$' })),
  },
  { additionalProperties: false },
);

export type Enrollment = Static<typeof EnrollmentSchema>;

const ENROLLMENT = defineDocument(EnrollmentSchema, 'saved enrollment', 'STORE_CORRUPT');

export interface AgentDeps {
  readonly config: AgentConfig;
  readonly tpm: Tpm;
  readonly collectFacts: () => Promise<HostFacts>;
  readonly log: Logger;
  /** How often host facts are collected again (they are sent only when they changed). */
  readonly factsIntervalMs?: number;
  /** Event log, IMA and other evidence beyond the quote. */
  readonly sources?: readonly EvidenceSource[];
}

/** The controller's verdict on the last round, for callers and tests. */
export interface RoundResult {
  readonly round: number;
  readonly reply: EvidenceReplyMsg;
}

const NATS_REQUEST_TIMEOUT_MS = 10_000;
/** Waits between NATS connections refused because the server has not loaded this node's key yet. */
const NATS_AUTH_RETRY = { baseMs: 100, capMs: 2000 } as const;
const NATS_AUTH_RETRY_ATTEMPTS = 20;

/** Waits between enrollment attempts that failed for a passing reason, and how many are made. */
const ENROLL_RETRY = { baseMs: 250, capMs: 5000 } as const;
const ENROLL_RETRY_ATTEMPTS = 12;

/** A challenge queued longer than this is answered with a fresh nonce instead. */
const STALE_CHALLENGE_MS = 1000;

/**
 * Most challenges waiting behind the running round; more are dropped (and counted), so a
 * flood of challenges cannot make the TPM quote on demand.
 */
export const MAX_QUEUED_CHALLENGES = 2;

function errorHeader(msg: Msg): BulwarkError | null {
  const code = msg.headers?.get('Bulwark-Error');
  if (code === undefined || code === '') return null;
  return new BulwarkError('RPC_FAILED', `controller refused: ${code}: ${msg.headers?.get('Bulwark-Message') ?? ''}`, { code });
}

export class Agent {
  private readonly deps: AgentDeps;
  /** The daemon's logger; once enrolled, records carry the node id. */
  private log: Logger;
  private keys: TpmKeys | null = null;
  private enrollment: Enrollment | null = null;
  private nc: NatsConnection | null = null;
  private sub: Subscription | null = null;
  private timer: NodeJS.Timeout | null = null;
  private chain: Promise<unknown> = Promise.resolve();
  private pending = 0;
  /** Challenges waiting in `pending`. */
  private queuedChallenges = 0;
  /** Challenges dropped since start: another node's, undecodable, or past the queue bound. */
  droppedChallenges = 0;
  private round = 0;
  /** Failed rounds in a row: the next retry waits by this backoff. */
  private retryBackoff: Backoff | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  private facts: HostFacts | null = null;
  private factsAt = 0;
  private ackedFactsDigest = '';
  private stopped = false;
  /** The seed of the current NATS identity (secret); replaced when the agent enrolls again. */
  private natsSeed = '';
  private renewTimer: NodeJS.Timeout | null = null;
  /** Called after every round; tests and the demo observe verdicts through it. */
  onRound: ((r: RoundResult) => void) | null = null;
  /** This agent's Prometheus metrics (served when the config names metricsListen). */
  readonly metrics = new AgentMetrics();
  private metricsEndpoint: MetricsEndpoint | null = null;

  constructor(deps: AgentDeps) {
    this.deps = deps;
    this.log = deps.log;
  }

  get nodeId(): string {
    return this.enrollment?.nodeId ?? this.deps.config.nodeId ?? hostname();
  }

  private get enrollmentPath(): string {
    return join(this.deps.config.dataDir, 'enrollment.json');
  }

  /** The node's NATS nkey seed (0600); a new one is made at every enrollment. */
  get natsSeedPath(): string {
    return join(this.deps.config.dataDir, 'nats-seed.nk');
  }

  /** Whether the seed file holds the key this enrollment registered (a missing or other seed means enrolling again). */
  private async hasNatsKey(enrollment: Enrollment): Promise<boolean> {
    if (enrollment.natsPublicKey === undefined) return false;
    try {
      const user = await readNkeySeedFile(this.natsSeedPath);
      if (user.publicKey !== enrollment.natsPublicKey) return false;
      this.natsSeed = user.seed;
      return true;
    } catch (err) {
      this.log.warn({ path: this.natsSeedPath, ...errorFields(err) }, 'NATS seed missing or unreadable: enrolling again');
      return false;
    }
  }

  /** Ensures keys, enrolls unless this AK is already enrolled, and starts answering. */
  async start(): Promise<void> {
    const cfg = this.deps.config;
    // Off unless configured: a local port or a unix socket (see the agent config).
    if (cfg.metricsListen !== null && this.metricsEndpoint === null) this.metricsEndpoint = await serveMetrics(this.metrics.withProcessMetrics().registry, cfg.metricsListen, this.log);
    await mkdir(cfg.dataDir, { recursive: true, mode: 0o700 });
    this.keys = await this.deps.tpm.ensureKeys({ ekType: cfg.ekType, akHandle: cfg.akHandle });
    const saved = await this.savedEnrollment();
    if (saved !== null && saved.akName === toHex(this.keys.akName) && saved.nodeId === (cfg.nodeId ?? saved.nodeId) && (await this.hasNatsKey(saved))) {
      this.enrollment = saved;
    } else {
      this.enrollment = await this.enrollUntilDone();
    }
    this.log = this.deps.log.child({ node: this.enrollment.nodeId });
    await this.scheduleRenewal();
    await this.connect();
    this.scheduleTimer();
    for (const source of this.deps.sources ?? []) source.start?.(() => void this.enqueue(null));
    void this.enqueue(null);
  }

  /** The enrollment saved by an earlier start; null (said in a warn line when it exists but does not decode) enrolls again. */
  private async savedEnrollment(): Promise<Enrollment | null> {
    let bytes: Uint8Array;
    try {
      bytes = await readFile(this.enrollmentPath);
    } catch {
      return null;
    }
    try {
      return ENROLLMENT.parseJson(bytes, this.enrollmentPath);
    } catch (err) {
      this.log.warn({ path: this.enrollmentPath, ...errorFields(err) }, 'saved enrollment does not decode: enrolling again');
      return null;
    }
  }

  /**
   * Renews the node certificate on its own while enrolled: when half of its remaining time has passed a new key
   * pair is made and its public key sent with the current certificate
   * (Credentials.RenewNodeCertificate); a failed renewal is retried after a tenth of what
   * is left (at least a second), so a controller outage shorter than that costs nothing.
   */
  private async scheduleRenewal(): Promise<void> {
    if (this.stopped) return;
    const cred = await readNodeCredential(this.deps.config.dataDir);
    if (cred === null) {
      this.log.warn({ node: this.nodeId }, 'no node certificate: the host gate cannot ask for this node until it enrolls again');
      return;
    }
    // Half of what is left (notBefore is backdated for clock skew, so it does not say when it was issued).
    const delay = Math.min(Math.max(0, Math.floor((cred.notAfter - Date.now()) / 2)), 2 ** 31 - 1);
    this.armRenewal(delay);
  }

  private armRenewal(delayMs: number): void {
    if (this.renewTimer !== null) clearTimeout(this.renewTimer);
    this.renewTimer = setTimeout(() => void this.renewNodeCertificate(), delayMs);
  }

  private async renewNodeCertificate(): Promise<void> {
    this.renewTimer = null;
    if (this.stopped) return;
    const cfg = this.deps.config;
    const cred = await readNodeCredential(cfg.dataDir);
    if (cred === null) return;
    try {
      const caPem = await readControllerCa(cfg.controllerCa);
      const next = newNodeKey();
      const client = new ControllerClient(cfg.controller, { tls: { caPem, certPem: cred.certPem, keyPem: cred.keyPem } });
      try {
        const res = await client.renewNodeCertificate(next.spki);
        await saveNodeCredential(cfg.dataDir, next.keyPem, res.certificate);
      } finally {
        client.close();
      }
      this.log.info({ serial: (await readNodeCredential(cfg.dataDir))?.serial ?? '' }, 'renewed the node certificate');
      await this.scheduleRenewal();
    } catch (err) {
      if (cred.notAfter <= Date.now()) {
        // An expired certificate renews nothing: only a new enrollment (the TPM) gets another.
        this.log.error(errorFields(err), 'the node certificate expired before it could be renewed: enroll again for a new one');
        return;
      }
      const retryMs = Math.max(1000, Math.floor((cred.notAfter - Date.now()) / 10));
      this.log.warn({ retryMs, ...errorFields(err) }, 'cannot renew the node certificate: retrying');
      if (!this.stopped) this.armRenewal(retryMs);
    }
  }

  /** Runs the enrollment protocol against the controller's Registrar. */
  /**
   * Enrolls, retrying (full-jitter backoff) while the controller is unreachable or fails
   * inside (a restart, its NATS server reloading its users): a fleet that starts together
   * must not lose hosts to a passing fault. A refusal (bad EK certificate, a held or
   * conflicting enrollment) is final and thrown at once.
   */
  private async enrollUntilDone(): Promise<Enrollment> {
    const backoff = new Backoff(ENROLL_RETRY);
    for (;;) {
      try {
        return await this.enroll();
      } catch (err) {
        const e = toBulwarkError(err, 'RPC_FAILED', 'enrollment failed');
        const transient = e.kind === 'unavailable' || e.kind === 'internal';
        if (!transient || this.stopped || backoff.attempt >= ENROLL_RETRY_ATTEMPTS) throw e;
        const step = backoff.next();
        this.log.warn({ code: e.code, error: e.message, retryInMs: step.delayMs, failures: step.attempt + 1 }, 'enrollment failed; retrying');
        await sleep(step.delayMs);
      }
    }
  }

  async enroll(): Promise<Enrollment> {
    const cfg = this.deps.config;
    const keys = this.keys ?? (await this.deps.tpm.ensureKeys({ ekType: cfg.ekType, akHandle: cfg.akHandle }));
    this.keys = keys;
    const nodeId = checkNodeId(cfg.nodeId ?? hostname());
    const facts = await this.currentFacts(true);
    // Enrollment runs without a client certificate; the controller is checked against the pinned CA.
    const caPem = await readControllerCa(cfg.controllerCa);
    const client = new ControllerClient(cfg.controller, { tls: { caPem } });
    const nodeKey = newNodeKey();
    try {
      const challenge = await client.enroll({
        nodeId,
        ekType: keys.ekType,
        ekPublic: keys.ekPublic,
        ekCertificate: keys.ekCertificate ?? new Uint8Array(0),
        akPublic: keys.akPublic,
        facts,
        nomadNode: cfg.nomadNode ?? '',
      });
      const secret = await this.deps.tpm.activateCredential({ idObject: challenge.idObject, encryptedSecret: challenge.encryptedSecret }, keys);
      // A fresh NATS identity for every enrollment: only its public key leaves the host.
      const natsKey = await issueNkeySeedFile(this.natsSeedPath);
      const res = await client.activateCredential({ challengeId: challenge.challengeId, secret, nodePublicKey: nodeKey.spki, natsPublicKey: natsKey.publicKey });
      // A running agent's connection is cut when the server drops the old key; it reconnects with this one.
      this.natsSeed = natsKey.seed;
      if (res.nodeCertificate !== undefined && res.nodeCertificate !== '') {
        await saveNodeCredential(cfg.dataDir, nodeKey.keyPem, res.nodeCertificate);
      } else {
        this.log.warn({ node: res.nodeId }, 'the controller issued no node certificate: the host gate cannot ask for this node');
      }
      const enrollment: Enrollment = {
        version: 1,
        nodeId: res.nodeId,
        akName: toHex(keys.akName),
        nodeIdentity: res.nodeIdentity,
        natsUrl: res.natsUrl,
        pcrSelection: res.pcrSelection,
        intervalMs: res.intervalMs,
        natsPublicKey: natsKey.publicKey,
      };
      for (const source of this.deps.sources ?? []) source.reset?.();
      const tmp = `${this.enrollmentPath}.tmp`;
      await writeFile(tmp, JSON.stringify(enrollment), { mode: 0o600 });
      await rename(tmp, this.enrollmentPath);
      this.ackedFactsDigest = factsDigest(facts);
      this.log.info({ node: res.nodeId, akName: enrollment.akName }, 'enrolled');
      return enrollment;
    } finally {
      client.close();
    }
  }

  private async connect(): Promise<void> {
    const enrollment = this.enrollment;
    if (enrollment === null) throw new BulwarkError('NODE_NOT_ENROLLED', 'not enrolled');
    const url = this.deps.config.natsUrl ?? enrollment.natsUrl;
    // Jittered reconnects: a fleet that lost its NATS server does not come back in step.
    const reconnect = new NatsReconnect();
    const nodeId = parseNatsNodeId(enrollment.nodeId);
    // Its own nkey, the CA from this host's config, and its own inbox (the only one it may read).
    const auth = await natsClientAuthOptions({ credentials: { kind: 'nkey-seed', seed: () => this.natsSeed }, caFile: this.deps.config.natsCaFile, nodeId });
    // Right after enrollment the server may not list this node yet (the controller reloads it
    // from KV within a second): an authorization error is retried for a while, with backoff.
    const backoff = new Backoff(NATS_AUTH_RETRY);
    for (;;) {
      try {
        this.nc = await connect({
          servers: url,
          name: `bulwark-agent-${enrollment.nodeId}`,
          ...auth,
          ...reconnect.options(),
          waitOnFirstConnect: true,
          ignoreAuthErrorAbort: true,
        });
        break;
      } catch (err) {
        const denied = err instanceof Error && 'code' in err && err.code === 'AUTHORIZATION_VIOLATION';
        if (!denied || this.stopped || backoff.attempt >= NATS_AUTH_RETRY_ATTEMPTS) {
          throw toBulwarkError(err, 'NATS_FAILED', `cannot connect to NATS at ${url}`);
        }
        const step = backoff.next();
        this.log.info({ retryInMs: step.delayMs, failures: step.attempt + 1 }, 'NATS does not know this node yet; connecting again');
        await sleep(step.delayMs);
      }
    }
    reconnect.follow(this.nc, this.log);
    this.sub = this.nc.subscribe(NODE_SUBJECTS.challenge(nodeId), {
      callback: (err, msg) => {
        if (err !== null) {
          this.log.warn(errorFields(err), 'dropped a challenge: subscription error');
          return;
        }
        let ch: ChallengeMsg;
        try {
          ch = wire.challenge.decode(msg.data);
        } catch (e) {
          this.droppedChallenges++;
          this.log.warn(errorFields(e), 'dropped a challenge: it does not decode');
          return;
        }
        if (ch.nodeId !== enrollment.nodeId) {
          this.droppedChallenges++;
          this.log.warn({ challengeFor: ch.nodeId, dropped: this.droppedChallenges }, 'dropped a challenge: it names another node');
        } else if (this.queuedChallenges >= MAX_QUEUED_CHALLENGES) {
          this.droppedChallenges++;
          // One line per 100 drops: a flood must not flood the journal either.
          if (this.droppedChallenges % 100 === 1) this.log.warn({ dropped: this.droppedChallenges, queued: this.queuedChallenges }, 'dropped a challenge: the challenge queue is full');
        } else {
          void this.enqueue(ch);
        }
      },
    });
  }

  private get intervalMs(): number {
    return this.deps.config.intervalMs || this.enrollment?.intervalMs || 30_000;
  }

  private scheduleTimer(): void {
    this.timer = setInterval(() => void this.enqueue(null), this.intervalMs);
  }

  /** Queues a round; at most one waits behind the running one (a challenge always gets answered). */
  private enqueue(challenge: ChallengeMsg | null): Promise<unknown> {
    if (this.stopped) {
      if (challenge !== null) this.log.warn({ reason: 'stopping' }, 'dropped a challenge: the agent is stopping');
      return Promise.resolve();
    }
    // A round is already waiting: it will carry what this one would have.
    if (challenge === null && this.pending > 0) return this.chain;
    this.pending++;
    if (challenge !== null) this.queuedChallenges++;
    const queuedAt = Date.now();
    this.chain = this.chain.then(async () => {
      this.pending--;
      if (challenge !== null) this.queuedChallenges--;
      if (this.stopped) {
        if (challenge !== null) this.log.warn({ reason: 'stopping' }, 'dropped a challenge: the agent is stopping');
        return;
      }
      let ch = challenge;
      const waitedMs = Date.now() - queuedAt;
      if (ch !== null && waitedMs > STALE_CHALLENGE_MS) {
        // A challenge that waited behind a slow round would arrive with a stale nonce: ask for a fresh one.
        this.log.warn({ waitedMs, reason: 'stale' }, 'dropped a challenge that waited too long; answering with a fresh nonce');
        ch = null;
      }
      try {
        await this.runRound(ch);
        this.retryBackoff = null;
      } catch (err) {
        const e = isBulwarkError(err) ? err : toBulwarkError(err, 'INTERNAL', 'round failed');
        this.retrySoon(e);
      }
    });
    return this.chain;
  }

  /**
   * After a failed round (TPM busy, controller unreachable) try again soon instead of
   * waiting a whole interval: a jittered wait under a ceiling of 250 ms, doubling, at most
   * the interval (so a fleet that failed together does not retry together).
   */
  private retrySoon(e: BulwarkError): void {
    this.metrics.failed(e.code);
    const retrying = !this.stopped && this.retryTimer === null;
    const interval = this.intervalMs;
    this.retryBackoff ??= new Backoff({ baseMs: Math.min(250, interval), capMs: interval });
    const step = retrying ? this.retryBackoff.next() : null;
    this.log.error({ code: e.code, error: e.message, ...(step === null ? {} : { retryInMs: step.delayMs, failures: step.attempt + 1 }) }, 'attestation round failed');
    if (step === null) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      void this.enqueue(null);
    }, step.delayMs);
  }

  /** Triggers a round now and resolves when it is done (timer rounds do the same). */
  async attestNow(): Promise<void> {
    await this.enqueue(null);
  }

  private async currentFacts(force = false): Promise<HostFacts> {
    const every = this.deps.factsIntervalMs ?? 10 * 60_000;
    if (force || this.facts === null || Date.now() - this.factsAt > every) {
      this.facts = await this.deps.collectFacts();
      this.factsAt = Date.now();
    }
    return this.facts;
  }

  private async bootId(): Promise<string> {
    try {
      return (await readFile(this.deps.config.bootIdPath, 'utf8')).trim();
    } catch (err) {
      throw new BulwarkError('IO_FAILED', 'cannot read the boot id', {}, { cause: err });
    }
  }

  private async runRound(challenge: ChallengeMsg | null): Promise<void> {
    const nc = this.nc;
    const enrollment = this.enrollment;
    const keys = this.keys;
    if (nc === null || enrollment === null || keys === null) {
      this.log.warn({ reason: 'not connected' }, 'skipped a round: not enrolled or not connected');
      return;
    }
    let ch = challenge;
    if (ch === null) {
      const msg = await nc.request(NODE_SUBJECTS.nonce(parseNatsNodeId(enrollment.nodeId)), wire.nonceRequest.encode({ nodeId: enrollment.nodeId }), { timeout: NATS_REQUEST_TIMEOUT_MS });
      const refused = errorHeader(msg);
      if (refused !== null) throw refused;
      ch = wire.challenge.decode(msg.data);
    }
    // Sources that extend a PCR (the baseline reports) do it now, so this quote covers it.
    for (const source of this.deps.sources ?? []) {
      try {
        await source.prepare?.({ nodeId: enrollment.nodeId });
      } catch (err) {
        this.log.error({ source: source.name, ...errorFields(err) }, 'an evidence source failed to prepare the round');
      }
    }
    const quoteStart = process.hrtime.bigint();
    const quote = await this.deps.tpm.quote(ch.nonce, ch.pcrSelection || enrollment.pcrSelection, keys.akHandle);
    this.metrics.quoted(Number(process.hrtime.bigint() - quoteStart) / 1e9);
    // Logs are read after the quote: they may run ahead of it, never behind.
    const sent: SourceFields[] = [];
    let extra: SourceFields = {};
    for (const source of this.deps.sources ?? []) {
      const fields = await source.collect();
      sent.push(fields);
      extra = { ...extra, ...fields };
    }
    const facts = await this.currentFacts();
    const digest = factsDigest(facts);
    const round = ++this.round;
    const evidence = wire.evidence.encode({
      nodeId: enrollment.nodeId,
      nonce: ch.nonce,
      attest: quote.attest,
      signature: quote.signature,
      pcrs: quote.pcrs,
      bootId: await this.bootId(),
      facts: digest === this.ackedFactsDigest ? null : facts,
      factsDigest: digest,
      round,
      ...NO_LOGS,
      ...extra,
    });
    const msg = await nc.request(NODE_SUBJECTS.evidence(parseNatsNodeId(enrollment.nodeId)), evidence, { timeout: NATS_REQUEST_TIMEOUT_MS });
    const refused = errorHeader(msg);
    if (refused !== null) throw refused;
    const reply = wire.evidenceReply.decode(msg.data);
    const verdict = verdictOf(reply.verdict);
    if (verdict === null) throw new BulwarkError('WIRE_MALFORMED', `the controller answered with an unknown verdict ${JSON.stringify(reply.verdict.slice(0, 32))}`);
    if (verdict === 'trusted' || verdict === 'untrusted') this.ackedFactsDigest = digest;
    this.metrics.sent(extra);
    this.metrics.answered(verdict);
    (this.deps.sources ?? []).forEach((source, i) => source.acknowledge(reply, sent[i] ?? {}));
    if (verdict !== 'trusted') {
      this.log.warn({ verdict, codes: reply.findings.map((f) => f.code), round }, 'controller verdict');
    } else {
      this.log.debug({ verdict, round }, 'controller verdict');
    }
    this.onRound?.({ round, reply });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const source of this.deps.sources ?? []) await source.stop?.();
    if (this.timer !== null) clearInterval(this.timer);
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    if (this.renewTimer !== null) clearTimeout(this.renewTimer);
    this.renewTimer = null;
    this.retryTimer = null;
    this.timer = null;
    await this.chain.catch(() => undefined);
    this.sub?.unsubscribe();
    if (this.nc !== null) await this.nc.drain().catch(() => undefined);
    this.nc = null;
    await this.metricsEndpoint?.close();
    this.metricsEndpoint = null;
  }

  /** Where the agent serves its metrics, null when it does not. */
  get metricsAddress(): string | null {
    return this.metricsEndpoint?.address ?? null;
  }
}
