/**
 * The controller's gRPC API: Registrar (Enroll, ActivateCredential) and Attestation
 * (ListNodes, GetNode, WatchTrust, History, Reattest). Every failure leaves as a gRPC
 * status mapped from its BulwarkError code, with the code in metadata.
 */
import * as grpc from '@grpc/grpc-js';
import { BulwarkError, grpcStatusFor, toBulwarkError } from '../../lib/index.js';
import type { NodeRecord } from '../../lib/attestation/index.js';
import {
  APPS_SERVICE,
  ATTESTATION_SERVICE,
  ERROR_CODE_METADATA,
  HEALTH_SERVICE,
  HealthServingStatus,
  PLACEMENT_SERVICE,
  POLICIES_SERVICE,
  REGISTRAR_SERVICE,
  appStatusToWire,
  checkActivateRequest,
  checkEnrollRequest,
  checkNodeId,
  checkText,
  findingToMsg,
  nodeToWire,
  policyInfoToWire,
  SUBJECTS,
  trustEventToWire,
  wire,
  type AppsServer,
  type AttestationServer,
  type HeldEnrollmentMsg,
  type HealthServer,
  type NodeMsg,
  type PlacementServer,
  type PoliciesServer,
  type RegistrarServer,
} from '../../proto/index.js';
import type { AppCatalogue } from '../apps/index.js';
import type { PolicyStore } from '../policies/index.js';
import type { HeldEnrollment, Registrar } from '../registrar/index.js';
import type { ControllerStore } from '../state/index.js';
import type { Verifier } from '../verifier/index.js';
import { errorFields, silentLogger, type Logger } from '../../daemon/index.js';

export function nodeRecordToMsg(r: NodeRecord): NodeMsg {
  return {
    nodeId: r.nodeId,
    state: r.state,
    reasons: r.reasons.map(findingToMsg),
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
    notes: r.notes ?? [],
  };
}

function heldToWire(h: HeldEnrollment): HeldEnrollmentMsg {
  return { nodeId: h.nodeId, ekName: h.ekName, ekCertificateSubject: h.ekCertificateSubject, nomadNode: h.nomadNode ?? '', heldAt: new Date(h.heldAt).toISOString() };
}

/** The address of a gRPC peer without its port ("ipv4:127.0.0.1:5555" → "127.0.0.1"). */
function peerHost(peer: string): string {
  const bare = peer.replace(/^(ipv4|ipv6|unix):/, '');
  const v6 = /^\[([^\]]+)\](:\d+)?$/.exec(bare);
  if (v6?.[1] !== undefined) return v6[1];
  return bare.replace(/:\d+$/, '');
}

function toServiceError(err: unknown): Partial<grpc.StatusObject> {
  const e = toBulwarkError(err, 'INTERNAL', 'request failed');
  const metadata = new grpc.Metadata();
  metadata.set(ERROR_CODE_METADATA, e.code);
  return { code: grpcStatusFor(e.code), details: `${e.code}: ${e.message}`, metadata };
}

function unary<Req, Res>(fn: (req: Req) => Promise<Res>): grpc.handleUnaryCall<Req, Res> {
  return (call, callback) => {
    fn(call.request).then(
      (res) => callback(null, res),
      (err: unknown) => callback(toServiceError(err)),
    );
  };
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
  /** Trust events a watcher does not get are reported here. */
  readonly log?: Logger;
}

export class GrpcApi {
  private readonly server = new grpc.Server();
  private readonly deps: ApiDeps;
  private readonly log: Logger;
  /** Open server streams (WatchTrust, Health.Watch), ended when the API closes. */
  private readonly watchers = new Set<{ end(): void }>();
  port = 0;

