/**
 * parseClientIdentity: the person or node a client certificate names, refusing
 * certificates that name both, neither, an unknown role, or disagree with their subject;
 * and hostile bytes (every prefix, bit flips, inflated DER lengths, noise) into every
 * parsing entry point give a BulwarkError with a known code, nothing else.
 */
import t from 'tap';
import { X509Certificate } from 'node:crypto';
import { toHex } from '../../../lib/bytes.js';
import { BulwarkError, type ErrorCode } from '../../../lib/errors.js';
import {
  certificateFromPem,
  certificateToPem,
  createCertificate,
  createCertificateAuthority,
  decodeCertificate,
  generateKeyPair,
  issueNodeCertificate,
  issuePersonCertificate,
  issueServerCertificate,
  newSerial,
  openCertificateAuthority,
  parseClientIdentity,
  publicKeyFromSpki,
  spkiOf,
  validityFor,
  type ExtKeyUsage,
  type SubjectAltName,
} from '../../../lib/pki/index.js';
import { mutations, newStats, probe, prng, report, SEED } from '../hostile.js';

const DAY = 24 * 60 * 60 * 1000;
const now = new Date();
const ca = createCertificateAuthority({ key: generateKeyPair('p256').privateKey, commonName: 'identity test CA', validity: validityFor(now, 365 * DAY) });
const AK_NAME = Uint8Array.from({ length: 34 }, (_, i) => (i < 2 ? [0x00, 0x0b][i] ?? 0 : 0xa0 + (i % 16)));

function codeOf(fn: () => unknown): ErrorCode | 'returned' | 'not-a-BulwarkError' {
  try {
    fn();
    return 'returned';
  } catch (err) {
    return err instanceof BulwarkError ? err.code : 'not-a-BulwarkError';
  }
}

/** A client certificate with chosen OU, SANs and extended key usage. */
function custom(opts: { ou?: string; sans: SubjectAltName[]; eku?: ExtKeyUsage[]; isCa?: boolean }): Uint8Array {
  return createCertificate({
    subject: { organization: 'Bulwark', ...(opts.ou === undefined ? {} : { organizationalUnit: opts.ou }), commonName: 'someone' },
    issuer: { der: ca.subjectDer },
    serial: newSerial(),
    notBefore: now,
    notAfter: new Date(now.getTime() + DAY),
    publicKey: generateKeyPair('p256').publicKey,
    signingKey: ca.key,
    isCa: opts.isCa ?? false,
    keyUsage: opts.isCa === true ? ['keyCertSign'] : ['digitalSignature'],
    extKeyUsage: opts.eku ?? ['clientAuth'],
    subjectAltNames: opts.sans,
  }).der;
}

const uri = (value: string): SubjectAltName => ({ kind: 'uri', value });

t.test('people carry their role, nodes their id and AK name', async (t) => {
  for (const role of ['viewer', 'operator', 'admin'] as const) {
    const issued = issuePersonCertificate(ca, { name: `user.${role}@example`, role, publicKey: generateKeyPair('p256').publicKey, validity: validityFor(now, DAY) });
    const id = parseClientIdentity(issued.der);
    t.same(id, { kind: 'person', name: `user.${role}@example`, role, serial: issued.serial, notAfter: decodeCertificate(issued.der).notAfter });
    t.same(parseClientIdentity(new X509Certificate(issued.der)), id, 'an X509Certificate gives the same identity');
  }
  const node = issueNodeCertificate(ca, { nodeId: 'host-2.rack_1', akName: AK_NAME, spki: spkiOf(generateKeyPair('ed25519').publicKey), validity: validityFor(now, DAY) });
  t.same(parseClientIdentity(node.der), { kind: 'node', nodeId: 'host-2.rack_1', akName: toHex(AK_NAME), serial: node.serial, notAfter: decodeCertificate(node.der).notAfter });
});

