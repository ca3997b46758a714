/** Reading the admin records of the audit stream back in tests. */
import type { NatsConnection } from 'nats';
import { AUDIT_STREAM, decodeAdminAuditRecord, type AdminAuditRecord } from '../../controller/state/index.js';

const ADMIN_PREFIX = 'bulwark.v1.audit._admin.';

/** Every admin audit record in the stream, oldest first (each decoded through its schema), read with the fleet's own NATS identity. */
export async function adminAuditRecords(fleet: { natsConnection(): Promise<NatsConnection> }): Promise<AdminAuditRecord[]> {
  const nc = await fleet.natsConnection();
  try {
    const jsm = await nc.jetstreamManager();
    const { state } = await jsm.streams.info(AUDIT_STREAM);
    const out: AdminAuditRecord[] = [];
    // Test streams are small: read every message by sequence and keep the admin ones.
    for (let seq = state.first_seq; seq <= state.last_seq && state.messages > 0; seq++) {
      const m = await jsm.streams.getMessage(AUDIT_STREAM, { seq }).catch(() => null);
      if (m === null || !m.subject.startsWith(ADMIN_PREFIX)) continue;
      out.push(decodeAdminAuditRecord(m.data, `${AUDIT_STREAM}/${seq}`));
    }
    return out;
  } finally {
    await nc.close();
  }
}
