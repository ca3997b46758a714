/**
 * Admin actions and refused identity claims in the audit stream (`BULWARK_AUDIT`, subject
 * `bulwark.v1.audit._admin.<action>`): policy pushes and assignments (an accept-all
 * measured-boot policy is flagged), EK moves, enrollment approvals and refusals, and the
 * corrections a node's agent made to enforce its baseline (reported, TPM-bound), trusted key
 * set installs and rotations, and refused signed documents (with their code). Trust
 * transitions keep their own per-node subjects; these records sit beside them so one
 * stream holds the history of who changed what the verdicts depend on.
 */
import { Type, type Static } from '@sinclair/typebox';
import type { JetStreamClient } from 'nats';
import { toBulwarkError } from '../../lib/index.js';
import { defineDocument, literalUnion } from '../../lib/schema/index.js';
import { SUBJECTS } from '../../proto/index.js';
import { errorFields, silentLogger, type Logger } from '../../daemon/index.js';

/** Every action an admin audit record can name. Append only. */
export const ADMIN_ACTIONS = [
  'policy.put',
  'policy.assign',
  'node.moved',
  'enrollment.refused',
  'enrollment.held',
  'enrollment.approved',
  'node.reenrollment-approved',
  'baseline.enforced',
  'sign.statement-issued',
  'sign.statement-refused',
  'keys.init',
  'keys.rotate',
  'keys.refused',
  'policy.refused',
  'app.refused',
] as const;

export type AdminAction = (typeof ADMIN_ACTIONS)[number];

/** One admin audit record as stored in the audit stream. */
export const AdminAuditRecordSchema = Type.Object(
  {
    version: Type.Literal(1),
    action: literalUnion(ADMIN_ACTIONS),
    at: Type.String({ maxLength: 64 }),
    /** What the action is about: a node id, a policy `kind/name`, an EK name. */
    subject: Type.String({ maxLength: 512 }),
    /** Free-form detail (no keys, no secrets): the code of a refusal, the target of an assignment. */
    details: Type.Record(Type.String({ maxLength: 64 }), Type.Union([Type.String({ maxLength: 4096 }), Type.Number(), Type.Boolean()]), { maxProperties: 32 }),
  },
  { additionalProperties: false },
);

export type AdminAuditRecord = Static<typeof AdminAuditRecordSchema>;

const ADMIN_AUDIT_RECORD = defineDocument(AdminAuditRecordSchema, 'admin audit record', 'STORE_CORRUPT');

/** Decodes an admin audit record read back from the stream: STORE_CORRUPT naming the JSON path. */
export function decodeAdminAuditRecord(bytes: Uint8Array, source: string): AdminAuditRecord {
  return ADMIN_AUDIT_RECORD.parseJson(bytes, source);
}

const enc = new TextEncoder();

/** Appends admin audit records; an action whose record cannot be written fails (the caller refuses it). */
export class AdminAudit {
  private readonly js: JetStreamClient;
  private readonly log: Logger;

  constructor(js: JetStreamClient, log: Logger = silentLogger()) {
    this.js = js;
    this.log = log;
  }

  /** Appends one record; returns its stream sequence. */
  async record(action: AdminAction, subject: string, details: AdminAuditRecord['details'] = {}, now = Date.now()): Promise<number> {
    const record: AdminAuditRecord = { version: 1, action, at: new Date(now).toISOString(), subject, details };
    try {
      const ack = await this.js.publish(SUBJECTS.auditAdmin(action), enc.encode(JSON.stringify(record)));
      this.log.info({ action, subject, details, sequence: ack.seq }, 'admin audit');
      return ack.seq;
    } catch (err) {
      this.log.warn({ action, subject, details, ...errorFields(err) }, 'an admin audit record could not be written');
      throw toBulwarkError(err, 'NATS_FAILED', `cannot write the admin audit record for ${action}`);
    }
  }
}
