/**
 * The controller's CA on disk: first start creates the CA, the server certificate and the
 * admin credential set with their modes; later starts change nothing; keys with loose
 * modes, keys that are not their certificate's and half-present CAs are refused with a
 * code; credential sets are never overwritten. openssl verifies what was written.
 */
import t, { type Test } from 'tap';
import { createHash } from 'node:crypto';
import { chmod, lstat, mkdir, mkdtemp, readdir, readFile, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BulwarkError, type ErrorCode } from '../../../lib/errors.js';
import { certificateFromPem, decodeCertificate, generateKeyPair, parseClientIdentity } from '../../../lib/pki/index.js';
import { ensureControllerCa, issueCredential, loadControllerCa, pkiPaths, privateKeyToPem, readCredentialSet } from '../../../controller/pki/index.js';
import { openssl, opensslVerify } from '../../lib/pki/openssl.js';

const DAY = 24 * 60 * 60 * 1000;

async function tempDataDir(t: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'bulwark-ctl-pki-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return join(dir, 'data');
}

async function codeOf(fn: () => Promise<unknown>): Promise<ErrorCode | 'returned' | 'not-a-BulwarkError'> {
  try {
    await fn();
    return 'returned';
  } catch (err) {
    return err instanceof BulwarkError ? err.code : 'not-a-BulwarkError';
  }
}

async function mode(path: string): Promise<string> {
  return ((await lstat(path)).mode & 0o777).toString(8).padStart(4, '0');
}

/** Every file under `dir` with its mode, size, mtime and SHA-256: equal snapshots mean nothing was written. */
async function snapshot(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    const path = join(entry.parentPath, entry.name);
    const st = await stat(path);
    const digest = entry.isFile() ? createHash('sha256').update(await readFile(path)).digest('hex') : 'dir';
    out.push(`${path} ${(st.mode & 0o7777).toString(8)} ${st.mtimeMs} ${digest}`);
  }
  return out.sort();
}

t.test('first start creates the CA, the server certificate and the admin credentials with their modes', async (t) => {
  const dataDir = await tempDataDir(t);
  const paths = pkiPaths(dataDir);
  const first = await ensureControllerCa(dataDir, { dnsNames: ['controller.test', 'localhost'], ipAddresses: ['127.0.0.1', '::1', '192.0.2.7'] });
  t.same(first.created, { ca: true, server: true, admin: true });
  t.equal(await mode(paths.caDir), '0700');
  t.equal(await mode(paths.caKey), '0600');
  t.equal(await mode(join(paths.serverDir)), '0700');
  t.equal(await mode(join(paths.serverDir, 'key.pem')), '0600');
  t.equal(await mode(paths.adminDir), '0700');
  t.equal(await mode(join(paths.adminDir, 'key.pem')), '0600');
  t.equal(await mode(join(dataDir, 'credentials')), '0700');
  t.same((await readdir(paths.adminDir)).sort(), ['ca.pem', 'cert.pem', 'key.pem']);
  t.same((await readdir(dataDir)).sort(), ['ca', 'credentials', 'server'], 'no staging directory is left behind');

  const caText = (await openssl(['x509', '-noout', '-text', '-in', paths.caCert])).stdout;
  t.match(caText, /CA:TRUE/);
  t.match(caText, /NIST CURVE: P-256/);
  const ca = decodeCertificate(certificateFromPem(await readFile(paths.caCert, 'utf8')));
  const years = (ca.notAfter - ca.notBefore) / (365 * DAY);
  t.ok(years > 9.99 && years < 10.01, `the CA is valid for 10 years (${years.toFixed(3)})`);

  const server = await opensslVerify(paths.caCert, join(paths.serverDir, 'cert.pem'), 'sslserver');
  t.equal(server.code, 0, `server certificate: ${server.stdout.trim()} ${server.stderr.trim()}`);
  const serverText = (await openssl(['x509', '-noout', '-ext', 'subjectAltName', '-in', join(paths.serverDir, 'cert.pem')])).stdout;
  t.match(serverText, /DNS:controller\.test, DNS:localhost, IP Address:127\.0\.0\.1, IP Address:0:0:0:0:0:0:0:1, IP Address:192\.0\.2\.7/);
  const admin = await opensslVerify(join(paths.adminDir, 'ca.pem'), join(paths.adminDir, 'cert.pem'), 'sslclient');
  t.equal(admin.code, 0, `admin certificate: ${admin.stdout.trim()} ${admin.stderr.trim()}`);
  const adminId = parseClientIdentity(certificateFromPem(await readFile(join(paths.adminDir, 'cert.pem'), 'utf8')));
  t.same([adminId.kind, adminId.kind === 'person' ? adminId.role : '', adminId.kind === 'person' ? adminId.name : ''], ['person', 'admin', 'admin']);
  const keyCheck = await openssl(['pkey', '-noout', '-in', join(paths.adminDir, 'key.pem')]);
  t.equal(keyCheck.code, 0, 'openssl reads the admin key');
});

