/**
 * The node-scoped NATS subjects: every subject a node may use names the node in its last
 * token, so the server's per-user permissions can confine a node to its own subjects and
 * the controller can take the node id from the subject rather than from the body.
 *
 *   bulwark.v1.nonce.<node>      node → controller, request/reply: a nonce for the next round
 *   bulwark.v1.evidence.<node>   node → controller, request/reply: a quote and its logs
 *   bulwark.v1.challenge.<node>  controller → node: "attest now" (unchanged from the shared scheme)
 *   bulwark.v1.attest-sign.<node> node → controller, request/reply: an attestation for an
 *                                artifact the node is about to sign (lib/dsse attested.ts)
 *   _INBOX.node.<node>.>         replies to the node's requests (nats.js `inboxPrefix`)
 *
 * The shared subjects `bulwark.v1.nonce` and `bulwark.v1.evidence` (one token shorter) do not
 * match `bulwark.v1.nonce.*`, so the two schemes can be served side by side while agents move.
 * Node inboxes sit under `_INBOX.node.`: nats.js's own inboxes are `_INBOX.<nuid>` with a
 * 22-character nuid, never `node`, so a node's inbox can never be the controller's.
 */
import { BulwarkError } from '../index.js';
import { parseNatsNodeId, type NatsNodeId } from './node-id.js';

/** Subject prefix of everything Bulwark publishes; the version is part of it. */
export const SUBJECT_PREFIX = 'bulwark.v1';

/** The kinds of subject a node publishes on. */
export type NodeSubjectKind = 'nonce' | 'evidence' | 'attest-sign';

const NODE_INBOX_ROOT = '_INBOX.node';

/** Node-scoped subjects; each builder takes a checked node id. */
export const NODE_SUBJECTS = {
  nonce: (nodeId: NatsNodeId): string => `${SUBJECT_PREFIX}.nonce.${nodeId}`,
  evidence: (nodeId: NatsNodeId): string => `${SUBJECT_PREFIX}.evidence.${nodeId}`,
  challenge: (nodeId: NatsNodeId): string => `${SUBJECT_PREFIX}.challenge.${nodeId}`,
  attestSign: (nodeId: NatsNodeId): string => `${SUBJECT_PREFIX}.attest-sign.${nodeId}`,
  /** The node's `inboxPrefix` for nats.js: its requests get replies under `<prefix>.<nuid>.<token>`. */
  inboxPrefix: (nodeId: NatsNodeId): string => `${NODE_INBOX_ROOT}.${nodeId}`,
  /** What the controller subscribes to (with its queue group) to serve every node's nonce requests. */
  nonceAll: `${SUBJECT_PREFIX}.nonce.*`,
  /** What the controller subscribes to (with its queue group) to serve every node's evidence. */
  evidenceAll: `${SUBJECT_PREFIX}.evidence.*`,
  /** What the controller subscribes to (with its queue group) to answer every node's signing requests. */
  attestSignAll: `${SUBJECT_PREFIX}.attest-sign.*`,
  /** Subjects only the controller publishes; listed so node permissions can deny them outright. */
  trustAll: `${SUBJECT_PREFIX}.trust.>`,
  auditAll: `${SUBJECT_PREFIX}.audit.>`,
} as const;

/** Longest subject read by nodeIdFromSubject; longer ones are refused before any split. */
const MAX_SUBJECT_LENGTH = SUBJECT_PREFIX.length + '.attest-sign.'.length + 128;

/**
 * The node a message came from, read from the subject it arrived on (untrusted input: the
 * server's permissions are what make it true). Throws NATS_AUTH_SUBJECT_INVALID unless the
 * subject is exactly `bulwark.v1.<kind>.<node id>`.
 */
export function nodeIdFromSubject(kind: NodeSubjectKind, subject: string): NatsNodeId {
  const prefix = `${SUBJECT_PREFIX}.${kind}.`;
  const shown = subject.slice(0, 200);
  if (subject.length > MAX_SUBJECT_LENGTH || !subject.startsWith(prefix)) {
    throw new BulwarkError('NATS_AUTH_SUBJECT_INVALID', `subject ${JSON.stringify(shown)} is not ${prefix}<node>`, { subject: shown });
  }
  try {
    return parseNatsNodeId(subject.slice(prefix.length));
  } catch (err) {
    throw new BulwarkError('NATS_AUTH_SUBJECT_INVALID', `subject ${JSON.stringify(shown)} does not end in a node id`, { subject: shown }, { cause: err });
  }
}

/**
 * The node id a request is served for: the one from the subject. A body that names another
 * node is refused (NATS_AUTH_NODE_MISMATCH); a body that names no node takes the subject's.
 */
export function checkBodyNodeId(kind: NodeSubjectKind, subject: string, bodyNodeId: string): NatsNodeId {
  const nodeId = nodeIdFromSubject(kind, subject);
  if (bodyNodeId !== '' && bodyNodeId !== nodeId) {
    throw new BulwarkError('NATS_AUTH_NODE_MISMATCH', `a ${kind} message on ${nodeId}'s subject names another node`, {
      subjectNode: nodeId,
      bodyNode: bodyNodeId.slice(0, 128),
    });
  }
  return nodeId;
}
