import t from 'tap';
import { X509Certificate } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parsePemBundle, verifyEkCertificate, type EkCertificateResult } from '../../../lib/tpm/ekcert.js';
import { decodeTpm2bPublic, decodeTpmtPublic } from '../../../lib/tpm/public.js';
import { makeTempDir, removeDir, startTestTpms, type SwtpmProcess } from '../../helpers/swtpm.js';
import { fixturePath, num, optNum, optStr, readFixture, readFixtureJson, readFixtureText, records, str, strArray } from './fixture-files.js';
import { HANDLE, NV_INDEX, readNvCertificate, readPublic } from './swtpm-objects.js';
import { readdir } from 'node:fs/promises';

/** What a result says, in one comparable line. */
function outcome(r: EkCertificateResult): string {
  return r.ok ? `ok chain=${r.chain.length}` : `${r.finding.code}${r.finding.details?.['reason'] === undefined ? '' : ` ${String(r.finding.details['reason'])}`}`;
}

async function bundleOf(files: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  for (const f of files) out.push(...parsePemBundle(await readFixtureText('ekcert', f)));
  return out;
}

/** Each captured certificate becomes a test; each of its cases a check with the expected code and reason. */
t.test('captured EK certificates against their cases', async (t) => {
  const ders = (await readdir(fixturePath('ekcert', ''))).filter((f) => f.endsWith('.der')).sort();
  t.ok(ders.length >= 8, `${ders.length} certificates`);
  for (const der of ders) {
    const base = der.replace(/\.der$/, '');
    t.test(base, async (t) => {
      const cert = await readFixture('ekcert', der);
      const meta = await readFixtureJson('ekcert', `${base}.json`);
      for (const c of records(meta, 'cases')) {
        const ek = decodeTpmtPublic(await readFixture('tpm', str(c, 'ekPublic')));
        const now = new Date(optStr(c, 'now') ?? str(meta, 'now'));
        const result = verifyEkCertificate(cert, await bundleOf(strArray(c, 'bundle')), ek, now);
        const expect = str(c, 'expect');
        const wanted = expect === 'ok' ? `ok chain=${num(c, 'chainLength')}` : `${expect}${optStr(c, 'reason') === undefined ? '' : ` ${str(c, 'reason')}`}`;
        t.equal(outcome(result), wanted, str(c, 'what'));
        if (result.ok) t.equal(result.trailingBytes, 0);
        t.equal(optNum(c, 'chainLength') === undefined || result.ok, true);
      }
    });
  }
});

t.test('an ok result names the certificate', async (t) => {
  const cert = await readFixture('ekcert', 'rsa-ek.der');
  const ek = decodeTpmtPublic(await readFixture('tpm', 'rsa-ek.tpmt'));
  const now = new Date(str(await readFixtureJson('ekcert', 'rsa-ek.json'), 'now'));
  const r = verifyEkCertificate(cert, await bundleOf(['swtpm-localca-root.pem', 'swtpm-localca-issuer.pem']), ek, now);
  if (!r.ok) throw new Error(r.finding.message);
  const x = new X509Certificate(cert);
  t.equal(r.subject, x.subject);
  t.equal(r.issuer, 'CN=swtpm-localca');
  t.equal(r.serialNumber, x.serialNumber);
  t.equal(r.fingerprint256, x.fingerprint256.replace(/:/g, '').toLowerCase());
  t.same(r.chain, [x.subject, 'CN=swtpm-localca', 'CN=swtpm-localca-rootca']);
});

t.test('NV padding after the DER is cut off by the DER length', async (t) => {
  const cert = await readFixture('ekcert', 'ecc-p384-ek.der');
  const ek = decodeTpmtPublic(await readFixture('tpm', 'ecc-p384-ek.tpmt'));
  const now = new Date(str(await readFixtureJson('ekcert', 'ecc-p384-ek.json'), 'now'));
  const bundle = await bundleOf(['swtpm-localca-root.pem', 'swtpm-localca-issuer.pem']);
  for (const fill of [0x00, 0xff]) {
    const padded = new Uint8Array(cert.length + 158).fill(fill);
    padded.set(cert);
    const r = verifyEkCertificate(padded, bundle, ek, now);
    t.equal(r.ok && r.trailingBytes, 158, `padding of 0x${fill.toString(16)} bytes`);
  }
  t.throws(() => verifyEkCertificate(cert.subarray(0, cert.length - 1), bundle, ek, now), { code: 'CERT_MALFORMED' }, 'one byte short of the DER length');
  t.throws(() => verifyEkCertificate(new Uint8Array(0), bundle, ek, now), { code: 'CERT_MALFORMED' }, 'empty');
  t.throws(() => verifyEkCertificate(new TextEncoder().encode(new X509Certificate(cert).toString()), bundle, ek, now), { code: 'CERT_MALFORMED' }, 'PEM text is not DER');
  t.throws(() => verifyEkCertificate(new Uint8Array(70000), bundle, ek, now), { code: 'CERT_MALFORMED' }, 'over the input cap');
  t.throws(() => verifyEkCertificate(Uint8Array.of(0x30, 0x84, 0x7f, 0xff, 0xff, 0xff), bundle, ek, now), { code: 'CERT_MALFORMED' }, 'a 2 GiB declared length');
  t.throws(() => verifyEkCertificate(Uint8Array.of(0x30, 0x80, 0, 0), bundle, ek, now), { code: 'CERT_MALFORMED' }, 'BER indefinite length');
});

