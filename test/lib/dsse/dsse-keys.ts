/** Keys and signers the DSSE tests share: one of each type Bulwark trusts, made once per test process. */
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { keySigner, type DsseSigner } from '../../../lib/dsse/index.js';

export interface TestKey {
  readonly name: string;
  readonly publicKey: KeyObject;
  readonly privateKey: KeyObject;
  readonly signer: DsseSigner;
}

export function makeKey(name: 'ecdsa-p256' | 'ecdsa-p384' | 'ed25519' | 'rsa-pss' | 'rsa-pkcs1', keyid: string = name): TestKey {
  const pair =
    name === 'ecdsa-p256'
      ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
      : name === 'ecdsa-p384'
        ? generateKeyPairSync('ec', { namedCurve: 'P-384' })
        : name === 'ed25519'
          ? generateKeyPairSync('ed25519')
          : generateKeyPairSync('rsa', { modulusLength: 2048 });
  const signer = keySigner(pair.privateKey, { keyid, ...(name === 'rsa-pkcs1' ? { scheme: 'rsa-pkcs1v15-sha256' as const } : {}) });
  return { name, publicKey: pair.publicKey, privateKey: pair.privateKey, signer };
}

/** A deterministic PRNG (mulberry32), so every mutation run is the same run. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
