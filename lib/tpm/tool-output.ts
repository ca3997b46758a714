/**
 * Pure parsers for what tpm2-tools 5.4 prints or writes, so the tpm2-tools adapter
 * (agent/tpm2-tools-tpm.ts) stays a thin process runner. Each parser is tested on output
 * captured from swtpm (test/fixtures/tpm2-tools/). Tool output is the output of a local
 * dependency, not of a remote peer, but it is still checked line by line: a line we do
 * not understand is an error, never skipped.
 */
import { BulwarkError } from '../errors.js';
import { fromHex } from '../bytes.js';
import { HASH_ALGS, HASH_ALGS_BY_NAME, type PcrBanks } from './types.js';

/** Largest tool output text the parsers accept (a full 4-bank pcrread is about 8 KiB). */
const MAX_TOOL_TEXT = 256 * 1024;
/** Most handles a `tpm2_getcap handles-*` listing may hold (a TPM has a few dozen slots). */
const MAX_HANDLES = 4096;
/** PC Client TPMs have 24 PCRs (0..23); tpm2_pcrread prints no others. */
const MAX_PCR_INDEX = 23;
/** Longest summary of a tool's stderr put into an error message. */
const STDERR_SUMMARY_CAP = 300;

function malformed(what: string, line: number, text: string): BulwarkError {
  return new BulwarkError('TPM_TOOL_OUTPUT_MALFORMED', `${what}: line ${line} ${JSON.stringify(text.slice(0, 80))} is not understood`, { line });
}

