/**
 * Who may call what on the controller's gRPC API: one table mapping every RPC of every
 * service to the callers it admits, the check of a client certificate against the
 * controller's CA (signature, validity, revocation) and the decision for one call. Pure:
 * the TLS layer only hands the peer certificate over; everything that authorises is here.
 */
import { X509Certificate } from 'node:crypto';
import { BulwarkError } from '../../lib/index.js';
import { decodeCertificate, identityOf, isRevoked, type CertificateAuthority, type ClientIdentity, type RevocationList, type Role } from '../../lib/pki/index.js';

/** What a call admits: anyone (the TPM proves the node there), people of some roles, a node for itself. */
export type Access =
  | { readonly kind: 'open' }
  | { readonly kind: 'people'; readonly roles: readonly Role[] }
  /** People of these roles, or the node certificate of the node the request names (node_id). */
  | { readonly kind: 'people-or-own-node'; readonly roles: readonly Role[] }
  /** Only a node certificate, for its own node (renewal). */
  | { readonly kind: 'own-node' };

const OPEN: Access = { kind: 'open' };
const VIEWER: Access = { kind: 'people', roles: ['viewer', 'operator', 'admin'] };
const OPERATOR: Access = { kind: 'people', roles: ['operator', 'admin'] };
const ADMIN: Access = { kind: 'people', roles: ['admin'] };

/**
 * The authorization table: every RPC the controller serves, by its gRPC path. A path that
 * is not here is refused (the server checks at start that every registered method is).
 */
export const RPC_ACCESS: Readonly<Record<string, Access>> = {
  // Enrollment: no certificate yet; the EK certificate chain and credential activation prove the node.
  '/bulwark.v1.Registrar/Enroll': OPEN,
  '/bulwark.v1.Registrar/ActivateCredential': OPEN,
  '/bulwark.v1.Attestation/ListNodes': VIEWER,
  '/bulwark.v1.Attestation/GetNode': VIEWER,
  '/bulwark.v1.Attestation/WatchTrust': VIEWER,
  '/bulwark.v1.Attestation/History': VIEWER,
  '/bulwark.v1.Attestation/GetBaseline': VIEWER,
  '/bulwark.v1.Attestation/GetStatementKey': VIEWER,
  // The replica's own health (bulwarkctl status): what any reader of the fleet may see.
  '/bulwark.v1.Attestation/GetStatus': VIEWER,
  '/bulwark.v1.Attestation/Reattest': OPERATOR,
  '/bulwark.v1.Attestation/ApproveReenrollment': ADMIN,
  '/bulwark.v1.Attestation/MoveNode': ADMIN,
  '/bulwark.v1.Attestation/ListHeldEnrollments': ADMIN,
  '/bulwark.v1.Attestation/ApproveEnrollment': ADMIN,
  '/bulwark.v1.Policies/GetPolicy': VIEWER,
  '/bulwark.v1.Policies/ListPolicies': VIEWER,
  '/bulwark.v1.Policies/AssignPolicy': OPERATOR,
  '/bulwark.v1.Policies/SetNodeGroup': OPERATOR,
  '/bulwark.v1.Policies/PutPolicy': ADMIN,
  '/bulwark.v1.Policies/PutKeySet': ADMIN,
  '/bulwark.v1.Policies/GetKeySet': VIEWER,
  '/bulwark.v1.Apps/ListApps': VIEWER,
  '/bulwark.v1.Apps/AppStatus': VIEWER,
  '/bulwark.v1.Apps/DeployApp': OPERATOR,
  '/bulwark.v1.Apps/StopApp': OPERATOR,
  '/bulwark.v1.Credentials/IssueCredential': ADMIN,
  '/bulwark.v1.Credentials/RevokeCredential': ADMIN,
  '/bulwark.v1.Credentials/RenewNodeCertificate': { kind: 'own-node' },
  // The latest checkpoint is public to anyone of the fleet; records (who did what) to admins, the auditors.
  '/bulwark.v1.Audit/GetAuditCheckpoint': VIEWER,
  '/bulwark.v1.Audit/ExportAudit': ADMIN,
  '/bulwark.v1.Placement/IsTrusted': { kind: 'people-or-own-node', roles: ['viewer', 'operator', 'admin'] },
  // Load balancers and probes ask without a certificate; the answer says only SERVING or not.
  '/grpc.health.v1.Health/Check': OPEN,
  '/grpc.health.v1.Health/Watch': OPEN,
  // Server reflection describes the API (services, methods, messages), not the fleet; it is
  // still a call on the API, so it takes a person's certificate of any role, and every
  // refusal is audited as any other. Nodes do not need it.
  '/grpc.reflection.v1.ServerReflection/ServerReflectionInfo': VIEWER,
  '/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo': VIEWER,
};

