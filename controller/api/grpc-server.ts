/**
 * The controller's gRPC API: Registrar (Enroll, ActivateCredential) and Attestation
 * (ListNodes, GetNode, WatchTrust, History, Reattest). Every failure leaves as a gRPC
 * status mapped from its BulwarkError code, with the code in metadata.
 *
 * Served over TLS 1.3 only. The TLS layer asks every client for a certificate but does not
 * refuse a handshake without one (Enroll, ActivateCredential and health are open to
 * callers without a certificate); one interceptor checks every call against the
 * authorization table (access.ts) before any handler runs, and audits every refusal.
 */
import * as grpc from '@grpc/grpc-js';
import { type Static } from '@sinclair/typebox';
import { BulwarkError, fromHex, grpcStatusFor, toBulwarkError } from '../../lib/index.js';
import {
  checkUserName,
  decodeCertificate,
  isRole,
  issueNodeCertificate,
  issuePersonCertificate,
  normalizeSerial,
  publicKeyFromSpki,
  validityFor,
  type CertificateAuthority,
  type ClientIdentity,
} from '../../lib/pki/index.js';
import type { RevocationStore } from '../pki/index.js';
import { ACCESS_AUDIT_SUBJECT, type AccessAuditRecordSchema } from './access-audit.js';
import { accessOf, authorize, describeCaller, verifyPeerCertificate, type Caller } from './access.js';
import type { NodeRecord } from '../../lib/attestation/index.js';
import {
  APPS_SERVICE,
  ATTESTATION_SERVICE,
  AUDIT_SERVICE,
  CONTROLLER_SERVICE_NAMES,
  CREDENTIALS_SERVICE,
  REFLECTION_SERVICE_NAMES,
  controllerReflection,
  ERROR_CODE_METADATA,
  HEALTH_SERVICE,
  HealthServingStatus,
  PLACEMENT_SERVICE,
  POLICIES_SERVICE,
  REGISTRAR_SERVICE,
  appStatusToWire,
  baselineStatusToWire,
  checkActivateRequest,
  checkEnrollRequest,
  checkNodeId,
  checkText,
  findingToMsg,
  keySetInfoToWire,
  nodeToWire,
  policyInfoToWire,
  SUBJECTS,
  trustEventToWire,
  wire,
  type AppsServer,
  type AttestationServer,
  type AuditServer,
  type BaselineStatusMsg,
  type ControllerStatusMsg,
  type CredentialsServer,
  type HeldEnrollmentMsg,
  type HealthServer,
  type NodeMsg,
  type PlacementServer,
  type PoliciesServer,
  type RegistrarServer,
} from '../../proto/index.js';
import type { AppCatalogue } from '../apps/index.js';
import type { AuditLog } from '../audit/index.js';
import type { BaselineStatus } from '../appraisers/index.js';
import { checkKeySetKind, type CurrentKeySet, type KeySetStore, type PolicyStore } from '../policies/index.js';
import type { HeldEnrollment, Registrar } from '../registrar/index.js';
import type { AdminAudit, ControllerStore } from '../state/index.js';
import type { Verifier } from '../verifier/index.js';
import { errorFields, silentLogger, type Logger } from '../../daemon/index.js';

/** The files of a TLS credential set, PEM. */
export interface TlsCredentialFiles {
  readonly caPem: string;
  readonly certPem: string;
  readonly keyPem: string;
}

/**
 * Server credentials for TLS 1.3 only that request a client certificate without making its
 * absence (or failure) end the handshake: grpc-js then reports the peer certificate only
 * for a verified chain, and the interceptor decides per call. createSsl cannot express
 * this (its checkClientCertificate also rejects unauthorised peers, and it sets no
 * minimum version), so the options are given to the base class directly.
 */
class Tls13ServerCredentials extends grpc.ServerCredentials {
  constructor(set: TlsCredentialFiles) {
    super({ requestCert: true, rejectUnauthorized: false, minVersion: 'TLSv1.3' }, { ca: set.caPem, cert: set.certPem, key: set.keyPem, minVersion: 'TLSv1.3' });
  }

