/**
 * gRPC service definitions loaded from proto/bulwark/v1, and a typed client for the
 * Registrar and Attestation services (used by the agent and bulwarkctl).
 */
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { BulwarkError, isErrorCode } from '../lib/index.js';
import {
  decodeActivateResponse,
  decodeEnrollResponse,
  decodeNodeObj,
  decodeAppStatus,
  decodeAppSummary,
  decodePolicyInfoObj,
  decodeTrustEventObj,
  enrollRequestToMsg,
  PROTO_DIR,
  PROTO_FILES,
  type ActivateRequestMsg,
  type ActivateResponseMsg,
  type EnrollRequestMsg,
  type EnrollResponseMsg,
  type NodeMsg,
  type AppStatusMsg,
  type PolicyInfoMsg,
  type TrustEventMsg,
} from './wire.js';

export const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: Number,
  enums: String,
  defaults: false,
  oneofs: true,
  includeDirs: [PROTO_DIR],
};

const definition = protoLoader.loadSync([...PROTO_FILES], LOADER_OPTIONS);

function service(name: string): grpc.ServiceDefinition {
  const def = definition[name];
  if (def === undefined || 'format' in def) {
    throw new BulwarkError('INTERNAL', `service ${name} is missing from the proto files`);
  }
  // A service entry of a PackageDefinition is a ServiceDefinition (a map of methods).
  return def as grpc.ServiceDefinition;
}

export const REGISTRAR_SERVICE = service('bulwark.v1.Registrar');
export const ATTESTATION_SERVICE = service('bulwark.v1.Attestation');
export const HEALTH_SERVICE = service('grpc.health.v1.Health');
export const POLICIES_SERVICE = service('bulwark.v1.Policies');
export const PLACEMENT_SERVICE = service('bulwark.v1.Placement');
export const APPS_SERVICE = service('bulwark.v1.Apps');

/** Metadata key carrying the BulwarkError code of a failed call. */
export const ERROR_CODE_METADATA = 'bulwark-code';

function toError(err: grpc.ServiceError): BulwarkError {
  const code = err.metadata?.get(ERROR_CODE_METADATA)[0];
  const text = typeof code === 'string' ? code : '';
  if (isErrorCode(text)) return new BulwarkError(text, err.details || err.message, {}, { cause: err });
  return new BulwarkError('RPC_FAILED', `controller call failed: ${err.details || err.message}`, { grpcStatus: err.code }, { cause: err });
}

type Unary = (req: unknown, meta: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: unknown) => void) => void;

/** A client of the controller's gRPC API. */
export class ControllerClient {
  private readonly registrar: grpc.Client;
  private readonly attestation: grpc.Client;
  private readonly health: grpc.Client;
  private readonly policies: grpc.Client;
  private readonly placement: grpc.Client;
  private readonly apps: grpc.Client;
  private readonly timeoutMs: number;

  constructor(address: string, opts: { timeoutMs?: number; credentials?: grpc.ChannelCredentials } = {}) {
    const creds = opts.credentials ?? grpc.credentials.createInsecure();
    const Registrar = grpc.makeGenericClientConstructor(REGISTRAR_SERVICE, 'Registrar');
    const Attestation = grpc.makeGenericClientConstructor(ATTESTATION_SERVICE, 'Attestation');
    this.registrar = new Registrar(address, creds);
    this.attestation = new Attestation(address, creds);
    this.health = new (grpc.makeGenericClientConstructor(HEALTH_SERVICE, 'Health'))(address, creds);
    this.policies = new (grpc.makeGenericClientConstructor(POLICIES_SERVICE, 'Policies'))(address, creds);
    this.placement = new (grpc.makeGenericClientConstructor(PLACEMENT_SERVICE, 'Placement'))(address, creds);
    this.apps = new (grpc.makeGenericClientConstructor(APPS_SERVICE, 'Apps'))(address, creds);
    this.timeoutMs = opts.timeoutMs ?? 10_000;
  }

