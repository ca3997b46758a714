/**
 * Enrollment: the EK certificate chains to a trusted CA (or the EK is allow-listed), the AK
 * is a restricted signing key fixed to that TPM, and the agent proves both live in one TPM
 * by activating a credential made to the EK for the AK's name. Only then is the node
 * enrolled and given an identity.
 */
import { createHash, randomBytes, randomUUID, timingSafeEqual, type KeyObject } from 'node:crypto';
import { Type, type Static } from '@sinclair/typebox';
import { fromHex, toHex } from '../../lib/index.js';
import { BulwarkError } from '../../lib/index.js';
import { factsDigest, validateHostFacts, type HostFacts } from '../../lib/facts/index.js';
import { EMPTY_ATTESTATION, type NodeRecord } from '../../lib/attestation/index.js';
import { signNodeIdentity } from '../../lib/attestation/index.js';
import { defineDocument, literalUnion } from '../../lib/schema/index.js';
import { verifyEkCertificate } from '../../lib/tpm/index.js';
import { makeCredential } from '../../lib/tpm/index.js';
import { checkAkAttributes, computeName, decodeTpmtPublic } from '../../lib/tpm/index.js';
import type { ActivateRequestMsg, ActivateResponseMsg, EnrollRequestMsg, EnrollResponseMsg } from '../../proto/index.js';
import type { ControllerStore } from '../state/index.js';
import type { TrustEvents } from '../state/index.js';
import { silentLogger, type Logger } from '../../daemon/index.js';
import { checkNkeyUserPublicKey, parseNatsNodeId } from '../../lib/nats-auth/index.js';

const enc = new TextEncoder();

export interface RegistrarOptions {
  /** PEM certificates of the EK CAs (roots and intermediates). */
  readonly ekCaBundle: readonly string[];
  /** sha256 hex of EK TPMT_PUBLIC bytes accepted without a certificate. */
  readonly ekAllowList: readonly string[];
  readonly enrollTtlMs: number;
  readonly identityKey: KeyObject;
  readonly natsUrl: string;
  readonly pcrSelection: string;
  readonly intervalMs: number;
  /** Forgets per-node appraisal state (event log, IMA progress) when a node enrolls. */
  readonly resetNodeState?: (nodeId: string) => Promise<void>;
  /** Enrollments and trust transitions are logged here; none given: not logged. */
  readonly log?: Logger;
}

/** An enrollment between Enroll and ActivateCredential (KV `bulwark_enroll`); written without `version` before it existed. */
export const PendingEnrollmentSchema = Type.Object(
  {
    version: Type.Optional(Type.Literal(1)),
    nodeId: Type.String({ maxLength: 128 }),
    ekType: literalUnion(['rsa', 'ecc']),
    ekPublic: Type.String({ pattern: '^([0-9a-f]{2})*$', maxLength: 8192 }),
    ekName: Type.String({ pattern: '^([0-9a-f]{2})*$', maxLength: 256 }),
    akPublic: Type.String({ pattern: '^([0-9a-f]{2})*$', maxLength: 8192 }),
    akName: Type.String({ pattern: '^([0-9a-f]{2})*$', maxLength: 256 }),
    ekCertificateSubject: Type.String({ maxLength: 4096 }),
    /** Host facts: checked by validateHostFacts after the schema. */
    facts: Type.Union([Type.Record(Type.String(), Type.Unknown()), Type.Null()]),
    nomadNode: Type.Union([Type.String({ maxLength: 256 }), Type.Null()]),
    secretSha256: Type.String({ pattern: '^[0-9a-f]{64}$' }),
    createdAt: Type.Integer({ minimum: 0 }),
  },
  { additionalProperties: false },
);

type PendingEnrollment = Omit<Static<typeof PendingEnrollmentSchema>, 'facts'> & { readonly facts: HostFacts | null };

const PENDING_ENROLLMENT = defineDocument(PendingEnrollmentSchema, 'pending enrollment', 'STORE_CORRUPT');

/** Decodes a stored pending enrollment; anything else (not JSON, wrong shape, bad facts) is STORE_CORRUPT. */
export function decodePendingEnrollment(bytes: Uint8Array, challengeId: string): PendingEnrollment {
  const source = `bulwark_enroll/${challengeId}`;
  const doc = PENDING_ENROLLMENT.parseJson(bytes, source);
  let facts: HostFacts | null = null;
  if (doc.facts !== null) {
    try {
      facts = validateHostFacts(doc.facts);
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      throw new BulwarkError('STORE_CORRUPT', `pending enrollment (${source}) is invalid at /facts: ${reason}`, { path: '/facts', source }, { cause: err });
    }
  }
  return { ...doc, facts };
}

