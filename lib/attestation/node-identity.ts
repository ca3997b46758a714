/**
 * The node identity the controller issues after a successful credential activation: a
 * compact token `base64url(claims).base64url(signature)` signed with the controller's
 * Ed25519 key, binding the node id to the TPM names of its EK and AK.
 */
import { sign, verify, type KeyObject } from 'node:crypto';
import { BulwarkError } from '../errors.js';

export interface NodeIdentityClaims {
  readonly nodeId: string;
  readonly ekName: string;
  readonly akName: string;
  readonly issuedAt: string;
}

export function signNodeIdentity(key: KeyObject, claims: NodeIdentityClaims): string {
  const body = Buffer.from(JSON.stringify(claims)).toString('base64url');
  const sig = sign(null, Buffer.from(body), key).toString('base64url');
  return `${body}.${sig}`;
}

/** Verifies a token and returns its claims; throws KEY_INVALID when it does not verify. */
export function verifyNodeIdentity(key: KeyObject, token: string): NodeIdentityClaims {
  const parts = token.split('.');
  const [body, sig] = parts;
  if (parts.length !== 2 || body === undefined || sig === undefined || !verify(null, Buffer.from(body), key, Buffer.from(sig, 'base64url'))) {
    throw new BulwarkError('KEY_INVALID', 'node identity does not verify');
  }
  const v: unknown = JSON.parse(Buffer.from(body, 'base64url').toString());
  if (typeof v !== 'object' || v === null) throw new BulwarkError('KEY_INVALID', 'node identity claims are not an object');
  const get = (k: string): string => {
    const x: unknown = Reflect.get(v, k);
    if (typeof x !== 'string') throw new BulwarkError('KEY_INVALID', `node identity claim ${k} is missing`);
    return x;
  };
  return { nodeId: get('nodeId'), ekName: get('ekName'), akName: get('akName'), issuedAt: get('issuedAt') };
}
