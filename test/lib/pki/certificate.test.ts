/**
 * Certificates made by lib/pki, judged by two independent implementations: the openssl
 * command line (`verify -x509_strict` with the TLS purposes, `x509 -text` for the
 * extensions) and node:crypto's X509Certificate (parse, checkIssued, verify). P-256 and
 * Ed25519 CAs; the decoder reads back every field the builder wrote.
 */
import t from 'tap';
import { X509Certificate, generateKeyPairSync } from 'node:crypto';
import { toHex } from '../../../lib/bytes.js';
import { BulwarkError, type ErrorCode } from '../../../lib/errors.js';
import {
  PKI_OID,
  certificateFromPem,
  createCertificate,
  createCertificateAuthority,
  decodeCertificate,
  encodeIpAddress,
  formatIpAddress,
  generateKeyPair,
  issueNodeCertificate,
  issuePersonCertificate,
  issueServerCertificate,
  keyIdentifier,
  newSerial,
  openCertificateAuthority,
  publicKeyFromSpki,
  spkiOf,
  validityFor,
  type CertificateAuthority,
  type KeyKind,
} from '../../../lib/pki/index.js';
import { openssl, opensslVerify, pemDir } from './openssl.js';

const DAY = 24 * 60 * 60 * 1000;
const AK_NAME = Uint8Array.from({ length: 34 }, (_, i) => (i === 0 ? 0x00 : i === 1 ? 0x0b : i));

function codeOf(fn: () => unknown): ErrorCode | 'returned' | 'not-a-BulwarkError' {
  try {
    fn();
    return 'returned';
  } catch (err) {
    return err instanceof BulwarkError ? err.code : 'not-a-BulwarkError';
  }
}

function makeCa(kind: KeyKind, now = new Date()): CertificateAuthority {
  return createCertificateAuthority({ key: generateKeyPair(kind).privateKey, commonName: `Test CA ${kind}`, validity: validityFor(now, 3650 * DAY) });
}

for (const kind of ['p256', 'ed25519'] as const) {
  t.test(`${kind} CA: openssl and node:crypto accept the CA, server, person and node certificates`, async (t) => {
    const files = await pemDir();
    t.teardown(files.remove);
    const now = new Date();
    const ca = makeCa(kind, now);
    const server = issueServerCertificate(ca, {
      publicKey: generateKeyPair('p256').publicKey,
      commonName: 'controller.example',
      dnsNames: ['controller.example', 'localhost'],
      ipAddresses: ['127.0.0.1', '::1', 'fd00::10'],
      validity: validityFor(now, 365 * DAY),
    });
    const person = issuePersonCertificate(ca, { name: 'alice', role: 'operator', publicKey: generateKeyPair('ed25519').publicKey, validity: validityFor(now, DAY) });
    const node = issueNodeCertificate(ca, { nodeId: 'host-1', akName: AK_NAME, spki: spkiOf(generateKeyPair('p256').publicKey), validity: validityFor(now, DAY) });

    const caFile = await files.write('ca.pem', ca.pem);
    const serverFile = await files.write('server.pem', server.pem);
    const personFile = await files.write('person.pem', person.pem);
    const nodeFile = await files.write('node.pem', node.pem);

    for (const [file, purpose] of [
      [serverFile, 'sslserver'],
      [personFile, 'sslclient'],
      [nodeFile, 'sslclient'],
    ] as const) {
      const r = await opensslVerify(caFile, file, purpose);
      t.equal(r.code, 0, `openssl verify -x509_strict -purpose ${purpose} ${file}: ${r.stdout.trim()} ${r.stderr.trim()}`);
    }
    const wrongPurpose = await opensslVerify(caFile, personFile, 'sslserver');
    t.not(wrongPurpose.code, 0, 'a person certificate is not a TLS server certificate');
    const selfCheck = await opensslVerify(caFile, caFile);
    t.equal(selfCheck.code, 0, 'the CA verifies as its own root');

    const caText = (await openssl(['x509', '-noout', '-text', '-in', caFile])).stdout;
    t.match(caText, /X509v3 Basic Constraints: critical\s+CA:TRUE, pathlen:0/);
    t.match(caText, /X509v3 Key Usage: critical\s+Digital Signature, Certificate Sign, CRL Sign/);
    t.match(caText, kind === 'ed25519' ? /Signature Algorithm: ED25519/ : /Signature Algorithm: ecdsa-with-SHA256/);
    const serverText = (await openssl(['x509', '-noout', '-text', '-in', serverFile])).stdout;
    t.match(serverText, /X509v3 Extended Key Usage:\s+TLS Web Server Authentication/);
    t.match(serverText, /DNS:controller\.example, DNS:localhost, IP Address:127\.0\.0\.1, IP Address:0:0:0:0:0:0:0:1, IP Address:FD00:0:0:0:0:0:0:10/);
    t.match(serverText, /X509v3 Basic Constraints: critical\s+CA:FALSE/);
    const personText = (await openssl(['x509', '-noout', '-text', '-in', personFile])).stdout;
    t.match(personText, /Subject: O = Bulwark, OU = operator, CN = alice/);
    t.match(personText, /X509v3 Extended Key Usage:\s+TLS Web Client Authentication/);
    t.match(personText, /URI:bulwark:user:alice, URI:bulwark:role:operator/);
    t.match(personText, /X509v3 Authority Key Identifier:\s+[0-9A-F:]+/);
    const nodeText = (await openssl(['x509', '-noout', '-text', '-in', nodeFile])).stdout;
    t.match(nodeText, new RegExp(`URI:bulwark:node:host-1, URI:bulwark:ak:${toHex(AK_NAME)}`, 'i'));
    t.match(nodeText, /Subject: O = Bulwark, OU = node, CN = host-1/);

    const caX509 = new X509Certificate(ca.certificate);
    for (const issued of [server, person, node]) {
      const x = new X509Certificate(issued.der);
      t.ok(x.checkIssued(caX509), 'checkIssued');
      t.ok(x.verify(caX509.publicKey), 'verify with the CA key');
      t.equal(x.serialNumber.toLowerCase(), issued.serial, 'serial as X509Certificate prints it');
      t.equal(x.ca, false);
    }
    t.equal(caX509.ca, true);
    t.ok(caX509.verify(caX509.publicKey), 'self-signed');
    t.equal(new X509Certificate(server.der).checkHost('controller.example'), 'controller.example');
    t.equal(new X509Certificate(server.der).checkIP('::1'), '::1');
  });
}