t.test('a bad server name is refused before anything is written', async (t) => {
  const dataDir = await tempDataDir(t);
  t.equal(await codeOf(() => ensureControllerCa(dataDir, { dnsNames: ['not a name'] })), 'PKI_TEMPLATE_INVALID');
  t.equal(await codeOf(() => ensureControllerCa(dataDir, { ipAddresses: ['300.1.1.1'] })), 'PKI_TEMPLATE_INVALID');
  t.equal(await codeOf(() => ensureControllerCa(dataDir, { dnsNames: [], ipAddresses: [] })), 'PKI_TEMPLATE_INVALID');
  t.equal(await codeOf(() => lstat(dataDir)), 'not-a-BulwarkError', 'the data directory was not even created');
});

t.test('later starts write nothing and load the same CA', async (t) => {
  const dataDir = await tempDataDir(t);
  const first = await ensureControllerCa(dataDir);
  const before = await snapshot(dataDir);
  const second = await ensureControllerCa(dataDir);
  t.same(second.created, { ca: false, server: false, admin: false });
  t.same(await snapshot(dataDir), before, 'every file as it was');
  t.same(Buffer.from(second.ca.certificate), Buffer.from(first.ca.certificate));
  t.equal(second.server.certPem, first.server.certPem);

  // An operator who removed the admin set gets a new one; nothing else changes.
  await rm(pkiPaths(dataDir).adminDir, { recursive: true });
  const third = await ensureControllerCa(dataDir);
  t.same(third.created, { ca: false, server: false, admin: true });
  const set = await readCredentialSet(pkiPaths(dataDir).adminDir);
  t.equal(set.caPem, first.ca.pem);
});

t.test('the server certificate is replaced when other names are configured, and only then', async (t) => {
  const dataDir = await tempDataDir(t);
  const first = await ensureControllerCa(dataDir);
  const same = await ensureControllerCa(dataDir, { dnsNames: ['LOCALHOST'], ipAddresses: ['0:0:0:0:0:0:0:1', '127.0.0.1'] });
  t.equal(same.created.server, false, 'the same names in another spelling and order');
  const renamed = await ensureControllerCa(dataDir, { dnsNames: ['bulwark.example'], ipAddresses: ['10.0.0.1'] });
  t.same(renamed.created, { ca: false, server: true, admin: false });
  t.not(renamed.server.certPem, first.server.certPem);
  t.same(
    renamed.server.certificate.subjectAltNames,
    [
      { kind: 'dns', value: 'bulwark.example' },
      { kind: 'ip', value: '10.0.0.1' },
    ],
  );
  t.equal(await mode(join(pkiPaths(dataDir).serverDir, 'key.pem')), '0600');
  t.same((await readdir(dataDir)).sort(), ['ca', 'credentials', 'server'], 'the old server set is gone');
  const later = await ensureControllerCa(dataDir, { now: new Date(Date.now() + 340 * DAY), dnsNames: ['bulwark.example'], ipAddresses: ['10.0.0.1'] });
  t.equal(later.created.server, true, 'renewed within 30 days of its expiry');
});

