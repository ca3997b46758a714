/**
 * The gRPC services generated from proto/ (proto/gen/), and a typed client of the
 * controller's API (used by the agent and bulwarkctl). Every response is checked by
 * proto/wire.ts before the caller sees it.
 */
import * as grpc from '@grpc/grpc-js';
import { loadFileDescriptorSetFromBuffer } from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import { createSecureContext } from 'node:tls';
import { BulwarkError, isErrorCode } from '../lib/index.js';
import { AttestationClient, AttestationService, type ControllerStatus, type TrustEvent } from './gen/bulwark/v1/attestation.js';
import { FILE_DESCRIPTOR_SET_BASE64 } from './gen/descriptor-set.js';
import { AppsClient, AppsService, PlacementClient, PlacementService } from './gen/bulwark/v1/placement.js';
import { PoliciesClient, PoliciesService } from './gen/bulwark/v1/policies.js';
import { RegistrarClient, RegistrarService } from './gen/bulwark/v1/registrar.js';
import { CredentialsClient, CredentialsService } from './gen/bulwark/v1/credentials.js';
import { AuditClient, AuditService } from './gen/bulwark/v1/audit.js';
import { HealthCheckResponse_ServingStatus, HealthClient, HealthService } from './gen/grpc/health/v1/health.js';
import {
  checkActivateResponse,
  checkAppStatus,
  checkAppSummary,
  checkBaselineStatus,
  checkEnrollResponse,
  checkHeldEnrollment,
  checkList,
  checkNode,
  checkNodeId,
  checkKeySetInfo,
  checkPolicyInfo,
  checkText,
  checkTrustEvent,
  enrollRequestToWire,
  type ActivateRequestMsg,
  type ActivateResponseMsg,
  type AppStatusMsg,
  type BaselineStatusMsg,
  type AppSummaryMsg,
  type EnrollRequestMsg,
  type EnrollResponseMsg,
  type HeldEnrollmentMsg,
  type KeySetInfoMsg,
  type NodeMsg,
  type PolicyInfoMsg,
  type TrustEventMsg,
} from './wire.js';

/** Service definitions for `grpc.Server.addService`, generated from the .proto files. */
export const REGISTRAR_SERVICE = RegistrarService;
export const ATTESTATION_SERVICE = AttestationService;
export const HEALTH_SERVICE = HealthService;
export const POLICIES_SERVICE = PoliciesService;
export const PLACEMENT_SERVICE = PlacementService;
export const APPS_SERVICE = AppsService;
export const CREDENTIALS_SERVICE = CredentialsService;
export const AUDIT_SERVICE = AuditService;

/** The fully qualified names of the services the controller serves (gRPC health answers for each). */
export const CONTROLLER_SERVICE_NAMES = [
  'bulwark.v1.Registrar',
  'bulwark.v1.Attestation',
  'bulwark.v1.Policies',
  'bulwark.v1.Placement',
  'bulwark.v1.Apps',
  'bulwark.v1.Credentials',
  'bulwark.v1.Audit',
  'grpc.health.v1.Health',
] as const;

/** The reflection services @grpc/reflection adds (v1 and the older v1alpha that grpcurl still asks first). */
export const REFLECTION_SERVICE_NAMES = ['grpc.reflection.v1.ServerReflection', 'grpc.reflection.v1alpha.ServerReflection'] as const;

/**
 * gRPC server reflection (@grpc/reflection) over every service of proto/: built from the
 * FileDescriptorSet generated beside the code (proto/gen/descriptor-set.ts), so nothing
 * is read from disk at run time.
 */
export function controllerReflection(): { addToServer(server: Pick<grpc.Server, 'addService'>): void } {
  const definition = loadFileDescriptorSetFromBuffer(Buffer.from(FILE_DESCRIPTOR_SET_BASE64, 'base64'));
  return new ReflectionService(definition);
}

/** Controller status (Attestation.GetStatus), checked. */
export interface ControllerStatusMsg {
  readonly version: string;
  readonly replica: string;
  readonly startedAt: string;
  readonly uptimeMs: number;
  readonly nodeVersion: string;
  readonly dependencies: readonly { readonly name: string; readonly configured: boolean; readonly reachable: boolean; readonly detail: string }[];
  readonly leases: readonly { readonly name: string; readonly holder: string; readonly heldByThisReplica: boolean; readonly expiresAt: string }[];
  readonly nodes: readonly { readonly state: string; readonly count: number }[];
}

