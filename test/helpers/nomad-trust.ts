/**
 * Trust state for the Nomad tests, kept where the controller keeps it: node records in the
 * real JetStream KV bucket `bulwark_nodes` through ControllerStore, written the way the
 * registrar and verifier write them, and watched through the KV like the controller will.
 */
import { KvWatchInclude } from 'nats';
import { EMPTY_ATTESTATION, decodeNodeRecord, type NodeRecord } from '../../lib/attestation/node-record.js';
import type { TrustState } from '../../lib/verdict.js';
import { BUCKETS, type ControllerStore } from '../../controller/state/store.js';
import type { TrustSource } from '../../controller/nomad/reconciler.js';

const dec = new TextDecoder();

/** A TrustSource over ControllerStore: listNodes() from the store, watch() on the KV bucket. */
export async function storeTrustSource(store: ControllerStore): Promise<TrustSource & { close(): Promise<void> }> {
  const kv = await store.nc.jetstream().views.kv(BUCKETS.nodes);
  const listeners = new Set<(r: NodeRecord) => void>();
  const watcher = await kv.watch({ include: KvWatchInclude.UpdatesOnly });
  const pump = (async () => {
    for await (const e of watcher) {
      if (e.operation !== 'PUT' || e.value.length === 0) continue;
      let record: NodeRecord;
      try {
        record = decodeNodeRecord(dec.decode(e.value));
      } catch {
        continue; // a corrupt record is never trusted; the periodic list reports it
      }
      for (const l of listeners) l(record);
    }
  })();
  return {
    listNodes: () => store.listNodes(),
    watch(onChange) {
      listeners.add(onChange);
      return () => listeners.delete(onChange);
    },
    async close() {
      watcher.stop();
      await pump;
    },
  };
}

/** A record as the registrar creates it and the verifier updates it (fields the gate reads set by the caller). */
export function nodeRecord(nodeId: string, state: TrustState, verdictAt: Date | null, enrolledAt = new Date(Date.now() - 60_000)): NodeRecord {
  const at = verdictAt?.toISOString() ?? null;
  return {
    version: 1,
    nodeId,
    state,
    reasons: state === 'untrusted' ? [{ code: 'QUOTE_PCR_DIGEST_MISMATCH', message: 'test: the quote does not match the PCRs' }] : [],
    stateSince: at ?? enrolledAt.toISOString(),
    enrolledAt: enrolledAt.toISOString(),
    ekType: 'rsa',
    ekPublic: '00',
    ekCertificateSubject: `CN=test-ek-${nodeId}`,
    akPublic: '00',
    akName: '000b00',
    facts: null,
    factsDigest: '',
    lastEvidenceAt: at,
    lastVerdictAt: at,
    attestation: EMPTY_ATTESTATION,
    requiresReenrollment: false,
    reenrollApproved: false,
    nomadNode: null,
  };
}

/** Writes a node's state (revision-checked, like the verifier). */
export async function setTrust(store: ControllerStore, nodeId: string, state: TrustState, verdictAt: Date | null = new Date()): Promise<void> {
  await store.updateNode(nodeId, (current) => {
    const next = nodeRecord(nodeId, state, verdictAt, current === null ? undefined : new Date(current.enrolledAt));
    // A new verdict of the same state keeps stateSince, as the verifier does.
    return current !== null && current.state === state ? { ...next, stateSince: current.stateSince } : next;
  });
}