  _equals(other: grpc.ServerCredentials): boolean {
    return other === this;
  }
}

/** gRPC server credentials of the controller: TLS 1.3, client certificates requested. Trust: the server's own. */
export function controllerServerCredentials(set: TlsCredentialFiles): grpc.ServerCredentials {
  return new Tls13ServerCredentials(set);
}

/** The node_id a request names, when it has one. */
function requestNodeId(message: unknown): string | undefined {
  if (typeof message !== 'object' || message === null || !('nodeId' in message)) return undefined;
  return typeof message.nodeId === 'string' ? message.nodeId : undefined;
}

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

/** A node's baseline status in its API form. */
export function baselineStatusToMsg(b: BaselineStatus): BaselineStatusMsg {
  const stored = b.stored;
  const report = b.latest;
  const nft = report !== null && 'exposure' in report.nftables ? report.nftables : null;
  const selinux = report !== null && 'state' in report.selinux ? report.selinux.state : null;
  return {
    nodeId: b.nodeId,
    baselineName: b.baseline?.name ?? '',
    baselineSha256: b.baseline?.sha256 ?? '',
    baselineMode: b.baseline?.mode ?? '',
    chainLength: stored?.count ?? 0,
    bootId: stored?.bootId ?? '',
    latestReportAt: report?.time ?? '',
    latestReceivedAt: stored?.latest?.receivedAt ?? '',
    reportBaselineSha256: report?.baseline?.sha256 ?? '',
    exposureKnown: nft !== null,
    tcp: nft?.exposure.tcp ?? [],
    udp: nft?.exposure.udp ?? [],
    conditional: nft?.exposure.conditional ?? [],
    otherProtocols: nft?.exposure.otherProtocols ?? false,
    forwardOpen: nft?.exposure.forwardOpen ?? false,
    selinuxMode: selinux?.mode ?? '',
    changes: report?.changes ?? [],
    findings: (stored?.judged.findings ?? []).map((f) => ({ code: f.code, message: f.message, details: {} })),
    judgedAt: stored?.judged.at ?? '',
    enforcement: (stored?.lastEnforcement?.actions ?? []).map((a) => ({ target: a.target, action: a.action, changed: a.changed, ok: a.ok, error: a.error ?? '' })),
    enforcedAt: stored?.lastEnforcement?.at ?? '',
    reportError: b.reportError ?? '',
  };
}

