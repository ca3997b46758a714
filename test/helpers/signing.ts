/**
 * Signing for tests without an HSM: PEM key pairs, key set envelopes (bootstrap and
 * rotation) and signed documents, through lib/dsse's keySigner (the same envelopes the
 * PKCS#11 signer of `bulwarkctl sign` makes). Verification is what the tests exercise.
 */
import { generateKeyPairSync } from 'node:crypto';
import { encodeEnvelope, keySigner, PAYLOAD_TYPES, signEnvelope, type DsseSigner } from '../../lib/dsse/index.js';
import { PAYLOAD_TYPE_OF_KIND, type KeySetDocument, type KeySetKind } from '../../lib/signing/index.js';

/** A signing key of a test: its keyid, PEM halves and a signer. */
export interface TestKey {
  readonly keyid: string;
  readonly publicKeyPem: string;
  readonly privateKeyPem: string;
  readonly signer: DsseSigner;
}

/** A new key: Ed25519 (fast) unless `type` says ec (P-256). */
export function testKey(keyid: string, type: 'ed25519' | 'ec' = 'ed25519'): TestKey {
  const pair = type === 'ec' ? generateKeyPairSync('ec', { namedCurve: 'P-256' }) : generateKeyPairSync('ed25519');
  const privateKeyPem = pair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  return { keyid, publicKeyPem: pair.publicKey.export({ type: 'spki', format: 'pem' }).toString(), privateKeyPem, signer: keySigner(privateKeyPem, { keyid }) };
}

const enc = new TextEncoder();

/** Signs `payload` (bytes, text, or a value written as JSON) as `payloadType`: the envelope's JSON text. */
export async function signText(payloadType: string, payload: Uint8Array | string | object, signers: readonly TestKey[]): Promise<string> {
  const bytes = payload instanceof Uint8Array ? payload : enc.encode(typeof payload === 'string' ? payload : JSON.stringify(payload));
  return encodeEnvelope(await signEnvelope(payloadType, bytes, signers.map((k) => k.signer)));
}

/** A key set document of `kind` naming `keys`. */
export function keySetDocument(kind: KeySetKind, serial: number, threshold: number, keys: readonly TestKey[], extra: Partial<KeySetDocument> = {}): KeySetDocument {
  return { version: 1, kind, serial, threshold, keys: keys.map((k) => ({ keyid: k.keyid, publicKeyPem: k.publicKeyPem })), ...extra };
}

/** A key set envelope signed by `signers` (for a rotation: keys of the current set and of the new one). */
export async function keySetEnvelope(document: KeySetDocument, signers: readonly TestKey[]): Promise<string> {
  return signText(PAYLOAD_TYPES.keyset, document, signers);
}

/** A policy document of `kind` signed with the kind's payload type. */
export async function signPolicy(kind: KeySetKind, document: Uint8Array | string | object, signers: readonly TestKey[]): Promise<string> {
  return signText(PAYLOAD_TYPE_OF_KIND[kind], document, signers);
}
