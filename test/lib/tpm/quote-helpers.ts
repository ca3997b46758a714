/**
 * Test helpers for quotes: making real quotes with tpm2-tools on a swtpm, and loading the
 * captured fixtures in test/fixtures/quote/ (NAME.msg, NAME.sig, NAME.pcrs, NAME.ak.pem,
 * NAME.json). Test code only; never imported by lib/.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fromHex } from '../../../lib/bytes.js';
import { isErrorCode, type ErrorCode } from '../../../lib/errors.js';
import { parsePcrSelectionSpec } from '../../../lib/tpm/pcrs.js';
import type { PcrSelection } from '../../../lib/tpm/types.js';
import type { SwtpmProcess } from '../../helpers/swtpm.js';

/** The repository root, found from this file whether it runs from test/ or dist/test/. */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 8; i++) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'test', 'fixtures'))) return dir;
    dir = dirname(dir);
  }
  throw new Error('repository root not found');
}

export function quoteFixturesDir(): string {
  return join(repoRoot(), 'test', 'fixtures', 'quote');
}

/** The selection Bulwark quotes (DESIGN.md: PCR sha256:0-7,10). */
export const DEFAULT_SPEC = 'sha256:0,1,2,3,4,5,6,7,10';

/** The raw outputs of one tpm2_quote run. */
export interface QuoteFiles {
  readonly msg: Uint8Array;
  readonly sig: Uint8Array;
  readonly pcrs: Uint8Array;
}

