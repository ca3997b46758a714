/**
 * Shared IMA test material: a list with every template Bulwark decodes, built from real
 * files of this machine, an RSA signing key, and helpers to compare parsed entries. Test code.
 */
import { createHash, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Test } from 'tap';
import { toHex } from '../../../lib/bytes.js';
import { BulwarkError } from '../../../lib/errors.js';
import { computeImaKeyId, initialImaReplayState, parseImaAscii, parseImaBinary, replayImaEntries } from '../../../lib/ima/index.js';
import type { ImaEntry, VerifiedImaEntries } from '../../../lib/ima/index.js';
import { TPM_ALG } from '../../../lib/tpm/types.js';
import type { Finding } from '../../../lib/verdict.js';
import { softwareQuote } from '../eventlog/eventlog-helpers.js';
import { ImaLogBuilder, REAL_FILES, signImaDigest, type BuiltEntry } from '../../helpers/ima-builder.js';

export interface TestSigner {
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  readonly keyId: number;
}

let signer: TestSigner | undefined;

/** One RSA-2048 key per test process (key generation is the slow part). */
export function testSigner(): TestSigner {
  if (signer === undefined) {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    signer = { privateKey, publicKey, keyId: computeImaKeyId(publicKey) };
  }
  return signer;
}

export function sha256(data: Uint8Array): Buffer {
  return createHash('sha256').update(data).digest();
}

/**
 * boot_aggregate, real executables and libraries (ima-ng), a signed and an unsigned ima-sig
 * entry, ima-buf (kernel_version), ima-modsig with and without an appended signature, the
 * old 'ima' template, a path with a space, and a violation.
 */
export function allTemplatesLog(options: { templateHashAlgorithm?: 'sha1' | 'sha256' } = {}): ImaLogBuilder {
  const b = new ImaLogBuilder(options);
  const s = testSigner();
  b.bootAggregate(sha256(Buffer.from('pcr 0-9')));
  for (const path of REAL_FILES.slice(0, 6)) b.realFile(path);
  const grep = sha256(readFileSync('/usr/bin/grep'));
  b.file('/usr/bin/grep', { digest: grep, template: 'ima-sig', signature: signImaDigest(s.privateKey, s.keyId, 'sha256', grep) });
  b.realFile('/usr/bin/sed', { template: 'ima-sig' });
  b.buffer('kernel_version', Buffer.from('6.1.0-18-amd64'));
  const module = Buffer.from('\x7fELF fake module bytes ~Module signature appended~\n');
  b.file('/usr/lib/modules/6.1.0-18-amd64/kernel/fs/fat/fat.ko', {
    digest: sha256(module),
    template: 'ima-modsig',
    modsig: { digest: sha256(module.subarray(0, 20)), signature: Buffer.from('3082010a02820101', 'hex') },
  });
  b.realFile('/usr/bin/tar', { template: 'ima-modsig' });
  b.imaTemplate('/usr/bin/gzip', createHash('sha1').update(readFileSync('/usr/bin/gzip')).digest());
  b.file('/opt/my app/run', { digest: sha256(Buffer.from('run')) });
  b.violation('/var/log/app.log');
  b.realFile('/usr/lib/x86_64-linux-gnu/libssl.so.3');
  return b;
}

/** The fields a test compares, as plain values. */
export function entryView(e: ImaEntry): Record<string, unknown> {
  return {
    index: e.index,
    offset: e.offset,
    size: e.size,
    pcr: e.pcr,
    template: e.template,
    templateHash: toHex(e.templateHash),
    hashInput: toHex(e.hashInput),
    violation: e.violation,
    digest: `${e.digestAlgorithm}:${toHex(e.digest)}`,
    path: e.path,
    signature: e.signature === null ? null : toHex(e.signature),
    buffer: e.buffer === null ? null : toHex(e.buffer),
    modsig: e.modsig === null ? null : `${e.modsig.digestAlgorithm}:${toHex(e.modsig.digest)}/${toHex(e.modsig.signature)}`,
  };
}

/** What the builder says an entry is, in entryView's shape (offsets and sizes from the format). */
export function builtView(b: ImaLogBuilder, e: BuiltEntry, index: number, offset: number, size: number): Record<string, unknown> {
  const modsigDigest = e.fields[3];
  const modsigSig = e.fields[4];
  const hasModsig = e.template === 'ima-modsig' && modsigDigest !== undefined && modsigDigest.length > 0 && modsigSig !== undefined;
  return {
    index,
    offset,
    size,
    pcr: e.pcr,
    template: e.template,
    templateHash: toHex(b.columnHash(e)),
    hashInput: toHex(e.hashInput),
    violation: e.violation,
    digest: `${e.digestAlgorithm}:${toHex(e.digest)}`,
    path: e.path.replaceAll(' ', '_'),
    signature: e.signature === null || e.signature.length === 0 ? null : toHex(e.signature),
    buffer: e.buffer === null ? null : toHex(e.buffer),
    modsig: hasModsig ? `sha256:${toHex(modsigDigest.subarray(8))}/${toHex(modsigSig)}` : null,
  };
}

/** Asserts that `fn` throws a BulwarkError with `code`; returns it. */
export function throwsCode(t: Test, fn: () => unknown, code: string, what: string): BulwarkError | undefined {
  try {
    fn();
  } catch (err) {
    if (err instanceof BulwarkError) {
      t.equal(err.code, code, `${what}: ${err.message}`);
      return err;
    }
    t.fail(`${what}: not a BulwarkError: ${String(err)}`);
    return undefined;
  }
  t.fail(`${what}: no error`);
  return undefined;
}

/** Entries of `b` (its binary or ASCII list), verified by a replay against a quote of the builder's PCR 10 (a software AK through the real verifyQuote). */
export function verifiedEntries(b: ImaLogBuilder, format: 'binary' | 'ascii' = 'binary'): VerifiedImaEntries {
  const quoted = softwareQuote(new Map([[TPM_ALG.SHA256, new Map([[10, b.pcr10('sha256')]])]]));
  const entries = format === 'binary' ? parseImaBinary(b.binary()).entries : parseImaAscii(b.ascii()).entries;
  const r = replayImaEntries(initialImaReplayState(), entries, quoted);
  if (!r.ok) throw new Error(`replay failed: ${r.findings.map((f) => f.code).join(',')}`);
  return r.verified;
}

/** Findings as [code, path, reason] rows, for comparing with t.same. */
export function findingRows(findings: readonly Finding[]): string[][] {
  return findings.map((f) => [f.code, String(f.details?.['path'] ?? ''), String(f.details?.['reason'] ?? '')]);
}
