/**
 * verifyQuote against real quotes: two swtpm instances, AKs made by tpm2_createak, quotes by
 * tpm2_quote, cross-checked with tpm2_checkquote. Every failure mode is produced for real.
 */
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { toHex } from '../../../lib/bytes.js';
import { parsePcrSelectionSpec } from '../../../lib/tpm/pcrs.js';
import { verifyQuote, type QuoteResult } from '../../../lib/tpm/quote.js';
import { TPM_ALG } from '../../../lib/tpm/types.js';
import { makeTempDir, removeDir, startTestTpms } from '../../helpers/swtpm.js';
import { DEFAULT_SPEC, createTestAk, extendBootPcrs, readPcrsWithTool, runQuote, type QuoteFiles } from './quote-helpers.js';

function codesOf(r: QuoteResult): string[] {
  return r.ok ? [] : r.findings.map((f) => f.code);
}

/** tpm2_checkquote's verdict on the same files: true when it exits 0. */
async function checkquote(dir: string, akPem: string, files: QuoteFiles, nonceHex: string, tag: string): Promise<boolean> {
  const p = (ext: string): string => join(dir, `check-${tag}.${ext}`);
  await writeFile(p('pem'), akPem);
  await writeFile(p('msg'), files.msg);
  await writeFile(p('sig'), files.sig);
  await writeFile(p('pcrs'), files.pcrs);
  const res = await execa('tpm2_checkquote', ['-u', p('pem'), '-m', p('msg'), '-s', p('sig'), '-f', p('pcrs'), '-g', 'sha256', '-q', nonceHex], {
    reject: false,
    timeout: 20_000,
  });
  return res.exitCode === 0;
}

/** openssl's verdict on an RSAPSS quote signature (the last 256 bytes of the TPMT_SIGNATURE). */
async function opensslPssVerify(dir: string, akPem: string, files: QuoteFiles): Promise<boolean> {
  const p = (ext: string): string => join(dir, `pss.${ext}`);
  await writeFile(p('pem'), akPem);
  await writeFile(p('msg'), files.msg);
  await writeFile(p('raw'), files.sig.subarray(6));
  const res = await execa(
    'openssl',
    ['dgst', '-sha256', '-sigopt', 'rsa_padding_mode:pss', '-sigopt', 'rsa_pss_saltlen:32', '-verify', p('pem'), '-signature', p('raw'), p('msg')],
    { reject: false, timeout: 20_000 },
  );
  return res.exitCode === 0;
}