t.test('a P-384 CA signs with ECDSA SHA-384', async (t) => {
  const files = await pemDir();
  t.teardown(files.remove);
  const now = new Date();
  const ca = createCertificateAuthority({ key: generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey, commonName: 'P-384 CA', validity: validityFor(now, DAY) });
  const leaf = issuePersonCertificate(ca, { name: 'p384', role: 'viewer', publicKey: generateKeyPairSync('ec', { namedCurve: 'P-384' }).publicKey, validity: validityFor(now, DAY) });
  const caFile = await files.write('ca.pem', ca.pem);
  const leafFile = await files.write('leaf.pem', leaf.pem);
  const r = await opensslVerify(caFile, leafFile, 'sslclient');
  t.equal(r.code, 0, `${r.stdout.trim()} ${r.stderr.trim()}`);
  t.match((await openssl(['x509', '-noout', '-text', '-in', leafFile])).stdout, /Signature Algorithm: ecdsa-with-SHA384/);
  t.equal(codeOf(() => publicKeyFromSpki(spkiOf(generateKeyPairSync('ec', { namedCurve: 'secp256k1' }).publicKey))), 'KEY_INVALID', 'other curves are refused');
  t.equal(codeOf(() => publicKeyFromSpki(spkiOf(generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey))), 'KEY_INVALID', 'RSA keys are refused');
});