t.test('a certificate that names both, neither, or a half identity names nobody', async (t) => {
  const ak = `bulwark:ak:${toHex(AK_NAME)}`;
  const cases: Array<[string, Uint8Array, ErrorCode]> = [
    ['both a person and a node', custom({ ou: 'admin', sans: [uri('bulwark:user:a'), uri('bulwark:role:admin'), uri('bulwark:node:h'), uri(ak)] }), 'PKI_IDENTITY_INVALID'],
    ['a person URI beside a node', custom({ ou: 'node', sans: [uri('bulwark:node:h'), uri(ak), uri('bulwark:role:admin')] }), 'PKI_IDENTITY_INVALID'],
    ['neither', custom({ ou: 'admin', sans: [{ kind: 'dns', value: 'a.example' }] }), 'PKI_IDENTITY_INVALID'],
    ['no SAN at all', custom({ ou: 'admin', sans: [] }), 'PKI_IDENTITY_INVALID'],
    ['user without role', custom({ ou: 'admin', sans: [uri('bulwark:user:a')] }), 'PKI_IDENTITY_INVALID'],
    ['role without user', custom({ ou: 'admin', sans: [uri('bulwark:role:admin')] }), 'PKI_IDENTITY_INVALID'],
    ['two roles', custom({ ou: 'admin', sans: [uri('bulwark:user:a'), uri('bulwark:role:viewer'), uri('bulwark:role:admin')] }), 'PKI_IDENTITY_INVALID'],
    ['two users', custom({ ou: 'admin', sans: [uri('bulwark:user:a'), uri('bulwark:user:b'), uri('bulwark:role:admin')] }), 'PKI_IDENTITY_INVALID'],
    ['unknown role', custom({ ou: 'root', sans: [uri('bulwark:user:a'), uri('bulwark:role:root')] }), 'PKI_IDENTITY_INVALID'],
    ['OU disagrees with the role', custom({ ou: 'viewer', sans: [uri('bulwark:user:a'), uri('bulwark:role:admin')] }), 'PKI_IDENTITY_INVALID'],
    ['no OU', custom({ sans: [uri('bulwark:user:a'), uri('bulwark:role:admin')] }), 'PKI_IDENTITY_INVALID'],
    ['unknown bulwark URI', custom({ ou: 'admin', sans: [uri('bulwark:user:a'), uri('bulwark:role:admin'), uri('bulwark:group:x')] }), 'PKI_IDENTITY_INVALID'],
    ['node without AK name', custom({ ou: 'node', sans: [uri('bulwark:node:h')] }), 'PKI_IDENTITY_INVALID'],
    ['AK name not hex', custom({ ou: 'node', sans: [uri('bulwark:node:h'), uri('bulwark:ak:XYZ')] }), 'PKI_IDENTITY_INVALID'],
    ['node OU wrong', custom({ ou: 'admin', sans: [uri('bulwark:node:h'), uri(ak)] }), 'PKI_IDENTITY_INVALID'],
    ['serverAuth only', custom({ ou: 'admin', sans: [uri('bulwark:user:a'), uri('bulwark:role:admin')], eku: ['serverAuth'] }), 'PKI_IDENTITY_INVALID'],
    ['a CA', custom({ ou: 'admin', sans: [uri('bulwark:user:a'), uri('bulwark:role:admin')], isCa: true }), 'PKI_IDENTITY_INVALID'],
    ['the CA itself', ca.certificate, 'PKI_IDENTITY_INVALID'],
    ['not DER', Uint8Array.of(0x30, 0x03, 0x02, 0x01), 'CERT_MALFORMED'],
  ];
  for (const [what, der, code] of cases) t.equal(codeOf(() => parseClientIdentity(der)), code, what);
  const good = custom({ ou: 'admin', sans: [uri('bulwark:user:a'), uri('bulwark:role:admin'), uri('https://other.example/'), { kind: 'dns', value: 'a.example' }] });
  t.equal(parseClientIdentity(good).kind, 'person', 'other URIs and DNS names beside the identity are fine');
  const server = issueServerCertificate(ca, { publicKey: generateKeyPair('p256').publicKey, commonName: 'c', dnsNames: ['localhost'], ipAddresses: [], validity: validityFor(now, DAY) });
  t.equal(codeOf(() => parseClientIdentity(server.der)), 'PKI_IDENTITY_INVALID', 'a server certificate is no client');
});

t.test('hostile certificates into the parsing side: only coded BulwarkErrors', async (t) => {
  const rnd = prng(SEED ^ 0x9c1);
  const stats = newStats();
  const person = issuePersonCertificate(ca, { name: 'alice', role: 'admin', publicKey: generateKeyPair('p256').publicKey, validity: validityFor(now, DAY) }).der;
  const node = issueNodeCertificate(ca, { nodeId: 'host-1', akName: AK_NAME, spki: spkiOf(generateKeyPair('p256').publicKey), validity: validityFor(now, DAY) }).der;
  const caPublic = new X509Certificate(ca.certificate).publicKey;
  const forged: string[] = [];
  const verifies = (der: Uint8Array): boolean => {
    try {
      return new X509Certificate(der).verify(caPublic);
    } catch {
      return false;
    }
  };
  for (const [name, seed] of [
    ['person', person],
    ['node', node],
    ['ca', ca.certificate],
  ] as const) {
    for (const [label, input] of mutations(seed, rnd, { flipSamples: 600, randomCount: 80, derLengths: true, sizes: [0xffff, 0x0201] })) {
      probe(stats, `${name}.der`, label, input, () => {
        decodeCertificate(input);
      });
      probe(stats, `${name}.der identity`, label, input, () => {
        const id = parseClientIdentity(input);
        // A changed certificate may still decode into an identity (no signature is checked
        // here), but then the signature check TLS makes before must fail.
        if (toHex(input) !== toHex(seed) && verifies(input)) forged.push(`${name} [${label}] → ${JSON.stringify(id)}`);
      });
      probe(stats, `${name}.der as CA`, label, input, () => {
        openCertificateAuthority(input, ca.key, now);
      });
      probe(stats, `${name}.pem`, label, input, () => {
        const pem = certificateToPem(input);
        decodeCertificate(certificateFromPem(pem.slice(0, Math.floor(rnd() * pem.length))));
      });
    }
  }
  const spki = spkiOf(generateKeyPair('p256').publicKey);
  for (const [label, input] of mutations(spki, rnd, { flipSamples: 200, randomCount: 40, derLengths: true, sizes: [0xffff] })) {
    probe(stats, 'spki', label, input, () => {
      publicKeyFromSpki(input);
    });
  }
  report(t, stats, 5000);
  t.same(forged.slice(0, 5), [], 'no changed certificate that names an identity verifies under the CA');
});
