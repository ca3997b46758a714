/**
 * Every trust transition (and every change of reasons) is appended to the audit stream
 * and announced on `bulwark.v1.trust.<node>`.
 */
import type { NodeRecord } from '../../lib/attestation/index.js';
import { findingToMsg, SUBJECTS, wire, type TrustEventMsg } from '../../proto/index.js';
import type { ControllerStore } from './store.js';

function sameReasons(a: NodeRecord, b: NodeRecord): boolean {
  return a.reasons.length === b.reasons.length && a.reasons.every((r, i) => r.code === b.reasons[i]?.code);
}

export class TrustEvents {
  private readonly store: ControllerStore;

  constructor(store: ControllerStore) {
    this.store = store;
  }

  /** Records the move from `previous` to `next` when the state or its reasons changed. */
  async transition(previous: NodeRecord | null, next: NodeRecord, now = Date.now()): Promise<TrustEventMsg | null> {
    if (previous !== null && previous.state === next.state && sameReasons(previous, next) && previous.enrolledAt === next.enrolledAt) return null;
    const event: TrustEventMsg = {
      nodeId: next.nodeId,
      previous: previous?.state ?? 'unknown',
      state: next.state,
      reasons: next.reasons.map(findingToMsg),
      at: new Date(now).toISOString(),
      sequence: 0,
    };
    const sequence = await this.store.appendAudit(event);
    const published = { ...event, sequence };
    this.store.nc.publish(SUBJECTS.trust(next.nodeId), wire.trustEvent.encode(published));
    return published;
  }
}
