/**
 * Credential sets on disk: a directory (0700) holding `ca.pem`, `cert.pem` and `key.pem`
 * (0600), written into a fresh sibling directory and renamed into place, so a set is
 * either complete or absent and an existing one is never overwritten. Private keys are
 * read only when no one but their owner may read or write them.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, X509Certificate, type KeyObject } from 'node:crypto';
import { constants, type Stats } from 'node:fs';
import { mkdir, open, readFile, rename, rm, writeFile, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { BulwarkError, bytesEqual, toBulwarkError } from '../../lib/index.js';
import { certificateFromPem, decodeCertificate, spkiOf, type CertificateAuthority, type DecodedCertificate } from '../../lib/pki/index.js';

/** File names inside a credential set. */
export const CREDENTIAL_FILES = { ca: 'ca.pem', cert: 'cert.pem', key: 'key.pem' } as const;

/** Largest key or certificate file read (PEM of a few hundred bytes). */
const MAX_PEM_FILE = 64 * 1024;

/** A credential set's contents, PEM as written. */
export interface CredentialSetFiles {
  readonly caPem: string;
  readonly certPem: string;
  readonly keyPem: string;
}

/** A credential set read back and checked: the key is its certificate's and the certificate was issued by the set's CA. */
export interface CredentialSet extends CredentialSetFiles {
  readonly certificate: DecodedCertificate;
  readonly key: KeyObject;
}

export function isMissing(err: unknown): boolean {
  return err instanceof Error && 'code' in err && err.code === 'ENOENT';
}

function errnoOf(err: unknown): string | undefined {
  const code: unknown = err instanceof Error && 'code' in err ? err.code : undefined;
  return typeof code === 'string' ? code : undefined;
}

/** A private key as PKCS#8 PEM. */
export function privateKeyToPem(key: KeyObject): string {
  const pem = key.export({ type: 'pkcs8', format: 'pem' });
  return typeof pem === 'string' ? pem : pem.toString('utf8');
}

/** Reads a small text file; IO_FAILED with the cause otherwise (ENOENT included). */
export async function readSmallText(path: string): Promise<string> {
  let text: Buffer;
  try {
    text = await readFile(path);
  } catch (err) {
    throw new BulwarkError('IO_FAILED', `cannot read ${path}`, { path }, { cause: err });
  }
  if (text.length > MAX_PEM_FILE) throw new BulwarkError('IO_FAILED', `${path} is larger than ${MAX_PEM_FILE} bytes`, { path });
  return text.toString('utf8');
}

/**
 * The private key in `path`, made there when the file does not exist yet: an ECDSA P-256
 * key written 0600 with an exclusive create, so two starts on one data directory never
 * overwrite each other's key (the second reads the first one's). Read back with the
 * permission checks of readPrivateKeyFile.
 */
export async function ensurePrivateKey(path: string, make: () => KeyObject = () => generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey): Promise<{ key: KeyObject; created: boolean }> {
  try {
    return { key: (await readPrivateKeyFile(path)).key, created: false };
  } catch (err) {
    if (!(err instanceof BulwarkError && isMissing(err.cause))) throw err;
  }
  const key = make();
  try {
    await writeFile(path, privateKeyToPem(key), { mode: 0o600, flag: 'wx' });
  } catch (err) {
    if (errnoOf(err) === 'EEXIST') return { key: (await readPrivateKeyFile(path)).key, created: false };
    throw new BulwarkError('IO_FAILED', `cannot create ${path}`, { path }, { cause: err });
  }
  return { key, created: true };
}

/**
 * Reads a PEM private key, refusing (PKI_KEY_PERMISSIONS) a file that is not a regular
 * file owned by this user with no group or other permission bits, before reading it.
 */
