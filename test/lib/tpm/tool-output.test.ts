import t from 'tap';
import { X509Certificate, createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { toHex } from '../../../lib/bytes.js';
import { BulwarkError } from '../../../lib/errors.js';
import { computeName, decodeTpm2bPublic, tpmtPublicToKeyObject } from '../../../lib/tpm/public.js';
import { parseHandleList, parsePcrReadOutput, summarizeToolStderr, trimNvCertificate } from '../../../lib/tpm/tool-output.js';
import { HASH_ALGS, TPM_ALG, type PcrBanks } from '../../../lib/tpm/types.js';

function fixtureDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 8; i++) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'test', 'fixtures', 'tpm2-tools'))) return join(dir, 'test', 'fixtures', 'tpm2-tools');
    dir = dirname(dir);
  }
  throw new Error('test/fixtures/tpm2-tools not found');
}

const DIR = fixtureDir();
const names = readdirSync(DIR);
const text = (name: string): string => readFileSync(join(DIR, name), 'utf8');
const bin = (name: string): Uint8Array => new Uint8Array(readFileSync(join(DIR, name)));
const json = (name: string): unknown => JSON.parse(text(name));

function banksToPlain(banks: PcrBanks): Record<string, Record<string, string>> {
  const out: Record<string, Record<string, string>> = {};
  for (const [alg, values] of banks) {
    const name = HASH_ALGS.get(alg)?.name ?? String(alg);
    out[name] = {};
    for (const [index, value] of values) out[name][String(index)] = toHex(value);
  }
  return out;
}

t.test('pcrread fixtures parse to the independently computed values', async (t) => {
  const fixtures = names.filter((n) => n.startsWith('pcrread-') && n.endsWith('.txt'));
  t.ok(fixtures.length >= 3);
  for (const name of fixtures) {
    const expected = json(name.replace(/\.txt$/, '.json'));
    t.same({ banks: banksToPlain(parsePcrReadOutput(text(name))) }, expected, name);
  }
});

t.test('pcrread: an unallocated bank is an empty map, not a missing one', async (t) => {
  const banks = parsePcrReadOutput(text('pcrread-all-banks-sha256-only-tpm.txt'));
  t.equal(banks.get(TPM_ALG.SHA1)?.size, 0);
  t.equal(banks.get(TPM_ALG.SHA256)?.size, 24);
  t.equal(banks.get(TPM_ALG.SHA512)?.size, 0);
});

t.test('pcrread: every truncation parses consistently or throws TPM_TOOL_OUTPUT_MALFORMED', async (t) => {
  const full = text('pcrread-three-banks.txt');
  const complete = parsePcrReadOutput(full);
  let errors = 0;
  for (let cut = 0; cut < full.length; cut++) {
    try {
      const banks = parsePcrReadOutput(full.slice(0, cut));
      // A cut at a line boundary gives a prefix of the real values, never a changed value.
      for (const [alg, values] of banks) for (const [i, v] of values) t.equal(toHex(v), toHex(complete.get(alg)?.get(i) ?? new Uint8Array()), `cut ${cut}`);
    } catch (err) {
      errors++;
      if (!(err instanceof BulwarkError) || err.code !== 'TPM_TOOL_OUTPUT_MALFORMED') t.fail(`cut ${cut}: ${String(err)}`);
    }
  }
  t.ok(errors > full.length / 2, `most truncations are refused (${errors})`);
});

t.test('pcrread: hostile or odd lines are refused', async (t) => {
  const ok = '  sha256:\n    0 : 0x' + '00'.repeat(32) + '\n';
  t.equal(parsePcrReadOutput(ok).get(TPM_ALG.SHA256)?.size, 1);
  const bad: Record<string, string> = {
    'value before a bank': '    0 : 0x' + '00'.repeat(32),
    'unknown bank': '  sm3_256:\n',
    'bank twice': '  sha256:\n  sha256:\n',
    'PCR twice': ok + '    0 : 0x' + '00'.repeat(32),
    'PCR 24': '  sha256:\n    24: 0x' + '00'.repeat(32),
    'short value': '  sha256:\n    0 : 0x' + '00'.repeat(31),
    'long value': '  sha256:\n    0 : 0x' + '00'.repeat(33),
    'sha1-sized value in sha256': '  sha256:\n    0 : 0x' + '00'.repeat(20),
    'non-hex value': '  sha256:\n    0 : 0x' + 'zz'.repeat(32),
    'trailing garbage': ok + 'ERROR: something',
    'empty line in the middle': '  sha256:\n\n    0 : 0x' + '00'.repeat(32),
    'huge input': ' '.repeat(300 * 1024),
  };
  for (const [what, input] of Object.entries(bad)) t.throws(() => parsePcrReadOutput(input), { code: 'TPM_TOOL_OUTPUT_MALFORMED' }, what);
});

