/**
 * A real nats-server (JetStream) on a free port with the controller's store opened on it,
 * for unit tests of the registrar, verifier and appraisers; plus an enrolled node record
 * for a software TPM and evidence from it. Test code only.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { connect, type NatsConnection } from 'nats';
import { toHex } from '../../lib/bytes.js';
import { EMPTY_ATTESTATION, type NodeRecord } from '../../lib/attestation/node-record.js';
import { NatsServerProcess } from '../../controller/state/embedded-nats.js';
import { ControllerStore } from '../../controller/state/store.js';
import { TrustEvents } from '../../controller/state/trust-events.js';
import { NO_LOGS, type EvidenceMsg } from '../../proto/wire.js';
import type { SoftTpm } from '../helpers/soft-tpm.js';
import { makeTempDir, removeDir } from '../helpers/swtpm.js';

export interface StateBed {
  readonly nc: NatsConnection;
  readonly store: ControllerStore;
  readonly events: TrustEvents;
  close(): Promise<void>;
}

export async function openStateBed(name: string): Promise<StateBed> {
  const root = await makeTempDir(name);
  const server = await NatsServerProcess.start({ storeDir: join(root, 'nats') });
  const nc = await connect({ servers: server.url });
  const store = await ControllerStore.open(nc);
  return {
    nc,
    store,
    events: new TrustEvents(store),
    async close() {
      await nc.close();
      await server.stop();
      await removeDir(root);
    },
  };
}

/** The record the registrar writes when `tpm`'s node completes enrollment. */
export function enrolledRecord(nodeId: string, tpm: SoftTpm, at = '2026-01-01T00:00:00.000Z'): NodeRecord {
  return {
    version: 1,
    nodeId,
    state: 'enrolled',
    reasons: [],
    stateSince: at,
    enrolledAt: at,
    ekType: 'rsa',
    ekPublic: toHex(randomBytes(16)),
    ekCertificateSubject: 'CN=test EK',
    akPublic: tpm.akPublicHex,
    akName: toHex(tpm.akName),
    facts: null,
    factsDigest: '',
    lastEvidenceAt: null,
    lastVerdictAt: null,
    attestation: EMPTY_ATTESTATION,
    requiresReenrollment: false,
    reenrollApproved: false,
    nomadNode: null,
  };
}

/** Evidence answering `nonce` with a fresh quote from `tpm`, no logs. */
export function evidenceFrom(nodeId: string, tpm: SoftTpm, nonce: Uint8Array, over: Partial<EvidenceMsg> = {}): EvidenceMsg {
  const q = tpm.quote(nonce);
  return {
    nodeId,
    nonce,
    attest: q.attest,
    signature: q.signature,
    pcrs: q.pcrs,
    bootId: 'boot-1',
    facts: null,
    factsDigest: '',
    round: 1,
    ...NO_LOGS,
    ...over,
  };
}
