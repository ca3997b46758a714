/**
 * The real bulwarkctl binary on captured tpm2_quote output: each exit code the help
 * documents, and never a stack trace for bad input.
 */
import t, { type Test } from 'tap';
import { execa } from 'execa';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CTL_MAIN } from '../helpers/fleet.js';

const fixtures = fileURLToPath(new URL('../../../test/fixtures/quote/', import.meta.url));
const dir = await mkdtemp(join(tmpdir(), 'bulwarkctl-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));

async function ctl(args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const r = await execa('node', [CTL_MAIN, ...args], { reject: false });
  return { code: r.exitCode ?? -1, stdout: r.stdout, stderr: r.stderr };
}

async function nonceOf(name: string): Promise<string> {
  const meta: unknown = JSON.parse(await readFile(join(fixtures, `${name}.json`), 'utf8'));
  const nonce: unknown = Reflect.get(Object(meta), 'nonce');
  if (typeof nonce !== 'string') throw new Error(`fixture ${name} has no nonce`);
  return nonce;
}

function quoteArgs(name: string, nonce: string, over: Partial<Record<'ak' | 'msg' | 'sig' | 'pcrs', string>> = {}): string[] {
  const f = (ext: string): string => join(fixtures, `${name}.${ext}`);
  return ['quote', 'verify', '--ak', over.ak ?? f('ak.pem'), '--msg', over.msg ?? f('msg'), '--sig', over.sig ?? f('sig'), '--pcrs', over.pcrs ?? f('pcrs'), '--nonce', nonce];
}

function noStack(t: Test, text: string): void {
  t.notMatch(text, /\n\s+at .+:\d+:\d+/, 'no stack trace');
}

t.test('a genuine RSA and ECC quote verify: exit 0', async (t) => {
  for (const name of ['rsa-rsassa-sha256', 'ecc-p256-ecdsa-sha256', 'rsa-rsapss-sha256']) {
    const r = await ctl(quoteArgs(name, await nonceOf(name)));
    t.equal(r.code, 0, name);
    t.match(r.stdout, /^verified/);
  }
  const json = await ctl([...quoteArgs('rsa-rsassa-sha256', await nonceOf('rsa-rsassa-sha256')), '--json']);
  const v: unknown = JSON.parse(json.stdout);
  t.equal(Reflect.get(Object(v), 'verified'), true);
});

t.test('a wrong nonce or another TPM: exit 1 with the finding code', async (t) => {
  const wrong = await ctl(quoteArgs('rsa-rsassa-sha256', randomBytes(32).toString('hex')));
  t.equal(wrong.code, 1);
  t.match(wrong.stdout, /QUOTE_NONCE_MISMATCH/);
  const other = await ctl(quoteArgs('rsa-other-tpm', await nonceOf('rsa-other-tpm')));
  t.equal(other.code, 1);
  t.match(other.stdout, /QUOTE_SIGNATURE_INVALID/);
});

t.test('an unsigned random message is judged, not parsed: exit 1', async (t) => {
  const garbage = join(dir, 'garbage-msg');
  await writeFile(garbage, randomBytes(300));
  const r = await ctl(quoteArgs('rsa-rsassa-sha256', await nonceOf('rsa-rsassa-sha256'), { msg: garbage }));
  t.equal(r.code, 1);
  t.match(r.stdout, /QUOTE_SIGNATURE_INVALID/);
});

t.test('usage errors: exit 2', async (t) => {
  for (const args of [['quote', 'verify', '--ak'], ['quote', 'verify'], ['nonsense'], [], ['quote', 'verify', '--bogus', 'x']]) {
    const r = await ctl(args);
    t.equal(r.code, 2, `bulwarkctl ${args.join(' ')}`);
    noStack(t, r.stderr);
  }
  const help = await ctl(['--help']);
  t.equal(help.code, 0);
  t.match(help.stdout, /Exit codes:/);
});

t.test('malformed input: exit 3, never a stack trace', async (t) => {
  const name = 'rsa-rsassa-sha256';
  const nonce = await nonceOf(name);
  const garbage = join(dir, 'garbage');
  await writeFile(garbage, randomBytes(300));
  const empty = join(dir, 'empty');
  await writeFile(empty, new Uint8Array(0));
  const cases: Array<[string, string[]]> = [
    ['random signature', quoteArgs(name, nonce, { sig: garbage })],
    ['random PCR file', quoteArgs(name, nonce, { pcrs: garbage })],
    ['empty message', quoteArgs(name, nonce, { msg: empty })],
    ['AK that is not a key', quoteArgs(name, nonce, { ak: garbage })],
    ['missing file', quoteArgs(name, nonce, { msg: join(dir, 'does-not-exist') })],
    ['nonce that is not hex', quoteArgs(name, 'zz-not-hex')],
  ];
  for (const [what, args] of cases) {
    const r = await ctl(args);
    t.equal(r.code, 3, what);
    t.match(r.stderr, /^bulwarkctl: [A-Z_]+: /, `${what}: a coded one-line error`);
    noStack(t, r.stderr);
  }
});