export async function readPrivateKeyFile(path: string): Promise<{ key: KeyObject; pem: string }> {
  let handle: FileHandle;
  try {
    // O_NOFOLLOW: the mode checked is the mode of the file read, not of a symlink's target swapped in between.
    handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (err) {
    if (errnoOf(err) === 'ELOOP') throw new BulwarkError('PKI_KEY_PERMISSIONS', `${path} is a symbolic link; a private key must be a regular file`, { path }, { cause: err });
    throw new BulwarkError('IO_FAILED', `cannot open ${path}`, { path }, { cause: err });
  }
  try {
    let st: Stats;
    let bytes: Buffer;
    try {
      st = await handle.stat();
    } catch (err) {
      throw new BulwarkError('IO_FAILED', `cannot stat ${path}`, { path }, { cause: err });
    }
    const uid = process.getuid?.();
    if (!st.isFile() || (st.mode & 0o077) !== 0 || (uid !== undefined && st.uid !== uid)) {
      throw new BulwarkError('PKI_KEY_PERMISSIONS', `${path} must be a regular file of this user with mode 0600 (it is ${(st.mode & 0o7777).toString(8).padStart(4, '0')})`, {
        path,
        mode: st.mode & 0o7777,
      });
    }
    if (st.size > MAX_PEM_FILE) throw new BulwarkError('IO_FAILED', `${path} is larger than ${MAX_PEM_FILE} bytes`, { path });
    try {
      bytes = await handle.readFile();
    } catch (err) {
      throw new BulwarkError('IO_FAILED', `cannot read ${path}`, { path }, { cause: err });
    }
    const pem = bytes.toString('utf8');
    try {
      return { key: createPrivateKey(pem), pem };
    } catch (err) {
      throw new BulwarkError('KEY_INVALID', `${path} is not a PEM private key`, { path }, { cause: err });
    }
  } finally {
    await handle.close();
  }
}

/** Reads a PEM certificate file into DER and its decoded fields. */
export async function readCertificateFile(path: string): Promise<{ der: Uint8Array; pem: string; decoded: DecodedCertificate }> {
  const pem = await readSmallText(path);
  const der = certificateFromPem(pem);
  return { der, pem, decoded: decodeCertificate(der) };
}

/** PKI_KEY_MISMATCH unless `key` is the private half of the certificate's public key. */
export function checkKeyMatches(key: KeyObject, certificate: DecodedCertificate, what: string): void {
  if (!bytesEqual(spkiOf(createPublicKey(key)), certificate.spki)) throw new BulwarkError('PKI_KEY_MISMATCH', `the key of ${what} does not belong to its certificate`, { what });
}

/** Whether `der` was issued by `ca` (names, key identifiers and signature; X509Certificate.checkIssued and verify). */
export function issuedByCa(der: Uint8Array, ca: CertificateAuthority): boolean {
  try {
    const leaf = new X509Certificate(der);
    const issuer = new X509Certificate(ca.certificate);
    return leaf.checkIssued(issuer) && leaf.verify(issuer.publicKey);
  } catch {
    return false;
  }
}

/**
 * Writes `files` as a new directory `dir` (0700; key.pem 0600, the certificates 0644):
 * first into a fresh sibling directory, then renamed into place. PKI_CREDENTIALS_EXIST
 * when `dir` exists and is not empty; the parent is created (0700) when missing.
 */
export async function writeCredentialSet(dir: string, files: CredentialSetFiles): Promise<void> {
  const parent = dirname(dir);
  const staging = join(parent, `.${basename(dir)}.new-${randomBytes(6).toString('hex')}`);
  try {
    await mkdir(parent, { recursive: true, mode: 0o700 });
    await mkdir(staging, { mode: 0o700 });
    await writeFile(join(staging, CREDENTIAL_FILES.key), files.keyPem, { mode: 0o600, flag: 'wx' });
    await writeFile(join(staging, CREDENTIAL_FILES.cert), files.certPem, { mode: 0o644, flag: 'wx' });
    await writeFile(join(staging, CREDENTIAL_FILES.ca), files.caPem, { mode: 0o644, flag: 'wx' });
  } catch (err) {
    await rm(staging, { recursive: true, force: true });
    throw toBulwarkError(err, 'IO_FAILED', `cannot write the credential set for ${dir}`);
  }
  try {
    // rename(2) replaces only an empty directory; anything else fails and is left alone.
    await rename(staging, dir);
  } catch (err) {
    await rm(staging, { recursive: true, force: true });
    const code = errnoOf(err);
    if (code === 'ENOTEMPTY' || code === 'EEXIST' || code === 'ENOTDIR') {
      throw new BulwarkError('PKI_CREDENTIALS_EXIST', `${dir} already exists and is not empty; credentials are never overwritten`, { path: dir }, { cause: err });
    }
    throw new BulwarkError('IO_FAILED', `cannot move the credential set into ${dir}`, { path: dir }, { cause: err });
  }
}

/**
 * Reads a credential set and checks it: key.pem 0600 and the private half of cert.pem,
 * and cert.pem issued by ca.pem (PKI_KEY_PERMISSIONS, PKI_KEY_MISMATCH, PKI_CA_INVALID).
 */
export async function readCredentialSet(dir: string): Promise<CredentialSet> {
  const { key, pem: keyPem } = await readPrivateKeyFile(join(dir, CREDENTIAL_FILES.key));
  const cert = await readCertificateFile(join(dir, CREDENTIAL_FILES.cert));
  const ca = await readCertificateFile(join(dir, CREDENTIAL_FILES.ca));
  checkKeyMatches(key, cert.decoded, dir);
  let issued = false;
  try {
    const leaf = new X509Certificate(cert.der);
    const issuer = new X509Certificate(ca.der);
    issued = ca.decoded.isCa && leaf.checkIssued(issuer) && leaf.verify(issuer.publicKey);
  } catch {
    issued = false;
  }
  if (!issued) throw new BulwarkError('PKI_CA_INVALID', `the certificate in ${dir} was not issued by the CA beside it`, { path: dir });
  return { caPem: ca.pem, certPem: cert.pem, keyPem, certificate: cert.decoded, key };
}