  constructor(deps: ApiDeps) {
    this.deps = deps;
    this.log = deps.log ?? silentLogger();
    const { store, registrar, policies, apps } = deps;
    const registrarServer: RegistrarServer = {
      // Rate-limited per peer address (and per node id) in the registrar.
      enroll: (call, callback) => {
        const peer = peerHost(call.getPeer());
        registrar.enroll(checkEnrollRequest(call.request), Date.now(), peer).then(
          (res) => callback(null, { challengeId: res.challengeId, idObject: res.idObject, encryptedSecret: res.encryptedSecret }),
          (err: unknown) => callback(toServiceError(err)),
        );
      },
      activateCredential: unary(async (req) => {
        const res = await registrar.activate(checkActivateRequest(req));
        return { nodeId: res.nodeId, nodeIdentity: res.nodeIdentity, natsUrl: res.natsUrl, pcrSelection: res.pcrSelection, intervalMs: res.intervalMs };
      }),
    };
    const attestationServer: AttestationServer = {
      listNodes: unary(async () => ({ nodes: (await store.listNodes()).map((r) => nodeToWire(nodeRecordToMsg(r))) })),
      getNode: unary(async (req) => {
        const nodeId = checkNodeId(req.nodeId);
        const node = await store.getNode(nodeId);
        if (node === null) throw new BulwarkError('NODE_NOT_FOUND', `no node ${nodeId}`);
        return nodeToWire(nodeRecordToMsg(node.record));
      }),
      history: unary(async (req) => {
        const nodeId = checkNodeId(req.nodeId);
        const limit = req.limit > 0 ? Math.min(req.limit, 1000) : 50;
        const events = await store.history(nodeId, limit);
        return { events: events.map(trustEventToWire) };
      }),
      reattest: unary(async (req) => ({ nonce: await deps.challengeNow(checkNodeId(req.nodeId)) })),
      approveReenrollment: unary(async (req) => {
        const nodeId = checkNodeId(req.nodeId);
        const stored = await store.getNode(nodeId);
        if (stored !== null && stored.corrupt !== null) {
          // Approving a node whose record is corrupt removes that record: the host enrolls
          // again as a new node (EK certificate chain and credential activation as always).
          await store.removeCorruptNode(nodeId, stored.revision);
          return nodeToWire(nodeRecordToMsg({ ...stored.record, reenrollApproved: true }));
        }
        const updated = await store.updateNode(nodeId, (current) => {
          if (current === null) throw new BulwarkError('NODE_NOT_FOUND', `no node ${nodeId}`);
          if (!current.requiresReenrollment) throw new BulwarkError('USAGE', `node ${nodeId} does not need re-enrollment`);
          return current.reenrollApproved ? null : { ...current, reenrollApproved: true };
        });
        if (updated === null) throw new BulwarkError('NODE_NOT_FOUND', `no node ${nodeId}`);
        return nodeToWire(nodeRecordToMsg(updated));
      }),
      // Admin only (identity and roles: see the authorization table of the API).
      moveNode: unary(async (req) => {
        const to = checkNodeId(req.toNodeId);
        const r = await registrar.moveNode(checkText(req.from, 'from', 256), to);
        return { ekName: r.ekName, fromNodeId: r.fromNodeId, toNodeId: to };
      }),
      // Admin only.
      listHeldEnrollments: unary(async () => ({ enrollments: (await registrar.listHeld()).map(heldToWire) })),
      // Admin only.
      approveEnrollment: unary(async (req) => heldToWire(await registrar.approveHeld(checkText(req.nodeOrEk, 'node_or_ek', 256)))),
      watchTrust: (call) => this.watch(call),
    };
    const policiesServer: PoliciesServer = {
      putPolicy: unary(async (req) =>
        policyInfoToWire(await policies.put(checkText(req.kind, 'kind', 64), checkText(req.name, 'name', 128), checkText(req.document, 'document', 8 * 1024 * 1024))),
      ),
      getPolicy: unary(async (req) => {
        const kind = checkText(req.kind, 'kind', 64);
        const name = checkText(req.name, 'name', 128);
        return { kind, name, document: JSON.stringify(await policies.document(kind, name), null, 2) };
      }),
      listPolicies: unary(async (req) => {
        const kind = checkText(req.kind, 'kind', 64);
        return { policies: (await policies.list(kind === '' ? undefined : kind)).map(policyInfoToWire) };
      }),
      assignPolicy: unary(async (req) => {
        const nodeId = checkText(req.nodeId, 'node_id');
        const group = checkText(req.group, 'group', 64);
        const name = checkText(req.name, 'name', 128);
        if (nodeId !== '' && group !== '') throw new BulwarkError('USAGE', 'assign to a node or to a group, not both');
        await policies.assign(checkText(req.kind, 'kind', 64), name === '' ? null : name, nodeId !== '' ? checkNodeId(nodeId) : group !== '' ? { group } : null);
        return {};
      }),
      setNodeGroup: unary(async (req) => {
        const group = checkText(req.group, 'group', 64);
        await policies.setGroup(checkNodeId(req.nodeId), group === '' ? null : group);
        return {};
      }),
    };
    const placementServer: PlacementServer = {
      isTrusted: unary(async (req) => {
        const nodeId = checkNodeId(req.nodeId);
        const node = await store.getNode(nodeId);
        if (node === null) return { trusted: false, state: 'unknown', reasons: [], lastVerdictAt: '' };
        const r = node.record;
        const fresh = r.lastVerdictAt !== null && Date.now() - Date.parse(r.lastVerdictAt) <= deps.freshnessMs;
        const msg = nodeRecordToMsg(r);
        return {
          trusted: r.state === 'trusted' && fresh,
          state: r.state === 'trusted' && !fresh ? 'stale' : r.state,
          reasons: msg.reasons.map((f) => ({ ...f, details: { ...f.details } })),
          lastVerdictAt: r.lastVerdictAt ?? '',
        };
      }),
    };
    const appsServer: AppsServer = {
      listApps: unary(async () => ({ apps: (await apps.list()).map((a) => ({ name: a.name, file: a.file, deployed: apps.isDeployed(a.name) })) })),
      deployApp: unary(async (req) => appStatusToWire(await apps.deploy(checkText(req.name, 'name', 128), checkText(req.hcl, 'hcl', 1024 * 1024)))),
      appStatus: unary(async (req) => appStatusToWire(await apps.status(checkText(req.name, 'name', 128)))),
      stopApp: unary(async (req) => appStatusToWire(await apps.stop(checkText(req.name, 'name', 128)))),
    };
    const healthServer: HealthServer = {
      check: unary(async () => ({ status: this.healthStatus() })),
      watch: (call) => {
        call.write({ status: this.healthStatus() });
        this.watchers.add(call);
        call.on('cancelled', () => this.watchers.delete(call));
      },
    };
    this.server.addService(REGISTRAR_SERVICE, registrarServer);
    this.server.addService(ATTESTATION_SERVICE, attestationServer);
    this.server.addService(POLICIES_SERVICE, policiesServer);
    this.server.addService(PLACEMENT_SERVICE, placementServer);
    this.server.addService(APPS_SERVICE, appsServer);
    this.server.addService(HEALTH_SERVICE, healthServer);
  }

