/**
 * A thin client for Nomad's HTTP API (fetch; no Nomad SDK). Every answer is parsed by a pure
 * function in lib/nomad/; every failure is a BulwarkError: NOMAD_UNAVAILABLE when Nomad cannot
 * be reached or does not answer in time (or has no leader yet), NOMAD_FAILED when it answers
 * with an error status, NOMAD_RESPONSE_MALFORMED when the answer does not parse. The ACL token
 * is sent as X-Nomad-Token and never appears in messages, details or inspection output.
 */
import { BulwarkError } from '../../lib/index.js';
import { NdjsonLineSplitter, parseEventLine, type NomadEventFrame } from '../../lib/nomad/index.js';
import {
  parseAllocationList,
  parseJob,
  parseJobDeregisterResponse,
  parseJobRegisterResponse,
  parseJobValidateResponse,
  type NomadAllocation,
  type NomadJob,
  type NomadJobRegistration,
  type NomadJobValidation,
} from '../../lib/nomad/index.js';
import {
  parseNode,
  parseNodeList,
  parseNodeMetaResponse,
  parseNodeUpdateResponse,
  type NomadNode,
  type NomadNodeMeta,
  type NomadNodeStub,
  type NomadNodeUpdate,
} from '../../lib/nomad/index.js';
import { parseJsonText, type JsonObject } from '../../lib/nomad/index.js';

/** Where Nomad is and how to authenticate; the token is a secret and is never logged. */
export interface NomadClientOptions {
  /** Base address of a Nomad agent's HTTP API, e.g. http://127.0.0.1:4646. */
  readonly address: string;
  /** ACL token; when absent, NOMAD_TOKEN from `env` (default: the process environment). */
  readonly token?: string | null;
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Per-request timeout (not for the event stream, which has an idle timeout). Default 10 s. */
  readonly timeoutMs?: number;
}

/** What the Nomad reconciler needs from Nomad; NomadHttpClient implements it. */
export interface NomadApi {
  listNodes(): Promise<NomadNodeStub[]>;
  readNode(nodeId: string): Promise<NomadNode>;
  setEligibility(nodeId: string, eligible: boolean): Promise<NomadNodeUpdate>;
  drainNode(nodeId: string, opts: DrainOptions): Promise<NomadNodeUpdate>;
  cancelDrain(nodeId: string, opts: { readonly markEligible: boolean }): Promise<NomadNodeUpdate>;
  applyNodeMeta(nodeId: string, meta: Readonly<Record<string, string | null>>): Promise<NomadNodeMeta>;
  nodeAllocations(nodeId: string): Promise<NomadAllocation[]>;
  streamEvents(opts: EventStreamOptions): AsyncGenerator<NomadEventFrame, void, undefined>;
}

/** A drain with a deadline, as the gate issues it for an untrusted node. */
export interface DrainOptions {
  /** After this many milliseconds, remaining allocations are stopped by force. Must be > 0. */
  readonly deadlineMs: number;
  readonly ignoreSystemJobs?: boolean;
  /** Recorded by Nomad in the node's LastDrain (e.g. who drained it and why). */
  readonly meta?: Readonly<Record<string, string>>;
}

/** Which events to stream and when to give up on a silent stream. */
export interface EventStreamOptions {
  /** Topics with optional filter keys, e.g. ["Node"] or ["Node:<node id>"]. */
  readonly topics: readonly string[];
  /** Start at this Raft index (events still in Nomad's buffer are replayed). */
  readonly index?: number;
  readonly signal?: AbortSignal;
  /** Abort when nothing (not even a heartbeat, sent every 10 s) arrives for this long. Default 35 s. */
  readonly idleTimeoutMs?: number;
}

const MAX_ERROR_BODY = 2048;

function aborted(signal: AbortSignal | undefined): boolean {
  return signal?.aborted === true;
}

function isAbort(err: unknown): boolean {
  return err instanceof Error && (err.name === 'AbortError' || err.name === 'TimeoutError');
}

/** Nomad's HTTP API over fetch. Thin: requests, timeouts, error mapping; parsing is in lib/nomad/. */
export class NomadHttpClient implements NomadApi {
  readonly address: string;
  private readonly token: string | null;
  private readonly timeoutMs: number;

  constructor(opts: NomadClientOptions) {
    let url: URL;
    try {
      url = new URL(opts.address);
    } catch (err) {
      throw new BulwarkError('CONFIG_INVALID', `the Nomad address is not a URL`, { field: 'nomad.address' }, { cause: err });
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new BulwarkError('CONFIG_INVALID', 'the Nomad address must be http:// or https://', { field: 'nomad.address' });
    }
    this.address = url.origin;
    const fromEnv = (opts.env ?? process.env)['NOMAD_TOKEN'];
    this.token = opts.token ?? (fromEnv === undefined || fromEnv === '' ? null : fromEnv);
    this.timeoutMs = opts.timeoutMs ?? 10_000;
  }

