/**
 * Every trust transition (and every change of reasons) is appended to the audit stream
 * and announced on `bulwark.v1.trust.<node>`.
 */
import type { NodeRecord } from '../../lib/attestation/index.js';
import { findingToMsg, SUBJECTS, wire, type TrustEventMsg } from '../../proto/index.js';
import { errorFields, silentLogger, type Logger } from '../../daemon/index.js';
import type { ControllerStore } from './store.js';

function sameReasons(a: NodeRecord, b: NodeRecord): boolean {
  return a.reasons.length === b.reasons.length && a.reasons.every((r, i) => r.code === b.reasons[i]?.code);
}

export class TrustEvents {
  private readonly store: ControllerStore;
  private readonly log: Logger;

  /** `log` hears of every audit entry or trust event that could not be recorded or sent. */
  constructor(store: ControllerStore, log: Logger = silentLogger()) {
    this.store = store;
    this.log = log;
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
    // The node record already holds the new state: an event lost here is gone for good, so
    // its content goes to the log with the reason.
    const lost = { node: event.nodeId, from: event.previous, to: event.state, codes: event.reasons.map((r) => r.code), at: event.at };
    let sequence: number;
    try {
      sequence = await this.store.appendAudit(event);
    } catch (err) {
      this.log.warn({ ...lost, ...errorFields(err) }, 'dropped an audit entry: appending to the audit stream failed');
      throw err;
    }
    const published = { ...event, sequence };
    try {
      this.store.nc.publish(SUBJECTS.trust(next.nodeId), wire.trustEvent.encode(published));
    } catch (err) {
      this.log.warn({ ...lost, sequence, ...errorFields(err) }, 'dropped a trust event: publishing it failed (the audit stream has it)');
      throw err;
    }
    return published;
  }
}