function sha256(bytes: Uint8Array): Uint8Array {
  return createHash('sha256').update(bytes).digest();
}

export class Registrar {
  private readonly store: ControllerStore;
  private readonly events: TrustEvents;
  private readonly opts: RegistrarOptions;
  private readonly log: Logger;

  constructor(store: ControllerStore, events: TrustEvents, opts: RegistrarOptions) {
    this.log = opts.log ?? silentLogger();
    this.store = store;
    this.events = events;
    this.opts = opts;
  }

  /** Checks EK and AK and answers with a credential only the holder of both can activate. */
  async enroll(req: EnrollRequestMsg, now = Date.now()): Promise<EnrollResponseMsg> {
    const ek = decodeTpmtPublic(req.ekPublic);
    const ak = decodeTpmtPublic(req.akPublic);
    if (ek.type !== req.ekType) throw new BulwarkError('TPM_PUBLIC_MALFORMED', `ek_type says ${req.ekType} but the EK is ${ek.type}`);
    const akFindings = checkAkAttributes(ak);
    const firstAkFinding = akFindings[0];
    if (firstAkFinding !== undefined) {
      throw new BulwarkError('AK_ATTRIBUTES_INVALID', akFindings.map((f) => f.message).join('; '));
    }

    let subject: string;
    const ekHash = toHex(sha256(req.ekPublic));
    if (req.ekCertificate.length > 0) {
      const result = verifyEkCertificate(req.ekCertificate, this.opts.ekCaBundle, ek, new Date(now));
      if (!result.ok) {
        if (!this.opts.ekAllowList.includes(ekHash)) {
          throw new BulwarkError(result.finding.code === 'EK_CERT_KEY_MISMATCH' ? 'EK_CERT_KEY_MISMATCH' : 'EK_CERT_UNTRUSTED', result.finding.message);
        }
        subject = `allow-listed EK sha256:${ekHash}`;
      } else {
        subject = `${result.subject} (issuer ${result.issuer}, serial ${result.serialNumber})`;
      }
    } else if (this.opts.ekAllowList.includes(ekHash)) {
      subject = `allow-listed EK sha256:${ekHash}`;
    } else {
      throw new BulwarkError('EK_CERT_UNTRUSTED', 'no EK certificate was sent and the EK is not allow-listed');
    }

    const existing = await this.store.getNode(req.nodeId);
    if (existing !== null && existing.corrupt !== null) {
      throw new BulwarkError(
        'NODE_REENROLL_NOT_APPROVED',
        `the stored record of node ${req.nodeId} is corrupt (STATE_CORRUPT); it enrolls again once an operator approves it (bulwarkctl approve ${req.nodeId})`,
      );
    }
    if (existing !== null) {
      if (existing.record.ekPublic !== toHex(req.ekPublic)) {
        throw new BulwarkError('NODE_CONFLICT', `node ${req.nodeId} is enrolled with another EK`);
      }
      if (existing.record.requiresReenrollment && !existing.record.reenrollApproved) {
        throw new BulwarkError(
          'NODE_REENROLL_NOT_APPROVED',
          `node ${req.nodeId} is untrusted for a reason only an operator can clear (bulwarkctl approve ${req.nodeId})`,
        );
      }
    }

    const facts = req.facts === null ? null : validateHostFacts(req.facts);
    const nomadNode = req.nomadNode === '' ? null : req.nomadNode;
    await this.checkNomadClaim(req.nodeId, nomadNode ?? req.nodeId);
    const akName = computeName(ak);
    const secret = randomBytes(32);
    const blob = makeCredential(ek, akName, secret);
    const challengeId = randomUUID();
    const pending: PendingEnrollment = {
      version: 1,
      nodeId: req.nodeId,
      ekType: req.ekType,
      ekPublic: toHex(req.ekPublic),
      ekName: toHex(computeName(ek)),
      akPublic: toHex(req.akPublic),
      akName: toHex(akName),
      ekCertificateSubject: subject,
      facts,
      nomadNode,
      secretSha256: toHex(sha256(secret)),
      createdAt: now,
    };
    await this.store.enroll.create(challengeId, enc.encode(JSON.stringify(pending)));
    return { challengeId, idObject: blob.idObject, encryptedSecret: blob.encryptedSecret };
  }

  /** One nkey is one node's: a key another node already holds is refused (the NATS server would refuse the config). */
  private async checkNatsKeyUnique(nodeId: string, publicKey: string): Promise<void> {
    for (const other of await this.store.listNodes()) {
      if (other.nodeId !== nodeId && other.natsPublicKey === publicKey) {
        throw new BulwarkError('NATS_AUTH_CREDENTIAL_INVALID', 'this NATS key is already another node\'s');
      }
    }
  }