/** Checks a ControllerStatus from the wire: bounded texts and lists, safe integers. */
export function checkControllerStatus(m: ControllerStatus): ControllerStatusMsg {
  if (!Number.isSafeInteger(m.uptimeMs) || m.uptimeMs < 0) throw new BulwarkError('WIRE_MALFORMED', 'uptime_ms is not a safe integer');
  return {
    version: checkText(m.version, 'version', 64),
    replica: checkText(m.replica, 'replica', 256),
    startedAt: checkText(m.startedAt, 'started_at', 64),
    uptimeMs: m.uptimeMs,
    nodeVersion: checkText(m.nodeVersion, 'node_version', 64),
    dependencies: checkList(m.dependencies.slice(0, 16), 'dependencies', (d) => ({
      name: checkText(d.name, 'name', 64),
      configured: d.configured,
      reachable: d.reachable,
      detail: checkText(d.detail, 'detail', 1024),
    })),
    leases: checkList(m.leases.slice(0, 16), 'leases', (l) => ({
      name: checkText(l.name, 'name', 64),
      holder: checkText(l.holder, 'holder', 256),
      heldByThisReplica: l.heldByThisReplica,
      expiresAt: checkText(l.expiresAt, 'expires_at', 64),
    })),
    nodes: checkList(m.nodes.slice(0, 16), 'nodes', (n) => ({ state: checkText(n.state, 'state', 32), count: n.count })),
  };
}

/** The latest signed audit checkpoint as the controller reports it (checked text; the note is verified by whoever trusts the key). */
export interface AuditCheckpointMsg {
  /** The signed note, "" when none was signed yet. */
  readonly checkpoint: string;
  readonly publicKeyPem: string;
  readonly treeSize: number;
  /** The code and message of what stops the controller from signing ("" when nothing). */
  readonly errorCode: string;
  readonly errorMessage: string;
}

/** A certificate the controller issued: PEM, its CA (PEM), serial (hex) and notAfter (ISO). */
export interface IssuedCredentialMsg {
  readonly certificate: string;
  readonly ca: string;
  readonly serial: string;
  readonly notAfter: string;
}

/** Metadata key carrying the BulwarkError code of a failed call. */
export const ERROR_CODE_METADATA = 'bulwark-code';

function toError(err: grpc.ServiceError): BulwarkError {
  const code = err.metadata?.get(ERROR_CODE_METADATA)[0];
  const text = typeof code === 'string' ? code : '';
  if (isErrorCode(text)) return new BulwarkError(text, err.details || err.message, {}, { cause: err });
  return new BulwarkError('RPC_FAILED', `controller call failed: ${err.details || err.message}`, { grpcStatus: err.code }, { cause: err });
}

/** A generated unary method, in its (request, metadata, options, callback) form. */
type UnaryMethod<Req, Res> = (
  request: Req,
  metadata: grpc.Metadata,
  options: Partial<grpc.CallOptions>,
  callback: (error: grpc.ServiceError | null, response: Res) => void,
) => grpc.ClientUnaryCall;

const SERVING_STATUS_NAMES: ReadonlyMap<number, string> = new Map(Object.entries(HealthCheckResponse_ServingStatus).map(([name, value]) => [value, name]));

/**
 * How a client reaches the controller: the controller CA it pins (PEM) and, except for
 * enrollment, its own certificate and key (PEM). TLS 1.3 only; there is no plaintext mode.
 */
export interface ClientTls {
  readonly caPem: string;
  readonly certPem?: string;
  readonly keyPem?: string;
}

/** Channel credentials for `tls`: the server must present a certificate of the pinned CA for the address dialled. */
export function clientCredentials(tls: ClientTls): grpc.ChannelCredentials {
  const context = createSecureContext({
    ca: tls.caPem,
    minVersion: 'TLSv1.3',
    ...(tls.certPem !== undefined && tls.keyPem !== undefined ? { cert: tls.certPem, key: tls.keyPem } : {}),
  });
  return grpc.credentials.createFromSecureContext(context);
}

