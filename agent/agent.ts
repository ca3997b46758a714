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
import { factsDigest, type HostFacts } from '../lib/index.js';
import { ControllerClient } from '../proto/index.js';
import { checkNodeId, NO_LOGS, SUBJECTS, wire, type ChallengeMsg, type EvidenceReplyMsg } from '../proto/index.js';
import type { AgentConfig } from './config.js';
import type { EvidenceSource, SourceFields } from './evidence-source.js';
import type { Tpm, TpmKeys } from './tpm.js';

export type AgentLogger = (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;

export const agentJsonLogger: AgentLogger = (level, msg, fields) => {
  process.stderr.write(`${JSON.stringify({ level, msg, ...fields, at: new Date().toISOString() })}\n`);
};

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
  },
  { additionalProperties: false },
);

export type Enrollment = Static<typeof EnrollmentSchema>;

const ENROLLMENT = defineDocument(EnrollmentSchema, 'saved enrollment', 'STORE_CORRUPT');

export interface AgentDeps {
  readonly config: AgentConfig;
  readonly tpm: Tpm;
  readonly collectFacts: () => Promise<HostFacts>;
  readonly log?: AgentLogger;
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
/** A challenge queued longer than this is answered with a fresh nonce instead. */
const STALE_CHALLENGE_MS = 1000;

function errorHeader(msg: Msg): BulwarkError | null {
  const code = msg.headers?.get('Bulwark-Error');
  if (code === undefined || code === '') return null;
  return new BulwarkError('RPC_FAILED', `controller refused: ${code}: ${msg.headers?.get('Bulwark-Message') ?? ''}`, { code });
}

export class Agent {
  private readonly deps: AgentDeps;
  private readonly log: AgentLogger;
  private keys: TpmKeys | null = null;
  private enrollment: Enrollment | null = null;
  private nc: NatsConnection | null = null;
  private sub: Subscription | null = null;
  private timer: NodeJS.Timeout | null = null;
  private chain: Promise<unknown> = Promise.resolve();
  private pending = 0;
  private round = 0;
  private failures = 0;
  private retryTimer: NodeJS.Timeout | null = null;
  private facts: HostFacts | null = null;
  private factsAt = 0;
  private ackedFactsDigest = '';
  private stopped = false;
  /** Called after every round; tests and the demo observe verdicts through it. */
  onRound: ((r: RoundResult) => void) | null = null;

  constructor(deps: AgentDeps) {
    this.deps = deps;
    this.log = deps.log ?? agentJsonLogger;
  }

  get nodeId(): string {
    return this.enrollment?.nodeId ?? this.deps.config.nodeId ?? hostname();
  }

  private get enrollmentPath(): string {
    return join(this.deps.config.dataDir, 'enrollment.json');
  }

  /** Ensures keys, enrolls unless this AK is already enrolled, and starts answering. */
  async start(): Promise<void> {
    const cfg = this.deps.config;
    await mkdir(cfg.dataDir, { recursive: true, mode: 0o700 });
    this.keys = await this.deps.tpm.ensureKeys({ ekType: cfg.ekType, akHandle: cfg.akHandle });
    const saved = await this.savedEnrollment();
    if (saved !== null && saved.akName === toHex(this.keys.akName) && saved.nodeId === (cfg.nodeId ?? saved.nodeId)) {
      this.enrollment = saved;
    } else {
      this.enrollment = await this.enroll();
    }
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
      this.log('warn', 'saved enrollment does not decode: enrolling again', { path: this.enrollmentPath, error: err instanceof Error ? err.message : String(err) });
      return null;
    }
  }

