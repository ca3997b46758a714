/**
 * Writes test/fixtures/ima/: IMA measurement lists in both formats built the kernel's way
 * from real files of this machine, with signatures made by `evmctl ima_sign`, each checked by
 * `evmctl ima_measurement` before it is saved, plus runtime policies, and NAME.json with what
 * a parse and a replay must give. Run: npx tsc -p . && node dist/test/lib/ima/make-ima-fixtures.js
 */
import { execa } from 'execa';
import { createHash, X509Certificate } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { toHex } from '../../../lib/bytes.js';
import { buildRuntimePolicy, computeImaKeyId, exportKeylimeRuntimePolicy, formatRuntimePolicy, parseRuntimePolicy } from '../../../lib/ima/index.js';
import { evmctlPcrFile, ImaLogBuilder, REAL_FILES } from '../../helpers/ima-builder.js';
import { allTemplatesLog, sha256 } from './ima-test-logs.js';

const OUT = fileURLToPath(new URL('../../../../test/fixtures/ima/', import.meta.url));

interface FixtureJson {
  file: string;
  format: 'ascii' | 'binary';
  templateHashAlgorithm: 'sha1' | 'sha256';
  entries?: number;
  paths?: string[];
  pcr10: { sha256: string; sha1: string };
  pcr10Sha1Padded: { sha256: string };
  replay: 'ok' | 'IMA_REPLAY_MISMATCH';
  policy?: string;
  findings?: [string, string][];
  error?: { code: string; entry: number; offset: number };
  evmctl?: 'ok';
}

function pcrs(b: ImaLogBuilder, count = b.entries.length): Pick<FixtureJson, 'pcr10' | 'pcr10Sha1Padded'> {
  return {
    pcr10: { sha256: toHex(b.pcr10('sha256', 'per-bank', count)), sha1: toHex(b.pcr10('sha1', 'per-bank', count)) },
    pcr10Sha1Padded: { sha256: toHex(b.pcr10('sha256', 'sha1-padded', count)) },
  };
}

async function evmctlAccepts(dir: string, log: Buffer, b: ImaLogBuilder, extra: readonly string[] = []): Promise<void> {
  const logPath = join(dir, 'check.bin');
  await writeFile(logPath, log);
  for (const [bank, rule] of [
    ['sha256', 'per-bank'],
    ['sha256', 'sha1-padded'],
    ['sha1', 'per-bank'],
  ] as const) {
    const pcrPath = join(dir, `pcrs-${bank}`);
    await writeFile(pcrPath, evmctlPcrFile(b.pcr10(bank, rule)));
    const r = await execa('evmctl', ['ima_measurement', '--ignore-violations', ...extra, '--pcrs', `${bank},${pcrPath}`, logPath], { reject: false, timeout: 20_000 });
    if (r.exitCode !== 0) throw new Error(`evmctl refuses the ${bank} ${rule} replay: ${r.stdout}${r.stderr}`);
  }
}

async function save(name: string, data: Buffer | string, json?: FixtureJson): Promise<void> {
  await writeFile(join(OUT, name), data);
  if (json !== undefined) await writeFile(join(OUT, `${name.replace(/\.(log|bin)$/, '')}.json`), `${JSON.stringify(json, null, 2)}\n`);
}