/** A client of the controller's gRPC API; its answers are checked like any peer's. */
export class ControllerClient {
  private readonly registrar: RegistrarClient;
  private readonly attestation: AttestationClient;
  private readonly health: HealthClient;
  private readonly policies: PoliciesClient;
  private readonly placement: PlacementClient;
  private readonly apps: AppsClient;
  private readonly credentials: CredentialsClient;
  private readonly audit: AuditClient;
  private readonly timeoutMs: number;

  constructor(address: string, opts: { readonly tls: ClientTls; readonly timeoutMs?: number }) {
    const creds = clientCredentials(opts.tls);
    this.registrar = new RegistrarClient(address, creds);
    this.attestation = new AttestationClient(address, creds);
    this.health = new HealthClient(address, creds);
    this.policies = new PoliciesClient(address, creds);
    this.placement = new PlacementClient(address, creds);
    this.apps = new AppsClient(address, creds);
    this.credentials = new CredentialsClient(address, creds);
    // An audit export carries up to 2000 records with their proofs in one message.
    this.audit = new AuditClient(address, creds, { 'grpc.max_receive_message_length': 64 * 1024 * 1024 });
    this.timeoutMs = opts.timeoutMs ?? 10_000;
  }

  private unary<Req, Res>(method: UnaryMethod<Req, Res>, req: Req): Promise<Res> {
    return new Promise((resolve, reject) => {
      method(req, new grpc.Metadata(), { deadline: Date.now() + this.timeoutMs }, (err, res) => {
        if (err !== null) reject(toError(err));
        else resolve(res);
      });
    });
  }

  async enroll(req: EnrollRequestMsg): Promise<EnrollResponseMsg> {
    return checkEnrollResponse(await this.unary(this.registrar.enroll.bind(this.registrar), enrollRequestToWire(req)));
  }

  async activateCredential(req: ActivateRequestMsg): Promise<ActivateResponseMsg> {
    return checkActivateResponse(await this.unary(this.registrar.activateCredential.bind(this.registrar), {
        challengeId: req.challengeId,
        secret: req.secret,
        nodePublicKey: req.nodePublicKey ?? new Uint8Array(0),
        natsPublicKey: req.natsPublicKey,
      }));
  }

  /** The gRPC health status ("SERVING", "NOT_SERVING", ...) of the server (""), or of one service by its full name. */
  async healthCheck(service = ''): Promise<string> {
    const res = await this.unary(this.health.check.bind(this.health), { service });
    return SERVING_STATUS_NAMES.get(res.status) ?? 'UNKNOWN';
  }

  /** Attestation.GetStatus (viewers): the answering replica's version, uptime, dependencies, leases and nodes by state. */
  async status(): Promise<ControllerStatusMsg> {
    return checkControllerStatus(await this.unary(this.attestation.getStatus.bind(this.attestation), {}));
  }

  async listNodes(): Promise<NodeMsg[]> {
    return (await this.unary(this.attestation.listNodes.bind(this.attestation), {})).nodes.map(checkNode);
  }

  async getNode(nodeId: string): Promise<NodeMsg> {
    return checkNode(await this.unary(this.attestation.getNode.bind(this.attestation), { nodeId }));
  }

  async history(nodeId: string, limit: number): Promise<TrustEventMsg[]> {
    return (await this.unary(this.attestation.history.bind(this.attestation), { nodeId, limit })).events.map(checkTrustEvent);
  }

  async reattest(nodeId: string): Promise<string> {
    return checkText((await this.unary(this.attestation.reattest.bind(this.attestation), { nodeId })).nonce, 'nonce', 256);
  }

  /** A node's host baseline: the one that applies, its report chain, exposure, findings, last corrections. */
  async getBaseline(nodeId: string): Promise<BaselineStatusMsg> {
    return checkBaselineStatus(await this.unary(this.attestation.getBaseline.bind(this.attestation), { nodeId }));
  }