  /** Never shows the token (util.inspect, console.log). */
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return `NomadHttpClient { address: '${this.address}', token: ${this.token === null ? 'none' : '<redacted>'} }`;
  }

  toJSON(): { address: string; token: string | null } {
    return { address: this.address, token: this.token === null ? null : '<redacted>' };
  }

  private headers(body: boolean): Record<string, string> {
    const h: Record<string, string> = { accept: 'application/json' };
    if (body) h['content-type'] = 'application/json';
    if (this.token !== null) h['x-nomad-token'] = this.token;
    return h;
  }

  /** One request; the path (never the token) is what error messages name. */
  private async request(method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown): Promise<unknown> {
    const what = `${method} ${path.split('?')[0] ?? path}`;
    let res: Response;
    try {
      res = await fetch(`${this.address}${path}`, {
        method,
        headers: this.headers(body !== undefined),
        body: body === undefined ? null : JSON.stringify(body),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (err) {
      if (isAbort(err)) throw new BulwarkError('NOMAD_UNAVAILABLE', `${what}: Nomad did not answer within ${this.timeoutMs} ms`, { timeoutMs: this.timeoutMs }, { cause: err });
      throw new BulwarkError('NOMAD_UNAVAILABLE', `${what}: cannot reach Nomad at ${this.address}`, { address: this.address }, { cause: err });
    }
    let text: string;
    try {
      text = await res.text();
    } catch (err) {
      throw new BulwarkError('NOMAD_UNAVAILABLE', `${what}: the answer was cut off`, { status: res.status }, { cause: err });
    }
    if (!res.ok) throw this.statusError(what, res.status, text);
    return parseJsonText(text, what);
  }

  private statusError(what: string, status: number, text: string): BulwarkError {
    const message = text.slice(0, MAX_ERROR_BODY).trim();
    // While a server restarts or elects a leader it answers 500 "No cluster leader": not there yet.
    const unavailable = status === 502 || status === 503 || status === 504 || /no cluster leader|no path to region|rpc error: EOF/i.test(message);
    return new BulwarkError(unavailable ? 'NOMAD_UNAVAILABLE' : 'NOMAD_FAILED', `${what}: Nomad answered ${status}: ${message}`, { status });
  }

  private static id(id: string): string {
    return encodeURIComponent(id);
  }

  /** The current leader's RPC address (`GET /v1/status/leader`); "" while there is none. */
  async leader(): Promise<string> {
    const v = await this.request('GET', '/v1/status/leader');
    if (typeof v !== 'string') throw new BulwarkError('NOMAD_RESPONSE_MALFORMED', 'the leader is not a string');
    return v;
  }

  async listNodes(): Promise<NomadNodeStub[]> {
    return parseNodeList(await this.request('GET', '/v1/nodes'));
  }

  async readNode(nodeId: string): Promise<NomadNode> {
    return parseNode(await this.request('GET', `/v1/node/${NomadHttpClient.id(nodeId)}`));
  }

  async setEligibility(nodeId: string, eligible: boolean): Promise<NomadNodeUpdate> {
    const body = { NodeID: nodeId, Eligibility: eligible ? 'eligible' : 'ineligible' };
    return parseNodeUpdateResponse(await this.request('POST', `/v1/node/${NomadHttpClient.id(nodeId)}/eligibility`, body));
  }

  async drainNode(nodeId: string, opts: DrainOptions): Promise<NomadNodeUpdate> {
    if (!Number.isSafeInteger(opts.deadlineMs) || opts.deadlineMs <= 0) {
      throw new BulwarkError('USAGE', 'a drain deadline must be a positive number of milliseconds', { deadlineMs: opts.deadlineMs });
    }
    const body = {
      NodeID: nodeId,
      // time.Duration in nanoseconds.
      DrainSpec: { Deadline: opts.deadlineMs * 1_000_000, IgnoreSystemJobs: opts.ignoreSystemJobs ?? false },
      MarkEligible: false,
      Meta: opts.meta ?? {},
    };
    return parseNodeUpdateResponse(await this.request('POST', `/v1/node/${NomadHttpClient.id(nodeId)}/drain`, body));
  }

  /** Cancels a drain (DrainSpec null); with markEligible the node becomes eligible in the same step. */
  async cancelDrain(nodeId: string, opts: { readonly markEligible: boolean }): Promise<NomadNodeUpdate> {
    const body = { NodeID: nodeId, DrainSpec: null, MarkEligible: opts.markEligible };
    return parseNodeUpdateResponse(await this.request('POST', `/v1/node/${NomadHttpClient.id(nodeId)}/drain`, body));
  }

  /**
   * Sets (string) or unsets (null) dynamic node metadata (Nomad 1.6+). The servers see it
   * after the client's next node update, which Nomad batches (5 to 10 s).
   */
  async applyNodeMeta(nodeId: string, meta: Readonly<Record<string, string | null>>): Promise<NomadNodeMeta> {
    const body = { NodeID: nodeId, Meta: meta };
    return parseNodeMetaResponse(await this.request('POST', `/v1/client/metadata?node_id=${NomadHttpClient.id(nodeId)}`, body));
  }

  async readNodeMeta(nodeId: string): Promise<NomadNodeMeta> {
    return parseNodeMetaResponse(await this.request('GET', `/v1/client/metadata?node_id=${NomadHttpClient.id(nodeId)}`));
  }

  async nodeAllocations(nodeId: string): Promise<NomadAllocation[]> {
    return parseAllocationList(await this.request('GET', `/v1/node/${NomadHttpClient.id(nodeId)}/allocations`));
  }

  /** Parses HCL2 into Nomad's JSON job form (`POST /v1/jobs/parse`, canonicalized). */
  async parseJobHcl(hcl: string, opts: { readonly variables?: string } = {}): Promise<NomadJob> {
    const body = { JobHCL: hcl, Canonicalize: true, Variables: opts.variables ?? '' };
    return parseJob(await this.request('POST', '/v1/jobs/parse', body));
  }

  async validateJob(job: JsonObject): Promise<NomadJobValidation> {
    return parseJobValidateResponse(await this.request('POST', '/v1/validate/job', { Job: job }));
  }

  async registerJob(job: JsonObject): Promise<NomadJobRegistration> {
    return parseJobRegisterResponse(await this.request('POST', '/v1/jobs', { Job: job }));
  }

  async jobAllocations(jobId: string): Promise<NomadAllocation[]> {
    return parseAllocationList(await this.request('GET', `/v1/job/${NomadHttpClient.id(jobId)}/allocations`));
  }

  /** Stops a job (its allocations are stopped); with purge it is removed from Nomad's state. */
  async stopJob(jobId: string, opts: { readonly purge?: boolean } = {}): Promise<{ readonly evalId: string }> {
    const q = opts.purge === true ? '?purge=true' : '';
    return parseJobDeregisterResponse(await this.request('DELETE', `/v1/job/${NomadHttpClient.id(jobId)}${q}`));
  }

  /**
   * Streams event frames (`GET /v1/event/stream`) until the stream ends, the signal aborts, or
   * nothing arrives for the idle timeout. Ends normally when Nomad closes the stream; throws
   * NOMAD_UNAVAILABLE when it cannot connect or the connection breaks. Lines may arrive cut
   * anywhere; they are reassembled before parsing.
   */
  async *streamEvents(opts: EventStreamOptions): AsyncGenerator<NomadEventFrame, void, undefined> {
    const params = new URLSearchParams();
    for (const t of opts.topics) params.append('topic', t);
    if (opts.index !== undefined) params.set('index', String(opts.index));
    const path = `/v1/event/stream?${params.toString()}`;
    const idleMs = opts.idleTimeoutMs ?? 35_000;
    const ctl = new AbortController();
    const onAbort = (): void => ctl.abort(opts.signal?.reason);
    if (aborted(opts.signal)) return;
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    let idle: NodeJS.Timeout | null = null;
    let idledOut = false;
    const arm = (): void => {
      if (idle !== null) clearTimeout(idle);
      idle = setTimeout(() => {
        idledOut = true;
        ctl.abort();
      }, idleMs);
    };
    try {
      arm();
      let res: Response;
      try {
        res = await fetch(`${this.address}${path}`, { headers: this.headers(false), signal: ctl.signal });
      } catch (err) {
        if (aborted(opts.signal)) return;
        const why = idledOut ? `no answer within ${idleMs} ms` : `cannot reach Nomad at ${this.address}`;
        throw new BulwarkError('NOMAD_UNAVAILABLE', `GET /v1/event/stream: ${why}`, { address: this.address }, { cause: err });
      }
      if (!res.ok) throw this.statusError('GET /v1/event/stream', res.status, await res.text().catch(() => ''));
      const body = res.body;
      if (body === null) throw new BulwarkError('NOMAD_RESPONSE_MALFORMED', 'the event stream has no body');
      const reader = body.getReader();
      const splitter = new NdjsonLineSplitter();
      try {
        for (;;) {
          let chunk: Awaited<ReturnType<typeof reader.read>>;
          try {
            chunk = await reader.read();
          } catch (err) {
            if (aborted(opts.signal)) return;
            const why = idledOut ? `nothing arrived for ${idleMs} ms` : 'the connection broke';
            throw new BulwarkError('NOMAD_UNAVAILABLE', `GET /v1/event/stream: ${why}`, { idleMs }, { cause: err });
          }
          if (chunk.done) break;
          arm();
          for (const line of splitter.push(chunk.value)) yield parseEventLine(line);
        }
        for (const line of splitter.end()) yield parseEventLine(line);
      } finally {
        reader.releaseLock();
      }
    } finally {
      if (idle !== null) clearTimeout(idle);
      opts.signal?.removeEventListener('abort', onAbort);
      ctl.abort();
    }
  }
}
