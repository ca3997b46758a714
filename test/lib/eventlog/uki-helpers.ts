/**
 * The recorded systemd-boot / UKI boot in test/fixtures/eventlog/uki/ (see its README):
 * the firmware log, systemd's measurement log and the PCR values tpm2_pcrread read in the
 * same boot, and edits of them that stay consistent (the quote recomputed as a TPM would
 * have extended it). Test code only.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { TPM_ALG, type QuotedPcrs } from '../../../lib/tpm/types.js';
import { softwareQuote } from './eventlog-helpers.js';

export const UKI_DIR = fileURLToPath(new URL('../../../../test/fixtures/eventlog/uki/', import.meta.url));

export function ukiFile(name: string): Uint8Array {
  return new Uint8Array(readFileSync(`${UKI_DIR}${name}`));
}

export function ukiText(name: string): string {
  return readFileSync(`${UKI_DIR}${name}`, 'utf8');
}

/** tpm2_pcrread's YAML-ish output ("  sha256:" then "    11: 0xAB..") as bank → PCR → value. */
export function parsePcrread(text: string): Map<number, Map<number, Uint8Array>> {
  const out = new Map<number, Map<number, Uint8Array>>();
  let bank: Map<number, Uint8Array> | undefined;
  for (const line of text.split('\n')) {
    const b = /^\s*(sha1|sha256|sha384|sha512):\s*$/.exec(line);
    if (b !== null) {
      bank = new Map();
      out.set(b[1] === 'sha1' ? TPM_ALG.SHA1 : b[1] === 'sha256' ? TPM_ALG.SHA256 : b[1] === 'sha384' ? TPM_ALG.SHA384 : TPM_ALG.SHA512, bank);
      continue;
    }
    const p = /^\s*(\d+)\s*:\s*0x([0-9A-Fa-f]+)\s*$/.exec(line);
    if (p !== null && bank !== undefined) bank.set(Number(p[1]), new Uint8Array(Buffer.from(p[2] ?? '', 'hex')));
  }
  return out;
}

/** The recorded PCR values (tpm2_pcrread), PCRs 0-23 of both banks. */
export function recordedPcrs(): Map<number, Map<number, Uint8Array>> {
  return parsePcrread(ukiText('tpm2_pcrread.txt'));
}

/** A quote of `values` restricted to `pcrs` (every bank). */
export function quoteOfValues(values: ReadonlyMap<number, ReadonlyMap<number, Uint8Array>>, pcrs: readonly number[]): QuotedPcrs {
  const sel = new Map<number, Map<number, Uint8Array>>();
  for (const [alg, bank] of values) sel.set(alg, new Map([...bank].filter(([p]) => pcrs.includes(p))));
  return softwareQuote(sel);
}

/** Every PCR the recorded boot's checks use: firmware 0-9, 11-13, 15. */
export const UKI_QUOTE_PCRS: readonly number[] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13, 15];

/** Replaces every occurrence of `from` in `bytes` with `to` (same length). */
export function replaceAll(bytes: Uint8Array, from: Uint8Array, to: Uint8Array): Uint8Array {
  if (from.length !== to.length) throw new Error('replaceAll needs equal lengths');
  const out = Buffer.from(bytes);
  let at = out.indexOf(from);
  let n = 0;
  while (at >= 0) {
    out.set(to, at);
    n++;
    at = out.indexOf(from, at + to.length);
  }
  if (n === 0) throw new Error('replaceAll: nothing to replace');
  return new Uint8Array(out);
}

export function digest(alg: 'sha1' | 'sha256', data: Uint8Array | string): Uint8Array {
  return new Uint8Array(createHash(alg).update(data).digest());
}
