/**
 * `bulwarkctl verify ENVELOPE --trusted-keys DIR|FILE [--threshold N] [--payload-type T]`,
 * offline: the envelope is verified by lib/dsse against PEM public keys (RSA, ECDSA
 * P-256/P-384, Ed25519). Exit 0 verified (payload type, the distinct keys that verified,
 * the payload's sha256), 1 not verified (SIGNATURE_INVALID, SIGNATURE_THRESHOLD_NOT_MET,
 * PAYLOAD_TYPE_MISMATCH: printed), 3 malformed (envelope or key file).
 * With --require-attested the envelope must be an attestation-bound artifact signature
 * (verifyAttested below; ATTESTATION_INVALID adds to the exit-1 codes).
 */
import { createHash, createPublicKey, type KeyObject } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { parseEnvelope, verifyAttestedEnvelope, verifyEnvelope, type TrustedKey } from '../lib/dsse/index.js';
import { BulwarkError, EXIT_CODES, exitCodeFor, toHex } from '../lib/index.js';
import type { Call } from './command.js';
import { printJson, readInput } from './io.js';

/** Most PEM blocks read from one file and most .pem files read from a directory. */
const MAX_TRUSTED_KEYS = 256;

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----[\s\S]*?-----END \1-----/g;

/** A trusted key with the file (and block number, from 1) it came from. */
interface KeyFromFile extends TrustedKey {
  readonly keyid: string;
}

function keyFile(path: string, block: number, blocks: number): string {
  return blocks === 1 ? path : `${path}#${block}`;
}

/** Every PEM public key of one file; a file with none, or a block that is not a public key, is KEY_INVALID. */
async function keysOfFile(path: string, shown: string): Promise<KeyFromFile[]> {
  const text = new TextDecoder('utf-8', { fatal: false }).decode(await readInput(path, 'trusted key'));
  const blocks = [...text.matchAll(PEM_BLOCK)].map((m) => m[0]);
  if (blocks.length === 0) throw new BulwarkError('KEY_INVALID', `${shown} holds no PEM block`, { file: shown });
  const out: KeyFromFile[] = [];
  for (const [i, pem] of blocks.entries()) {
    const label = keyFile(shown, i + 1, blocks.length);
    if (!pem.startsWith('-----BEGIN PUBLIC KEY-----')) throw new BulwarkError('KEY_INVALID', `${label} is not a PEM public key (BEGIN PUBLIC KEY)`, { file: label });
    let key: KeyObject;
    try {
      key = createPublicKey(pem);
    } catch (err) {
      throw new BulwarkError('KEY_INVALID', `${label} is not a PEM public key`, { file: label }, { cause: err });
    }
    out.push({ key, keyid: label });
  }
  return out;
}

/** The trusted keys of a PEM file or of a directory's .pem files (in name order). */
async function loadTrustedKeys(path: string): Promise<KeyFromFile[]> {
  let isDir: boolean;
  try {
    isDir = (await stat(path)).isDirectory();
  } catch (err) {
    throw new BulwarkError('IO_FAILED', `cannot read trusted keys ${path}`, {}, { cause: err });
  }
  let keys: KeyFromFile[] = [];
  if (isDir) {
    const names = (await readdir(path)).filter((n) => n.endsWith('.pem')).sort();
    if (names.length === 0) throw new BulwarkError('KEY_INVALID', `${path} holds no .pem file`);
    for (const name of names) keys = keys.concat(await keysOfFile(join(path, name), basename(name)));
  } else {
    keys = await keysOfFile(path, path);
  }
  if (keys.length > MAX_TRUSTED_KEYS) throw new BulwarkError('KEY_INVALID', `${path} holds ${keys.length} keys, more than ${MAX_TRUSTED_KEYS}`);
  return keys;
}