function splitLines(text: string, what: string): string[] {
  if (text.length > MAX_TOOL_TEXT) {
    throw new BulwarkError('TPM_TOOL_OUTPUT_MALFORMED', `${what}: ${text.length} characters is more than the cap of ${MAX_TOOL_TEXT}`, { length: text.length });
  }
  const lines = text.split(/\r?\n/);
  // Trailing empty lines are the only empty lines tpm2-tools prints.
  while (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  return lines;
}

/**
 * Parses the YAML list `tpm2_getcap handles-persistent|handles-transient|handles-nv-index`
 * prints (`- 0x81010001`, NV indices in upper case, nothing at all when the list is
 * empty) into handle numbers in the printed order. Throws TPM_TOOL_OUTPUT_MALFORMED on
 * any other line or a duplicate.
 */
export function parseHandleList(text: string): number[] {
  const lines = splitLines(text, 'handle list');
  if (lines.length > MAX_HANDLES) {
    throw new BulwarkError('TPM_TOOL_OUTPUT_MALFORMED', `handle list: more than ${MAX_HANDLES} handles`, { count: lines.length });
  }
  const out: number[] = [];
  const seen = new Set<number>();
  lines.forEach((line, i) => {
    const m = /^- 0x([0-9a-fA-F]{1,8})$/.exec(line);
    if (m === null || m[1] === undefined) throw malformed('handle list', i + 1, line);
    const handle = Number.parseInt(m[1], 16);
    if (seen.has(handle)) throw malformed('handle list (duplicate)', i + 1, line);
    seen.add(handle);
    out.push(handle);
  });
  return out;
}

/**
 * Parses what `tpm2_pcrread SELECTION` prints (tpm2-tools 5.x YAML):
 *
 *     sha256:
 *       0 : 0x8C37...
 *       10: 0x1B36...
 *
 * into bank hash algorithm (TPM_ALG_ID) → PCR index → value. A bank the TPM has not
 * allocated is printed as a bare header and comes out as an empty map, so the caller can
 * tell "not allocated" from "not asked for". Unknown banks, indices above 23, values whose
 * length is not the bank's digest size, duplicates and any other line throw
 * TPM_TOOL_OUTPUT_MALFORMED. The values are what the TPM reported: unverified.
 */
export function parsePcrReadOutput(text: string): PcrBanks {
  const lines = splitLines(text, 'pcrread output');
  const banks = new Map<number, Map<number, Uint8Array>>();
  let bank: { readonly values: Map<number, Uint8Array>; readonly size: number } | undefined;
  lines.forEach((line, i) => {
    const header = /^ {2}([a-z0-9_]+):$/.exec(line);
    if (header !== null && header[1] !== undefined) {
      const alg = HASH_ALGS_BY_NAME.get(header[1])?.alg;
      const info = alg === undefined ? undefined : HASH_ALGS.get(alg);
      if (alg === undefined || info === undefined) throw malformed('pcrread output (unknown bank)', i + 1, line);
      if (banks.has(alg)) throw malformed('pcrread output (bank listed twice)', i + 1, line);
      const values = new Map<number, Uint8Array>();
      banks.set(alg, values);
      bank = { values, size: info.size };
      return;
    }
    // The index is left-aligned in a two-character column: "    0 : 0x..", "    10: 0x..".
    const entry = /^ {4}(\d{1,2}) ?: 0x([0-9a-fA-F]+)$/.exec(line);
    if (entry === null || entry[1] === undefined || entry[2] === undefined || bank === undefined) throw malformed('pcrread output', i + 1, line);
    const index = Number(entry[1]);
    if (index > MAX_PCR_INDEX) throw malformed(`pcrread output (PCR index above ${MAX_PCR_INDEX})`, i + 1, line);
    if (bank.values.has(index)) throw malformed('pcrread output (PCR listed twice)', i + 1, line);
    if (entry[2].length !== bank.size * 2) throw malformed(`pcrread output (value is not ${bank.size} bytes)`, i + 1, line);
    bank.values.set(index, fromHex(entry[2], 'PCR value'));
  });
  return banks;
}

/**
 * Returns the DER certificate at the start of an NV index's data. EK certificate NV
 * indices are often larger than the certificate and padded (0x00 or 0xff); the length
 * comes from the outer SEQUENCE header (X.690 8.1.3: short form, or long form with 1-4
 * length octets; the indefinite form is not DER). Untrusted input: the result is only
 * cut to size, not parsed or verified. Throws CERT_MALFORMED.
 */
export function trimNvCertificate(data: Uint8Array): Uint8Array {
  const fail = (why: string): BulwarkError => new BulwarkError('CERT_MALFORMED', `NV certificate data: ${why}`, { length: data.length });
  if (data.length < 2) throw fail('shorter than a DER header');
  if (data[0] !== 0x30) throw fail(`starts with 0x${(data[0] ?? 0).toString(16)}, not a SEQUENCE (0x30)`);
  const first = data[1] ?? 0;
  let header = 2;
  let length = first;
  if (first & 0x80) {
    const octets = first & 0x7f;
    if (octets === 0) throw fail('indefinite length is not DER');
    if (octets > 4) throw fail(`${octets} length octets is more than a certificate needs`);
    if (data.length < 2 + octets) throw fail('truncated length octets');
    length = 0;
    for (let i = 0; i < octets; i++) length = length * 256 + (data[2 + i] ?? 0);
    header = 2 + octets;
  }
  if (header + length > data.length) throw fail(`SEQUENCE declares ${header + length} bytes, only ${data.length} present`);
  return data.subarray(0, header + length);
}

/**
 * Boils a tpm2-tools stderr down to a short, single-line reason for an error message: the
 * tool's own `ERROR:` lines first (without the useless "Unable to run ..."), then the TSS
 * library's `ERROR:layer:file:line:function()` lines shortened to `layer: message`,
 * without duplicates, control characters removed, capped at 300 characters. Falls back to
 * the last non-empty lines when nothing is marked as an error.
 */
export function summarizeToolStderr(stderr: string): string {
  const lines = stderr
    .slice(0, MAX_TOOL_TEXT)
    .split(/\r?\n/)
    .map((l) => l.replace(/[\u0000-\u001f\u007f-\u009f]/g, ' ').trim())
    .filter((l) => l.length > 0);
  const own: string[] = [];
  const library: string[] = [];
  for (const line of lines) {
    const lib = /^ERROR:([a-z0-9_]+):\S+:\d+:\S+\(\)\s*(.*)$/i.exec(line);
    if (lib !== null) {
      library.push(`${lib[1] ?? ''}: ${lib[2] ?? ''}`);
    } else if (line.startsWith('ERROR:')) {
      const message = line.slice('ERROR:'.length).trim();
      if (!/^Unable to run /.test(message)) own.push(message);
    }
  }
  let picked = [...new Set([...own, ...library])];
  if (picked.length === 0) picked = lines.slice(-2);
  const joined = picked.join('; ');
  return joined.length > STDERR_SUMMARY_CAP ? `${joined.slice(0, STDERR_SUMMARY_CAP - 1)}…` : joined;
}
