/**
 * Access decisions in the audit stream: every refused gRPC call (and every credential the
 * controller issues or revokes) is one record on `bulwark.v1.audit._access`, beside the
 * nodes' trust events (no node id starts with "_", so the subject is nobody's).
 */
import { Type } from '@sinclair/typebox';
import { defineDocument } from '../../lib/schema/index.js';

/** The audit subject of access records (inside BULWARK_AUDIT's `bulwark.v1.audit.>`). */
export const ACCESS_AUDIT_SUBJECT = 'bulwark.v1.audit._access';

const Text = (maxLength: number) => Type.String({ maxLength });

/** One access record: who, which RPC or action, what was decided and why. */
export const AccessAuditRecordSchema = Type.Object(
  {
    version: Type.Literal(1),
    /** ISO time of the decision. */
    at: Text(40),
    /** "anonymous", "person:NAME(ROLE)" or "node:ID". */
    caller: Text(200),
    /** The gRPC path, or the action ("credentials.issue", "credentials.revoke"). */
    rpc: Text(200),
    decision: Type.Union([Type.Literal('refused'), Type.Literal('done')]),
    /** The BulwarkError code of a refusal; empty for a done action. */
    code: Text(64),
    /** Why, for people; or what was done. */
    message: Text(1000),
    /** The peer address as gRPC reports it. */
    peer: Text(200),
  },
  { additionalProperties: false },
);

/** Access records as read back from the audit stream (tests, `bulwarkctl audit` later). */
export const ACCESS_AUDIT_RECORD = defineDocument(AccessAuditRecordSchema, 'access audit record', 'STORE_CORRUPT');