t.test('refusals: loose key modes, mismatched keys, half-present CAs', async (t) => {
  const dataDir = await tempDataDir(t);
  await ensureControllerCa(dataDir);
  const paths = pkiPaths(dataDir);

  await chmod(paths.caKey, 0o640);
  t.equal(await codeOf(() => ensureControllerCa(dataDir)), 'PKI_KEY_PERMISSIONS', 'ca.key 0640');
  await chmod(paths.caKey, 0o604);
  t.equal(await codeOf(() => loadControllerCa(dataDir)), 'PKI_KEY_PERMISSIONS', 'ca.key 0604');
  await chmod(paths.caKey, 0o600);
  t.equal(await codeOf(() => ensureControllerCa(dataDir)), 'returned', 'back to 0600');

  const moved = join(paths.caDir, 'moved.key');
  await rename(paths.caKey, moved);
  await symlink(moved, paths.caKey);
  t.equal(await codeOf(() => ensureControllerCa(dataDir)), 'PKI_KEY_PERMISSIONS', 'ca.key as a symbolic link to a 0600 key');
  await rm(paths.caKey);
  await rename(moved, paths.caKey);

  const original = await readFile(paths.caKey);
  await writeFile(paths.caKey, privateKeyToPem(generateKeyPair('p256').privateKey), { mode: 0o600 });
  t.equal(await codeOf(() => ensureControllerCa(dataDir)), 'PKI_KEY_MISMATCH', 'another key beside ca.pem');
  t.equal((await readFile(paths.caKey)).equals(original), false, 'and the replaced key was left as found');
  await writeFile(paths.caKey, original, { mode: 0o600 });

  const serverKey = join(paths.serverDir, 'key.pem');
  await chmod(serverKey, 0o644);
  t.equal(await codeOf(() => ensureControllerCa(dataDir)), 'PKI_KEY_PERMISSIONS', 'server key.pem 0644');
  await chmod(serverKey, 0o600);
  await writeFile(serverKey, privateKeyToPem(generateKeyPair('p256').privateKey), { mode: 0o600 });
  t.equal(await codeOf(() => ensureControllerCa(dataDir)), 'PKI_KEY_MISMATCH', 'server key not its certificate');

  const half = await tempDataDir(t);
  await ensureControllerCa(half);
  await rm(pkiPaths(half).caCert);
  t.equal(await codeOf(() => ensureControllerCa(half)), 'PKI_CA_INVALID', 'ca.key without ca.pem');
  t.equal((await lstat(pkiPaths(half).caKey)).isFile(), true, 'ca.key is not replaced');
  await writeFile(pkiPaths(half).caCert, 'not a certificate');
  t.equal(await codeOf(() => ensureControllerCa(half)), 'CERT_MALFORMED', 'garbage ca.pem');

  const orphan = await tempDataDir(t);
  await mkdir(pkiPaths(orphan).caDir, { recursive: true });
  await writeFile(pkiPaths(orphan).caCert, 'x');
  t.equal(await codeOf(() => ensureControllerCa(orphan)), 'PKI_CA_INVALID', 'ca.pem without ca.key');
});

t.test('issueCredential writes a set with a role and never overwrites one', async (t) => {
  const dataDir = await tempDataDir(t);
  const { ca } = await ensureControllerCa(dataDir);
  const out = join(dataDir, '..', 'issued', 'carol');
  const issued = await issueCredential(ca, { name: 'carol', role: 'viewer', validForMs: 7 * DAY, outputDir: out });
  t.equal(issued.role, 'viewer');
  t.equal(await mode(out), '0700');
  t.equal(await mode(join(out, 'key.pem')), '0600');
  const set = await readCredentialSet(out);
  const id = parseClientIdentity(certificateFromPem(set.certPem));
  t.same(id, { kind: 'person', name: 'carol', role: 'viewer', serial: issued.serial, notAfter: issued.notAfter.getTime() });
  const verified = await opensslVerify(join(out, 'ca.pem'), join(out, 'cert.pem'), 'sslclient');
  t.equal(verified.code, 0);

  const before = await snapshot(out);
  t.equal(await codeOf(() => issueCredential(ca, { name: 'carol', role: 'admin', validForMs: DAY, outputDir: out })), 'PKI_CREDENTIALS_EXIST');
  t.same(await snapshot(out), before, 'the existing set is untouched');
  t.same((await readdir(join(out, '..'))).sort(), ['carol'], 'no staging directory is left behind');

  const empty = join(dataDir, '..', 'issued', 'empty');
  await mkdir(empty);
  t.equal(await codeOf(() => issueCredential(ca, { name: 'dave', role: 'operator', validForMs: DAY, outputDir: empty })), 'returned', 'an empty directory is filled');
  t.equal(await codeOf(() => issueCredential(ca, { name: 'bad name', role: 'operator', validForMs: DAY, outputDir: join(out, '..', 'x') })), 'PKI_TEMPLATE_INVALID');
  t.equal(await codeOf(() => issueCredential(ca, { name: 'erin', role: 'operator', validForMs: -1, outputDir: join(out, '..', 'y') })), 'PKI_TEMPLATE_INVALID');
});