async function main(): Promise<void> {
  await mkdir(join(OUT, 'policies'), { recursive: true });
  const tmp = await mkdtemp(join(tmpdir(), 'bulwark-ima-fixtures-'));
  try {
    // 1. A Debian host: boot_aggregate, real executables and libraries, kernel_version, a violation.
    const debian = new ImaLogBuilder();
    debian.bootAggregate(sha256(Buffer.from('PCRs 0-9 of a test boot')));
    for (const p of REAL_FILES) debian.realFile(p);
    debian.buffer('kernel_version', Buffer.from('6.1.0-18-amd64'));
    debian.violation('/var/log/syslog');
    const paths = debian.entries.map((e) => e.path);
    const policy = buildRuntimePolicy(
      debian.entries.filter((e) => e.template === 'ima-ng' && !e.violation && e.path !== 'boot_aggregate').map((e) => ({ path: e.path, digest: { algorithm: 'sha256', value: e.digest } })),
      { generatedAt: '2025-06-01T00:00:00.000Z', generator: 'make-ima-fixtures', release: 7, excludes: ['boot_aggregate$'] },
    );
    const withBuf = { ...policy, imaBuf: new Map([['kernel_version', [{ algorithm: 'sha256', value: sha256(Buffer.from('6.1.0-18-amd64')) }]]]) };
    await writeFile(join(OUT, 'policies', 'debian.keylime.json'), `${JSON.stringify(exportKeylimeRuntimePolicy(withBuf), null, 2)}\n`);
    await writeFile(join(OUT, 'policies', 'debian.bulwark.json'), `${JSON.stringify(formatRuntimePolicy(withBuf), null, 2)}\n`);
    const debianCommon = { templateHashAlgorithm: 'sha1' as const, entries: debian.entries.length, paths, ...pcrs(debian), replay: 'ok' as const, findings: [['IMA_VIOLATION', '/var/log/syslog']] as [string, string][] };
    await evmctlAccepts(tmp, debian.binary(), debian);
    await save('debian-ascii.log', debian.ascii(), { file: 'debian-ascii.log', format: 'ascii', ...debianCommon, policy: 'policies/debian.keylime.json' });
    await save('debian-binary.bin', debian.binary(), { file: 'debian-binary.bin', format: 'binary', ...debianCommon, policy: 'policies/debian.bulwark.json', evmctl: 'ok' });

    // 2. Tampered copies of it.
    const lines = debian.entries.map((e) => debian.asciiLine(e));
    [lines[3], lines[4]] = [lines[4] ?? '', lines[3] ?? ''];
    await save('debian-reordered.log', lines.join(''), { file: 'debian-reordered.log', format: 'ascii', templateHashAlgorithm: 'sha1', entries: debian.entries.length, ...pcrs(debian), replay: 'IMA_REPLAY_MISMATCH' });
    const bin = debian.binary();
    const cutEntry = 5;
    const cutOffset = debian.entries.slice(0, cutEntry).reduce((n, e) => n + debian.binaryRecord(e).length, 0);
    await save('debian-truncated.bin', bin.subarray(0, cutOffset + 30), {
      file: 'debian-truncated.bin',
      format: 'binary',
      templateHashAlgorithm: 'sha1',
      ...pcrs(debian),
      replay: 'IMA_REPLAY_MISMATCH',
      error: { code: 'IMA_LOG_TRUNCATED', entry: cutEntry, offset: cutOffset },
    });
    const bad = debian.entries.map((e) => debian.asciiLine(e));
    bad[2] = (bad[2] ?? '').replace('sha256:', 'sha256:zz');
    const badOffset = bad.slice(0, 2).reduce((n, l) => n + Buffer.byteLength(l), 0);
    await save('debian-malformed.log', bad.join(''), {
      file: 'debian-malformed.log',
      format: 'ascii',
      templateHashAlgorithm: 'sha1',
      ...pcrs(debian),
      replay: 'IMA_REPLAY_MISMATCH',
      error: { code: 'IMA_LOG_MALFORMED', entry: 2, offset: badOffset },
    });

    // 3. ima-sig with signatures made by evmctl ima_sign (RSA-2048, sha256); one signature then damaged.
    const key = join(tmp, 'key.pem');
    const certPem = join(tmp, 'cert.pem');
    await execa('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-keyout', key, '-out', certPem, '-days', '3650', '-nodes', '-subj', '/CN=bulwark IMA fixture signer', '-addext', 'subjectKeyIdentifier=hash'], { timeout: 30_000 });
    await execa('openssl', ['x509', '-in', certPem, '-outform', 'der', '-out', join(tmp, 'cert.der')], { timeout: 10_000 });
    const cert = new X509Certificate(await readFile(certPem));
    const signed = new ImaLogBuilder();
    signed.bootAggregate(sha256(Buffer.from('boot')));
    for (const p of ['/usr/bin/ls', '/usr/bin/cat', '/usr/bin/grep', '/usr/bin/sed']) {
      const copy = join(tmp, p.replaceAll('/', '_'));
      await copyFile(p, copy);
      await execa('evmctl', ['ima_sign', '--sigfile', '--key', key, '-a', 'sha256', copy], { timeout: 20_000 });
      let sig = await readFile(`${copy}.sig`);
      if (p === '/usr/bin/sed') {
        sig = Buffer.from(sig);
        sig[sig.length - 1] = (sig[sig.length - 1] ?? 0) ^ 0x01; // damaged: must not verify
      }
      signed.file(p, { digest: sha256(await readFile(copy)), template: 'ima-sig', signature: sig });
    }
    signed.realFile('/usr/bin/tar', { template: 'ima-sig' }); // unsigned: the digest list decides
    await evmctlAccepts(tmp, signed.binary(), signed);
    const sigPolicy = parseRuntimePolicy({
      ...formatRuntimePolicy(buildRuntimePolicy([], { generatedAt: '2025-06-01T00:00:00.000Z', generator: 'make-ima-fixtures', release: 1, excludes: ['boot_aggregate$'] })),
      verificationKeys: [{ keyId: computeImaKeyId(cert.publicKey).toString(16).padStart(8, '0'), publicKey: cert.publicKey.export({ format: 'pem', type: 'spki' }).toString() }],
    });
    await writeFile(join(OUT, 'policies', 'ima-sig.bulwark.json'), `${JSON.stringify(formatRuntimePolicy(sigPolicy), null, 2)}\n`);
    await writeFile(join(OUT, 'ima-sig-evmctl.cert.pem'), await readFile(certPem));
    await save('ima-sig-evmctl.bin', signed.binary(), {
      file: 'ima-sig-evmctl.bin',
      format: 'binary',
      templateHashAlgorithm: 'sha1',
      entries: signed.entries.length,
      paths: signed.entries.map((e) => e.path),
      ...pcrs(signed),
      replay: 'ok',
      policy: 'policies/ima-sig.bulwark.json',
      findings: [
        ['IMA_SIGNATURE_INVALID', '/usr/bin/sed'],
        ['IMA_DIGEST_NOT_ALLOWED', '/usr/bin/tar'],
      ],
      evmctl: 'ok',
    });

    // 4. Every template in both formats, and the per-bank SHA-256 list of Linux 6.10+.
    const all = allTemplatesLog();
    const allCommon = { templateHashAlgorithm: 'sha1' as const, entries: all.entries.length, paths: all.entries.map((e) => e.path.replaceAll(' ', '_')), ...pcrs(all), replay: 'ok' as const };
    await save('all-templates-ascii.log', all.ascii(), { file: 'all-templates-ascii.log', format: 'ascii', ...allCommon });
    await save('all-templates-binary.bin', all.binary(), { file: 'all-templates-binary.bin', format: 'binary', ...allCommon });
    const perBank = new ImaLogBuilder({ templateHashAlgorithm: 'sha256' });
    perBank.bootAggregate(sha256(Buffer.from('agg')));
    for (const p of REAL_FILES.slice(0, 5)) perBank.realFile(p);
    perBank.violation('/tmp/x');
    await save('per-bank-sha256.bin', perBank.binary(), {
      file: 'per-bank-sha256.bin',
      format: 'binary',
      templateHashAlgorithm: 'sha256',
      entries: perBank.entries.length,
      paths: perBank.entries.map((e) => e.path),
      ...pcrs(perBank),
      replay: 'ok',
    });
    process.stdout.write(`wrote ${OUT} (template hash of /usr/bin/ls: ${createHash('sha256').update(await readFile('/usr/bin/ls')).digest('hex')})\n`);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

await main();