t.test('quotes from a real swtpm', async (t) => {
  const root = await makeTempDir('quote');
  const fleet = await startTestTpms(root, 2);
  t.teardown(async () => {
    await fleet.stop();
    await removeDir(root);
  });
  const [a, b] = fleet.tpms;
  if (a === undefined || b === undefined) throw new Error('two TPMs expected');
  const dirA = join(root, 'a');
  const dirB = join(root, 'b');
  await mkdir(dirA);
  await mkdir(dirB);
  await extendBootPcrs(a, 5);
  const rsa = await createTestAk(a, dirA, '0x81010002', 'rsa');
  const pss = await createTestAk(a, dirA, '0x81010003', 'rsapss');
  const ecc = await createTestAk(a, dirA, '0x81010004', 'ecc');
  const rsaOfB = await createTestAk(b, dirB, '0x81010002', 'rsa');
  const expected = { selection: parsePcrSelectionSpec(DEFAULT_SPEC) };
  const nonceHex = (): string => randomBytes(32).toString('hex');
  const NINE = [0, 1, 2, 3, 4, 5, 6, 7, 10];

  await t.test('RSASSA, RSAPSS and ECDSA AKs: verifyQuote passes and proves the values tpm2_pcrread shows', async (t) => {
    const truth = await readPcrsWithTool(a, NINE);
    t.equal(truth.size, 9);
    for (const ak of [rsa, pss, ecc]) {
      const n = nonceHex();
      const q = await runQuote(a, dirA, ak, DEFAULT_SPEC, n, `ok-${ak.scheme}`);
      const r = verifyQuote(ak.key, q.msg, q.sig, q.pcrs, Buffer.from(n, 'hex'), expected);
      t.same(codesOf(r), [], ak.scheme);
      if (!r.ok) continue;
      for (const [pcr, hex] of truth) t.equal(toHex(r.pcrs.get(TPM_ALG.SHA256)?.get(pcr) ?? new Uint8Array(0)), hex, `${ak.scheme} PCR ${pcr}`);
      if (ak.scheme === 'rsapss') {
        // tpm2_checkquote 5.4 checks an RSA PEM key with PKCS#1 v1.5 padding only and refuses
        // every RSAPSS quote; openssl with explicit PSS (salt = hash length, what the TPM uses) agrees with us.
        t.equal(await checkquote(dirA, ak.pem, q, n, ak.scheme), false, 'tpm2_checkquote cannot check RSAPSS');
        t.equal(await opensslPssVerify(dirA, ak.pem, q), true, 'openssl dgst (PSS, salt 32) agrees');
      } else {
        // tpm2_checkquote accepts the same nine-PCR quote in serialized form.
        t.equal(await checkquote(dirA, ak.pem, q, n, ak.scheme), true, `tpm2_checkquote agrees (${ak.scheme})`);
      }
    }
  });

  await t.test('wrong nonce → QUOTE_NONCE_MISMATCH (tpm2_checkquote also refuses)', async (t) => {
    const n = nonceHex();
    const q = await runQuote(a, dirA, rsa, DEFAULT_SPEC, n, 'nonce');
    const other = nonceHex();
    t.same(codesOf(verifyQuote(rsa.key, q.msg, q.sig, q.pcrs, Buffer.from(other, 'hex'), expected)), ['QUOTE_NONCE_MISMATCH']);
    t.equal(await checkquote(dirA, rsa.pem, q, other, 'nonce'), false);
  });

  await t.test("a quote by another TPM's AK → QUOTE_SIGNATURE_INVALID", async (t) => {
    const n = nonceHex();
    const q = await runQuote(b, dirB, rsaOfB, DEFAULT_SPEC, n, 'other');
    t.same(codesOf(verifyQuote(rsaOfB.key, q.msg, q.sig, q.pcrs, Buffer.from(n, 'hex'), expected)), [], 'verifies with its own AK');
    t.same(codesOf(verifyQuote(rsa.key, q.msg, q.sig, q.pcrs, Buffer.from(n, 'hex'), expected)), ['QUOTE_SIGNATURE_INVALID']);
    t.equal(await checkquote(dirA, rsa.pem, q, n, 'other'), false);
  });

  await t.test('one edited byte in the PCR values → QUOTE_PCR_DIGEST_MISMATCH', async (t) => {
    const n = nonceHex();
    const q = await runQuote(a, dirA, ecc, DEFAULT_SPEC, n, 'edit');
    const pcrs = new Uint8Array(q.pcrs);
    // PCR 10 is the ninth value: second TPML_DIGEST (136 + 532), first TPM2B_DIGEST, after its size.
    const at = 136 + 532 + 4 + 2;
    pcrs[at] = (pcrs[at] ?? 0) ^ 0x01;
    t.same(codesOf(verifyQuote(ecc.key, q.msg, q.sig, pcrs, Buffer.from(n, 'hex'), expected)), ['QUOTE_PCR_DIGEST_MISMATCH']);
    t.equal(await checkquote(dirA, ecc.pem, { ...q, pcrs }, n, 'edit'), false);
  });

  await t.test('a quote over sha256:0-7 when 0-7,10 is expected → QUOTE_PCR_SELECTION_MISMATCH', async (t) => {
    const n = nonceHex();
    // tpm2-tools 5.4 takes no ranges in -l ("0-7" is read as a handle): list the PCRs.
    const q = await runQuote(a, dirA, rsa, 'sha256:0,1,2,3,4,5,6,7', n, 'narrow');
    const r = verifyQuote(rsa.key, q.msg, q.sig, q.pcrs, Buffer.from(n, 'hex'), expected);
    t.same(codesOf(r), ['QUOTE_PCR_SELECTION_MISMATCH']);
    // The quote itself is sound: without the expectation it verifies.
    t.equal(verifyQuote(rsa.key, q.msg, q.sig, q.pcrs, Buffer.from(n, 'hex')).ok, true);
  });

  await t.test('a bit-flipped signature → QUOTE_SIGNATURE_INVALID', async (t) => {
    for (const ak of [rsa, pss, ecc]) {
      const n = nonceHex();
      const q = await runQuote(a, dirA, ak, DEFAULT_SPEC, n, `flip-${ak.scheme}`);
      const sig = new Uint8Array(q.sig);
      sig[sig.length - 5] = (sig[sig.length - 5] ?? 0) ^ 0x10;
      t.same(codesOf(verifyQuote(ak.key, q.msg, sig, q.pcrs, Buffer.from(n, 'hex'), expected)), ['QUOTE_SIGNATURE_INVALID'], ak.scheme);
    }
  });

  await t.test('the wrong key type → QUOTE_SIGNATURE_SCHEME_MISMATCH', async (t) => {
    const n = nonceHex();
    const qe = await runQuote(a, dirA, ecc, DEFAULT_SPEC, n, 'kt-ecc');
    t.same(codesOf(verifyQuote(rsa.key, qe.msg, qe.sig, qe.pcrs, Buffer.from(n, 'hex'), expected)), ['QUOTE_SIGNATURE_SCHEME_MISMATCH']);
    const qr = await runQuote(a, dirA, rsa, DEFAULT_SPEC, n, 'kt-rsa');
    t.same(codesOf(verifyQuote(ecc.key, qr.msg, qr.sig, qr.pcrs, Buffer.from(n, 'hex'), expected)), ['QUOTE_SIGNATURE_SCHEME_MISMATCH']);
  });

  await t.test('a small selection: verifyQuote and tpm2_checkquote agree', async (t) => {
    const n = nonceHex();
    const q = await runQuote(a, dirA, rsa, 'sha256:0,1,2,10', n, 'small');
    t.equal(verifyQuote(rsa.key, q.msg, q.sig, q.pcrs, Buffer.from(n, 'hex'), { selection: parsePcrSelectionSpec('sha256:0-2,10') }).ok, true);
    t.equal(await checkquote(dirA, rsa.pem, q, n, 'small'), true);
  });

  await t.test('PCR 10 extended after the quote: the fresh values do not match the old quote', async (t) => {
    const n = nonceHex();
    const before = await runQuote(a, dirA, rsa, DEFAULT_SPEC, n, 'stale-1');
    await a.extendPcr(10, '42'.repeat(32));
    const after = await runQuote(a, dirA, rsa, DEFAULT_SPEC, nonceHex(), 'stale-2');
    t.same(codesOf(verifyQuote(rsa.key, before.msg, before.sig, after.pcrs, Buffer.from(n, 'hex'), expected)), ['QUOTE_PCR_DIGEST_MISMATCH']);
  });

  await t.test('after a TPM reset: resetCount grows, PCRs are zero, the persisted AK still quotes', async (t) => {
    const n1 = nonceHex();
    const q1 = await runQuote(a, dirA, ecc, DEFAULT_SPEC, n1, 'reset-1');
    const r1 = verifyQuote(ecc.key, q1.msg, q1.sig, q1.pcrs, Buffer.from(n1, 'hex'), expected);
    await a.reboot();
    const n2 = nonceHex();
    const q2 = await runQuote(a, dirA, ecc, DEFAULT_SPEC, n2, 'reset-2');
    const r2 = verifyQuote(ecc.key, q2.msg, q2.sig, q2.pcrs, Buffer.from(n2, 'hex'), expected);
    if (!r1.ok || !r2.ok) return t.fail('quotes did not verify');
    t.equal(r2.attest.clockInfo.resetCount, r1.attest.clockInfo.resetCount + 1);
    t.equal(toHex(r2.pcrs.get(TPM_ALG.SHA256)?.get(0) ?? new Uint8Array(1)), '00'.repeat(32));
  });
});
