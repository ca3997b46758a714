/**
 * Test helpers for the event log: quoted PCRs for unit tests, the fixtures in
 * test/fixtures/eventlog/, and tpm2_eventlog as an independent replay. Test code only.
 *
 * Unit tests need QuotedPcrs for many PCR sets; a swtpm quote per case would cost seconds.
 * `softwareQuote` therefore plays the TPM's part with a software RSA key: it encodes a real
 * TPMS_ATTEST, TPMT_SIGNATURE and tpm2-tools serialized PCR file and passes them through the
 * real verifyQuote, which is the only way to get QuotedPcrs. The whole chain on a real TPM
 * is proven by eventlog-swtpm.test.ts.
 */
import { createHash, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { ByteWriter } from '../../../lib/bytes.js';
import { MAX_PCR_BANKS } from '../../../lib/tpm/attest.js';
import { verifyQuote } from '../../../lib/tpm/quote.js';
import { encodeTpmtSignature } from '../../../lib/tpm/signature.js';
import { TPM_ALG, type QuotedPcrs } from '../../../lib/tpm/types.js';
import type { Finding } from '../../../lib/verdict.js';
import { BANK_ALG, type BankName, type BuiltBoot } from '../../helpers/eventlog-builder.js';
import { buildQuoteAttest } from '../tpm/quote-builders.js';

let key: { priv: KeyObject; pub: KeyObject } | undefined;

function softwareAk(): { priv: KeyObject; pub: KeyObject } {
  if (key === undefined) {
    const pair = generateKeyPairSync('rsa', { modulusLength: 2048 });
    key = { priv: pair.privateKey, pub: pair.publicKey };
  }
  return key;
}

/**
 * QuotedPcrs for `values` (bank → PCR → value), through verifyQuote on a quote signed by a
 * software AK (RSASSA-SHA256). Banks in map order, PCRs ascending, as a TPM orders them.
 */
export function softwareQuote(values: ReadonlyMap<number, ReadonlyMap<number, Uint8Array>>): QuotedPcrs {
  const selections = [...values].map(([alg, bank]) => {
    const bitmap = [0, 0, 0];
    for (const pcr of bank.keys()) bitmap[pcr >> 3] = (bitmap[pcr >> 3] ?? 0) | (1 << (pcr & 7));
    return { hash: alg, sizeofSelect: 3, bitmap, pcrs: [...bank.keys()].sort((a, b) => a - b) };
  });
  const flat: Uint8Array[] = [];
  for (const s of selections) for (const pcr of s.pcrs) flat.push(values.get(s.hash)?.get(pcr) ?? new Uint8Array(0));
  const nonce = randomBytes(32);
  const attest = buildQuoteAttest({ extraData: nonce, selections, pcrDigest: createHash('sha256').update(Buffer.concat(flat)).digest() });
  const ak = softwareAk();
  const sig = encodeTpmtSignature({ sigAlg: TPM_ALG.RSASSA, hashAlg: TPM_ALG.SHA256, sig: sign('sha256', attest, ak.priv) });

  // tpm2-tools serialized PCR file (layout in lib/tpm/pcrs.ts): selections, then TPML_DIGESTs of up to 8 values.
  const w = new ByteWriter(4096);
  w.u32le(selections.length); // TPML_PCR_SELECTION.count
  for (let i = 0; i < MAX_PCR_BANKS; i++) {
    const s = selections[i];
    if (s === undefined) {
      w.bytes(new Uint8Array(8)); // unused pcrSelections[i]
      continue;
    }
    w.u16le(s.hash).u8(3); // hash, sizeofSelect
    const bitmap = new Uint8Array(4);
    bitmap.set(s.bitmap);
    w.bytes(bitmap).u8(0); // pcrSelect[4], padding
  }
  const lists: Uint8Array[][] = [];
  for (let i = 0; i < flat.length; i += 8) lists.push(flat.slice(i, i + 8));
  w.u32le(lists.length); // digest list count
  for (const list of lists) {
    w.u32le(list.length); // TPML_DIGEST.count
    for (let d = 0; d < 8; d++) {
      const v = list[d];
      w.u16le(v?.length ?? 0); // TPM2B_DIGEST.size
      const buffer = new Uint8Array(64);
      if (v !== undefined) buffer.set(v);
      w.bytes(buffer); // buffer[64]
    }
  }
  const result = verifyQuote(ak.pub, attest, sig, w.finish(), nonce);
  if (!result.ok) throw new Error(`software quote did not verify: ${result.findings.map((f) => f.code).join(',')}`);
  return result.pcrs;
}

/** Bank → PCR → value as a TPM that made `built`'s measurements holds them (logged or not). */
export function tpmValues(built: BuiltBoot, banks: readonly BankName[] = ['sha256'], pcrs: readonly number[] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]): Map<number, Map<number, Uint8Array>> {
  const expected = built.builder.expectedPcrs(built.scenario.startupLocality);
  const out = new Map<number, Map<number, Uint8Array>>();
  for (const b of banks) {
    const bank = new Map<number, Uint8Array>();
    const size = { sha1: 20, sha256: 32, sha384: 48, sha512: 64 }[b];
    for (const p of pcrs) {
      const hex = expected.get(b)?.get(p);
      const v = hex === undefined ? new Uint8Array(size) : new Uint8Array(Buffer.from(hex, 'hex'));
      if (hex === undefined && p === 0 && built.scenario.startupLocality !== null) v[size - 1] = built.scenario.startupLocality;
      if (p === 10) v.fill(0x5a); // IMA's PCR: never in the boot log
      bank.set(p, v);
    }
    out.set(BANK_ALG[b], bank);
  }
  return out;
}

