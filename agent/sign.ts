/**
 * `bulwark-agent sign FILE [-o ENVELOPE] [--key PEM|pkcs11:URI]`: an attestation-bound
 * signature over an artifact made on this host (the protocol is in lib/dsse/attested.ts).
 *
 * 1. sha256 of FILE; the host key's public half (the configured `signingKey`).
 * 2. A signing request on `bulwark.v1.attest-sign.<node>` with the node's own NATS identity
 *    (the nkey and CA the running agent uses, read from its data dir and config). The
 *    controller answers with its attestation only while this host is trusted with a fresh
 *    quote; a refusal ends here with SIGN_STATEMENT_REFUSED and the reasons (exit 1).
 * 3. The attestation's signature is verified with the controller's statement key pinned in
 *    the agent config (`statementKey`): a reply that does not verify (another key, a
 *    changed byte, an unsigned statement) is refused with its code before its payload is
 *    read. Only then is it checked to be for this digest, this node and this key and not
 *    expired, and the host key signs the attested artifact statement that embeds it.
 *    Nothing is written unless all of this succeeded.
 */
import { createHash, createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { connect, type NatsConnection } from 'nats';
import {
  ATTESTATION_PREDICATE_TYPE,
  AttestationPredicateSchema,
  attestedArtifactStatement,
  encodeEnvelope,
  encodeSignRequest,
  hostKeyFingerprint,
  keySigner,
  parseEnvelope,
  parseStatement,
  PAYLOAD_TYPES,
  signEnvelope,
  verifyEnvelope,
  type DsseEnvelope,
  type DsseSigner,
} from '../lib/dsse/index.js';
import { BulwarkError, isErrorCode, toBulwarkError } from '../lib/index.js';
import { NODE_SUBJECTS, parseNatsNodeId } from '../lib/nats-auth/index.js';
import { defineDocument } from '../lib/schema/index.js';
import { natsClientAuthOptions, openPkcs11Signer } from '../daemon/index.js';
import { EnrollmentSchema } from './agent.js';
import type { AgentConfig } from './config.js';

/** How long the agent waits for the controller's answer. */
const SIGN_REQUEST_TIMEOUT_MS = 10_000;

const ENROLLMENT = defineDocument(EnrollmentSchema, 'saved enrollment', 'STORE_CORRUPT');
const ATTESTATION_PREDICATE = defineDocument(AttestationPredicateSchema, 'attestation predicate', 'STATEMENT_MALFORMED');

/**
 * The host key: signs bytes (ECDSA in DER, as lib/dsse verifies) and gives its public key:
 * a PEM private key, or a key on a PKCS#11 token (daemon/pkcs11.ts) named by an RFC 7512 URI.
 */
export interface HostSigningKey {
  readonly signer: DsseSigner;
  publicKey(): Promise<KeyObject>;
  /** Releases the token session (PKCS#11); nothing for a PEM key. */
  close(): Promise<void>;
}

/** A host signing key from a PEM private key file (0600 advised; the HSM is the production choice). */
export async function pemHostSigningKey(path: string): Promise<HostSigningKey> {
  let key: KeyObject;
  try {
    key = createPrivateKey(await readFile(path, 'utf8'));
  } catch (err) {
    throw toBulwarkError(err, 'KEY_INVALID', `cannot read the signing key ${path} (a PEM private key)`);
  }
  const publicKey = createPublicKey(key);
  return { signer: keySigner(key), publicKey: async () => publicKey, close: async () => undefined };
}

/**
 * A host signing key on a PKCS#11 token: the module and PIN from the URI's module-path and
 * pin-source/pin-value, else BULWARK_PKCS11_MODULE and BULWARK_PKCS11_PIN (daemon/pkcs11).
 */
export async function pkcs11HostSigningKey(uri: string, env: Readonly<Record<string, string | undefined>> = process.env): Promise<HostSigningKey> {
  const { signer, hsm } = await openPkcs11Signer(uri, { env });
  return { signer, publicKey: () => signer.publicKey(), close: () => hsm.close() };
}

/** The host signing key named by the config or --key: a pkcs11: URI (RFC 7512) or a PEM path. */
export async function openHostSigningKey(spec: string): Promise<HostSigningKey> {
  return spec.startsWith('pkcs11:') ? pkcs11HostSigningKey(spec) : pemHostSigningKey(spec);
}

/** sha256 (hex) of a file, streamed. */
export async function fileSha256(path: string): Promise<string> {
  const hash = createHash('sha256');
  try {
    // A ReadStream without an encoding yields Buffers.
    const chunks: AsyncIterable<Buffer> = createReadStream(path);
    for await (const chunk of chunks) hash.update(chunk);
  } catch (err) {
    throw toBulwarkError(err, 'IO_FAILED', `cannot read ${path}`);
  }
  return hash.digest('hex');
}

export interface SignArtifactOptions {
  readonly config: AgentConfig;
  readonly file: string;
  readonly key: HostSigningKey;
  /** The subject name in both statements (default: the file's base name). */
  readonly name?: string;
  /** The controller's statement key (default: config statementKey, read from its PEM file). */
  readonly controllerKey?: KeyObject;
  /** The clock (tests). */
  readonly now?: () => number;
}

/** The controller's statement key pinned in the config (statementKey): CONFIG_INVALID when unset or unreadable. */
export async function loadStatementKey(config: Pick<AgentConfig, 'statementKey'>): Promise<KeyObject> {
  const path = config.statementKey;
  if (path === null) {
    throw new BulwarkError('CONFIG_INVALID', 'statementKey is not set: the agent cannot verify the controller\'s attestation, so it does not sign (write it with `bulwarkctl statement-key -o FILE`)', { key: 'statementKey' });
  }
  try {
    const key = createPublicKey(await readFile(path, 'utf8'));
    if (key.type !== 'public') throw new Error('not a public key');
    return key;
  } catch (err) {
    throw new BulwarkError('CONFIG_INVALID', `statementKey: ${path} is not a readable PEM public key`, { key: 'statementKey', path }, { cause: err });
  }
}

/** What `sign` produced: the envelope text and the attestation it embeds. */
export interface SignedArtifact {
  readonly envelope: string;
  readonly sha256: string;
  readonly nodeId: string;
  readonly attestation: DsseEnvelope;
  readonly expiresAt: string;
}

/** Asks the controller for an attestation of `sha256` (raw: the controller's envelope), with this node's NATS identity. */
export async function requestAttestation(config: AgentConfig, artifact: { name: string; sha256: string }, hostKey: KeyObject): Promise<{ nodeId: string; envelope: DsseEnvelope }> {
  const enrollmentPath = join(config.dataDir, 'enrollment.json');
  let bytes: Uint8Array;
  try {
    bytes = await readFile(enrollmentPath);
  } catch (err) {
    throw new BulwarkError('NODE_NOT_ENROLLED', `this host is not enrolled (${enrollmentPath} cannot be read)`, {}, { cause: err });
  }
  const enrollment = ENROLLMENT.parseJson(bytes, enrollmentPath);
  const nodeId = parseNatsNodeId(enrollment.nodeId);
  const url = config.natsUrl ?? enrollment.natsUrl;
  const auth = await natsClientAuthOptions({ credentials: { kind: 'nkey', seedFile: join(config.dataDir, 'nats-seed.nk') }, caFile: config.natsCaFile, nodeId });
  let nc: NatsConnection;
  try {
    nc = await connect({ servers: url, name: `bulwark-agent-sign-${nodeId}`, ...auth, maxReconnectAttempts: 0 });
  } catch (err) {
    throw toBulwarkError(err, 'NATS_FAILED', `cannot connect to NATS at ${url}`);
  }
  try {
    const spki = hostKey.export({ type: 'spki', format: 'der' }).toString('base64');
    const request = encodeSignRequest({ version: 1, nodeId, artifact, hostKey: spki });
    let reply;
    try {
      reply = await nc.request(NODE_SUBJECTS.attestSign(nodeId), request, { timeout: SIGN_REQUEST_TIMEOUT_MS });
    } catch (err) {
      throw toBulwarkError(err, 'NATS_FAILED', 'the controller did not answer the signing request');
    }
    const code = reply.headers?.get('Bulwark-Error') ?? '';
    if (code !== '') {
      const message = reply.headers?.get('Bulwark-Message') ?? '';
      throw new BulwarkError(isErrorCode(code) ? code : 'RPC_FAILED', `controller refused: ${message}`, { code });
    }
    return { nodeId, envelope: parseEnvelope(reply.data, 'the controller\'s attestation') };
  } finally {
    await nc.close();
  }
}

/**
 * Signs `file` with the host key bound to a fresh attestation (see the file comment): the
 * attestation is used only once its signature verified with the controller's statement key.
 */
export async function signArtifact(opts: SignArtifactOptions): Promise<SignedArtifact> {
  const now = opts.now ?? Date.now;
  const controllerKey = opts.controllerKey ?? (await loadStatementKey(opts.config));
  const sha256 = await fileSha256(opts.file);
  const name = opts.name ?? basename(opts.file);
  const publicKey = await opts.key.publicKey();
  const hostKeySha256 = hostKeyFingerprint(publicKey);
  const { nodeId, envelope: attestation } = await requestAttestation(opts.config, { name, sha256 }, publicKey);
  const signedAtMs = now();
  const { expiresAt } = checkAttestation(attestation, { controllerKey, sha256, nodeId, hostKeySha256, now: signedAtMs });
  const payload = attestedArtifactStatement({ name, sha256 }, { nodeId, signedAt: new Date(signedAtMs).toISOString(), hostKeySha256 }, attestation);
  const signed = await signEnvelope(payload.payloadType, payload.payload, [opts.key.signer]);
  return { envelope: encodeEnvelope(signed), sha256, nodeId, attestation, expiresAt };
}

/**
 * Checks the controller's attestation before the host key signs anything: its signature
 * with the pinned statement key first (SIGNATURE_INVALID, PAYLOAD_TYPE_MISMATCH: nothing of
 * an unverified payload is used), then that it names this artifact, node and host key and
 * has not expired at `now` (ATTESTATION_INVALID). Returns its expiry.
 */
export function checkAttestation(
  attestation: DsseEnvelope,
  expected: { readonly controllerKey: KeyObject; readonly sha256: string; readonly nodeId: string; readonly hostKeySha256: string; readonly now: number },
): { expiresAt: string } {
  const verified = verifyEnvelope(attestation, { trustedKeys: [expected.controllerKey], payloadType: PAYLOAD_TYPES.inToto });
  const claimed = parseStatement(verified.payload);
  const predicate = claimed.predicateType === ATTESTATION_PREDICATE_TYPE ? ATTESTATION_PREDICATE.parse(claimed.predicate ?? null) : null;
  if (
    predicate === null ||
    claimed.subject.length !== 1 ||
    claimed.subject[0]?.digest.sha256 !== expected.sha256 ||
    predicate.nodeId !== expected.nodeId ||
    predicate.hostKey.sha256 !== expected.hostKeySha256
  ) {
    throw new BulwarkError('ATTESTATION_INVALID', 'the controller\'s attestation is not for this artifact, node and key', { check: 'reply' });
  }
  if (expected.now > Date.parse(predicate.expiresAt)) throw new BulwarkError('ATTESTATION_INVALID', `the attestation expired at ${predicate.expiresAt}`, { check: 'signed-at' });
  return { expiresAt: predicate.expiresAt };
}

/** `bulwark-agent sign FILE [-o ENVELOPE] [--key K]`: writes the envelope (stdout without -o); returns the exit code. */
export async function runSignCommand(config: AgentConfig, args: { file: string; output: string | undefined; key: string | undefined }): Promise<number> {
  const spec = args.key ?? config.signingKey;
  if (spec === null) throw new BulwarkError('USAGE', 'no signing key: set signingKey in the agent config (a PEM path or pkcs11: URI) or give --key');
  const key = await openHostSigningKey(spec);
  let signed: SignedArtifact;
  try {
    signed = await signArtifact({ config, file: args.file, key });
  } finally {
    await key.close();
  }
  if (args.output === undefined) {
    process.stdout.write(`${signed.envelope}\n`);
  } else {
    try {
      await writeFile(args.output, `${signed.envelope}\n`, { flag: 'w' });
    } catch (err) {
      throw toBulwarkError(err, 'IO_FAILED', `cannot write ${args.output}`);
    }
  }
  process.stderr.write(`bulwark-agent sign: ${args.file} sha256 ${signed.sha256} signed by ${signed.nodeId}, attested until ${signed.expiresAt}\n`);
  return 0;
}