t.test('the decoder reads back what the builder wrote', async (t) => {
  const now = new Date(Date.UTC(2026, 0, 2, 3, 4, 5, 678));
  const ca = makeCa('p256', now);
  const subjectKey = generateKeyPair('p256').publicKey;
  const serial = Uint8Array.of(0x80, 0x01);
  const extra = { oid: '1.3.6.1.4.1.99999.1', critical: false, value: Uint8Array.of(0x05, 0x00) };
  const issued = createCertificate({
    subject: { organization: 'Bulwark', organizationalUnit: 'ops', commonName: 'ünïcode ok' },
    issuer: { der: ca.subjectDer },
    serial,
    notBefore: now,
    notAfter: new Date(now.getTime() + DAY),
    publicKey: subjectKey,
    signingKey: ca.key,
    isCa: false,
    keyUsage: ['digitalSignature', 'keyAgreement'],
    extKeyUsage: ['serverAuth', 'clientAuth'],
    subjectAltNames: [
      { kind: 'dns', value: 'a.example' },
      { kind: 'ip', value: '10.1.2.3' },
      { kind: 'uri', value: 'https://a.example/x' },
    ],
    authorityKeyId: ca.keyId,
    extraExtensions: [extra],
  });
  t.equal(issued.serial, '8001');
  t.equal(toHex(certificateFromPem(issued.pem)), toHex(issued.der), 'PEM carries the DER');
  const d = decodeCertificate(issued.der);
  t.equal(d.serial, '8001', 'a serial with its high bit set keeps its value');
  t.equal(d.notBefore, Date.UTC(2026, 0, 2, 3, 4, 5), 'times are whole seconds');
  t.equal(d.notAfter, Date.UTC(2026, 0, 3, 3, 4, 5));
  t.same(
    d.subject.map((a) => [a.oid, a.value]),
    [
      [PKI_OID.organizationName, 'Bulwark'],
      [PKI_OID.organizationalUnitName, 'ops'],
      [PKI_OID.commonName, 'ünïcode ok'],
    ],
  );
  t.equal(toHex(d.issuerDer), toHex(ca.subjectDer), 'issuer bytes are the CA subject bytes');
  t.equal(toHex(d.spki), toHex(spkiOf(subjectKey)));
  t.equal(d.isCa, false);
  t.same(d.keyUsage, ['digitalSignature', 'keyAgreement']);
  t.same(d.extKeyUsage, [PKI_OID.serverAuth, PKI_OID.clientAuth]);
  t.same(d.subjectAltNames, [
    { kind: 'dns', value: 'a.example' },
    { kind: 'ip', value: '10.1.2.3' },
    { kind: 'uri', value: 'https://a.example/x' },
  ]);
  t.equal(toHex(d.subjectKeyId ?? new Uint8Array()), toHex(keyIdentifier(spkiOf(subjectKey))));
  t.equal(toHex(d.authorityKeyId ?? new Uint8Array()), toHex(ca.keyId));
  t.same(
    d.extensions.map((e) => [e.oid, e.critical]),
    [
      [PKI_OID.basicConstraints, true],
      [PKI_OID.keyUsage, true],
      [PKI_OID.extKeyUsage, false],
      [PKI_OID.subjectAltName, false],
      [PKI_OID.subjectKeyIdentifier, false],
      [PKI_OID.authorityKeyIdentifier, false],
      [extra.oid, false],
    ],
  );
  const caDecoded = decodeCertificate(ca.certificate);
  t.equal(caDecoded.isCa, true);
  t.equal(caDecoded.pathLen, 0);
  t.same(caDecoded.keyUsage, ['digitalSignature', 'keyCertSign', 'cRLSign']);
  t.ok(new X509Certificate(issued.der).verify(new X509Certificate(ca.certificate).publicKey));
});

t.test('IP addresses encode as RFC 5280 iPAddress octets', async (t) => {
  t.equal(toHex(encodeIpAddress('192.0.2.1')), 'c0000201');
  t.equal(toHex(encodeIpAddress('::1')), '00000000000000000000000000000001');
  t.equal(toHex(encodeIpAddress('2001:db8::8:800:200c:417a')), '20010db80000000000080800200c417a');
  t.equal(toHex(encodeIpAddress('fe80::')), 'fe800000000000000000000000000000');
  t.equal(formatIpAddress(encodeIpAddress('2001:DB8::1')), '2001:db8:0:0:0:0:0:1');
  for (const bad of ['256.0.0.1', '1.2.3', '1::2::3', '1:2:3:4:5:6:7:8:9', '1:2:3:4:5:6:7', 'g::1', '', '::1:2:3:4:5:6:7:8']) {
    t.equal(codeOf(() => encodeIpAddress(bad)), 'PKI_TEMPLATE_INVALID', `"${bad}"`);
  }
});

