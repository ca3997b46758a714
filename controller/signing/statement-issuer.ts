/**
 * The controller's side of attestation-bound signatures (the protocol is described in
 * lib/dsse/attested.ts): a node asks on `bulwark.v1.attest-sign.<node>` for an attestation
 * of an artifact digest; the controller signs one with its statement key only when the
 * node's record says trusted and its last verified evidence is fresh, and refuses with
 * SIGN_STATEMENT_REFUSED (naming the node's finding codes) otherwise. Both outcomes are
 * admin audit records (`sign.statement-issued`, `sign.statement-refused`).
 *
 * The statement key is a dedicated key, not the CA's: an ECDSA P-256 key generated in the
 * data dir at first start (statement-signing-key.pem, 0600), or the key named by
 * `statementSigningKey`: a PEM file, or a key on a PKCS#11 token (an RFC 7512 pkcs11: URI;
 * module and PIN from the URI or BULWARK_PKCS11_MODULE / BULWARK_PKCS11_PIN). Replicas answer from one queue group, so replicas that do not
 * share a data dir must be given the same `statementSigningKey` (or a verifier must trust
 * every replica's key). Its public half is what `bulwarkctl verify --require-attested
 * --controller-key` checks offline; it is written beside it (statement-signing-key.pub.pem).
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { attestationStatement, encodeEnvelope, hostKeyFingerprint, keySigner, parseSignRequest, prepareTrustedKeys, signEnvelope, type DsseSigner } from '../../lib/dsse/index.js';
import { BulwarkError } from '../../lib/index.js';
import { openPkcs11Signer, type Logger } from '../../daemon/index.js';
import { ensurePrivateKey, readPrivateKeyFile } from '../pki/index.js';
import type { AdminAudit, ControllerStore } from '../state/index.js';

/** File names of the generated statement key and its public half, in the data dir. */
export const STATEMENT_KEY_FILES = { key: 'statement-signing-key.pem', publicKey: 'statement-signing-key.pub.pem' } as const;

/** The controller's statement signer and its public key. */
export interface StatementKey {
  readonly signer: DsseSigner;
  readonly publicKey: KeyObject;
  readonly publicKeyPem: string;
  /** Releases the token session (PKCS#11); nothing for a PEM key. */
  close(): Promise<void>;
}


/** Loads the statement key (configured PEM, or the data dir's, made on first start) and writes its public half beside the data dir's. */
export async function loadStatementKey(dataDir: string, configured: string | null): Promise<StatementKey> {
  if (configured !== null && configured.startsWith('pkcs11:')) {
    const { signer, hsm } = await openPkcs11Signer(configured, { keyid: 'bulwark-controller' });
    try {
      const publicKey = await signer.publicKey();
      const publicKeyPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
      await writeFile(join(dataDir, STATEMENT_KEY_FILES.publicKey), publicKeyPem, { mode: 0o644 });
      return { signer, publicKey, publicKeyPem, close: () => hsm.close() };
    } catch (err) {
      await hsm.close();
      throw err;
    }
  }
  const key = configured !== null ? (await readPrivateKeyFile(configured)).key : (await ensurePrivateKey(join(dataDir, STATEMENT_KEY_FILES.key))).key;
  const publicKey = createPublicKey(key);
  const publicKeyPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  await writeFile(join(dataDir, STATEMENT_KEY_FILES.publicKey), publicKeyPem, { mode: 0o644 });
  return { signer: keySigner(key, { keyid: `bulwark-controller:${hostKeyFingerprint(publicKey).slice(0, 16)}` }), publicKey, publicKeyPem, close: async () => undefined };
}

export interface StatementIssuerOptions {
  readonly key: StatementKey;
  /** How long an attestation is valid. */
  readonly validityMs: number;
  /** Oldest last verified evidence that still gets an attestation. */
  readonly freshnessMs: number;
  readonly log: Logger;
}