/** A key set in force in its API form. */
function keySetToWire(c: CurrentKeySet): ReturnType<typeof keySetInfoToWire> {
  const d = c.keyset.document;
  return keySetInfoToWire({
    kind: d.kind,
    serial: d.serial,
    threshold: d.threshold,
    keys: d.keys.map((k) => ({ keyid: k.keyid, publicKeyPem: k.publicKeyPem, scheme: k.scheme ?? '' })),
    expires: d.expires ?? '',
    sha256: c.sha256,
    envelope: new TextDecoder().decode(c.envelope),
  });
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

function toServiceError(err: unknown): { code: number; details: string; metadata: grpc.Metadata } {
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
  /** The trusted key sets of signed documents (Policies.PutKeySet / GetKeySet). */
  readonly keysets: KeySetStore;
  readonly apps: AppCatalogue;
  /** Node baselines as the baseline appraiser holds them (GetBaseline). */
  readonly baselines: { status(nodeId: string): Promise<BaselineStatus> };
  /** A trusted verdict older than this does not count as trusted (Placement.IsTrusted). */
  readonly freshnessMs: number;
  /** The public key attestations are signed with (GetStatementKey); none: the RPC is unavailable. */
  readonly statementKey?: { readonly publicKeyPem: string; readonly sha256: string };
  /** Sends a challenge to the node now (Reattest). */
  readonly challengeNow: (nodeId: string) => Promise<string>;
  /** Trust events a watcher does not get are reported here. */
  readonly log?: Logger;
  /** Where admin actions of the API (approvals) are recorded; none: not recorded (unit tests of other parts). */
  readonly adminAudit?: AdminAudit;
  /** The TLS server set (ca.pem, cert.pem, key.pem) and the CA that client certificates must chain to. */
  readonly tls: { readonly server: TlsCredentialFiles; readonly ca: CertificateAuthority };
  /** The revocation list (read on every call, as this replica knows it now) and the issued-credential records. */
  readonly revocations: RevocationStore;
  /** How long node certificates are valid (default NODE_CERTIFICATE_VALIDITY_MS); agents renew at half of it. */
  readonly nodeCertificateValidityMs?: number;
  /** The audit log's tree and checkpoints; none: the Audit service answers AUDIT_CHECKPOINT_MISSING. */
  readonly audit?: AuditLog;
  /** The controller's own status (Attestation.GetStatus); none: the RPC is unavailable. */
  readonly status?: () => Promise<ControllerStatusMsg>;
}

/** Every service name gRPC health answers for: the server (""), the controller's services and reflection. */
const HEALTH_SERVICE_NAMES: ReadonlySet<string> = new Set(['', ...CONTROLLER_SERVICE_NAMES, ...REFLECTION_SERVICE_NAMES]);

/** The longest a person's credential issued through the API is valid: a year. */
export const MAX_PERSON_VALIDITY_MS = 366 * 24 * 60 * 60 * 1000;

/** Node certificates are short-lived: a day, renewed by the agent while it stays enrolled. */
export const NODE_CERTIFICATE_VALIDITY_MS = 24 * 60 * 60 * 1000;

type AccessAuditRecord = Static<typeof AccessAuditRecordSchema>;

export class GrpcApi {
  private readonly server: grpc.Server;
  private readonly deps: ApiDeps;
  private readonly log: Logger;
  /** Open server streams (WatchTrust, Health.Watch), ended when the API closes. */
  private readonly watchers = new Set<{ end(): void }>();
  port = 0;

  constructor(deps: ApiDeps) {
    this.deps = deps;
    this.log = deps.log ?? silentLogger();
    this.server = new grpc.Server({ interceptors: [(method, call) => this.authorizeCall(method.path, call)] });
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
        const checked = checkActivateRequest(req);
        const res = await registrar.activate(checked);
        const nodeCertificate = checked.nodePublicKey === undefined || checked.nodePublicKey.length === 0 ? '' : await this.issueNodeCertificate(res.nodeId, checked.nodePublicKey);
        return {
          nodeId: res.nodeId,
          nodeIdentity: res.nodeIdentity,
          natsUrl: res.natsUrl,
          pcrSelection: res.pcrSelection,
          intervalMs: res.intervalMs,
          nodeCertificate,
          controllerCa: nodeCertificate === '' ? '' : deps.tls.ca.pem,
        };
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
      getBaseline: unary(async (req) => {
        const nodeId = checkNodeId(req.nodeId);
        if ((await store.getNode(nodeId)) === null) throw new BulwarkError('NODE_NOT_FOUND', `no node ${nodeId}`);
        return baselineStatusToWire(baselineStatusToMsg(await deps.baselines.status(nodeId)));
      }),
      getStatus: unary(async () => {
        if (deps.status === undefined) throw new BulwarkError('INTERNAL', 'this API has no controller status');
        const st = await deps.status();
        return { ...st, dependencies: [...st.dependencies], leases: [...st.leases], nodes: [...st.nodes] };
      }),
      getStatementKey: unary(async () => {
        if (deps.statementKey === undefined) throw new BulwarkError('INTERNAL', 'this controller has no statement key');
        return { publicKeyPem: deps.statementKey.publicKeyPem, sha256: deps.statementKey.sha256 };
      }),
      approveReenrollment: unary(async (req) => {
        const nodeId = checkNodeId(req.nodeId);
        const stored = await store.getNode(nodeId);
        if (stored !== null && stored.corrupt !== null) {
          // Approving a node whose record is corrupt removes that record: the host enrolls
          // again as a new node (EK certificate chain and credential activation as always).
          await deps.adminAudit?.record('node.reenrollment-approved', nodeId, { corruptRecordRemoved: true });
          await store.removeCorruptNode(nodeId, stored.revision);
          return nodeToWire(nodeRecordToMsg({ ...stored.record, reenrollApproved: true }));
        }
        const updated = await store.updateNode(nodeId, (current) => {
          if (current === null) throw new BulwarkError('NODE_NOT_FOUND', `no node ${nodeId}`);
          if (!current.requiresReenrollment) throw new BulwarkError('USAGE', `node ${nodeId} does not need re-enrollment`);
          return current.reenrollApproved ? null : { ...current, reenrollApproved: true };
        });
        if (updated === null) throw new BulwarkError('NODE_NOT_FOUND', `no node ${nodeId}`);
        await deps.adminAudit?.record('node.reenrollment-approved', nodeId, { corruptRecordRemoved: false });
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
      // Admin only; init, rotation and refusals are audited by the key set store.
      putKeySet: (call, callback) => {
        const caller = this.handlerCaller(call);
        const run = async (): Promise<ReturnType<typeof keySetInfoToWire>> => {
          if (caller instanceof BulwarkError) throw caller;
          const kind = checkKeySetKind(checkText(call.request.kind, 'kind', 64));
          const envelope = new TextEncoder().encode(checkText(call.request.envelope, 'envelope', 4 * 1024 * 1024));
          return keySetToWire(await deps.keysets.put(kind, envelope, call.request.init, describeCaller(caller)));
        };
        run().then(
          (res) => callback(null, res),
          (err: unknown) => callback(toServiceError(err)),
        );
      },
      getKeySet: unary(async (req) => {
        const kind = checkKeySetKind(checkText(req.kind, 'kind', 64));
        const current = await deps.keysets.current(kind);
        if (current === null) throw new BulwarkError('KEYSET_MISSING', `no trusted ${kind} key set is installed`, { kind });
        return keySetToWire(current);
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
      deployApp: unary(async (req) =>
        appStatusToWire(await apps.deploy(checkText(req.name, 'name', 128), checkText(req.hcl, 'hcl', 1024 * 1024), checkText(req.envelope, 'envelope', 4 * 1024 * 1024))),
      ),
      appStatus: unary(async (req) => appStatusToWire(await apps.status(checkText(req.name, 'name', 128)))),
      stopApp: unary(async (req) => appStatusToWire(await apps.stop(checkText(req.name, 'name', 128)))),
    };
    const credentialsServer: CredentialsServer = {
      issueCredential: (call, callback) => {
        this.issuePerson(call.request, this.handlerCaller(call)).then(
          (res) => callback(null, res),
          (err: unknown) => callback(toServiceError(err)),
        );
      },
      revokeCredential: (call, callback) => {
        this.revoke(checkText(call.request.nameOrSerial, 'name_or_serial', 128), this.handlerCaller(call), call.getPeer()).then(
          (serials) => callback(null, { serials }),
          (err: unknown) => callback(toServiceError(err)),
        );
      },
      renewNodeCertificate: (call, callback) => {
        this.renewNode(call.request.publicKey, this.handlerCaller(call)).then(
          (certificate) => callback(null, { certificate, ca: deps.tls.ca.pem }),
          (err: unknown) => callback(toServiceError(err)),
        );
      },
    };
    const auditLog = (): AuditLog => {
      if (deps.audit === undefined) throw new BulwarkError('AUDIT_CHECKPOINT_MISSING', 'this controller keeps no audit log');
      return deps.audit;
    };
    const auditServer: AuditServer = {
      getAuditCheckpoint: unary(async () => {
        const state = await auditLog().state();
        return {
          checkpoint: state.checkpoint?.note ?? '',
          publicKeyPem: state.publicKeyPem,
          treeSize: state.treeSize,
          errorCode: state.problem?.code ?? '',
          errorMessage: state.problem?.message ?? '',
        };
      }),
      // Admin only.
      exportAudit: unary(async (req) => {
        const bundle = await auditLog().exportBundle(req.from, req.to === 0 ? undefined : req.to, req.withPrevious ? req.previousSize : undefined);
        return { bundle: JSON.stringify(bundle) };
      }),
    };
    // Health answers per service name (grpc.health.v1): every service this server has, and
    // "" for the server as a whole; Check of any other name is NOT_FOUND, Watch says SERVICE_UNKNOWN.
    const healthServer: HealthServer = {
      check: unary(async (req) => {
        if (!HEALTH_SERVICE_NAMES.has(req.service)) throw new BulwarkError('SERVICE_NOT_FOUND', `no service ${checkText(req.service, 'service', 200)} here`);
        return { status: this.healthStatus() };
      }),
      watch: (call) => {
        call.write({ status: HEALTH_SERVICE_NAMES.has(call.request.service) ? this.healthStatus() : HealthServingStatus.SERVICE_UNKNOWN });
        this.watchers.add(call);
        call.on('cancelled', () => this.watchers.delete(call));
      },
    };
    // Every method served must be in the authorization table: a new RPC without an entry fails at start.
    for (const definition of [REGISTRAR_SERVICE, ATTESTATION_SERVICE, POLICIES_SERVICE, PLACEMENT_SERVICE, APPS_SERVICE, CREDENTIALS_SERVICE, AUDIT_SERVICE, HEALTH_SERVICE]) {
      for (const method of Object.values(definition)) {
        if (accessOf(method.path) === undefined) throw new BulwarkError('INTERNAL', `${method.path} is not in the authorization table`);
      }
    }
    this.server.addService(REGISTRAR_SERVICE, registrarServer);
    this.server.addService(ATTESTATION_SERVICE, attestationServer);
    this.server.addService(POLICIES_SERVICE, policiesServer);
    this.server.addService(PLACEMENT_SERVICE, placementServer);
    this.server.addService(APPS_SERVICE, appsServer);
    this.server.addService(CREDENTIALS_SERVICE, credentialsServer);
    this.server.addService(AUDIT_SERVICE, auditServer);
    this.server.addService(HEALTH_SERVICE, healthServer);
    // Reflection (v1 and v1alpha) over every service; the interceptor holds it to the table like any call.
    for (const name of REFLECTION_SERVICE_NAMES) {
      if (accessOf(`/${name}/ServerReflectionInfo`) === undefined) throw new BulwarkError('INTERNAL', `${name} is not in the authorization table`);
    }
    controllerReflection().addToServer(this.server);
  }

  /**
   * A node certificate for `spki`, bound to the node id and the AK name the enrolled record
   * holds, valid for `nodeCertificateValidityMs`. Only called after the TPM proved the node.
   */
  private async issueNodeCertificate(nodeId: string, spki: Uint8Array): Promise<string> {
    const node = await this.deps.store.getNode(nodeId);
    if (node === null || node.corrupt !== null) throw new BulwarkError('NODE_NOT_FOUND', `no enrolled node ${nodeId}`);
    const issued = issueNodeCertificate(this.deps.tls.ca, {
      nodeId,
      akName: fromHex(node.record.akName),
      spki,
      validity: validityFor(new Date(), this.deps.nodeCertificateValidityMs ?? NODE_CERTIFICATE_VALIDITY_MS),
    });
    return issued.pem;
  }

  /**
   * The caller of a handler, from its peer certificate (checked again, as the interceptor
   * did: the handler acts for exactly that identity). AUTH_CERTIFICATE_REQUIRED without one.
   */
  private handlerCaller(call: { getAuthContext(): { sslPeerCertificate?: { raw?: Buffer } } | null }): ClientIdentity | BulwarkError {
    const raw = call.getAuthContext()?.sslPeerCertificate?.raw;
    try {
      return verifyPeerCertificate(raw === undefined ? undefined : new Uint8Array(raw), this.deps.tls.ca, this.deps.revocations.current(), Date.now());
    } catch (err) {
      return toBulwarkError(err, 'AUTH_CERTIFICATE_REQUIRED', 'the client certificate is not accepted');
    }
  }

  /** Credentials.IssueCredential: a person's certificate for the caller's public key, recorded and audited. */
  private async issuePerson(
    req: { name: string; role: string; validForMs: number; publicKey: Uint8Array },
    caller: ClientIdentity | BulwarkError,
  ): Promise<{ certificate: string; ca: string; serial: string; notAfter: string }> {
    if (caller instanceof BulwarkError) throw caller;
    const name = checkText(req.name, 'name', 64);
    checkUserName(name);
    const role = checkText(req.role, 'role', 16);
    if (!isRole(role)) throw new BulwarkError('USAGE', `"${role}" is not a role (viewer, operator, admin)`);
    if (!Number.isSafeInteger(req.validForMs) || req.validForMs <= 0 || req.validForMs > MAX_PERSON_VALIDITY_MS) {
      throw new BulwarkError('USAGE', `valid_for_ms must be between 1 and ${MAX_PERSON_VALIDITY_MS}`);
    }
    if (req.publicKey.length > 1024) throw new BulwarkError('WIRE_MALFORMED', 'public_key is larger than 1024 bytes');
    const publicKey = publicKeyFromSpki(req.publicKey);
    const issued = issuePersonCertificate(this.deps.tls.ca, { name, role, publicKey, validity: validityFor(new Date(), req.validForMs) });
    const notAfter = decodeCertificate(issued.der).notAfter;
    await this.deps.revocations.recordIssued({ serial: issued.serial, name, role, notAfter });
    await this.auditAccess({ caller: describeCaller(caller), rpc: 'credentials.issue', decision: 'done', code: '', message: `issued ${name} (${role}), serial ${issued.serial}`, peer: '' });
    return { certificate: issued.pem, ca: this.deps.tls.ca.pem, serial: issued.serial, notAfter: new Date(notAfter).toISOString() };
  }

  /** Credentials.RevokeCredential: a serial, or every unexpired certificate issued to a name; audited. */
  private async revoke(nameOrSerial: string, caller: ClientIdentity | BulwarkError, peer: string): Promise<string[]> {
    if (caller instanceof BulwarkError) throw caller;
    const now = Date.now();
    let targets: { serial: string; notAfter: number; subject: string }[];
    const byName = await this.deps.revocations.issuedTo(nameOrSerial, now);
    if (byName.length > 0) {
      targets = byName.map((c) => ({ ...c, subject: nameOrSerial }));
    } else {
      let serial: string;
      try {
        serial = normalizeSerial(nameOrSerial);
      } catch {
        throw new BulwarkError('CREDENTIAL_NOT_FOUND', `no unexpired credential issued to ${nameOrSerial}, and it is not a serial`);
      }
      // A serial not issued through the API (the first admin set, a node certificate): kept as long as the CA lives.
      const notAfter = (await this.deps.revocations.issuedNotAfter(serial)) ?? this.deps.tls.ca.notAfter;
      targets = [{ serial, notAfter, subject: nameOrSerial }];
    }
    for (const t of targets) await this.deps.revocations.revoke({ serial: t.serial, revokedAt: now, notAfter: t.notAfter, subject: t.subject });
    const serials = targets.map((t) => t.serial);
    await this.auditAccess({ caller: describeCaller(caller), rpc: 'credentials.revoke', decision: 'done', code: '', message: `revoked ${nameOrSerial}: ${serials.join(', ')}`, peer });
    return serials;
  }

  /** Credentials.RenewNodeCertificate: a node, with its current certificate, gets a new one for a new key while it stays enrolled. */
  private async renewNode(publicKey: Uint8Array, caller: ClientIdentity | BulwarkError): Promise<string> {
    if (caller instanceof BulwarkError) throw caller;
    if (caller.kind !== 'node') throw new BulwarkError('AUTH_PERMISSION_DENIED', 'only a node certificate renews a node certificate');
    if (publicKey.length === 0 || publicKey.length > 1024) throw new BulwarkError('WIRE_MALFORMED', 'public_key must be a SubjectPublicKeyInfo of at most 1024 bytes');
    const node = await this.deps.store.getNode(caller.nodeId);
    if (node === null || node.corrupt !== null) throw new BulwarkError('NODE_NOT_FOUND', `no enrolled node ${caller.nodeId}`);
    if (node.record.akName !== caller.akName) throw new BulwarkError('AUTH_PERMISSION_DENIED', `node ${caller.nodeId} enrolled again with another AK: enroll to get a certificate`);
    if (node.record.requiresReenrollment) throw new BulwarkError('AUTH_PERMISSION_DENIED', `node ${caller.nodeId} must enroll again`);
    return this.issueNodeCertificate(caller.nodeId, publicKey);
  }

  /** Who the peer certificate of `call` names: anonymous without one, or the refusal of one that fails its checks. */
  private callerOf(call: grpc.ServerInterceptingCallInterface): { caller: Caller; certificateError: BulwarkError | null } {
    const raw = call.getAuthContext().sslPeerCertificate?.raw;
    if (raw === undefined) return { caller: { kind: 'anonymous' }, certificateError: null };
    try {
      return { caller: verifyPeerCertificate(new Uint8Array(raw), this.deps.tls.ca, this.deps.revocations.current(), Date.now()), certificateError: null };
    } catch (err) {
      return { caller: { kind: 'anonymous' }, certificateError: toBulwarkError(err, 'AUTH_CERTIFICATE_REQUIRED', 'the client certificate is not accepted') };
    }
  }

  /**
   * The interceptor of every call: decides when the request message arrives (IsTrusted
   * needs its node_id), passes allowed calls on, and ends refused ones with their status
   * after the audit record is written. Nothing of a refused call reaches a handler.
   */
  private authorizeCall(path: string, call: grpc.ServerInterceptingCallInterface): grpc.ServerInterceptingCall {
    let refused = false;
    return new grpc.ServerInterceptingCall(call, {
      start: (next) => {
        next({
          onReceiveMessage: (message: unknown, nextMessage: (m: unknown) => void) => {
            const { caller, certificateError } = this.callerOf(call);
            let decision = authorize(path, caller, requestNodeId(message));
            if (decision !== null && decision.code === 'AUTH_CERTIFICATE_REQUIRED' && certificateError !== null) decision = certificateError;
            if (decision === null) {
              nextMessage(message);
              return;
            }
            refused = true;
            const refusal = decision;
            void this.auditAccess({ caller: describeCaller(caller), rpc: path, decision: 'refused', code: refusal.code, message: refusal.message, peer: call.getPeer() }).then(() =>
              call.sendStatus(toServiceError(refusal)),
            );
          },
          onReceiveHalfClose: (nextHalfClose: () => void) => {
            if (!refused) nextHalfClose();
          },
        });
      },
    });
  }

  /** Appends an access record to the audit stream; a record that cannot be appended is logged (the decision stands). */
  async auditAccess(record: Omit<AccessAuditRecord, 'version' | 'at'>): Promise<void> {
    const full: AccessAuditRecord = { version: 1, at: new Date().toISOString(), ...record, message: record.message.slice(0, 1000), peer: record.peer.slice(0, 200) };
    this.log.warn({ code: record.code, rpc: record.rpc, caller: record.caller, peer: record.peer }, record.decision === 'refused' ? 'refused a gRPC call' : 'access action');
    try {
      await this.deps.store.nc.jetstream().publish(ACCESS_AUDIT_SUBJECT, new TextEncoder().encode(JSON.stringify(full)));
    } catch (err) {
      this.log.error({ rpc: record.rpc, caller: record.caller, ...errorFields(err) }, 'dropped an access audit record: appending to the audit stream failed');
    }
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
      this.server.bindAsync(address, controllerServerCredentials(this.deps.tls.server), (err, port) => (err !== null ? reject(err) : resolve(port)));
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