/** sha256 (hex) of a file given with --artifact, streamed. */
async function artifactSha256(path: string): Promise<string> {
  const hash = createHash('sha256');
  try {
    // A ReadStream without an encoding yields Buffers.
    const chunks: AsyncIterable<Buffer> = createReadStream(path);
    for await (const chunk of chunks) hash.update(chunk);
  } catch (err) {
    throw new BulwarkError('IO_FAILED', `cannot read the artifact ${path}`, {}, { cause: err });
  }
  return hash.digest('hex');
}

/**
 * `verify --require-attested`: an attestation-bound artifact signature (lib/dsse
 * attested.ts): the host signature by a trusted key, the embedded attestation by the
 * controller's key, one digest in both (and the artifact's), the host key the attestation
 * names, the signing time within the attestation's validity, the verdict trusted.
 */
async function verifyAttested(call: Call, path: string, hostKeys: readonly KeyFromFile[]): Promise<number> {
  const controllerKeys = await loadTrustedKeys(call.required('--controller-key'));
  const artifact = call.string('--artifact');
  const sha256 = artifact === undefined ? undefined : await artifactSha256(artifact);
  const envelope = parseEnvelope(await readInput(path, 'envelope'), path);
  try {
    const v = verifyAttestedEnvelope(envelope, { hostKeys, controllerKeys, ...(sha256 === undefined ? {} : { artifactSha256: sha256 }) });
    if (call.json) {
      printJson(call.io, { verified: true, attested: true, ...v, artifactChecked: sha256 !== undefined });
    } else {
      call.io.out(
        `verified: attested artifact ${v.name} sha256 ${v.sha256}${sha256 === undefined ? '' : ' (matches --artifact)'}\n` +
          `signed by: ${v.nodeId} with host key ${v.hostKeyId} (sha256 ${v.hostKeySha256}) at ${v.signedAt}\n` +
          `attested: trusted (AK ${v.akName}, quote ${v.quoteTime}) by controller key ${v.controllerKeyId}, valid ${v.issuedAt} .. ${v.expiresAt}\n`,
      );
    }
    return EXIT_CODES.ok;
  } catch (err) {
    return notVerified(call, err);
  }
}

function notVerified(call: Call, err: unknown): number {
  if (!(err instanceof BulwarkError) || exitCodeFor(err.code) !== EXIT_CODES.finding) throw err;
  if (call.json) printJson(call.io, { verified: false, code: err.code, message: err.message, details: err.details });
  else call.io.out(`not verified: ${err.code}: ${err.message}\n`);
  return EXIT_CODES.finding;
}

/** bulwarkctl verify. */
export async function verifyCommand(call: Call): Promise<number> {
  const path = call.arg(0);
  const keys = await loadTrustedKeys(call.required('--trusted-keys'));
  if (call.flag('--require-attested')) return verifyAttested(call, path, keys);
  if (call.string('--controller-key') !== undefined || call.string('--artifact') !== undefined) {
    throw new BulwarkError('USAGE', '--controller-key and --artifact go with --require-attested');
  }
  const threshold = call.number('--threshold') ?? 1;
  const envelope = parseEnvelope(await readInput(path, 'envelope'), path);
  const payloadType = call.string('--payload-type') ?? envelope.payloadType;
  try {
    const verified = verifyEnvelope(envelope, { trustedKeys: keys, threshold, payloadType });
    const digest = toHex(createHash('sha256').update(verified.payload).digest());
    const by = verified.keys.map((k) => k.keyid);
    if (call.json) {
      printJson(call.io, { verified: true, payloadType: verified.payloadType, keys: by, threshold, trustedKeys: keys.length, payloadSha256: digest, payloadBytes: verified.payload.length });
    } else {
      call.io.out(
        `verified: ${by.length} of ${keys.length} trusted key(s) (threshold ${threshold})\n` +
          `payload type: ${verified.payloadType}\n` +
          `keys: ${by.join(', ')}\n` +
          `payload sha256: ${digest} (${verified.payload.length} bytes)\n`,
      );
    }
    return EXIT_CODES.ok;
  } catch (err) {
    return notVerified(call, err);
  }
}
