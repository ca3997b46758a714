/**
 * The controller's gRPC API: Registrar (Enroll, ActivateCredential) and Attestation
 * (ListNodes, GetNode, WatchTrust, History, Reattest). Every failure leaves as a gRPC
 * status mapped from its BulwarkError code, with the code in metadata.
 */
import * as grpc from '@grpc/grpc-js';
import { BulwarkError, grpcStatusFor, toBulwarkError } from '../../lib/index.js';
import type { NodeRecord } from '../../lib/attestation/index.js';
import { APPS_SERVICE, ATTESTATION_SERVICE, ERROR_CODE_METADATA, HEALTH_SERVICE, PLACEMENT_SERVICE, POLICIES_SERVICE, REGISTRAR_SERVICE } from '../../proto/index.js';
import {
  checkNodeId,
  decodeActivateRequest,
  decodeEnrollRequest,
  appStatusToMsg,
  nodeToMsg,
  policyInfoToMsg,
  requestString,
  SUBJECTS,
  trustEventToMsg,
  wire,
  type NodeMsg,
} from '../../proto/index.js';
import type { AppCatalogue } from '../apps/index.js';
import type { PolicyStore } from '../policies/index.js';
import type { Registrar } from '../registrar/index.js';
import type { ControllerStore } from '../state/index.js';
import type { Verifier } from '../verifier/index.js';

export function nodeRecordToMsg(r: NodeRecord): NodeMsg {
  return {
    nodeId: r.nodeId,
    state: r.state,
    reasons: r.reasons.map((f) => {
      const details: Record<string, string> = {};
      for (const [k, v] of Object.entries(f.details ?? {})) if (v !== undefined) details[k] = Array.isArray(v) ? v.join(',') : String(v);
      return { code: f.code, message: f.message, details };
    }),
    enrolledAt: r.enrolledAt,
    stateSince: r.stateSince,
    lastEvidenceAt: r.lastEvidenceAt ?? '',
    lastVerdictAt: r.lastVerdictAt ?? '',
    akName: r.akName,
    ekCertificateSubject: r.ekCertificateSubject,
    resetCount: r.attestation.resetCount ?? 0,
    restartCount: r.attestation.restartCount ?? 0,
    facts: r.facts,
    requiresReenrollment: r.requiresReenrollment,
  };
}

function toServiceError(err: unknown): Partial<grpc.StatusObject> {
  const e = toBulwarkError(err, 'INTERNAL', 'request failed');
  const metadata = new grpc.Metadata();
  metadata.set(ERROR_CODE_METADATA, e.code);
  return { code: grpcStatusFor(e.code), details: `${e.code}: ${e.message}`, metadata };
}

function unary<Req, Res>(fn: (req: unknown) => Promise<Res>): grpc.handleUnaryCall<Req, Res> {
  return (call, callback) => {
    fn(call.request).then(
      (res) => callback(null, res),
      (err: unknown) => callback(toServiceError(err)),
    );
  };
}

/** A field of a decoded request (plain objects from the proto loader: own properties only). */
function field(req: unknown, key: string): unknown {
  if (typeof req !== 'object' || req === null) return undefined;
  for (const [k, v] of Object.entries(req)) if (k === key) return v;
  return undefined;
}

export interface ApiDeps {
  readonly store: ControllerStore;
  readonly registrar: Registrar;
  readonly verifier: Verifier;
  readonly policies: PolicyStore;
  readonly apps: AppCatalogue;
  /** A trusted verdict older than this does not count as trusted (Placement.IsTrusted). */
  readonly freshnessMs: number;
  /** Sends a challenge to the node now (Reattest). */
  readonly challengeNow: (nodeId: string) => Promise<string>;
}

export class GrpcApi {
  private readonly server = new grpc.Server();
  private readonly deps: ApiDeps;
  private readonly watchers = new Set<grpc.ServerWritableStream<unknown, unknown>>();
  port = 0;