t.test('a signature that does not verify is untrusted', async (t) => {
  const cert = await readFixture('ekcert', 'pki-leaf-direct.der');
  const ek = decodeTpmtPublic(await readFixture('tpm', 'rsa-ek.tpmt'));
  const now = new Date(str(await readFixtureJson('ekcert', 'pki-leaf-direct.json'), 'now'));
  const bundle = await bundleOf(['pki-root.pem']);
  t.equal(outcome(verifyEkCertificate(cert, bundle, ek, now)), 'ok chain=2');
  // The last octets are the ECDSA signature's s; flipping one leaves the DER intact.
  const tampered = cert.slice();
  tampered[tampered.length - 2] = (tampered[tampered.length - 2] ?? 0) ^ 0x01;
  t.equal(outcome(verifyEkCertificate(tampered, bundle, ek, now)), 'EK_CERT_UNTRUSTED bad-signature');
});

t.test('parsePemBundle', async (t) => {
  const root = await readFixtureText('ekcert', 'swtpm-localca-root.pem');
  const issuer = await readFixtureText('ekcert', 'swtpm-localca-issuer.pem');
  const mixed = `# EK CAs\r\nsubject=CN = swtpm-localca-rootca\r\n${root.replace(/\n/g, '\r\n')}\nsome text\n${issuer}`;
  const parsed = parsePemBundle(mixed);
  t.equal(parsed.length, 2);
  t.same(parsed, [...parsePemBundle(root), ...parsePemBundle(issuer)], 'comments and CRLF do not matter');
  t.equal(new X509Certificate(parsed[0] ?? '').subject, 'CN=swtpm-localca-rootca');
  t.same(parsePemBundle(''), []);
  t.equal(parsePemBundle(parsed[0] ?? '')[0], parsed[0], 'normalized PEM parses to itself');
  t.throws(() => parsePemBundle(root.replace('-----END CERTIFICATE-----', '')), { code: 'EK_CA_BUNDLE_INVALID' }, 'no END line');
  t.throws(() => parsePemBundle('-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n'), { code: 'EK_CA_BUNDLE_INVALID' }, 'a private key is not a CA');
  t.throws(() => parsePemBundle('-----BEGIN CERTIFICATE-----\nAA*A\n-----END CERTIFICATE-----\n'), { code: 'EK_CA_BUNDLE_INVALID' }, 'not base64');
  t.throws(() => parsePemBundle('-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n'), { code: 'EK_CA_BUNDLE_INVALID' }, 'empty body');

  const cert = await readFixture('ekcert', 'rsa-ek.der');
  const ek = decodeTpmtPublic(await readFixture('tpm', 'rsa-ek.tpmt'));
  const junk = parsePemBundle('-----BEGIN CERTIFICATE-----\nAAAAAAAA\n-----END CERTIFICATE-----\n');
  t.throws(() => verifyEkCertificate(cert, [...parsed, ...junk], ek), { code: 'EK_CA_BUNDLE_INVALID' }, 'a bundle entry that is not a certificate');
});