export interface QuoteFixture extends QuoteFiles {
  readonly name: string;
  readonly akPem: string;
  readonly ak: KeyObject;
  /** The nonce the verifier expects (not necessarily the one quoted). */
  readonly nonce: Uint8Array;
  readonly selection: PcrSelection[];
  readonly ok: boolean;
  /** Finding codes expected, in order, when `ok` is false. */
  readonly codes: readonly ErrorCode[];
  /** sha256 PCR values read independently with tpm2_pcrread, index → hex (ok fixtures). */
  readonly pcrValues: ReadonlyMap<number, string>;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Validates a fixture's NAME.json (test data is still checked before use). */
function parseFixtureJson(name: string, text: string): { nonce: string; selection: string; ok: boolean; codes: ErrorCode[]; pcrValues: Map<number, string> } {
  const v: unknown = JSON.parse(text);
  if (!isRecord(v)) throw new Error(`${name}.json is not an object`);
  const { nonce, selection, ok, codes, pcrValues } = v;
  if (typeof nonce !== 'string' || typeof selection !== 'string' || typeof ok !== 'boolean') {
    throw new Error(`${name}.json needs nonce (hex), selection (text) and ok (boolean)`);
  }
  const codeList: ErrorCode[] = [];
  if (codes !== undefined) {
    if (!Array.isArray(codes)) throw new Error(`${name}.json codes is not an array`);
    for (const c of codes) {
      if (typeof c !== 'string' || !isErrorCode(c)) throw new Error(`${name}.json has unknown code ${String(c)}`);
      codeList.push(c);
    }
  }
  if (!ok && codeList.length === 0) throw new Error(`${name}.json expects failure without codes`);
  const values = new Map<number, string>();
  if (pcrValues !== undefined) {
    if (!isRecord(pcrValues)) throw new Error(`${name}.json pcrValues is not an object`);
    for (const [k, hex] of Object.entries(pcrValues)) {
      if (!/^\d+$/.test(k) || typeof hex !== 'string' || !/^[0-9a-f]{64}$/.test(hex)) throw new Error(`${name}.json pcrValues.${k} is invalid`);
      values.set(Number(k), hex);
    }
  }
  return { nonce, selection, ok, codes: codeList, pcrValues: values };
}

export async function listQuoteFixtures(): Promise<string[]> {
  const names = (await readdir(quoteFixturesDir())).filter((f) => f.endsWith('.json')).map((f) => f.slice(0, -'.json'.length));
  return names.sort();
}

const akCache = new Map<string, KeyObject>();

export async function loadQuoteFixture(name: string): Promise<QuoteFixture> {
  const dir = quoteFixturesDir();
  const read = async (ext: string): Promise<Uint8Array> => new Uint8Array(await readFile(join(dir, `${name}.${ext}`)));
  const json = parseFixtureJson(name, await readFile(join(dir, `${name}.json`), 'utf8'));
  const akPem = await readFile(join(dir, `${name}.ak.pem`), 'utf8');
  let ak = akCache.get(akPem);
  if (ak === undefined) {
    ak = createPublicKey(akPem);
    akCache.set(akPem, ak);
  }
  return {
    name,
    msg: await read('msg'),
    sig: await read('sig'),
    pcrs: await read('pcrs'),
    akPem,
    ak,
    nonce: fromHex(json.nonce, `${name} nonce`),
    selection: parsePcrSelectionSpec(json.selection),
    ok: json.ok,
    codes: json.codes,
    pcrValues: json.pcrValues,
  };
}

/** An AK made in a swtpm, persisted so no context has to be loaded again. */
export interface TestAk {
  readonly handle: string;
  readonly pem: string;
  readonly key: KeyObject;
  /** The scheme to pass to tpm2_quote --scheme (tpm2-tools 5.4 defaults RSA keys to rsassa). */
  readonly scheme: 'rsassa' | 'rsapss' | 'ecdsa';
}

/**
 * Creates an AK under the persisted RSA EK (0x81010001) with tpm2_createak, persists it at
 * `handle` with tpm2_evictcontrol and flushes the transient contexts (there is no resource
 * manager: loaded contexts run out after about three), then reads its public key as PEM.
 */
export async function createTestAk(tpm: SwtpmProcess, dir: string, handle: string, kind: 'rsa' | 'rsapss' | 'ecc'): Promise<TestAk> {
  const base = `ak-${handle}`;
  const alg = kind === 'ecc' ? ['-G', 'ecc', '-s', 'ecdsa'] : ['-G', 'rsa', '-s', kind === 'rsa' ? 'rsassa' : 'rsapss'];
  await tpm.tool('tpm2_createak', ['-C', '0x81010001', '-c', `${base}.ctx`, ...alg, '-g', 'sha256', '-u', `${base}.pub`, '-n', `${base}.name`, '-f', 'pem'], dir);
  await tpm.tool('tpm2_evictcontrol', ['-C', 'o', '-c', `${base}.ctx`, handle], dir);
  await tpm.tool('tpm2_flushcontext', ['-t'], dir);
  await tpm.tool('tpm2_flushcontext', ['-s'], dir);
  await tpm.tool('tpm2_readpublic', ['-c', handle, '-f', 'pem', '-o', `${base}.pem`], dir);
  const pem = await readFile(join(dir, `${base}.pem`), 'utf8');
  return { handle, pem, key: createPublicKey(pem), scheme: kind === 'ecc' ? 'ecdsa' : kind === 'rsa' ? 'rsassa' : 'rsapss' };
}

/**
 * Runs `tpm2_quote -c HANDLE -l SPEC -q NONCE -m msg -s sig -o pcrs -F serialized -g sha256
 * --scheme SCHEME` and returns the three files.
 */
export async function runQuote(tpm: SwtpmProcess, dir: string, ak: TestAk, spec: string, nonceHex: string, tag: string): Promise<QuoteFiles> {
  const p = (ext: string): string => join(dir, `${tag}.${ext}`);
  await tpm.tool('tpm2_quote', ['-c', ak.handle, '-l', spec, '-q', nonceHex, '-m', p('msg'), '-s', p('sig'), '-o', p('pcrs'), '-F', 'serialized', '-g', 'sha256', '--scheme', ak.scheme], dir);
  return {
    msg: new Uint8Array(await readFile(p('msg'))),
    sig: new Uint8Array(await readFile(p('sig'))),
    pcrs: new Uint8Array(await readFile(p('pcrs'))),
  };
}

/** Extends sha256 PCRs 0-7 and 10 with distinct values, so quoted values are not all zero. */
export async function extendBootPcrs(tpm: SwtpmProcess, seed: number): Promise<void> {
  const args: string[] = [];
  for (const pcr of [0, 1, 2, 3, 4, 5, 6, 7, 10]) args.push(`${pcr}:sha256=${((seed * 31 + pcr) & 0xff).toString(16).padStart(2, '0').repeat(32)}`);
  for (const a of args) await tpm.tool('tpm2_pcrextend', [a]);
}

/** sha256 PCR values read with tpm2_pcrread (independent of our decoder), index → hex. */
export async function readPcrsWithTool(tpm: SwtpmProcess, pcrs: readonly number[]): Promise<Map<number, string>> {
  const out = await tpm.tool('tpm2_pcrread', [`sha256:${pcrs.join(',')}`]);
  const values = new Map<number, string>();
  for (const m of out.matchAll(/^\s*(\d+)\s*:\s*0x([0-9A-Fa-f]{64})\s*$/gm)) values.set(Number(m[1]), (m[2] ?? '').toLowerCase());
  return values;
}
