/**
 * Stored records as Bulwark 0.1.0 wrote them (no `version` field): what the data-format
 * migration reads and rewrites, for the unit and the process-level upgrade tests.
 */
import { EMPTY_ATTESTATION } from '../../lib/attestation/index.js';

/** A 0.1.0 node record of `nodeId` in `state`. */
export function oldNodeRecord(nodeId: string, state: 'trusted' | 'untrusted'): Record<string, unknown> {
  return {
    nodeId,
    state,
    reasons: [],
    stateSince: '2026-01-01T00:00:00.000Z',
    enrolledAt: '2026-01-01T00:00:00.000Z',
    ekType: 'rsa',
    ekPublic: '00',
    ekCertificateSubject: 'CN=x',
    akPublic: '00',
    akName: '00',
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