  private unary(client: grpc.Client, method: string, req: unknown): Promise<unknown> {
    const fn: unknown = Reflect.get(client, method);
    if (typeof fn !== 'function') return Promise.reject(new BulwarkError('INTERNAL', `no RPC ${method}`));
    const call = fn as Unary;
    return new Promise((resolve, reject) => {
      call.call(client, req, new grpc.Metadata(), { deadline: Date.now() + this.timeoutMs }, (err, res) => {
        if (err !== null) reject(toError(err));
        else resolve(res);
      });
    });
  }

  async enroll(req: EnrollRequestMsg): Promise<EnrollResponseMsg> {
    return decodeEnrollResponse(await this.unary(this.registrar, 'Enroll', enrollRequestToMsg(req)));
  }

  async activateCredential(req: ActivateRequestMsg): Promise<ActivateResponseMsg> {
    return decodeActivateResponse(await this.unary(this.registrar, 'ActivateCredential', { challenge_id: req.challengeId, secret: req.secret }));
  }

  /** The gRPC health status ("SERVING", "NOT_SERVING", ...). */
  async healthCheck(): Promise<string> {
    const res = await this.unary(this.health, 'Check', { service: '' });
    const status: unknown = typeof res === 'object' && res !== null ? Reflect.get(res, 'status') : undefined;
    return typeof status === 'string' ? status : 'UNKNOWN';
  }

  async listNodes(): Promise<NodeMsg[]> {
    const res = await this.unary(this.attestation, 'ListNodes', {});
    const nodes: unknown = typeof res === 'object' && res !== null ? Reflect.get(res, 'nodes') : undefined;
    if (nodes === undefined) return [];
    if (!Array.isArray(nodes)) throw new BulwarkError('WIRE_MALFORMED', 'ListNodes returned no list');
    return nodes.map(decodeNodeObj);
  }

  async getNode(nodeId: string): Promise<NodeMsg> {
    return decodeNodeObj(await this.unary(this.attestation, 'GetNode', { node_id: nodeId }));
  }

  async history(nodeId: string, limit: number): Promise<TrustEventMsg[]> {
    const res = await this.unary(this.attestation, 'History', { node_id: nodeId, limit });
    const events: unknown = typeof res === 'object' && res !== null ? Reflect.get(res, 'events') : undefined;
    if (events === undefined) return [];
    if (!Array.isArray(events)) throw new BulwarkError('WIRE_MALFORMED', 'History returned no list');
    return events.map(decodeTrustEventObj);
  }

  async reattest(nodeId: string): Promise<string> {
    const res = await this.unary(this.attestation, 'Reattest', { node_id: nodeId });
    const nonce: unknown = typeof res === 'object' && res !== null ? Reflect.get(res, 'nonce') : undefined;
    return typeof nonce === 'string' ? nonce : '';
  }

  async approveReenrollment(nodeId: string): Promise<NodeMsg> {
    return decodeNodeObj(await this.unary(this.attestation, 'ApproveReenrollment', { node_id: nodeId }));
  }

  async putPolicy(kind: string, name: string, document: string): Promise<PolicyInfoMsg> {
    return decodePolicyInfoObj(await this.unary(this.policies, 'PutPolicy', { kind, name, document }));
  }

  async getPolicy(kind: string, name: string): Promise<string> {
    const res = await this.unary(this.policies, 'GetPolicy', { kind, name });
    const doc: unknown = typeof res === 'object' && res !== null ? Reflect.get(res, 'document') : undefined;
    if (typeof doc !== 'string') throw new BulwarkError('WIRE_MALFORMED', 'GetPolicy returned no document');
    return doc;
  }

  async listPolicies(kind: string): Promise<PolicyInfoMsg[]> {
    const res = await this.unary(this.policies, 'ListPolicies', { kind });
    const list: unknown = typeof res === 'object' && res !== null ? Reflect.get(res, 'policies') : undefined;
    if (list === undefined) return [];
    if (!Array.isArray(list)) throw new BulwarkError('WIRE_MALFORMED', 'ListPolicies returned no list');
    return list.map(decodePolicyInfoObj);
  }

