/**
 * The controller's certificate authority on disk. On first start `ensureControllerCa`
 * creates, under the data directory:
 *
 *   ca/                    0700  ca.key (0600, PKCS#8), ca.pem — a self-signed P-256 CA, 10 years
 *   server/                0700  ca.pem, cert.pem, key.pem (0600) — the gRPC server certificate
 *   credentials/admin/     0700  ca.pem, cert.pem, key.pem (0600) — an admin credential set
 *
 * On later starts it reads and checks what is there and writes nothing, except that a
 * server certificate which no longer fits (other names configured, within its renewal
 * window, or not issued by this CA) is replaced by a new one; the CA and credential sets
 * are never overwritten. The admin set is written when its directory is absent (as k3s
 * writes its admin kubeconfig): whoever can delete it can read ca.key anyway.
 */
import { randomBytes } from 'node:crypto';
import { lstat, mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BulwarkError, bytesEqual, toBulwarkError } from '../../lib/index.js';
import {
  PKI_OID,
  certificateFromPem,
  checkSubjectAltName,
  decodeCertificate,
  createCertificateAuthority,
  encodeIpAddress,
  formatIpAddress,
  generateKeyPair,
  issuePersonCertificate,
  issueServerCertificate,
  openCertificateAuthority,
  validityFor,
  type CertificateAuthority,
  type KeyKind,
  type Role,
} from '../../lib/pki/index.js';
import { isMissing, issuedByCa, privateKeyToPem, readCredentialSet, readPrivateKeyFile, readSmallText, writeCredentialSet, type CredentialSet } from './files.js';

const DAY_MS = 24 * 60 * 60 * 1000;

/** Validity periods and the server certificate's renewal window. */
export const PKI_DEFAULTS = {
  caValidityMs: 3650 * DAY_MS,
  serverValidityMs: 365 * DAY_MS,
  /** A server certificate with less than this left is replaced at start. */
  serverRenewBeforeMs: 30 * DAY_MS,
  adminValidityMs: 365 * DAY_MS,
  dnsNames: ['localhost'],
  ipAddresses: ['127.0.0.1', '::1'],
  caCommonName: 'Bulwark controller CA',
  serverCommonName: 'bulwark-controller',
  adminName: 'admin',
} as const;

export interface ControllerCaOptions {
  /** DNS names in the server certificate (default localhost). */
  readonly dnsNames?: readonly string[];
  /** IP addresses in the server certificate (default 127.0.0.1 and ::1). */
  readonly ipAddresses?: readonly string[];
  /** The CA key type on first start (default P-256). */
  readonly caKeyKind?: KeyKind;
  /** The clock (tests). */
  readonly now?: Date;
}

/** Paths of the controller's PKI under its data directory. */
export function pkiPaths(dataDir: string): { caDir: string; caKey: string; caCert: string; serverDir: string; adminDir: string } {
  const caDir = join(dataDir, 'ca');
  return {
    caDir,
    caKey: join(caDir, 'ca.key'),
    caCert: join(caDir, 'ca.pem'),
    serverDir: join(dataDir, 'server'),
    adminDir: join(dataDir, 'credentials', 'admin'),
  };
}

/** What `ensureControllerCa` found or made. */
export interface ControllerCa {
  readonly ca: CertificateAuthority;
  /** The server credential set: its ca.pem is what clients pin, cert.pem and key.pem are the TLS server's. */
  readonly server: CredentialSet;
  readonly paths: ReturnType<typeof pkiPaths>;
  /** What this call wrote. */
  readonly created: { readonly ca: boolean; readonly server: boolean; readonly admin: boolean };
}

/** A credential set just written. */
export interface IssuedCredential {
  readonly dir: string;
  readonly name: string;
  readonly role: Role;
  readonly serial: string;
  readonly notAfter: Date;
}

/**
 * Issues a person's credential set (a fresh P-256 key, a certificate with `role` for
 * `validForMs`, and the CA certificate) into `outputDir` (0700, key.pem 0600).
 * PKI_CREDENTIALS_EXIST when `outputDir` already holds files; PKI_TEMPLATE_INVALID for a
 * bad name, role or validity.
 */