/** QuotedPcrs of a built boot (default sha256:0-10). */
export function quoteOf(built: BuiltBoot, banks?: readonly BankName[], pcrs?: readonly number[]): QuotedPcrs {
  return softwareQuote(tpmValues(built, banks, pcrs));
}

export function codesOf(findings: readonly Finding[]): string[] {
  return findings.map((f) => f.code);
}

export function fixtureDir(): string {
  return fileURLToPath(new URL('../../../../test/fixtures/eventlog/', import.meta.url));
}

export async function listEventlogFixtures(): Promise<string[]> {
  return (await readdir(fixtureDir()))
    .filter((f) => f.endsWith('.bin'))
    .map((f) => f.slice(0, -4))
    .sort();
}

/** What a fixture's NAME.json states, narrowed field by field. */
export interface EventlogFixture {
  readonly name: string;
  readonly bytes: Uint8Array;
  readonly description: string;
  /** The code parsing must fail with, for malformed fixtures. */
  readonly error?: string;
  readonly events?: number;
  readonly banks?: readonly BankName[];
  readonly startupLocality?: number | null;
  /** bank → PCR → hex of the log's own replay. */
  readonly pcrs?: ReadonlyMap<BankName, ReadonlyMap<number, string>>;
  /** bank → PCR → hex a TPM holds when it differs from the replay (quirk fixtures). */
  readonly tpmPcrs?: ReadonlyMap<BankName, ReadonlyMap<number, string>>;
  readonly quirks?: readonly string[];
  /** PCRs tpm2_eventlog 5.4 gets wrong on this log (with the reason). */
  readonly tpm2EventlogDiffers?: { readonly pcrs: readonly number[]; readonly reason: string };
  readonly secureBoot?: boolean | null;
}

function rec(v: unknown, what: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error(`${what} is not an object`);
  return Object.fromEntries(Object.entries(v));
}

function pcrMap(v: unknown, what: string): Map<BankName, Map<number, string>> {
  const out = new Map<BankName, Map<number, string>>();
  for (const [bank, values] of Object.entries(rec(v, what))) {
    if (bank !== 'sha1' && bank !== 'sha256' && bank !== 'sha384' && bank !== 'sha512') throw new Error(`${what}: unknown bank ${bank}`);
    const m = new Map<number, string>();
    for (const [pcr, hex] of Object.entries(rec(values, `${what}.${bank}`))) {
      if (!/^\d+$/.test(pcr) || typeof hex !== 'string' || !/^[0-9a-f]+$/.test(hex)) throw new Error(`${what}.${bank}.${pcr} is invalid`);
      m.set(Number(pcr), hex);
    }
    out.set(bank, m);
  }
  return out;
}

