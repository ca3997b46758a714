/**
 * Hostile bytes into EK certificate verification: truncated, bit-flipped, DER-length-inflated
 * and noisy versions of real swtpm and openssl certificates, as the EK certificate and as CA
 * bundle entries, and mutated PEM text. Each call must return or throw a BulwarkError with a
 * known code, and no changed certificate may ever be trusted (seeded: BULWARK_FUZZ_SEED=<n>).
 */
import t from 'tap';
import { toHex } from '../../../lib/bytes.js';
import { parsePemBundle, verifyEkCertificate } from '../../../lib/tpm/ekcert.js';
import { BulwarkError } from '../../../lib/errors.js';
import { decodeTpmtPublic } from '../../../lib/tpm/public.js';
import { mutations, newStats, probe, prng, report, SEED } from '../hostile.js';
import { readFixture, readFixtureJson, readFixtureText, str } from './fixture-files.js';

t.test('EK certificates: malformed throws CERT_MALFORMED, a changed certificate is never trusted', async (t) => {
  const rnd = prng(SEED ^ 0x2);
  const stats = newStats();
  const trusted: string[] = [];
  const codes = new Set<string>();
  for (const [der, ekFile, bundleFiles] of [
    ['rsa-ek', 'rsa-ek', ['swtpm-localca-root.pem', 'swtpm-localca-issuer.pem']],
    ['ecc-p384-ek', 'ecc-p384-ek', ['swtpm-localca-root.pem', 'swtpm-localca-issuer.pem']],
    ['pki-leaf-deep', 'rsa-ek', ['pki-root.pem', 'pki-int.pem', 'pki-int-deep.pem']],
  ] as const) {
    const seed = await readFixture('ekcert', `${der}.der`);
    const ek = decodeTpmtPublic(await readFixture('tpm', `${ekFile}.tpmt`));
    const now = new Date(str(await readFixtureJson('ekcert', `${der}.json`), 'now'));
    const bundle: string[] = [];
    for (const f of bundleFiles) bundle.push(...parsePemBundle(await readFixtureText('ekcert', f)));
    const original = verifyEkCertificate(seed, bundle, ek, now);
    t.ok(original.ok, `${der} verifies before mutation`);
    for (const [label, input] of mutations(seed, rnd, { flipSamples: 1200, randomCount: 200, derLengths: true, sizes: [0xffff] })) {
      probe(stats, `${der}.der`, label, input, () => {
        try {
          const r = verifyEkCertificate(input, bundle, ek, now);
          codes.add(r.ok ? 'ok' : r.finding.code);
          // Only the untouched certificate, or one followed by padding, may verify.
          const sameCert = input.length >= seed.length && toHex(input.subarray(0, seed.length)) === toHex(seed);
          if (r.ok && !sameCert) trusted.push(`${der} [${label}]`);
        } catch (err) {
          codes.add(err instanceof BulwarkError ? err.code : 'foreign');
          throw err;
        }
      });
    }
  }
  report(t, stats, 12_000);
  t.same(trusted.slice(0, 5), [], 'no changed certificate is trusted');
  t.ok(codes.has('CERT_MALFORMED') && codes.has('EK_CERT_UNTRUSTED'), `outcomes seen: ${[...codes].join(', ')}`);
});

t.test('CA bundles: PEM text and certificates inside it', async (t) => {
  const rnd = prng(SEED ^ 0x3);
  const stats = newStats();
  const cert = await readFixture('ekcert', 'rsa-ek.der');
  const ek = decodeTpmtPublic(await readFixture('tpm', 'rsa-ek.tpmt'));
  const now = new Date(str(await readFixtureJson('ekcert', 'rsa-ek.json'), 'now'));
  const rootPem = parsePemBundle(await readFixtureText('ekcert', 'swtpm-localca-root.pem'));
  const issuerText = await readFixtureText('ekcert', 'swtpm-localca-issuer.pem');
  const issuerDer = new Uint8Array(Buffer.from(issuerText.replace(/-----[A-Z ]+-----|\s+/g, ''), 'base64'));
  for (const [label, input] of mutations(issuerDer, rnd, { flipSamples: 600, randomCount: 100, derLengths: true, sizes: [0xffff] })) {
    const pem = `-----BEGIN CERTIFICATE-----\n${Buffer.from(input).toString('base64')}\n-----END CERTIFICATE-----\n`;
    probe(stats, 'bundle entry', label, input, () => {
      // A fresh array each time, so no parsed bundle is reused.
      const r = verifyEkCertificate(cert, [...rootPem, ...parsePemBundle(pem)], ek, now);
      if (r.ok && toHex(input) !== toHex(issuerDer)) throw new Error('a changed intermediate was accepted');
    });
  }
  const text = new TextEncoder().encode(issuerText);
  for (const [label, input] of mutations(text, rnd, { flipSamples: 2000, randomCount: 300 })) {
    probe(stats, 'PEM text', label, input, () => parsePemBundle(Buffer.from(input).toString('latin1')));
  }
  report(t, stats, 6_000);
});
