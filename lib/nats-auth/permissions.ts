/**
 * Who may publish and subscribe to what on Bulwark's NATS account. The controller has full
 * rights (JetStream and KV APIs, every node's subjects, its inboxes). A node may do exactly
 * this and nothing else:
 *   publish    bulwark.v1.nonce.<node>, bulwark.v1.evidence.<node>,
 *              bulwark.v1.attest-sign.<node>                         (requests to the controller)
 *   subscribe  bulwark.v1.challenge.<node>, _INBOX.node.<node>.>     (challenges, replies)
 * In nats-server an allow list means "only these"; the deny lists repeat what a node must
 * never reach so that a later, wider allow cannot open it by accident (deny wins).
 */
import { NODE_SUBJECTS } from './subjects.js';
import type { NatsNodeId } from './node-id.js';

/** Allow and deny lists of subjects (NATS wildcards allowed) for one direction. */
export interface SubjectPermissions {
  readonly allow: readonly string[];
  readonly deny: readonly string[];
}

/**
 * nats-server `allow_responses`: lets a user publish once (`max`) to the reply subject of a
 * request it received, within `expiresMs`, without a publish permission for that subject.
 */
export interface AllowResponses {
  readonly max: number;
  readonly expiresMs: number;
}

/** The permissions of one NATS user. */
export interface NatsPermissions {
  readonly publish: SubjectPermissions;
  readonly subscribe: SubjectPermissions;
  /** null: the user answers no requests. */
  readonly allowResponses: AllowResponses | null;
}

/** Subjects no node may publish or subscribe to, even if an allow list later grows. */
export const NODE_DENIED_SUBJECTS: readonly string[] = ['$JS.>', '$KV.>', '$O.>', '$SYS.>', NODE_SUBJECTS.trustAll, NODE_SUBJECTS.auditAll];

/** The controller: every subject, both directions (JetStream, KV, all nodes, its own inboxes). */
export function controllerPermissions(): NatsPermissions {
  return {
    publish: { allow: ['>'], deny: [] },
    subscribe: { allow: ['>'], deny: [] },
    allowResponses: null,
  };
}

/**
 * One node: its own requests out, its own challenges and replies in. No allow_responses:
 * challenges are plain publishes and the node answers them with a request of its own, so it
 * never needs to publish to a reply subject it was given.
 */
export function nodePermissions(nodeId: NatsNodeId): NatsPermissions {
  return {
    publish: { allow: [NODE_SUBJECTS.nonce(nodeId), NODE_SUBJECTS.evidence(nodeId), NODE_SUBJECTS.attestSign(nodeId)], deny: NODE_DENIED_SUBJECTS },
    subscribe: { allow: [NODE_SUBJECTS.challenge(nodeId), `${NODE_SUBJECTS.inboxPrefix(nodeId)}.>`], deny: NODE_DENIED_SUBJECTS },
    allowResponses: null,
  };
}
