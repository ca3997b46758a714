/**
 * The agent's side of the controller's TLS: the controller CA it pins (a PEM file named in
 * its configuration, never taken from an answer), and its node credential — a P-256 key
 * it generates (node-key.pem, 0600 in its data directory) and the short-lived node
 * certificate the controller issues for it at enrollment and renewal (node-cert.pem).
 */
import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BulwarkError } from '../lib/index.js';
import type { ClientTls } from '../proto/index.js';

/** Where the node credential lives in the agent's data directory. */
export function nodeCredentialPaths(dataDir: string): { readonly key: string; readonly cert: string } {
  return { key: join(dataDir, 'node-key.pem'), cert: join(dataDir, 'node-cert.pem') };
}

/** The pinned controller CA (PEM); CONFIG_INVALID when the file is missing or holds no certificate. */
export async function readControllerCa(path: string): Promise<string> {
  let pem: string;
  try {
    pem = await readFile(path, 'utf8');
  } catch (err) {
    throw new BulwarkError('CONFIG_INVALID', `cannot read the controller CA ${path} (controllerCa, $BULWARK_CONTROLLER_CA): copy <dataDir>/server/ca.pem from the controller host`, { path }, { cause: err });
  }
  try {
    new X509Certificate(pem);
  } catch (err) {
    throw new BulwarkError('CONFIG_INVALID', `${path} is not a PEM certificate`, { path }, { cause: err });
  }
  return pem;
}

/** A fresh key pair for a node certificate: the private key as PEM (PKCS#8) and the public key as SPKI DER. */
export function newNodeKey(): { readonly keyPem: string; readonly spki: Uint8Array } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), spki: new Uint8Array(publicKey.export({ type: 'spki', format: 'der' })) };
}

async function writeAtomically(path: string, text: string): Promise<void> {
  const tmp = `${path}.tmp`;
  await writeFile(tmp, text, { mode: 0o600 });
  await rename(tmp, path);
}

/** Stores a node credential (both files 0600; the key first, so a certificate never names a missing key). */
export async function saveNodeCredential(dataDir: string, keyPem: string, certPem: string): Promise<void> {
  const paths = nodeCredentialPaths(dataDir);
  await writeAtomically(paths.key, keyPem);
  await writeAtomically(paths.cert, certPem);
}

/** The node credential, or null when the agent has none yet. */
export async function readNodeCredential(
  dataDir: string,
): Promise<{ readonly keyPem: string; readonly certPem: string; readonly notBefore: number; readonly notAfter: number; readonly serial: string } | null> {
  const paths = nodeCredentialPaths(dataDir);
  try {
    const [keyPem, certPem] = await Promise.all([readFile(paths.key, 'utf8'), readFile(paths.cert, 'utf8')]);
    const cert = new X509Certificate(certPem);
    return { keyPem, certPem, notBefore: Date.parse(cert.validFrom), notAfter: Date.parse(cert.validTo), serial: cert.serialNumber.toLowerCase() };
  } catch {
    return null;
  }
}

/** TLS for calls as this node: the pinned CA and the node credential (null without one). */
export async function nodeTls(controllerCaPath: string, dataDir: string): Promise<ClientTls | null> {
  const caPem = await readControllerCa(controllerCaPath);
  const cred = await readNodeCredential(dataDir);
  return cred === null ? null : { caPem, certPem: cred.certPem, keyPem: cred.keyPem };
}