  /** The controller's attestation (statement) public key, PEM, and the sha256 of its SPKI. */
  async getStatementKey(): Promise<{ publicKeyPem: string; sha256: string }> {
    const r = await this.unary(this.attestation.getStatementKey.bind(this.attestation), {});
    return { publicKeyPem: checkText(r.publicKeyPem, 'publicKeyPem', 16_384), sha256: checkText(r.sha256, 'sha256', 64) };
  }

  async approveReenrollment(nodeId: string): Promise<NodeMsg> {
    return checkNode(await this.unary(this.attestation.approveReenrollment.bind(this.attestation), { nodeId }));
  }

  /** Admin: binds the TPM of `from` (node id or EK name) to `toNodeId`. */
  async moveNode(from: string, toNodeId: string): Promise<{ ekName: string; fromNodeId: string; toNodeId: string }> {
    const r = await this.unary(this.attestation.moveNode.bind(this.attestation), { from, toNodeId });
    return { ekName: checkText(r.ekName, 'ek_name', 256), fromNodeId: checkNodeId(r.fromNodeId), toNodeId: checkNodeId(r.toNodeId) };
  }

  /** Admin: enrollments waiting for approval. */
  async listHeldEnrollments(): Promise<HeldEnrollmentMsg[]> {
    const r = await this.unary(this.attestation.listHeldEnrollments.bind(this.attestation), {});
    return checkList(r.enrollments, 'enrollments', checkHeldEnrollment);
  }

  /** Admin: lets a held enrollment (node id or EK name) proceed. */
  async approveEnrollment(nodeOrEk: string): Promise<HeldEnrollmentMsg> {
    return checkHeldEnrollment(await this.unary(this.attestation.approveEnrollment.bind(this.attestation), { nodeOrEk }));
  }

  async putPolicy(kind: string, name: string, document: string): Promise<PolicyInfoMsg> {
    return checkPolicyInfo(await this.unary(this.policies.putPolicy.bind(this.policies), { kind, name, document }));
  }

  /** Admin: installs the first key set of a kind (init) or rotates it. */
  async putKeySet(kind: string, envelope: string, init: boolean): Promise<KeySetInfoMsg> {
    return checkKeySetInfo(await this.unary(this.policies.putKeySet.bind(this.policies), { kind, envelope, init }));
  }

  async getKeySet(kind: string): Promise<KeySetInfoMsg> {
    return checkKeySetInfo(await this.unary(this.policies.getKeySet.bind(this.policies), { kind }));
  }

  async getPolicy(kind: string, name: string): Promise<string> {
    return (await this.unary(this.policies.getPolicy.bind(this.policies), { kind, name })).document;
  }

  async listPolicies(kind: string): Promise<PolicyInfoMsg[]> {
    return (await this.unary(this.policies.listPolicies.bind(this.policies), { kind })).policies.map(checkPolicyInfo);
  }

  /** Assigns `name` (null: removes the assignment) to a node, a group ({ group }), or as default (null). */
  async assignPolicy(kind: string, name: string | null, target: string | { readonly group: string } | null): Promise<void> {
    const nodeId = typeof target === 'string' ? target : '';
    const group = target !== null && typeof target === 'object' ? target.group : '';
    await this.unary(this.policies.assignPolicy.bind(this.policies), { kind, name: name ?? '', nodeId, group });
  }

  /** Puts a node in a policy group (null: in none). */
  async setNodeGroup(nodeId: string, group: string | null): Promise<void> {
    await this.unary(this.policies.setNodeGroup.bind(this.policies), { nodeId, group: group ?? '' });
  }

  /** Placement.IsTrusted: whether a node is trusted now, for host-side gates. */
  async isTrusted(nodeId: string): Promise<{ trusted: boolean; state: string; reasons: string[] }> {
    const res = await this.unary(this.placement.isTrusted.bind(this.placement), { nodeId });
    return {
      trusted: res.trusted,
      state: res.state === '' ? 'unknown' : checkText(res.state, 'state', 32),
      reasons: res.reasons.map((r) => checkText(r.code, 'code', 64)),
    };
  }

  async listApps(): Promise<AppSummaryMsg[]> {
    return (await this.unary(this.apps.listApps.bind(this.apps), {})).apps.map(checkAppSummary);
  }

