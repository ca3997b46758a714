/**
 * Enrollment: the EK certificate chains to a trusted CA (or the EK is allow-listed), the AK
 * is a restricted signing key fixed to that TPM, and the agent proves both live in one TPM
 * by activating a credential made to the EK for the AK's name. Only then is the node
 * enrolled and given an identity.
 */
import { createHash, randomBytes, randomUUID, timingSafeEqual, type KeyObject } from 'node:crypto';
import { Type, type Static } from '@sinclair/typebox';
import { fromHex, toHex, TokenBuckets } from '../../lib/index.js';
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
import { AdminAudit, BUCKETS, bucketKeys } from '../state/index.js';
import { boundElsewhere, EkBindings } from './ek-bindings.js';

const enc = new TextEncoder();
const dec = new TextDecoder();
/** Held enrollments expire with the bucket (its max age, one hour). */
const HELD_TTL_MS = 60 * 60 * 1000;

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
  /** `open`: an EK whose certificate chains may enroll; `approve`: an unknown EK waits for an admin (ENROLLMENT_HELD). */
  readonly enrollment: 'open' | 'approve';
  /** Most enrollments waiting between Enroll and ActivateCredential, and most held for approval (each). */
  readonly maxPendingEnrollments: number;
  /** Enroll calls per peer address and per node id (token buckets); none: not limited. */
  readonly enrollRate?: { readonly ratePerSecond: number; readonly burst: number };
}

/** An enrollment held for an admin's approval (KV `bulwark_enroll`, key `held.<EK name>`; expires with the bucket's max age). */
export const HeldEnrollmentSchema = Type.Object(
  {
    version: Type.Literal(1),
    nodeId: Type.String({ maxLength: 128 }),
    ekName: Type.String({ pattern: '^[0-9a-f]{4,256}$' }),
    ekCertificateSubject: Type.String({ maxLength: 4096 }),
    nomadNode: Type.Union([Type.String({ maxLength: 256 }), Type.Null()]),
    heldAt: Type.Integer({ minimum: 0 }),
  },
  { additionalProperties: false },
);

export type HeldEnrollment = Static<typeof HeldEnrollmentSchema>;

const HELD_ENROLLMENT = defineDocument(HeldEnrollmentSchema, 'held enrollment', 'STORE_CORRUPT');

