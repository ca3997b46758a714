/**
 * `quote verify`, offline forensics on `tpm2_quote -m MSG -s SIG -o PCRS -F serialized`
 * output: the AK signature, the nonce, the PCR selection and the PCR digest.
 */
import { EXIT_CODES, fromHex, toHex } from '../lib/index.js';
import { parsePcrSelectionSpec, verifyQuote, type QuoteResult } from '../lib/tpm/index.js';
import type { Call } from './command.js';
import { loadAkPublicKey, printJson, readInput } from './io.js';

/** The verified quote files named by --ak --msg --sig --pcrs --nonce [--pcr-selection]. */
export async function verifyQuoteFiles(call: Call): Promise<QuoteResult> {
  // Without --pcr-selection any selection is accepted and shown; with it, it must match.
  const selectionSpec = call.string('--pcr-selection');
  const selection = selectionSpec === undefined ? undefined : parsePcrSelectionSpec(selectionSpec);
  const nonce = fromHex(call.required('--nonce').replace(/^0x/i, ''), '--nonce');
  const ak = await loadAkPublicKey(call.required('--ak'));
  return verifyQuote(
    ak,
    await readInput(call.required('--msg'), 'quote message'),
    await readInput(call.required('--sig'), 'signature'),
    await readInput(call.required('--pcrs'), 'PCR'),
    nonce,
    selection === undefined ? {} : { selection },
  );
}

/** `quote verify`: exit 0 verified, 1 a finding. */
export async function quoteVerify(call: Call): Promise<number> {
  const result = await verifyQuoteFiles(call);
  if (call.json) {
    printJson(
      call.io,
      result.ok
        ? {
            verified: true,
            resetCount: result.attest.clockInfo.resetCount,
            restartCount: result.attest.clockInfo.restartCount,
            pcrs: Object.fromEntries([...result.pcrs].map(([alg, bank]) => [alg, Object.fromEntries([...bank].map(([i, v]) => [i, toHex(v)]))])),
          }
        : { verified: false, findings: result.findings },
    );
  } else if (result.ok) {
    call.io.out(
      `verified: signature, nonce, PCR selection and digest (resetCount ${result.attest.clockInfo.resetCount}, restartCount ${result.attest.clockInfo.restartCount})\n`,
    );
    for (const [alg, bank] of result.pcrs) for (const [i, v] of bank) call.io.out(`  pcr ${alg === 0x000b ? 'sha256' : `alg 0x${alg.toString(16)}`}:${i} ${toHex(v)}\n`);
  } else {
    call.io.out('NOT verified:\n');
    for (const f of result.findings) call.io.out(`  ${f.code}: ${f.message}\n`);
  }
  return result.ok ? EXIT_CODES.ok : EXIT_CODES.finding;
}