/** Answers signing requests: an attestation envelope (JSON bytes) or a typed refusal. */
export class StatementIssuer {
  private readonly store: ControllerStore;
  private readonly audit: AdminAudit;
  private readonly opts: StatementIssuerOptions;

  constructor(store: ControllerStore, audit: AdminAudit, opts: StatementIssuerOptions) {
    this.store = store;
    this.audit = audit;
    this.opts = opts;
  }

  /**
   * The attestation for a request that arrived on `nodeId`'s subject (the node id is the
   * subject's, checked by the caller against the body's). Refusals are audited and thrown.
   */
  async issue(nodeId: string, data: Uint8Array, now = Date.now()): Promise<Uint8Array> {
    const request = parseSignRequest(data);
    if (request.nodeId !== nodeId) {
      throw new BulwarkError('NATS_AUTH_NODE_MISMATCH', `a signing request on ${nodeId}'s subject names another node`, { subjectNode: nodeId, bodyNode: request.nodeId });
    }
    let hostKey: KeyObject;
    try {
      hostKey = createPublicKey({ key: Buffer.from(request.hostKey, 'base64'), format: 'der', type: 'spki' });
      // The same key types verifyEnvelope accepts: a statement for a key no verifier can use is refused here.
      prepareTrustedKeys([hostKey]);
    } catch (err) {
      throw new BulwarkError('SIGN_REQUEST_MALFORMED', 'the signing request\'s hostKey is not a usable public key (DER SPKI: RSA ≥ 2048, ECDSA P-256/P-384, Ed25519)', {}, { cause: err });
    }
    const hostKeySha256 = hostKeyFingerprint(hostKey);
    const refuse = async (reasons: readonly string[], why: string): Promise<never> => {
      await this.audit.record('sign.statement-refused', nodeId, { artifact: request.artifact.sha256, hostKey: hostKeySha256, reasons: reasons.join(',') }, now);
      throw new BulwarkError('SIGN_STATEMENT_REFUSED', `no attestation for ${nodeId}: ${why}`, { node: nodeId, reasons: reasons.join(',') });
    };
    const stored = await this.store.getNode(nodeId);
    if (stored === null) return refuse(['NODE_UNKNOWN'], 'the node is not enrolled');
    if (stored.corrupt !== null) return refuse(['STORE_CORRUPT'], 'the node record cannot be read');
    const record = stored.record;
    if (record.state !== 'trusted') {
      const codes = record.reasons.map((r) => r.code);
      return refuse(codes.length === 0 ? [record.state.toUpperCase()] : codes, `the node is ${record.state}${codes.length === 0 ? '' : ` (${codes.join(', ')})`}`);
    }
    const quoteAt = record.lastEvidenceAt === null ? Number.NaN : Date.parse(record.lastEvidenceAt);
    if (record.lastEvidenceAt === null || !Number.isFinite(quoteAt) || now - quoteAt > this.opts.freshnessMs) {
      return refuse(['NODE_STALE'], `its last verified quote (${record.lastEvidenceAt ?? 'none'}) is older than ${this.opts.freshnessMs} ms`);
    }
    const payload = attestationStatement(request.artifact, {
      nodeId,
      akName: record.akName,
      verdict: 'trusted',
      quoteTime: new Date(quoteAt).toISOString(),
      issuedAt: new Date(now).toISOString(),
      expiresAt: new Date(now + this.opts.validityMs).toISOString(),
      hostKey: { sha256: hostKeySha256 },
    });
    const envelope = await signEnvelope(payload.payloadType, payload.payload, [this.opts.key.signer]);
    await this.audit.record('sign.statement-issued', nodeId, { artifact: request.artifact.sha256, name: request.artifact.name.slice(0, 256), hostKey: hostKeySha256, validityMs: this.opts.validityMs }, now);
    return new TextEncoder().encode(encodeEnvelope(envelope));
  }
}