  constructor(deps: ApiDeps) {
    this.deps = deps;
    const { store, registrar } = deps;
    this.server.addService(REGISTRAR_SERVICE, {
      Enroll: unary(async (req) => {
        const res = await registrar.enroll(decodeEnrollRequest(req));
        return { challenge_id: res.challengeId, id_object: res.idObject, encrypted_secret: res.encryptedSecret };
      }),
      ActivateCredential: unary(async (req) => {
        const res = await registrar.activate(decodeActivateRequest(req));
        return { node_id: res.nodeId, node_identity: res.nodeIdentity, nats_url: res.natsUrl, pcr_selection: res.pcrSelection, interval_ms: res.intervalMs };
      }),
    });
    this.server.addService(ATTESTATION_SERVICE, {
      ListNodes: unary(async () => ({ nodes: (await store.listNodes()).map((r) => nodeToMsg(nodeRecordToMsg(r))) })),
      GetNode: unary(async (req) => {
        const nodeId = checkNodeId(String(field(req, 'node_id') ?? ''));
        const node = await store.getNode(nodeId);
        if (node === null) throw new BulwarkError('NODE_NOT_FOUND', `no node ${nodeId}`);
        return nodeToMsg(nodeRecordToMsg(node.record));
      }),
      History: unary(async (req) => {
        const nodeId = checkNodeId(String(field(req, 'node_id') ?? ''));
        const rawLimit = Number(field(req, 'limit') ?? 0);
        const limit = Number.isSafeInteger(rawLimit) && rawLimit > 0 ? Math.min(rawLimit, 1000) : 50;
        const events = await store.history(nodeId, limit);
        return { events: events.map(trustEventToMsg) };
      }),
      Reattest: unary(async (req) => {
        const nodeId = checkNodeId(String(field(req, 'node_id') ?? ''));
        return { nonce: await deps.challengeNow(nodeId) };
      }),
      ApproveReenrollment: unary(async (req) => {
        const nodeId = checkNodeId(String(field(req, 'node_id') ?? ''));
        const stored = await store.getNode(nodeId);
        if (stored !== null && stored.corrupt !== null) {
          // Approving a node whose record is corrupt removes that record: the host enrolls
          // again as a new node (EK certificate chain and credential activation as always).
          await store.removeCorruptNode(nodeId, stored.revision);
          return nodeToMsg(nodeRecordToMsg({ ...stored.record, reenrollApproved: true }));
        }
        const updated = await store.updateNode(nodeId, (current) => {
          if (current === null) throw new BulwarkError('NODE_NOT_FOUND', `no node ${nodeId}`);
          if (!current.requiresReenrollment) throw new BulwarkError('USAGE', `node ${nodeId} does not need re-enrollment`);
          return current.reenrollApproved ? null : { ...current, reenrollApproved: true };
        });
        if (updated === null) throw new BulwarkError('NODE_NOT_FOUND', `no node ${nodeId}`);
        return nodeToMsg(nodeRecordToMsg(updated));
      }),
      WatchTrust: (call: grpc.ServerWritableStream<unknown, unknown>) => this.watch(call),
    });
    const policies = deps.policies;
    this.server.addService(POLICIES_SERVICE, {
      PutPolicy: unary(async (req) =>
        policyInfoToMsg(await policies.put(requestString(req, 'kind', 64), requestString(req, 'name', 128), requestString(req, 'document', 8 * 1024 * 1024))),
      ),
      GetPolicy: unary(async (req) => {
        const kind = requestString(req, 'kind', 64);
        const name = requestString(req, 'name', 128);
        return { kind, name, document: JSON.stringify(await policies.document(kind, name), null, 2) };
      }),
      ListPolicies: unary(async (req) => {
        const kind = requestString(req, 'kind', 64);
        return { policies: (await policies.list(kind === '' ? undefined : kind)).map(policyInfoToMsg) };
      }),
      AssignPolicy: unary(async (req) => {
        const nodeId = requestString(req, 'node_id');
        const group = requestString(req, 'group', 64);
        const name = requestString(req, 'name', 128);
        if (nodeId !== '' && group !== '') throw new BulwarkError('USAGE', 'assign to a node or to a group, not both');
        await policies.assign(requestString(req, 'kind', 64), name === '' ? null : name, nodeId !== '' ? checkNodeId(nodeId) : group !== '' ? { group } : null);
        return {};
      }),
      SetNodeGroup: unary(async (req) => {
        const group = requestString(req, 'group', 64);
        await policies.setGroup(checkNodeId(requestString(req, 'node_id')), group === '' ? null : group);
        return {};
      }),
    });
    this.server.addService(PLACEMENT_SERVICE, {
      IsTrusted: unary(async (req) => {
        const nodeId = checkNodeId(requestString(req, 'node_id'));
        const node = await store.getNode(nodeId);
        if (node === null) return { trusted: false, state: 'unknown', reasons: [], last_verdict_at: '' };
        const r = node.record;
        const fresh = r.lastVerdictAt !== null && Date.now() - Date.parse(r.lastVerdictAt) <= deps.freshnessMs;
        const msg = nodeRecordToMsg(r);
        return {
          trusted: r.state === 'trusted' && fresh,
          state: r.state === 'trusted' && !fresh ? 'stale' : r.state,
          reasons: msg.reasons.map((f) => ({ ...f, details: { ...f.details } })),
          last_verdict_at: r.lastVerdictAt ?? '',
        };
      }),
    });
    const apps = deps.apps;
    this.server.addService(APPS_SERVICE, {
      ListApps: unary(async () => ({ apps: (await apps.list()).map((a) => ({ ...a, deployed: apps.isDeployed(a.name) })) })),
      DeployApp: unary(async (req) => appStatusToMsg(await apps.deploy(requestString(req, 'name', 128), requestString(req, 'hcl', 1024 * 1024)))),
      AppStatus: unary(async (req) => appStatusToMsg(await apps.status(requestString(req, 'name', 128)))),
      StopApp: unary(async (req) => appStatusToMsg(await apps.stop(requestString(req, 'name', 128)))),
    });
    this.server.addService(HEALTH_SERVICE, {
      Check: unary(async () => ({ status: this.healthStatus() })),
      Watch: (call: grpc.ServerWritableStream<unknown, unknown>) => {
        call.write({ status: this.healthStatus() });
        this.watchers.add(call);
        call.on('cancelled', () => this.watchers.delete(call));
      },
    });
  }