  /**
   * A Nomad client belongs to one host: a claim on a Nomad node another enrolled node
   * already claims (explicitly, or by its node id) is refused.
   */
  private async checkNomadClaim(nodeId: string, nomadNode: string): Promise<void> {
    for (const other of await this.store.listNodes()) {
      if (other.nodeId === nodeId) continue;
      if ((other.nomadNode ?? other.nodeId) === nomadNode) {
        throw new BulwarkError('NOMAD_NODE_MAPPING_CONFLICT', `Nomad node ${nomadNode} is already claimed by node ${other.nodeId}`, { nomadNode });
      }
    }
  }

  /** Completes enrollment when the secret matches; a challenge is good for one attempt. */
  async activate(req: ActivateRequestMsg, now = Date.now()): Promise<ActivateResponseMsg> {
    // The node's NATS identity: only its public key is sent; a malformed one is refused before anything is consumed.
    const natsPublicKey = checkNkeyUserPublicKey(req.natsPublicKey);
    const entry = req.challengeId === '' ? null : await this.store.enroll.get(req.challengeId);
    if (entry === null || entry.operation !== 'PUT') {
      throw new BulwarkError('ENROLL_UNKNOWN_CHALLENGE', 'unknown or already used enrollment challenge');
    }
    await this.store.enroll.delete(req.challengeId);
    const pending = decodePendingEnrollment(entry.value, req.challengeId);
    if (now - pending.createdAt > this.opts.enrollTtlMs) {
      throw new BulwarkError('ENROLL_CHALLENGE_EXPIRED', 'the enrollment challenge expired', { ageMs: now - pending.createdAt });
    }
    const expected = fromHex(pending.secretSha256);
    const got = sha256(req.secret);
    if (!(expected.length === got.length && timingSafeEqual(expected, got))) {
      throw new BulwarkError('CREDENTIAL_SECRET_MISMATCH', 'the activated secret does not match: the EK and the AK are not in one TPM');
    }

    parseNatsNodeId(pending.nodeId);
    await this.checkNatsKeyUnique(pending.nodeId, natsPublicKey);

    const at = new Date(now).toISOString();
    const seen: { previous: NodeRecord | null } = { previous: null };
    const record = await this.store.updateNode(pending.nodeId, (current) => {
      seen.previous = current;
      if (current !== null && current.ekPublic !== pending.ekPublic) {
        throw new BulwarkError('NODE_CONFLICT', `node ${pending.nodeId} is enrolled with another EK`);
      }
      if (current !== null && current.requiresReenrollment && !current.reenrollApproved) {
        throw new BulwarkError('NODE_REENROLL_NOT_APPROVED', `node ${pending.nodeId} needs an operator's approval to enroll again`);
      }
      return {
        version: 1,
        nodeId: pending.nodeId,
        state: 'enrolled',
        reasons: [],
        stateSince: at,
        enrolledAt: at,
        ekType: pending.ekType,
        ekPublic: pending.ekPublic,
        ekCertificateSubject: pending.ekCertificateSubject,
        akPublic: pending.akPublic,
        akName: pending.akName,
        facts: pending.facts ?? current?.facts ?? null,
        factsDigest: pending.facts === null ? (current?.factsDigest ?? '') : factsDigest(pending.facts),
        lastEvidenceAt: null,
        lastVerdictAt: null,
        attestation: EMPTY_ATTESTATION,
        requiresReenrollment: false,
        reenrollApproved: false,
        nomadNode: pending.nomadNode,
        natsPublicKey,
      };
    });
    if (record === null) throw new BulwarkError('INTERNAL', 'enrollment produced no record');
    await this.opts.resetNodeState?.(pending.nodeId);
    const log = this.log.child({ node: pending.nodeId });
    const event = await this.events.transition(seen.previous, record, now);
    // The same line as the verifier's, so a SIEM matches every transition with one rule.
    if (event !== null) {
      log.info({ from: event.previous, to: event.state, codes: event.reasons.map((r) => r.code), sequence: event.sequence, cause: 'enrollment' }, 'trust transition');
    }
    log.info({ akName: pending.akName, ekCertificateSubject: pending.ekCertificateSubject, reenrolled: seen.previous !== null }, 'node enrolled');
    const nodeIdentity = signNodeIdentity(this.opts.identityKey, {
      nodeId: pending.nodeId,
      ekName: pending.ekName,
      akName: pending.akName,
      issuedAt: at,
    });
    return {
      nodeId: pending.nodeId,
      nodeIdentity,
      natsUrl: this.opts.natsUrl,
      pcrSelection: this.opts.pcrSelection,
      intervalMs: this.opts.intervalMs,
    };
  }
}