  /** Assigns `name` (null: removes the assignment) to a node, a group ({ group }), or as default (null). */
  async assignPolicy(kind: string, name: string | null, target: string | { readonly group: string } | null): Promise<void> {
    const node = typeof target === 'string' ? target : '';
    const group = target !== null && typeof target === 'object' ? target.group : '';
    await this.unary(this.policies, 'AssignPolicy', { kind, name: name ?? '', node_id: node, group });
  }

  /** Puts a node in a policy group (null: in none). */
  async setNodeGroup(nodeId: string, group: string | null): Promise<void> {
    await this.unary(this.policies, 'SetNodeGroup', { node_id: nodeId, group: group ?? '' });
  }

  /** Placement.IsTrusted: whether a node is trusted now, for host-side gates. */
  async isTrusted(nodeId: string): Promise<{ trusted: boolean; state: string; reasons: string[] }> {
    const res = await this.unary(this.placement, 'IsTrusted', { node_id: nodeId });
    const get = (k: string): unknown => (typeof res === 'object' && res !== null ? Reflect.get(res, k) : undefined);
    const state = get('state');
    const reasons = get('reasons');
    return {
      trusted: get('trusted') === true,
      state: typeof state === 'string' && state !== '' ? state : 'unknown',
      reasons: Array.isArray(reasons) ? reasons.map((r: unknown) => String(typeof r === 'object' && r !== null ? Reflect.get(r, 'code') : '')) : [],
    };
  }

  async listApps(): Promise<{ name: string; file: string; deployed: boolean }[]> {
    const res = await this.unary(this.apps, 'ListApps', {});
    const apps: unknown = typeof res === 'object' && res !== null ? Reflect.get(res, 'apps') : undefined;
    if (apps === undefined) return [];
    if (!Array.isArray(apps)) throw new BulwarkError('WIRE_MALFORMED', 'ListApps returned no list');
    return apps.map(decodeAppSummary);
  }

  async deployApp(name: string, hcl = ''): Promise<AppStatusMsg> {
    return decodeAppStatus(await this.unary(this.apps, 'DeployApp', { name, hcl }));
  }

  async appStatus(name: string): Promise<AppStatusMsg> {
    return decodeAppStatus(await this.unary(this.apps, 'AppStatus', { name }));
  }

  async stopApp(name: string): Promise<AppStatusMsg> {
    return decodeAppStatus(await this.unary(this.apps, 'StopApp', { name }));
  }

  /**
   * Streams trust events until `signal` aborts; `onEvent` sees each one, `onReady` runs
   * once the controller's subscription is live.
   */
  watchTrust(nodeId: string, onEvent: (e: TrustEventMsg) => void, signal?: AbortSignal, onReady?: () => void): Promise<void> {
    const fn: unknown = Reflect.get(this.attestation, 'WatchTrust');
    if (typeof fn !== 'function') return Promise.reject(new BulwarkError('INTERNAL', 'no RPC WatchTrust'));
    const stream = (fn as (req: unknown) => grpc.ClientReadableStream<unknown>).call(this.attestation, { node_id: nodeId });
    return new Promise((resolve, reject) => {
      signal?.addEventListener('abort', () => stream.cancel());
      stream.on('metadata', () => onReady?.());
      stream.on('data', (d: unknown) => {
        try {
          onEvent(decodeTrustEventObj(d));
        } catch (err) {
          stream.cancel();
          reject(err);
        }
      });
      stream.on('error', (err: grpc.ServiceError) => {
        if (err.code === grpc.status.CANCELLED) resolve();
        else reject(toError(err));
      });
      stream.on('end', () => resolve());
    });
  }

  close(): void {
    this.registrar.close();
    this.attestation.close();
    this.health.close();
    this.policies.close();
    this.placement.close();
    this.apps.close();
  }
}