  private watch(call: grpc.ServerWritableStream<unknown, unknown>): void {
    const raw = String(field(call.request, 'node_id') ?? '');
    let subject: string;
    try {
      subject = raw === '' ? SUBJECTS.trustAll : SUBJECTS.trust(checkNodeId(raw));
    } catch (err) {
      call.emit('error', toServiceError(err));
      return;
    }
    this.watchers.add(call);
    const sub = this.deps.store.nc.subscribe(subject, {
      callback: (err, msg) => {
        if (err !== null) return;
        try {
          call.write(trustEventToMsg(wire.trustEvent.decode(msg.data)));
        } catch {
          // A trust event this version cannot decode is skipped for the watcher only.
        }
      },
    });
    // Headers go out once the subscription is live, so a client knows it misses nothing after them.
    void this.deps.store.nc.flush().then(
      () => call.sendMetadata(new grpc.Metadata()),
      () => undefined,
    );
    const done = (): void => {
      sub.unsubscribe();
      this.watchers.delete(call);
    };
    call.on('cancelled', done);
    call.on('close', done);
    call.on('error', done);
  }

  /** SERVING while the controller reaches NATS; the same for every service name. */
  private healthStatus(): string {
    return this.deps.store.nc.isClosed() ? 'NOT_SERVING' : 'SERVING';
  }

  /** Binds `host:port` (port 0 picks one) and starts serving. */
  async listen(address: string): Promise<number> {
    this.port = await new Promise<number>((resolve, reject) => {
      this.server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (err, port) => (err !== null ? reject(err) : resolve(port)));
    });
    return this.port;
  }

  async close(): Promise<void> {
    for (const w of this.watchers) w.end();
    this.watchers.clear();
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.server.forceShutdown();
        resolve();
      }, 2000);
      this.server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}
