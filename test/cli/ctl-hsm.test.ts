/**
 * `bulwarkctl hsm keygen|list|pubkey`, the built CLI run as a process against a SoftHSM2
 * token: keys made by the CLI are seen by pkcs11-tool with their type and id, the PEM it
 * prints verifies a signature the token made, and failures are one coded line with the
 * documented exit code and no PIN.
 */
import t from 'tap';
import { createPublicKey, verify } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { parsePkcs11Uri } from '../../lib/pkcs11/index.js';
import { SOFTHSM_MODULE, startSoftHsm } from '../helpers/softhsm.js';

const CTL_MAIN = fileURLToPath(new URL('../../cli/bulwarkctl.js', import.meta.url));
const PIN = '918273';
const soft = await startSoftHsm('ctl-hsm');
t.teardown(() => soft.cleanup());
await soft.initToken('cli', PIN);
const pinFile = join(soft.dir, 'pin');
await writeFile(pinFile, `${PIN}\n`, { mode: 0o600 });

async function ctl(args: readonly string[], env: Record<string, string> = {}): Promise<{ code: number; out: string; err: string }> {
  const r = await execa('node', [CTL_MAIN, ...args], { env: { ...soft.env, ...env }, extendEnv: false, reject: false, stripFinalNewline: false, timeout: 60_000 });
  return { code: r.exitCode ?? -1, out: r.stdout, err: r.stderr };
}

t.test('keygen, list and pubkey', async (t) => {
  const made = await ctl(['hsm', 'keygen', '--token', 'cli', '--label', 'release', '--type', 'ec-p256', '--id', 'a1b2', '--module', SOFTHSM_MODULE, '--pin-file', pinFile]);
  t.equal(made.code, 0, made.err);
  t.equal(made.out, 'pkcs11:token=cli;object=release;id=%A1%B2;type=private\n');
  const rsa = await ctl(['hsm', 'keygen', '--token', 'cli', '--label', 'audit', '--type', 'rsa-2048', '--json'], { BULWARK_PKCS11_MODULE: SOFTHSM_MODULE, BULWARK_PKCS11_PIN: PIN });
  t.equal(rsa.code, 0, rsa.err);
  t.match(rsa.out, /"type":"rsa-2048"/);
  t.match(rsa.out, /-----BEGIN PUBLIC KEY-----/);

  const listed = await ctl(['hsm', 'list', '--token', 'cli', '--module', SOFTHSM_MODULE, '--pin-file', pinFile]);
  t.equal(listed.code, 0, listed.err);
  t.match(listed.out, /^LABEL\s+ID\s+TYPE\s+URI\n/);
  t.match(listed.out, /^audit\s+[0-9a-f]{16}\s+rsa-2048\s+pkcs11:token=cli;object=audit;id=(%[0-9A-F]{2}){8};type=private$/m);
  t.match(listed.out, /^release\s+a1b2\s+ec-p256\s+pkcs11:token=cli;object=release;id=%A1%B2;type=private$/m);

  const tool = await soft.pkcs11Tool(['--token-label', 'cli', '--list-objects']);
  t.match(tool, /Public Key Object; EC {2}EC_POINT 256 bits[\s\S]*?label:\s+release\s+ID:\s+a1b2/, 'pkcs11-tool sees the EC key with its id');
  t.match(tool, /Public Key Object; RSA 2048 bits[\s\S]*?label:\s+audit/, 'and the RSA key');

  const pub = await ctl(['hsm', 'pubkey', `pkcs11:token=cli;object=release?module-path=${SOFTHSM_MODULE}`]);
  t.equal(pub.code, 0, pub.err);
  t.match(pub.out, /^-----BEGIN PUBLIC KEY-----\n[\s\S]+-----END PUBLIC KEY-----\n$/);
  // A signature the token makes (through pkcs11-tool) verifies with the printed PEM.
  const data = join(soft.dir, 'data');
  const digest = join(soft.dir, 'digest');
  const sig = join(soft.dir, 'sig');
  await writeFile(data, 'artifact');
  const { createHash } = await import('node:crypto');
  await writeFile(digest, createHash('sha256').update('artifact').digest());
  await soft.pkcs11Tool(['--token-label', 'cli', '--login', '--pin', PIN, '--sign', '--id', 'a1b2', '--mechanism', 'ECDSA', '--signature-format', 'openssl', '-i', digest, '-o', sig]);
  t.ok(verify('sha256', await readFile(data), createPublicKey(pub.out), await readFile(sig)), 'the PEM verifies a token signature');
  t.equal(parsePkcs11Uri(made.out.trim()).object, 'release');
});

t.test('failures: one coded line, the documented exit code, no PIN', async (t) => {
  const cases: ReadonlyArray<readonly [readonly string[], Record<string, string>, number, RegExp]> = [
    [['hsm', 'list', '--token', 'cli'], {}, 4, /^bulwarkctl: PKCS11_MODULE_MISSING: /],
    [['hsm', 'list', '--token', 'cli', '--module', '/nonexistent.so'], {}, 4, /^bulwarkctl: PKCS11_MODULE_MISSING: /],
    [['hsm', 'list', '--token', 'nope', '--module', SOFTHSM_MODULE], {}, 1, /^bulwarkctl: PKCS11_TOKEN_MISSING: /],
    [['hsm', 'keygen', '--token', 'cli', '--label', 'x', '--type', 'ec-p256', '--module', SOFTHSM_MODULE], { BULWARK_PKCS11_PIN: '000000-wrong' }, 1, /^bulwarkctl: PKCS11_PIN_INCORRECT: /],
    [['hsm', 'keygen', '--token', 'cli', '--label', 'x', '--type', 'ec-p256', '--module', SOFTHSM_MODULE], {}, 2, /^bulwarkctl: PKCS11_PIN_MISSING: /],
    [['hsm', 'keygen', '--token', 'cli', '--label', 'x', '--type', 'dsa', '--module', SOFTHSM_MODULE], {}, 2, /^bulwarkctl: USAGE: .*dsa/],
    [['hsm', 'pubkey', 'pkcs11:token=cli;object=missing', '--module', SOFTHSM_MODULE], {}, 1, /^bulwarkctl: PKCS11_KEY_NOT_FOUND: /],
    [['hsm', 'pubkey', 'pkcs11:token=cli;object=a;object=b', '--module', SOFTHSM_MODULE], {}, 3, /^bulwarkctl: PKCS11_URI_INVALID: /],
    [['hsm', 'pubkey', `pkcs11:token=cli;object=release;id=%A1%B2?pin-value=000000-wrong&module-path=${SOFTHSM_MODULE}`], {}, 1, /^bulwarkctl: PKCS11_PIN_INCORRECT: /],
  ];
  for (const [args, env, code, err] of cases) {
    const r = await ctl(args, env);
    t.equal(r.code, code, `${args.join(' ')}: exit ${code}`);
    t.match(r.err, err);
    t.equal(r.err.split('\n').filter((l) => l.startsWith('bulwarkctl: ')).length, 1, 'one coded line');
    t.notMatch(r.err, /000000-wrong/, 'no PIN in the output');
    t.notMatch(r.err, /\n\s+at .+:\d+:\d+/, 'no stack trace');
    t.equal(r.out, '');
  }
});