t.test('handle list fixtures', async (t) => {
  const fixtures = names.filter((n) => n.startsWith('getcap-') && n.endsWith('.txt'));
  t.ok(fixtures.length >= 4);
  for (const name of fixtures) {
    const expected = json(name.replace(/\.txt$/, '.json'));
    const handles = parseHandleList(text(name)).map((h) => `0x${h.toString(16).padStart(8, '0')}`);
    t.same({ handles }, expected, name);
  }
});

t.test('handle list: anything but "- 0xHEX" lines is refused', async (t) => {
  for (const [what, input] of Object.entries({
    'no dash': '0x81010001',
    'decimal': '- 2164326401',
    'nine digits': '- 0x181010001',
    'duplicate': '- 0x81010001\n- 0x81010001',
    'yaml map': 'handles:\n- 0x81010001',
    'leading space': ' - 0x81010001',
  })) {
    t.throws(() => parseHandleList(input), { code: 'TPM_TOOL_OUTPUT_MALFORMED' }, what);
  }
  t.same(parseHandleList(''), []);
  t.same(parseHandleList('- 0x81010001\r\n'), [0x81010001]);
});

t.test('readpublic fixtures: -o is a TPM2B_PUBLIC and -n the binary Name of its TPMT_PUBLIC', async (t) => {
  for (const name of names.filter((n) => n.startsWith('readpublic-') && n.endsWith('.json'))) {
    const base = name.replace(/\.json$/, '');
    const expected = json(name);
    const file = bin(`${base}.bin`);
    // The first two bytes are the TPM2B size: the rest of the file.
    t.equal((file[0] ?? 0) * 256 + (file[1] ?? 0), file.length - 2, `${base}: size prefix`);
    const pub = decodeTpm2bPublic(file);
    t.same({ type: pub.type, nameAlg: pub.nameAlg, objectAttributes: pub.objectAttributes, name: toHex(bin(`${base}.name.bin`)) }, expected, base);
    t.equal(toHex(computeName(pub)), toHex(bin(`${base}.name.bin`)), `${base}: Name = nameAlg || H(TPMT_PUBLIC)`);
  }
});

t.test('NV certificate fixtures: trimmed to the outer SEQUENCE, padding removed, key matches the EK', async (t) => {
  for (const name of names.filter((n) => n.startsWith('nvread-') && n.endsWith('.json'))) {
    const base = name.replace(/\.json$/, '');
    const expected = json(name);
    if (typeof expected !== 'object' || expected === null) throw new Error('bad fixture json');
    const data = bin(`${base}.der`);
    const ek = decodeTpm2bPublic(bin(String(Reflect.get(expected, 'matchesPublic'))));
    for (const padding of [new Uint8Array(0), new Uint8Array(24).fill(0xff), new Uint8Array(300).fill(0)]) {
      const padded = new Uint8Array(data.length + padding.length);
      padded.set(data);
      padded.set(padding, data.length);
      const der = trimNvCertificate(padded);
      t.equal(der.length, Reflect.get(expected, 'derLength'), `${base} + ${padding.length} padding bytes`);
      t.equal(createHash('sha256').update(der).digest('hex'), Reflect.get(expected, 'sha256'));
      const cert = new X509Certificate(der);
      t.equal(cert.publicKey.asymmetricKeyType, Reflect.get(expected, 'keyType'));
      t.ok(cert.publicKey.equals(tpmtPublicToKeyObject(ek)), `${base}: the certificate is for the EK read from the same TPM`);
    }
    for (let cut = 0; cut < data.length; cut += 7) t.throws(() => trimNvCertificate(data.subarray(0, cut)), { code: 'CERT_MALFORMED' }, `${base} cut at ${cut}`);
  }
});

t.test('NV certificate: malformed headers', async (t) => {
  for (const [what, bytes] of Object.entries({
    empty: [],
    'not a SEQUENCE': [0x31, 0x03, 1, 2, 3],
    indefinite: [0x30, 0x80, 0, 0],
    'five length octets': [0x30, 0x85, 0, 0, 0, 0, 1, 0],
    'truncated length octets': [0x30, 0x82, 0x01],
    'erased NV (0xff)': [0xff, 0xff, 0xff, 0xff],
  })) {
    t.throws(() => trimNvCertificate(Uint8Array.from(bytes)), { code: 'CERT_MALFORMED' }, what);
  }
  t.same([...trimNvCertificate(Uint8Array.of(0x30, 0x02, 5, 5, 0xff))], [0x30, 0x02, 5, 5]);
});

t.test('stderr fixtures summarize to the tool-level reason first', async (t) => {
  for (const name of names.filter((n) => n.startsWith('stderr-') && n.endsWith('.txt'))) {
    const expected = json(name.replace(/\.txt$/, '.json'));
    t.same({ summary: summarizeToolStderr(text(name)) }, expected, name);
  }
  t.equal(summarizeToolStderr('just a line\nlast words\n'), 'just a line; last words');
  const long = summarizeToolStderr(`ERROR: ${'x'.repeat(1000)}\u001b[31m`);
  t.ok(long.length <= 300 && long.endsWith('…'), 'capped');
  t.notMatch(summarizeToolStderr('ERROR: a\u001b[2Jb'), /\u001b/, 'no terminal escapes');
});