t.test('the parsed bundle is reused for the same array and not for another', async (t) => {
  const cert = await readFixture('ekcert', 'rsa-ek.der');
  const ek = decodeTpmtPublic(await readFixture('tpm', 'rsa-ek.tpmt'));
  const now = new Date(str(await readFixtureJson('ekcert', 'rsa-ek.json'), 'now'));
  const good = await bundleOf(['swtpm-localca-root.pem', 'swtpm-localca-issuer.pem']);
  const other = await bundleOf(['other-ca-root.pem', 'other-ca-issuer.pem']);
  t.equal(outcome(verifyEkCertificate(cert, good, ek, now)), 'ok chain=3');
  t.equal(outcome(verifyEkCertificate(cert, other, ek, now)), 'EK_CERT_UNTRUSTED issuer-not-found');
  t.equal(outcome(verifyEkCertificate(cert, good, ek, now)), 'ok chain=3');
  const mutable = [...good];
  t.equal(outcome(verifyEkCertificate(cert, mutable, ek, now)), 'ok chain=3');
  mutable.splice(0, mutable.length, ...other);
  t.equal(outcome(verifyEkCertificate(cert, mutable, ek, now)), 'EK_CERT_UNTRUSTED issuer-not-found', 'a changed array is parsed again');
});

interface TpmCerts {
  readonly rsaCert: Uint8Array;
  readonly eccCert: Uint8Array;
  readonly rsaEk: ReturnType<typeof decodeTpm2bPublic>;
  readonly eccEk: ReturnType<typeof decodeTpm2bPublic>;
}

async function readCerts(tpm: SwtpmProcess, dir: string): Promise<TpmCerts> {
  await mkdir(dir, { recursive: true });
  return {
    rsaCert: await readNvCertificate(tpm, NV_INDEX.rsaEkCert, dir),
    eccCert: await readNvCertificate(tpm, NV_INDEX.eccP384EkCert, dir),
    rsaEk: decodeTpm2bPublic((await readPublic(tpm, HANDLE.rsaEk, dir)).tpm2b),
    eccEk: decodeTpm2bPublic((await readPublic(tpm, HANDLE.eccP384Ek, dir)).tpm2b),
  };
}

async function bundleFromDir(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const f of (await readdir(dir)).sort()) out.push(...parsePemBundle(await readFile(join(dir, f), 'utf8')));
  return out;
}

t.test('real swtpm EK certificates from NV, two TPMs with two CAs', async (t) => {
  const root = await makeTempDir('ekcert');
  const fleetA = await startTestTpms(join(root, 'a'), 1);
  t.teardown(async () => {
    await fleetA.stop();
    await removeDir(root);
  });
  // A second TPM provisioned by its own, different CA.
  const fleetB = await startTestTpms(join(root, 'b'), 1);
  t.teardown(() => fleetB.stop());
  const tpmA = fleetA.tpms[0];
  const tpmB = fleetB.tpms[0];
  if (tpmA === undefined || tpmB === undefined) throw new Error('no TPM');
  const a = await readCerts(tpmA, join(root, 'work-a'));
  const b = await readCerts(tpmB, join(root, 'work-b'));
  const bundleA = await bundleFromDir(fleetA.ca.bundleDir);
  const bundleB = await bundleFromDir(fleetB.ca.bundleDir);
  t.equal(bundleA.length, 2, 'root and intermediate');

  const rsa = verifyEkCertificate(a.rsaCert, bundleA, a.rsaEk);
  t.equal(outcome(rsa), 'ok chain=3', 'RSA EK certificate chains to its CA');
  t.equal(rsa.ok && rsa.trailingBytes, 0, 'swtpm sizes the NV index to the certificate');
  t.equal(outcome(verifyEkCertificate(a.eccCert, bundleA, a.eccEk)), 'ok chain=3', 'ECC P-384 EK certificate chains to its CA');
  t.equal(outcome(verifyEkCertificate(b.rsaCert, bundleB, b.rsaEk)), 'ok chain=3', 'the second TPM chains to its own CA');

  t.equal(outcome(verifyEkCertificate(b.rsaCert, bundleA, b.rsaEk)), 'EK_CERT_UNTRUSTED issuer-not-found', 'RSA certificate of another CA');
  t.equal(outcome(verifyEkCertificate(b.eccCert, bundleA, b.eccEk)), 'EK_CERT_UNTRUSTED issuer-not-found', 'ECC certificate of another CA');
  t.equal(outcome(verifyEkCertificate(a.rsaCert, bundleA, b.rsaEk)), 'EK_CERT_KEY_MISMATCH', 'trusted RSA certificate, another TPM’s RSA EK');
  t.equal(outcome(verifyEkCertificate(a.eccCert, bundleA, b.eccEk)), 'EK_CERT_KEY_MISMATCH', 'trusted ECC certificate, another TPM’s ECC EK');
  t.equal(outcome(verifyEkCertificate(a.rsaCert, [...bundleB, ...bundleA], a.rsaEk)), 'ok chain=3', 'a bundle with both CAs');
});