t.test('templates that cannot be written faithfully are refused with a code', async (t) => {
  const now = new Date();
  const ca = makeCa('p256', now);
  const key = generateKeyPair('p256').publicKey;
  const base = {
    subject: { commonName: 'x' },
    issuer: { der: ca.subjectDer },
    serial: newSerial(),
    notBefore: now,
    notAfter: new Date(now.getTime() + DAY),
    publicKey: key,
    signingKey: ca.key,
    isCa: false,
    keyUsage: ['digitalSignature'] as const,
  };
  t.equal(codeOf(() => createCertificate(base)), 'returned');
  t.equal(codeOf(() => createCertificate({ ...base, serial: new Uint8Array(0) })), 'PKI_TEMPLATE_INVALID', 'empty serial');
  t.equal(codeOf(() => createCertificate({ ...base, serial: new Uint8Array(3) })), 'PKI_TEMPLATE_INVALID', 'zero serial');
  t.equal(codeOf(() => createCertificate({ ...base, serial: new Uint8Array(21).fill(1) })), 'PKI_TEMPLATE_INVALID', '21-octet serial');
  t.equal(codeOf(() => createCertificate({ ...base, serial: new Uint8Array(20).fill(0x80) })), 'PKI_TEMPLATE_INVALID', 'serial needing a 21st sign octet');
  t.equal(codeOf(() => createCertificate({ ...base, notAfter: now })), 'PKI_TEMPLATE_INVALID', 'empty validity');
  t.equal(codeOf(() => createCertificate({ ...base, keyUsage: [] })), 'PKI_TEMPLATE_INVALID', 'no key usage');
  t.equal(codeOf(() => createCertificate({ ...base, keyUsage: ['keyCertSign'] })), 'PKI_TEMPLATE_INVALID', 'keyCertSign on a leaf');
  t.equal(codeOf(() => createCertificate({ ...base, isCa: true })), 'PKI_TEMPLATE_INVALID', 'a CA without keyCertSign');
  t.equal(codeOf(() => createCertificate({ ...base, pathLen: 1 })), 'PKI_TEMPLATE_INVALID', 'pathLen on a leaf');
  t.equal(codeOf(() => createCertificate({ ...base, subject: { commonName: 'a\nb' } })), 'PKI_TEMPLATE_INVALID', 'control character in a name');
  t.equal(codeOf(() => createCertificate({ ...base, subject: { commonName: 'x'.repeat(65) } })), 'PKI_TEMPLATE_INVALID', 'name over ub-common-name');
  t.equal(codeOf(() => createCertificate({ ...base, subject: {} })), 'PKI_TEMPLATE_INVALID', 'empty subject without SANs');
  t.equal(codeOf(() => createCertificate({ ...base, subjectAltNames: [{ kind: 'dns', value: 'bad_name' }] })), 'PKI_TEMPLATE_INVALID');
  t.equal(codeOf(() => createCertificate({ ...base, subjectAltNames: [{ kind: 'uri', value: 'no scheme' }] })), 'PKI_TEMPLATE_INVALID');
  t.equal(
    codeOf(() => createCertificate({ ...base, extraExtensions: [{ oid: PKI_OID.keyUsage, critical: false, value: new Uint8Array(2) }] })),
    'PKI_TEMPLATE_INVALID',
    'an extension twice',
  );
  t.equal(codeOf(() => createCertificate({ ...base, signingKey: ca.key, publicKey: generateKeyPair('p256').privateKey })), 'KEY_INVALID', 'a private key as subject key');
  t.equal(codeOf(() => createCertificate({ ...base, signingKey: key })), 'KEY_INVALID', 'a public key as signing key');
  t.equal(codeOf(() => publicKeyFromSpki(Uint8Array.of(0x30, 0x00))), 'KEY_INVALID');
  t.equal(codeOf(() => issuePersonCertificate(ca, { name: 'bad name', role: 'admin', publicKey: key, validity: validityFor(now, DAY) })), 'PKI_TEMPLATE_INVALID');
  t.equal(codeOf(() => issueNodeCertificate(ca, { nodeId: 'host-1', akName: Uint8Array.of(1, 2), spki: spkiOf(key), validity: validityFor(now, DAY) })), 'PKI_TEMPLATE_INVALID', 'short AK name');
  t.equal(codeOf(() => validityFor(now, 0)), 'PKI_TEMPLATE_INVALID');
});

t.test('a leaf never outlives its CA; the SPKI flow keeps the node key', async (t) => {
  const now = new Date();
  const ca = createCertificateAuthority({ key: generateKeyPair('p256').privateKey, commonName: 'short CA', validity: validityFor(now, DAY) });
  const nodeKey = generateKeyPair('p256');
  const node = issueNodeCertificate(ca, { nodeId: 'n'.repeat(100), akName: AK_NAME, spki: spkiOf(nodeKey.publicKey), validity: validityFor(now, 30 * DAY) });
  const d = decodeCertificate(node.der);
  t.equal(d.notAfter, ca.notAfter);
  t.equal(toHex(d.spki), toHex(spkiOf(nodeKey.publicKey)), 'the certificate carries the key the node generated');
  t.notOk(d.subject.some((a) => a.oid === PKI_OID.commonName), 'a node id over 64 characters stays out of the CN');
});

t.test('openCertificateAuthority refuses a CA it cannot use', async (t) => {
  const now = new Date();
  const ca = makeCa('p256', now);
  t.equal(codeOf(() => openCertificateAuthority(ca.certificate, ca.key, now)), 'returned');
  t.equal(codeOf(() => openCertificateAuthority(ca.certificate, generateKeyPair('p256').privateKey, now)), 'PKI_KEY_MISMATCH');
  t.equal(codeOf(() => openCertificateAuthority(ca.certificate, ca.key, new Date(ca.notAfter + 1000))), 'PKI_CA_INVALID', 'expired');
  const leafKey = generateKeyPair('p256');
  const leaf = issuePersonCertificate(ca, { name: 'bob', role: 'viewer', publicKey: leafKey.publicKey, validity: validityFor(now, DAY) });
  t.equal(codeOf(() => openCertificateAuthority(leaf.der, leafKey.privateKey, now)), 'PKI_CA_INVALID', 'not a CA');
  t.equal(codeOf(() => openCertificateAuthority(Uint8Array.of(1, 2, 3), ca.key, now)), 'CERT_MALFORMED');
});