/** The access of `path`, or undefined for a path the table does not name. */
export function accessOf(path: string): Access | undefined {
  return Object.prototype.hasOwnProperty.call(RPC_ACCESS, path) ? RPC_ACCESS[path] : undefined;
}

/** Who a caller is, for decisions and audit records. */
export type Caller = { readonly kind: 'anonymous' } | ClientIdentity;

/** A caller as audit records name it: "anonymous", "person:alice(viewer)", "node:host-1". */
export function describeCaller(caller: Caller): string {
  if (caller.kind === 'anonymous') return 'anonymous';
  if (caller.kind === 'person') return `person:${caller.name}(${caller.role})`;
  return `node:${caller.nodeId}`;
}

/**
 * The identity of a peer certificate, checked here and not only by TLS: issued (signed) by
 * the controller's CA, within its validity at `now`, not revoked, and naming exactly one
 * person or node. AUTH_CERTIFICATE_REQUIRED for none or one that fails a check,
 * AUTH_CERTIFICATE_REVOKED for a revoked one. Trust: the result authorises calls.
 */
export function verifyPeerCertificate(der: Uint8Array | undefined, ca: CertificateAuthority, revocations: RevocationList, now: number): ClientIdentity {
  const required = (why: string): BulwarkError =>
    new BulwarkError('AUTH_CERTIFICATE_REQUIRED', `this call needs a client certificate issued by the controller's CA, valid now and not revoked: ${why}`);
  if (der === undefined || der.length === 0) throw required('none was presented, or TLS did not accept it');
  let signed = false;
  try {
    const leaf = new X509Certificate(der);
    const issuer = new X509Certificate(ca.certificate);
    signed = leaf.checkIssued(issuer) && leaf.verify(issuer.publicKey);
  } catch {
    signed = false;
  }
  if (!signed) throw required('the certificate was not issued by this controller');
  let identity: ClientIdentity;
  try {
    const decoded = decodeCertificate(der);
    if (now < decoded.notBefore || now > decoded.notAfter) throw required('the certificate is not valid now');
    identity = identityOf(decoded);
  } catch (err) {
    if (err instanceof BulwarkError && err.code === 'AUTH_CERTIFICATE_REQUIRED') throw err;
    throw required(err instanceof Error ? err.message : 'the certificate names no identity');
  }
  if (isRevoked(revocations, identity.serial)) {
    throw new BulwarkError('AUTH_CERTIFICATE_REVOKED', `the certificate ${identity.serial} is revoked`, { serial: identity.serial });
  }
  return identity;
}

/**
 * Whether `caller` may call `path` with a request naming `requestNodeId` (the node_id field,
 * or undefined when the request has none). Returns null when allowed, else the refusal:
 * AUTH_CERTIFICATE_REQUIRED for an anonymous caller of a protected call,
 * AUTH_PERMISSION_DENIED for a role or node the table does not admit (and for any path it
 * does not name).
 */
export function authorize(path: string, caller: Caller, requestNodeId: string | undefined): BulwarkError | null {
  const access = accessOf(path);
  if (access === undefined) return new BulwarkError('AUTH_PERMISSION_DENIED', `${path} is not in the authorization table`, { rpc: path });
  if (access.kind === 'open') return null;
  if (caller.kind === 'anonymous') {
    return new BulwarkError('AUTH_CERTIFICATE_REQUIRED', `${path} needs a client certificate issued by the controller's CA, valid now and not revoked`, { rpc: path });
  }
  if (caller.kind === 'person') {
    if (access.kind !== 'own-node' && access.roles.includes(caller.role)) return null;
    return new BulwarkError('AUTH_PERMISSION_DENIED', `the role ${caller.role} may not call ${path}`, { rpc: path, role: caller.role });
  }
  // A node certificate acts for its own node only: renewal takes the node from the certificate.
  if (access.kind === 'own-node') return null;
  if (access.kind === 'people-or-own-node' && requestNodeId === caller.nodeId) return null;
  return new BulwarkError('AUTH_PERMISSION_DENIED', `node ${caller.nodeId} may call ${path} only for itself`, { rpc: path, node: caller.nodeId });
}
