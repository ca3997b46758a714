/**
 * Regenerates test/fixtures/quote/ from two real swtpm instances and tpm2-tools 5.4:
 *
 *   npx tsc -p . && node dist/test/lib/tpm/make-quote-fixtures.js
 *
 * Every file written is the unmodified output of a tpm2-tools command, except where the
 * fixture's README line says how it was combined (files of two runs, a forged magic signed
 * by the AK through tpm2_hash + tpm2_sign). Not a test: run by hand when fixtures change.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makeTempDir, removeDir, startTestTpms } from '../../helpers/swtpm.js';
import { DEFAULT_SPEC, createTestAk, extendBootPcrs, quoteFixturesDir, readPcrsWithTool, runQuote, type QuoteFiles } from './quote-helpers.js';

interface FixtureJson {
  readonly nonce: string;
  readonly selection: string;
  readonly ok: boolean;
  readonly codes?: readonly string[];
  readonly pcrValues?: Record<string, string>;
  readonly made: string;
}

async function main(): Promise<void> {
  const root = await makeTempDir('quote-fixtures');
  const fleet = await startTestTpms(root, 2);
  try {
    const [a, b] = fleet.tpms;
    if (a === undefined || b === undefined) throw new Error('two TPMs expected');
    const dirA = join(root, 'a');
    const dirB = join(root, 'b');
    await mkdir(dirA);
    await mkdir(dirB);
    await extendBootPcrs(a, 1);
    await extendBootPcrs(b, 2);
    const rsa = await createTestAk(a, dirA, '0x81010002', 'rsa');
    const pss = await createTestAk(a, dirA, '0x81010003', 'rsapss');
    const ecc = await createTestAk(a, dirA, '0x81010004', 'ecc');
    const rsaOther = await createTestAk(b, dirB, '0x81010002', 'rsa');
    const values = await readPcrsWithTool(a, [0, 1, 2, 3, 4, 5, 6, 7, 10]);
    const pcrValues = Object.fromEntries([...values].map(([k, v]) => [String(k), v]));

    const out = quoteFixturesDir();
    await mkdir(out, { recursive: true });
    const save = async (name: string, files: QuoteFiles, akPem: string, json: FixtureJson): Promise<void> => {
      await writeFile(join(out, `${name}.msg`), files.msg);
      await writeFile(join(out, `${name}.sig`), files.sig);
      await writeFile(join(out, `${name}.pcrs`), files.pcrs);
      await writeFile(join(out, `${name}.ak.pem`), akPem);
      await writeFile(join(out, `${name}.json`), `${JSON.stringify(json, null, 2)}\n`);
    };
    const nonce = (): string => randomBytes(32).toString('hex');

    const n1 = nonce();
    const q1 = await runQuote(a, dirA, rsa, DEFAULT_SPEC, n1, 'q1');
    await save('rsa-rsassa-sha256', q1, rsa.pem, { nonce: n1, selection: DEFAULT_SPEC, ok: true, pcrValues, made: 'tpm2_quote, RSA-2048 AK, rsassa' });

    const n2 = nonce();
    const q2 = await runQuote(a, dirA, pss, DEFAULT_SPEC, n2, 'q2');
    await save('rsa-rsapss-sha256', q2, pss.pem, { nonce: n2, selection: DEFAULT_SPEC, ok: true, pcrValues, made: 'tpm2_quote --scheme rsapss, RSA-2048 AK' });

    const n3 = nonce();
    const q3 = await runQuote(a, dirA, ecc, DEFAULT_SPEC, n3, 'q3');
    await save('ecc-p256-ecdsa-sha256', q3, ecc.pem, { nonce: n3, selection: DEFAULT_SPEC, ok: true, pcrValues, made: 'tpm2_quote, ECC P-256 AK, ecdsa' });

    const q4 = await runQuote(a, dirA, ecc, DEFAULT_SPEC, nonce(), 'q4');
    await save('ecc-replayed-nonce', q4, ecc.pem, { nonce: nonce(), selection: DEFAULT_SPEC, ok: false, codes: ['QUOTE_NONCE_MISMATCH'], made: 'a real quote, checked against a later nonce' });

    const n5 = nonce();
    const q5 = await runQuote(b, dirB, rsaOther, DEFAULT_SPEC, n5, 'q5');
    await save('rsa-other-tpm', q5, rsa.pem, { nonce: n5, selection: DEFAULT_SPEC, ok: false, codes: ['QUOTE_SIGNATURE_INVALID'], made: 'quote by TPM B, AK of TPM A' });

    const n6 = nonce();
    const q6 = await runQuote(a, dirA, rsa, 'sha256:0,1,2,3,4,5,6,7', n6, 'q6');
    await save('rsa-selection-0-7', q6, rsa.pem, { nonce: n6, selection: DEFAULT_SPEC, ok: false, codes: ['QUOTE_PCR_SELECTION_MISMATCH'], made: 'quote over sha256:0-7, 0-7,10 expected' });

    // tpm2_certify: a real TPMS_ATTEST of type TPM_ST_ATTEST_CERTIFY signed by the same AK.
    await a.tool('tpm2_certify', ['-c', rsa.handle, '-C', rsa.handle, '-g', 'sha256', '-o', 'certify.attest', '-s', 'certify.sig'], dirA);
    const certify: QuoteFiles = { msg: new Uint8Array(await readFile(join(dirA, 'certify.attest'))), sig: new Uint8Array(await readFile(join(dirA, 'certify.sig'))), pcrs: q1.pcrs };
    await save('rsa-certify-not-quote', certify, rsa.pem, { nonce: n1, selection: DEFAULT_SPEC, ok: false, codes: ['QUOTE_TYPE_INVALID'], made: 'tpm2_certify by the AK' });

    // The AK signs outside data through TPM2_Hash's ticket only when it does not start with
    // TPM_GENERATED_VALUE: the quote of q1 with its magic changed is such data.
    const forged = new Uint8Array(q1.msg);
    forged[3] = 0x46; // 'TCG' 0x47 → 0x46
    await writeFile(join(dirA, 'forged.msg'), forged);
    await a.tool('tpm2_hash', ['-C', 'o', '-g', 'sha256', '-t', 'forged.ticket', '-o', 'forged.digest', 'forged.msg'], dirA);
    await a.tool('tpm2_sign', ['-c', rsa.handle, '-g', 'sha256', '-d', '-t', 'forged.ticket', '-o', 'forged.sig', 'forged.digest'], dirA);
    await save('rsa-forged-magic', { msg: forged, sig: new Uint8Array(await readFile(join(dirA, 'forged.sig'))), pcrs: q1.pcrs }, rsa.pem, {
      nonce: n1,
      selection: DEFAULT_SPEC,
      ok: false,
      codes: ['QUOTE_MAGIC_INVALID'],
      made: 'q1 with magic 0xff544346, signed by the AK via tpm2_hash -t + tpm2_sign -t',
    });

    // Last, because it changes PCR 10: the values of a later quote next to an earlier quote.
    const n7 = nonce();
    const q7 = await runQuote(a, dirA, rsa, DEFAULT_SPEC, n7, 'q7');
    await a.extendPcr(10, 'ee'.repeat(32));
    const q7later = await runQuote(a, dirA, rsa, DEFAULT_SPEC, nonce(), 'q7later');
    await save('rsa-stale-pcrs', { msg: q7.msg, sig: q7.sig, pcrs: q7later.pcrs }, rsa.pem, {
      nonce: n7,
      selection: DEFAULT_SPEC,
      ok: false,
      codes: ['QUOTE_PCR_DIGEST_MISMATCH'],
      made: 'quote, then PCR 10 extended, PCR file of a second quote',
    });
    process.stdout.write(`fixtures written to ${out}\n`);
  } finally {
    await fleet.stop();
    await removeDir(root);
  }
}

await main();