  private watch(call: Parameters<AttestationServer['watchTrust']>[0]): void {
    let subject: string;
    try {
      subject = call.request.nodeId === '' ? SUBJECTS.trustAll : SUBJECTS.trust(checkNodeId(call.request.nodeId));
    } catch (err) {
      call.emit('error', toServiceError(err));
      return;
    }
    this.watchers.add(call);
    const sub = this.deps.store.nc.subscribe(subject, {
      callback: (err, msg) => {
        if (err !== null) {
          this.log.warn({ subject, ...errorFields(err) }, 'dropped a trust event for a watcher: subscription error');
          return;
        }
        let event: ReturnType<typeof trustEventToWire>;
        try {
          event = trustEventToWire(wire.trustEvent.decode(msg.data));
        } catch (e) {
          // A trust event this version cannot decode is skipped for the watcher only.
          this.log.warn({ subject: msg.subject, ...errorFields(e) }, 'dropped a trust event for a watcher: it does not decode');
          return;
        }
        try {
          call.write(event);
        } catch (e) {
          this.log.warn({ subject: msg.subject, ...errorFields(e) }, 'dropped a trust event for a watcher: the stream is closed');
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
  private healthStatus(): HealthServingStatus {
    return this.deps.store.nc.isClosed() ? HealthServingStatus.NOT_SERVING : HealthServingStatus.SERVING;
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
