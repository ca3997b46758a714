/**
 * The node identity the controller issues after a successful credential activation: a
 * compact token `base64url(claims).base64url(signature)` signed with the controller's
 * Ed25519 key, binding the node id to the TPM names of its EK and AK.
 */
import { sign, verify, type KeyObject } from 'node:crypto';
import { Type, type Static } from '@sinclair/typebox';
import { BulwarkError } from '../errors.js';
import { defineDocument } from '../schema/index.js';

/** The claims of a node identity token. */
export const NodeIdentityClaimsSchema = Type.Object({
  nodeId: Type.String(),
  ekName: Type.String(),
  akName: Type.String(),
  issuedAt: Type.String(),
});

export type NodeIdentityClaims = Static<typeof NodeIdentityClaimsSchema>;

const CLAIMS = defineDocument(NodeIdentityClaimsSchema, 'node identity claims', 'KEY_INVALID');

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
  const c = CLAIMS.parseJson(Buffer.from(body, 'base64url'));
  return { nodeId: c.nodeId, ekName: c.ekName, akName: c.akName, issuedAt: c.issuedAt };
}
