/**
 * The key that signs audit checkpoints, behind one interface: a PEM private key file read
 * with node:crypto, an HSM key (PKCS#11, RFC 7512 URI) once that signer is wired, or, when
 * nothing is configured, an ECDSA P-256 key the controller creates in its data directory
 * on first start (0600, said in a log line). A key that cannot be loaded or created fails
 * the start: the controller never runs an audit log it cannot sign.
 */
import { createHash, createPrivateKey, createPublicKey, sign as cryptoSign, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BulwarkError } from '../../lib/index.js';
import { noteVerifierFromKey, type NoteSigner, type NoteVerifier } from '../../lib/merkle/index.js';
import { openPkcs11Signer, type HsmOptions, type Logger } from '../../daemon/index.js';
import { ensurePrivateKey } from '../pki/index.js';

/**
 * Signs checkpoint note text. `sign` returns the signature over the bytes as C2SP
 * signed-note wants it for the key's type: ECDSA in ASN.1 DER over SHA-256(text) (type
 * 0x02), Ed25519 over the text itself (type 0x01). Trust: the controller's own key.
 */
export interface CheckpointSigner {
  /** What the key is, for logs: a file path or a pkcs11: URI (never a PIN). */
  readonly name: string;
  readonly publicKey: KeyObject;
  sign(noteText: Uint8Array): Promise<Uint8Array>;
  close?(): Promise<void>;
}

/** The file the controller creates its checkpoint key in when none is configured. */
export const DEFAULT_CHECKPOINT_KEY_FILE = 'audit-checkpoint-key.pem';

const failed = (message: string, cause?: unknown): BulwarkError => new BulwarkError('AUDIT_SIGNER_FAILED', message, {}, cause === undefined ? undefined : { cause });

/** A signer over a private key held in memory (read from a PEM file). */
export function keyObjectCheckpointSigner(name: string, privateKey: KeyObject): CheckpointSigner {
  const publicKey = createPublicKey(privateKey);
  const ed25519 = privateKey.asymmetricKeyType === 'ed25519';
  if (!ed25519 && privateKey.asymmetricKeyType !== 'ec') throw failed(`the checkpoint key ${name} is ${privateKey.asymmetricKeyType ?? 'unknown'}, not ECDSA or Ed25519`);
  return {
    name,
    publicKey,
    sign: async (text) => new Uint8Array(ed25519 ? cryptoSign(null, text, privateKey) : cryptoSign('sha256', text, { key: privateKey, dsaEncoding: 'der' })),
  };
}

/** Reads a PEM private key file as a checkpoint signer. */
export async function pemFileCheckpointSigner(path: string): Promise<CheckpointSigner> {
  let pem: string;
  try {
    pem = await readFile(path, 'utf8');
  } catch (err) {
    throw failed(`cannot read the checkpoint key ${path}`, err);
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch (err) {
    throw failed(`the checkpoint key ${path} is not a PEM private key`, err);
  }
  return keyObjectCheckpointSigner(path, key);
}

/**
 * A signer over an ECDSA key on a PKCS#11 token (RFC 7512 URI; module and PIN from the URI,
 * else BULWARK_PKCS11_MODULE and BULWARK_PKCS11_PIN). The note's type 0x02 signature is
 * ECDSA over SHA-256(text) whatever the curve, so Node hashes and the token signs the
 * digest (DER out). Its errors are the PKCS11_* codes (no PIN in any of them).
 */
export async function pkcs11CheckpointSigner(uri: string, options: HsmOptions = {}): Promise<CheckpointSigner> {
  const { signer, hsm } = await openPkcs11Signer(uri, options);
  try {
    const publicKey = await signer.publicKey();
    if (publicKey.asymmetricKeyType !== 'ec') throw failed(`the checkpoint key ${signer.uri} is ${publicKey.asymmetricKeyType ?? 'unknown'}, not ECDSA`);
    return {
      name: signer.uri,
      publicKey,
      sign: (text) => signer.signDigest(new Uint8Array(createHash('sha256').update(text).digest()), 'sha256'),
      close: () => hsm.close(),
    };
  } catch (err) {
    await hsm.close();
    throw err;
  }
}

/**
 * The signer the configuration names (`auditSigningKey`): a pkcs11: URI, a PEM file, or
 * null for the key in `dataDir`, created (ECDSA P-256, 0600) when missing.
 */
export async function loadCheckpointSigner(configured: string | null, dataDir: string, log: Logger): Promise<CheckpointSigner> {
  if (configured !== null && configured.startsWith('pkcs11:')) {
    const signer = await pkcs11CheckpointSigner(configured);
    log.info({ key: signer.name }, 'audit checkpoints are signed on the PKCS#11 token');
    return signer;
  }
  if (configured !== null) return pemFileCheckpointSigner(configured);
  const path = join(dataDir, DEFAULT_CHECKPOINT_KEY_FILE);
  let made: { key: KeyObject; created: boolean };
  try {
    made = await ensurePrivateKey(path);
  } catch (err) {
    throw failed(`cannot read or create the checkpoint key ${path}`, err);
  }
  if (made.created) log.info({ path }, 'created an ECDSA P-256 audit checkpoint key (no auditSigningKey configured); give its public key to auditors');
  return keyObjectCheckpointSigner(path, made.key);
}

/** The note signer and verifier of a checkpoint signer under the key name `name`. */
export function noteKeysOf(name: string, signer: CheckpointSigner): { noteSigner: NoteSigner; verifier: NoteVerifier } {
  const verifier = noteVerifierFromKey(name, signer.publicKey);
  return { verifier, noteSigner: { name, keyId: verifier.keyId, sign: (message) => signer.sign(message) } };
}