export async function issueCredential(
  ca: CertificateAuthority,
  opts: { readonly name: string; readonly role: Role; readonly validForMs: number; readonly outputDir: string; readonly now?: Date },
): Promise<IssuedCredential> {
  const { privateKey, publicKey } = generateKeyPair('p256');
  const issued = issuePersonCertificate(ca, { name: opts.name, role: opts.role, publicKey, validity: validityFor(opts.now ?? new Date(), opts.validForMs) });
  await writeCredentialSet(opts.outputDir, { caPem: ca.pem, certPem: issued.pem, keyPem: privateKeyToPem(privateKey) });
  return { dir: opts.outputDir, name: opts.name, role: opts.role, serial: issued.serial, notAfter: new Date(decodeCertificate(issued.der).notAfter) };
}

/** Creates the CA directory (ca.key 0600, ca.pem) in one rename, or fails without touching an existing one. */
async function createCaDir(paths: ReturnType<typeof pkiPaths>, dataDir: string, kind: KeyKind, now: Date): Promise<void> {
  const { privateKey } = generateKeyPair(kind);
  const ca = createCertificateAuthority({ key: privateKey, commonName: PKI_DEFAULTS.caCommonName, validity: validityFor(now, PKI_DEFAULTS.caValidityMs) });
  const staging = join(dataDir, `.ca.new-${randomBytes(6).toString('hex')}`);
  try {
    await mkdir(staging, { mode: 0o700 });
    await writeFile(join(staging, 'ca.key'), privateKeyToPem(privateKey), { mode: 0o600, flag: 'wx' });
    await writeFile(join(staging, 'ca.pem'), ca.pem, { mode: 0o644, flag: 'wx' });
    await rename(staging, paths.caDir);
  } catch (err) {
    await rm(staging, { recursive: true, force: true });
    throw toBulwarkError(err, 'IO_FAILED', `cannot create the CA in ${paths.caDir}`);
  }
}

/** Whether something exists at `path` (without following a final symlink); IO_FAILED for failures other than ENOENT. */
async function pathExists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch (err) {
    if (isMissing(err)) return false;
    throw new BulwarkError('IO_FAILED', `cannot stat ${path}`, { path }, { cause: err });
  }
}

/** Reads and checks the CA: key 0600, the key is the certificate's, a self-signed CA valid at `now`. */
export async function loadControllerCa(dataDir: string, now: Date = new Date()): Promise<CertificateAuthority> {
  const paths = pkiPaths(dataDir);
  const { key } = await readPrivateKeyFile(paths.caKey);
  const der = certificateFromPem(await readSmallText(paths.caCert));
  return openCertificateAuthority(der, key, now);
}

function normalizedNames(dnsNames: readonly string[], ipAddresses: readonly string[]): string[] {
  return [...dnsNames.map((d) => `dns:${d.toLowerCase()}`), ...ipAddresses.map((ip) => `ip:${formatIpAddress(encodeIpAddress(ip))}`)].sort();
}

/** Whether the server set still fits: this CA's, serverAuth, the configured names, and outside the renewal window. */
function serverFits(set: CredentialSet, ca: CertificateAuthority, dnsNames: readonly string[], ipAddresses: readonly string[], now: Date): boolean {
  const cert = set.certificate;
  if (!bytesEqual(certificateFromPem(set.caPem), ca.certificate) || !issuedByCa(certificateFromPem(set.certPem), ca)) return false;
  if (cert.extKeyUsage === undefined || !cert.extKeyUsage.includes(PKI_OID.serverAuth)) return false;
  if (cert.notAfter - now.getTime() < PKI_DEFAULTS.serverRenewBeforeMs || cert.notBefore > now.getTime()) return false;
  const have = cert.subjectAltNames.flatMap((s) => (s.kind === 'dns' ? [`dns:${s.value.toLowerCase()}`] : s.kind === 'ip' ? [`ip:${s.value}`] : [])).sort();
  const want = normalizedNames(dnsNames, ipAddresses);
  return have.length === want.length && have.every((h, i) => h === want[i]);
}