export async function loadEventlogFixture(name: string): Promise<EventlogFixture> {
  const dir = fixtureDir();
  const bytes = new Uint8Array(await readFile(`${dir}${name}.bin`));
  const j = rec(JSON.parse(await readFile(`${dir}${name}.json`, 'utf8')), `${name}.json`);
  const description = j['description'];
  if (typeof description !== 'string') throw new Error(`${name}.json needs a description`);
  const out: { -readonly [K in keyof EventlogFixture]: EventlogFixture[K] } = { name, bytes, description };
  if (typeof j['error'] === 'string') out.error = j['error'];
  if (typeof j['events'] === 'number') out.events = j['events'];
  if (Array.isArray(j['banks'])) out.banks = j['banks'].filter((b): b is BankName => b === 'sha1' || b === 'sha256' || b === 'sha384' || b === 'sha512');
  if (j['startupLocality'] === null || typeof j['startupLocality'] === 'number') out.startupLocality = j['startupLocality'];
  if (j['pcrs'] !== undefined) out.pcrs = pcrMap(j['pcrs'], `${name}.json pcrs`);
  if (j['tpmPcrs'] !== undefined) out.tpmPcrs = pcrMap(j['tpmPcrs'], `${name}.json tpmPcrs`);
  if (Array.isArray(j['quirks'])) out.quirks = j['quirks'].filter((q): q is string => typeof q === 'string');
  if (j['secureBoot'] === null || typeof j['secureBoot'] === 'boolean') out.secureBoot = j['secureBoot'];
  if (j['tpm2EventlogDiffers'] !== undefined) {
    const d = rec(j['tpm2EventlogDiffers'], `${name}.json tpm2EventlogDiffers`);
    const pcrs = d['pcrs'];
    const reason = d['reason'];
    if (!Array.isArray(pcrs) || typeof reason !== 'string') throw new Error(`${name}.json tpm2EventlogDiffers needs pcrs and reason`);
    out.tpm2EventlogDiffers = { pcrs: pcrs.filter((p): p is number => typeof p === 'number'), reason };
  }
  return out;
}

/** tpm2_eventlog's replay of a log file: bank → PCR → hex, or the exit status when it fails or crashes. */
export async function tpm2Eventlog(path: string): Promise<{ ok: true; pcrs: Map<BankName, Map<number, string>> } | { ok: false; exitCode: number | undefined; signal: string | undefined }> {
  const res = await execa('tpm2_eventlog', [path], { reject: false, timeout: 20_000 });
  if (res.exitCode !== 0) return { ok: false, exitCode: res.exitCode, signal: res.signal };
  const pcrs = new Map<BankName, Map<number, string>>();
  const tail = res.stdout.slice(res.stdout.lastIndexOf('\npcrs:'));
  let bank: BankName | undefined;
  for (const line of tail.split('\n')) {
    const b = /^\s{2}(sha1|sha256|sha384|sha512):\s*$/.exec(line);
    if (b !== null) {
      const name = b[1];
      bank = name === 'sha1' || name === 'sha256' || name === 'sha384' || name === 'sha512' ? name : undefined;
      if (bank !== undefined) pcrs.set(bank, new Map());
      continue;
    }
    const v = /^\s+(\d+)\s*:\s*0x([0-9A-Fa-f]+)\s*$/.exec(line);
    if (v !== null && bank !== undefined) pcrs.get(bank)?.set(Number(v[1]), (v[2] ?? '').toLowerCase());
  }
  return { ok: true, pcrs };
}

/**
 * A policy document that accepts exactly `built`'s boot, written from the builder's own
 * knowledge (not from lib/eventlog), with `edit` applied to the object before it is
 * serialized.
 */
export function policyDocument(built: BuiltBoot, edit: (doc: Record<string, unknown>) => void = () => undefined): string {
  const dbx = built.scenario.dbxHashes;
  const doc: Record<string, unknown> = {
    $schema: './schema.json',
    name: 'debian12-test',
    bank: 'sha256',
    secureBoot: {
      enabled: true,
      pk: [built.certs.pk],
      kek: [built.certs.kek],
      db: built.certs.db.slice(0, 2),
      dbxRequired: [...dbx],
      authorities: [built.certs.db[0], built.certs.shimVendor],
    },
    stages: {
      firmware: built.sha256.firmware,
      shim: [built.sha256.shim],
      grub: [built.sha256.grub],
      grubFiles: built.sha256.grubFiles,
      kernel: [built.sha256.kernelImage, built.sha256.kernelFile],
      initrd: [built.sha256.initrd],
    },
    kernelCmdline: { pattern: 'BOOT_IMAGE=/vmlinuz-[0-9.]+-[0-9]+-amd64 root=UUID=[0-9a-f-]{36} ro( quiet)?( splash)?' },
  };
  edit(doc);
  return JSON.stringify(doc, null, 2);
}