const HELD_PREFIX = 'held.';
/** Pointer from an EK to its one pending challenge: a new Enroll for the EK replaces the old one. */
const EK_PENDING_PREFIX = 'ek.';

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
  private readonly audit: AdminAudit;
  private bindingsOpen: Promise<EkBindings> | null = null;
  private readonly enrollLimit: TokenBuckets | null;
  /** Enroll calls refused by the rate limit since start (logged every 100th). */
  refusedEnrolls = 0;

  constructor(store: ControllerStore, events: TrustEvents, opts: RegistrarOptions) {
    this.log = opts.log ?? silentLogger();
    this.store = store;
    this.events = events;
    this.opts = opts;
    this.audit = new AdminAudit(store.nc.jetstream(), this.log);
    this.enrollLimit = opts.enrollRate === undefined ? null : new TokenBuckets({ ...opts.enrollRate, maxKeys: 10_000 });
  }

  /** Spends a token of the peer's and of the node id's bucket, or refuses (RATE_LIMITED) before any work is done. */
  private limitEnroll(nodeId: string, peer: string, now: number): void {
    if (this.enrollLimit === null) return;
    const peerOk = peer === '' || this.enrollLimit.take(`peer:${peer}`, now);
    if (peerOk && this.enrollLimit.take(`node:${nodeId}`, now)) return;
    this.refusedEnrolls++;
    if (this.refusedEnrolls % 100 === 1) this.log.warn({ peer, nodeId, refused: this.refusedEnrolls }, 'Enroll refused: rate limit');
    throw new BulwarkError('RATE_LIMITED', `too many Enroll calls from ${peer === '' ? 'this peer' : peer} or for node ${nodeId}; try again later`, { peer, nodeId });
  }

  /** The EK → node index (opened on first use). */
  ekBindings(): Promise<EkBindings> {
    this.bindingsOpen ??= EkBindings.open(this.store.nc.jetstream());
    return this.bindingsOpen;
  }

  /** Refuses (audited) an enrollment that would break one node per TPM. */
  private async refuse(err: BulwarkError, nodeId: string, ekName: string): Promise<never> {
    await this.audit.record('enrollment.refused', nodeId, { code: err.code, ekName, message: err.message.slice(0, 1000) });
    throw err;
  }

  /**
   * The node an EK is bound to: its binding, else (for nodes enrolled before the index)
   * a stored node with this EK, whose binding is then written.
   */
  private async boundNode(ekName: string, ekPublic: string, now: number): Promise<{ readonly nodeId: string; readonly status: 'bound' | 'approved' } | null> {
    const bindings = await this.ekBindings();
    const found = await bindings.get(ekName);
    if (found !== null) return found.binding;
    for (const node of await this.store.listNodes()) {
      if (node.ekPublic === ekPublic) {
        await bindings.bind(ekName, node.nodeId, now);
        return { nodeId: node.nodeId, status: 'bound' };
      }
    }
    return null;
  }

  /** Checks EK and AK and answers with a credential only the holder of both can activate. */
  async enroll(req: EnrollRequestMsg, now = Date.now(), peer = ''): Promise<EnrollResponseMsg> {
    this.limitEnroll(req.nodeId, peer, now);
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

    const ekPublicHex = toHex(req.ekPublic);
    const ekName = toHex(computeName(ek));
    const bound = await this.boundNode(ekName, ekPublicHex, now);
    if (bound !== null && bound.nodeId !== req.nodeId) await this.refuse(boundElsewhere(ekName, bound.nodeId, req.nodeId), req.nodeId, ekName);
    const existing = await this.store.getNode(req.nodeId);
    if (existing !== null && existing.corrupt === null && existing.record.ekPublic !== ekPublicHex) {
      await this.refuse(new BulwarkError('NODE_CONFLICT', `node ${req.nodeId} is enrolled with another EK (another TPM); an admin must move that node first (bulwarkctl move ${req.nodeId} --to NEW-ID)`), req.nodeId, ekName);
    }
    if (bound === null && existing === null && this.opts.enrollment === 'approve') {
      await this.hold(req.nodeId, ekName, subject, req.nomadNode === '' ? null : req.nomadNode, now);
    }
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
    await this.makeRoom('pending', now);
    // One pending challenge per EK: a new Enroll replaces the last one (300 calls leave one).
    const previous = await this.store.enroll.get(`${EK_PENDING_PREFIX}${pending.ekName}`);
    if (previous !== null && previous.operation === 'PUT') await this.store.enroll.delete(dec.decode(previous.value));
    await this.store.enroll.create(challengeId, enc.encode(JSON.stringify(pending)));
    await this.store.enroll.put(`${EK_PENDING_PREFIX}${pending.ekName}`, enc.encode(challengeId));
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

  /** Keys of `bulwark_enroll` of one kind: pending challenges (no prefix) or held enrollments. */
  private async enrollKeys(kind: 'pending' | 'held'): Promise<string[]> {
    const keys: string[] = [];
    for (const key of await bucketKeys(await this.store.nc.jetstreamManager({ checkAPI: false }), BUCKETS.enroll)) {
      const held = key.startsWith(HELD_PREFIX);
      if (key.startsWith(EK_PENDING_PREFIX)) continue;
      if (held === (kind === 'held')) keys.push(key);
    }
    return keys;
  }

  /**
   * Keeps pending challenges (and held enrollments) under `maxPendingEnrollments`: at the
   * cap, expired ones are removed; if none expired, the request is refused (RATE_LIMITED).
   */
  private async makeRoom(kind: 'pending' | 'held', now: number): Promise<void> {
    const keys = await this.enrollKeys(kind);
    if (keys.length < this.opts.maxPendingEnrollments) return;
    const maxAge = kind === 'pending' ? this.opts.enrollTtlMs : HELD_TTL_MS;
    let left = keys.length;
    for (const key of keys) {
      const entry = await this.store.enroll.get(key);
      if (entry === null || entry.operation !== 'PUT' || now - entry.created.getTime() > maxAge) {
        await this.store.enroll.delete(key);
        left--;
      }
    }
    if (left >= this.opts.maxPendingEnrollments) {
      throw new BulwarkError('RATE_LIMITED', `${left} ${kind === 'pending' ? 'enrollments are pending' : 'enrollments wait for approval'} (limit ${this.opts.maxPendingEnrollments}); try again later`, { limit: this.opts.maxPendingEnrollments });
    }
  }

  /** enrollment: approve — records the EK's request for an admin and refuses it for now (ENROLLMENT_HELD). */
  private async hold(nodeId: string, ekName: string, subject: string, nomadNode: string | null, now: number): Promise<never> {
    const key = `${HELD_PREFIX}${ekName}`;
    const current = await this.store.enroll.get(key);
    if (current === null || current.operation !== 'PUT') {
      await this.makeRoom('held', now);
      const held: HeldEnrollment = { version: 1, nodeId, ekName, ekCertificateSubject: subject, nomadNode, heldAt: now };
      await this.store.enroll.put(key, enc.encode(JSON.stringify(held)));
      await this.audit.record('enrollment.held', nodeId, { ekName, ekCertificateSubject: subject.slice(0, 1000), nomadNode: nomadNode ?? '' }, now);
    }
    throw new BulwarkError('ENROLLMENT_HELD', `this TPM (EK ${ekName.slice(0, 16)}...) is not known yet: its enrollment as ${nodeId} waits for an admin (bulwarkctl enrollments approve ${nodeId})`, { ekName, nodeId });
  }

  /** Enrollments waiting for an admin's approval (enrollment: approve). */
  async listHeld(): Promise<HeldEnrollment[]> {
    const out: HeldEnrollment[] = [];
    for (const key of await this.enrollKeys('held')) {
      const entry = await this.store.enroll.get(key);
      if (entry === null || entry.operation !== 'PUT') continue;
      try {
        out.push(HELD_ENROLLMENT.parseJson(entry.value, `bulwark_enroll/${key}`));
      } catch (err) {
        this.log.warn({ key, error: err instanceof Error ? err.message : String(err) }, 'a held enrollment does not decode: skipped');
      }
    }
    return out.sort((a, b) => a.heldAt - b.heldAt);
  }

  /** An admin lets a held enrollment (named by node id or EK name) proceed: the EK is bound to its node id, audited. */
  async approveHeld(nodeOrEk: string, now = Date.now()): Promise<HeldEnrollment> {
    const held = (await this.listHeld()).find((h) => h.nodeId === nodeOrEk || h.ekName === nodeOrEk);
    if (held === undefined) throw new BulwarkError('NODE_NOT_FOUND', `no enrollment waits for approval as ${nodeOrEk}`);
    const bindings = await this.ekBindings();
    const found = await bindings.get(held.ekName);
    if (found !== null && found.binding.nodeId !== held.nodeId) throw boundElsewhere(held.ekName, found.binding.nodeId, held.nodeId);
    await this.audit.record('enrollment.approved', held.nodeId, { ekName: held.ekName, ekCertificateSubject: held.ekCertificateSubject.slice(0, 1000) }, now);
    if (found === null) await bindings.put(held.ekName, { version: 1, nodeId: held.nodeId, status: 'approved', at: new Date(now).toISOString() }, 0);
    await this.store.enroll.delete(`${HELD_PREFIX}${held.ekName}`);
    return held;
  }

  /**
   * An admin moves a TPM (named by node id or EK name) to another node id, audited: the
   * old node's record and appraisal state are removed and the EK is bound to `toNodeId`,
   * where it enrolls afresh. Refused when `toNodeId` is enrolled (with another TPM).
   */
  async moveNode(from: string, toNodeId: string, now = Date.now()): Promise<{ readonly ekName: string; readonly fromNodeId: string }> {
    const bindings = await this.ekBindings();
    let ekName = /^[0-9a-f]{4,256}$/.test(from) ? from : null;
    if (ekName === null || (await bindings.get(ekName)) === null) {
      ekName = await bindings.ekOf(from);
      if (ekName === null) {
        // A node enrolled before the index: bind its EK first.
        const stored = await this.store.getNode(from);
        if (stored === null || stored.corrupt !== null) throw new BulwarkError('NODE_NOT_FOUND', `no node or EK ${from}`);
        ekName = toHex(computeName(decodeTpmtPublic(fromHex(stored.record.ekPublic))));
        await bindings.bind(ekName, from, now);
      }
    }
    const found = await bindings.get(ekName);
    if (found === null) throw new BulwarkError('NODE_NOT_FOUND', `no binding for ${from}`);
    const fromNodeId = found.binding.nodeId;
    if (fromNodeId === toNodeId) throw new BulwarkError('USAGE', `the TPM is already node ${toNodeId}`);
    const target = await this.store.getNode(toNodeId);
    if (target !== null) throw new BulwarkError('NODE_CONFLICT', `node ${toNodeId} exists; move or remove it first`);
    await this.audit.record('node.moved', fromNodeId, { ekName, from: fromNodeId, to: toNodeId }, now);
    await bindings.put(ekName, { version: 1, nodeId: toNodeId, status: 'approved', at: new Date(now).toISOString() }, found.revision);
    await this.store.deleteNode(fromNodeId);
    await this.opts.resetNodeState?.(fromNodeId);
    this.log.child({ node: fromNodeId }).info({ ekName, to: toNodeId }, 'TPM moved to another node id by an admin');
    return { ekName, fromNodeId };
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
    await this.store.enroll.delete(`${EK_PENDING_PREFIX}${pending.ekName}`);
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
    // One node per TPM: bind the EK to this node id (revision-checked) before the node exists.
    try {
      await (await this.ekBindings()).bind(pending.ekName, pending.nodeId, now);
    } catch (err) {
      if (err instanceof BulwarkError && err.code === 'EK_BOUND_TO_OTHER_NODE') await this.refuse(err, pending.nodeId, pending.ekName);
      throw err;
    }
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
        // The same TPM enrolling again keeps its boot baseline (counters, boot id, boot PCRs):
        // only a reported reboot (a higher resetCount with a new boot id) or an admin's
        // approval starts a new one, so deleting the agent's state clears nothing.
        attestation: current !== null && !current.reenrollApproved ? current.attestation : EMPTY_ATTESTATION,
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