  /** Deploys an app: `envelope` is its signed spec (DSSE, app+json); `hcl` an optional spec that must equal the signed one. */
  async deployApp(name: string, hcl = '', envelope = ''): Promise<AppStatusMsg> {
    return checkAppStatus(await this.unary(this.apps.deployApp.bind(this.apps), { name, hcl, envelope }));
  }

  async appStatus(name: string): Promise<AppStatusMsg> {
    return checkAppStatus(await this.unary(this.apps.appStatus.bind(this.apps), { name }));
  }

  async stopApp(name: string): Promise<AppStatusMsg> {
    return checkAppStatus(await this.unary(this.apps.stopApp.bind(this.apps), { name }));
  }

  /** Credentials.IssueCredential (admin): a person's certificate for a public key the caller generated. */
  async issueCredential(name: string, role: string, validForMs: number, publicKey: Uint8Array): Promise<IssuedCredentialMsg> {
    const res = await this.unary(this.credentials.issueCredential.bind(this.credentials), { name, role, validForMs, publicKey });
    return {
      certificate: checkText(res.certificate, 'certificate', 16 * 1024),
      ca: checkText(res.ca, 'ca', 16 * 1024),
      serial: checkText(res.serial, 'serial', 64),
      notAfter: checkText(res.notAfter, 'not_after', 64),
    };
  }

  /** Credentials.RevokeCredential (admin): revokes a serial, or every unexpired certificate of a name; returns the serials. */
  async revokeCredential(nameOrSerial: string): Promise<string[]> {
    const res = await this.unary(this.credentials.revokeCredential.bind(this.credentials), { nameOrSerial });
    return res.serials.slice(0, 1000).map((s) => checkText(s, 'serial', 64));
  }

  /** Credentials.RenewNodeCertificate (a node, with its current certificate): a new one for `publicKey`. */
  async renewNodeCertificate(publicKey: Uint8Array): Promise<{ certificate: string; ca: string }> {
    const res = await this.unary(this.credentials.renewNodeCertificate.bind(this.credentials), { publicKey });
    return { certificate: checkText(res.certificate, 'certificate', 16 * 1024), ca: checkText(res.ca, 'ca', 16 * 1024) };
  }

  /** Audit.GetAuditCheckpoint (viewers): the latest signed checkpoint and the signing key. */
  async auditCheckpoint(): Promise<AuditCheckpointMsg> {
    const res = await this.unary(this.audit.getAuditCheckpoint.bind(this.audit), {});
    if (!Number.isSafeInteger(res.treeSize)) throw new BulwarkError('WIRE_MALFORMED', 'tree_size is not a safe integer');
    return {
      checkpoint: checkText(res.checkpoint, 'checkpoint', 256 * 1024),
      publicKeyPem: checkText(res.publicKeyPem, 'public_key_pem', 16 * 1024),
      treeSize: res.treeSize,
      errorCode: checkText(res.errorCode, 'error_code', 64),
      errorMessage: checkText(res.errorMessage, 'error_message', 4096),
    };
  }

  /** Audit.ExportAudit (admins): records [from, to) with proofs, as audit bundle JSON (verify it with lib/merkle). */
  async exportAudit(from: number, to: number | null, previousSize: number | null): Promise<string> {
    const res = await this.unary(this.audit.exportAudit.bind(this.audit), { from, to: to ?? 0, withPrevious: previousSize !== null, previousSize: previousSize ?? 0 });
    return checkText(res.bundle, 'bundle', 64 * 1024 * 1024);
  }

  /**
   * Streams trust events until `signal` aborts; `onEvent` sees each one, `onReady` runs
   * once the controller's subscription is live.
   */
  watchTrust(nodeId: string, onEvent: (e: TrustEventMsg) => void, signal?: AbortSignal, onReady?: () => void): Promise<void> {
    const stream = this.attestation.watchTrust({ nodeId });
    return new Promise((resolve, reject) => {
      signal?.addEventListener('abort', () => stream.cancel());
      stream.on('metadata', () => onReady?.());
      stream.on('data', (event: TrustEvent) => {
        try {
          onEvent(checkTrustEvent(event));
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
    this.credentials.close();
    this.audit.close();
  }
}