async function writeServerSet(dir: string, ca: CertificateAuthority, dnsNames: readonly string[], ipAddresses: readonly string[], now: Date): Promise<void> {
  const { privateKey, publicKey } = generateKeyPair('p256');
  const issued = issueServerCertificate(ca, {
    publicKey,
    commonName: dnsNames[0] ?? PKI_DEFAULTS.serverCommonName,
    dnsNames,
    ipAddresses,
    validity: validityFor(now, PKI_DEFAULTS.serverValidityMs),
  });
  await writeCredentialSet(dir, { caPem: ca.pem, certPem: issued.pem, keyPem: privateKeyToPem(privateKey) });
}

/** Replaces the server set: the new one is written beside it, then the two are swapped by rename. */
async function replaceServerSet(dir: string, dataDir: string, ca: CertificateAuthority, dnsNames: readonly string[], ipAddresses: readonly string[], now: Date): Promise<void> {
  const suffix = randomBytes(6).toString('hex');
  const fresh = join(dataDir, `.server.next-${suffix}`);
  const old = join(dataDir, `.server.old-${suffix}`);
  await writeServerSet(fresh, ca, dnsNames, ipAddresses, now);
  try {
    await rename(dir, old);
    await rename(fresh, dir);
  } catch (err) {
    await rm(fresh, { recursive: true, force: true });
    throw toBulwarkError(err, 'IO_FAILED', `cannot replace the server certificate in ${dir}`);
  }
  await rm(old, { recursive: true, force: true });
}

/**
 * Makes sure the controller's CA, server certificate and first admin credentials exist
 * under `dataDir`, creating them on first start (see the module comment), and checks what
 * was there: PKI_KEY_PERMISSIONS for a private key others may read or write,
 * PKI_KEY_MISMATCH for a key that is not its certificate's, PKI_CA_INVALID for a CA that
 * is not one, expired, or half present. Returns the CA, ready to issue, and the server set.
 */
export async function ensureControllerCa(dataDir: string, opts: ControllerCaOptions = {}): Promise<ControllerCa> {
  const now = opts.now ?? new Date();
  const dnsNames = opts.dnsNames ?? PKI_DEFAULTS.dnsNames;
  const ipAddresses = opts.ipAddresses ?? PKI_DEFAULTS.ipAddresses;
  // Checked before anything is written, so a bad configuration leaves no half-made state.
  for (const value of dnsNames) checkSubjectAltName({ kind: 'dns', value });
  for (const value of ipAddresses) checkSubjectAltName({ kind: 'ip', value });
  if (dnsNames.length + ipAddresses.length === 0) throw new BulwarkError('PKI_TEMPLATE_INVALID', 'the server certificate needs at least one DNS name or IP address');
  const paths = pkiPaths(dataDir);
  try {
    await mkdir(dataDir, { recursive: true, mode: 0o700 });
  } catch (err) {
    throw new BulwarkError('IO_FAILED', `cannot create ${dataDir}`, { path: dataDir }, { cause: err });
  }

  const haveKey = await pathExists(paths.caKey);
  const haveCert = await pathExists(paths.caCert);
  let createdCa = false;
  if (!haveKey && !haveCert) {
    await createCaDir(paths, dataDir, opts.caKeyKind ?? 'p256', now);
    createdCa = true;
  } else if (!haveKey || !haveCert) {
    throw new BulwarkError('PKI_CA_INVALID', `${paths.caDir} holds ${haveKey ? 'ca.key without ca.pem' : 'ca.pem without ca.key'}; refusing to replace either`, { path: paths.caDir });
  }
  const ca = await loadControllerCa(dataDir, now);

  let createdServer = false;
  if (!(await pathExists(paths.serverDir))) {
    await writeServerSet(paths.serverDir, ca, dnsNames, ipAddresses, now);
    createdServer = true;
  }
  let server = await readCredentialSet(paths.serverDir);
  if (!createdServer && !serverFits(server, ca, dnsNames, ipAddresses, now)) {
    await replaceServerSet(paths.serverDir, dataDir, ca, dnsNames, ipAddresses, now);
    server = await readCredentialSet(paths.serverDir);
    createdServer = true;
  }

  let createdAdmin = false;
  if (!(await pathExists(paths.adminDir))) {
    await issueCredential(ca, { name: PKI_DEFAULTS.adminName, role: 'admin', validForMs: PKI_DEFAULTS.adminValidityMs, outputDir: paths.adminDir, now });
    createdAdmin = true;
  }
  return { ca, server, paths, created: { ca: createdCa, server: createdServer, admin: createdAdmin } };
}