  /** Runs the enrollment protocol against the controller's Registrar. */
  async enroll(): Promise<Enrollment> {
    const cfg = this.deps.config;
    const keys = this.keys ?? (await this.deps.tpm.ensureKeys({ ekType: cfg.ekType, akHandle: cfg.akHandle }));
    this.keys = keys;
    const nodeId = checkNodeId(cfg.nodeId ?? hostname());
    const facts = await this.currentFacts(true);
    const client = new ControllerClient(cfg.controller);
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
      const res = await client.activateCredential({ challengeId: challenge.challengeId, secret });
      const enrollment: Enrollment = {
        version: 1,
        nodeId: res.nodeId,
        akName: toHex(keys.akName),
        nodeIdentity: res.nodeIdentity,
        natsUrl: res.natsUrl,
        pcrSelection: res.pcrSelection,
        intervalMs: res.intervalMs,
      };
      for (const source of this.deps.sources ?? []) source.reset?.();
      const tmp = `${this.enrollmentPath}.tmp`;
      await writeFile(tmp, JSON.stringify(enrollment), { mode: 0o600 });
      await rename(tmp, this.enrollmentPath);
      this.ackedFactsDigest = factsDigest(facts);
      this.log('info', 'enrolled', { node: res.nodeId, akName: enrollment.akName });
      return enrollment;
    } finally {
      client.close();
    }
  }

  private async connect(): Promise<void> {
    const enrollment = this.enrollment;
    if (enrollment === null) throw new BulwarkError('NODE_NOT_ENROLLED', 'not enrolled');
    const url = this.deps.config.natsUrl ?? enrollment.natsUrl;
    try {
      this.nc = await connect({ servers: url, name: `bulwark-agent-${enrollment.nodeId}`, maxReconnectAttempts: -1, reconnectTimeWait: 250 });
    } catch (err) {
      throw toBulwarkError(err, 'NATS_FAILED', `cannot connect to NATS at ${url}`);
    }
    this.sub = this.nc.subscribe(SUBJECTS.challenge(enrollment.nodeId), {
      callback: (err, msg) => {
        if (err !== null) return;
        try {
          const ch = wire.challenge.decode(msg.data);
          if (ch.nodeId === enrollment.nodeId) void this.enqueue(ch);
        } catch (e) {
          this.log('warn', 'ignored a malformed challenge', { error: e instanceof Error ? e.message : String(e) });
        }
      },
    });
  }

  private scheduleTimer(): void {
    const interval = this.deps.config.intervalMs || this.enrollment?.intervalMs || 30_000;
    this.timer = setInterval(() => void this.enqueue(null), interval);
  }

  /** Queues a round; at most one waits behind the running one (a challenge always gets answered). */
  private enqueue(challenge: ChallengeMsg | null): Promise<unknown> {
    if (this.stopped) return Promise.resolve();
    if (challenge === null && this.pending > 0) return this.chain;
    this.pending++;
    const queuedAt = Date.now();
    this.chain = this.chain.then(async () => {
      this.pending--;
      if (this.stopped) return;
      try {
        // A challenge that waited behind a slow round would arrive with a stale nonce: ask for a fresh one.
        await this.runRound(challenge !== null && Date.now() - queuedAt > STALE_CHALLENGE_MS ? null : challenge);
        this.failures = 0;
      } catch (err) {
        const e = isBulwarkError(err) ? err : toBulwarkError(err, 'INTERNAL', 'round failed');
        this.log('error', 'attestation round failed', { code: e.code, error: e.message });
        this.retrySoon();
      }
    });
    return this.chain;
  }

  /**
   * After a failed round (TPM busy, controller unreachable) try again soon instead of
   * waiting a whole interval: 250 ms, doubling, at most the interval.
   */
  private retrySoon(): void {
    if (this.stopped || this.retryTimer !== null) return;
    const delay = Math.min(250 * 2 ** Math.min(this.failures, 10), this.deps.config.intervalMs);
    this.failures++;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      void this.enqueue(null);
    }, delay);
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
    if (nc === null || enrollment === null || keys === null) return;
    let ch = challenge;
    if (ch === null) {
      const msg = await nc.request(SUBJECTS.nonce, wire.nonceRequest.encode({ nodeId: enrollment.nodeId }), { timeout: NATS_REQUEST_TIMEOUT_MS });
      const refused = errorHeader(msg);
      if (refused !== null) throw refused;
      ch = wire.challenge.decode(msg.data);
    }
    const quote = await this.deps.tpm.quote(ch.nonce, ch.pcrSelection || enrollment.pcrSelection, keys.akHandle);
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
    const msg = await nc.request(SUBJECTS.evidence, evidence, { timeout: NATS_REQUEST_TIMEOUT_MS });
    const refused = errorHeader(msg);
    if (refused !== null) throw refused;
    const reply = wire.evidenceReply.decode(msg.data);
    const verdict = verdictOf(reply.verdict);
    if (verdict === null) throw new BulwarkError('WIRE_MALFORMED', `the controller answered with an unknown verdict ${JSON.stringify(reply.verdict.slice(0, 32))}`);
    if (verdict === 'trusted' || verdict === 'untrusted') this.ackedFactsDigest = digest;
    (this.deps.sources ?? []).forEach((source, i) => source.acknowledge(reply, sent[i] ?? {}));
    if (verdict !== 'trusted') {
      this.log('warn', 'controller verdict', { node: enrollment.nodeId, verdict, reasons: reply.findings.map((f) => f.code) });
    }
    this.onRound?.({ round, reply });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const source of this.deps.sources ?? []) source.stop?.();
    if (this.timer !== null) clearInterval(this.timer);
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.timer = null;
    await this.chain.catch(() => undefined);
    this.sub?.unsubscribe();
    if (this.nc !== null) await this.nc.drain().catch(() => undefined);
    this.nc = null;
  }
}
