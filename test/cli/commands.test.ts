/**
 * bulwarkctl's command tree: help generated from the definitions (every documented command
 * in `--help`, `COMMAND --help`), usage errors (exit 2, one coded line, no stack trace) for a
 * missing option value, an unknown option or command and a repeated option, and gRPC loaded
 * only by the commands that talk to the controller.
 */
import t, { type Test } from 'tap';
import { execa } from 'execa';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ctlHelp, runCtl } from '../../cli/index.js';
import { ensureControllerCa } from '../../controller/pki/index.js';

const CTL_MAIN = fileURLToPath(new URL('../../cli/bulwarkctl.js', import.meta.url));
const EVENTLOG = fileURLToPath(new URL('../../../test/fixtures/eventlog/debian-secureboot-sha1-sha256.bin', import.meta.url));

/** A credential set of a controller CA made for these tests (no controller runs). */
const pkiRoot = await mkdtemp(join(tmpdir(), 'bulwarkctl-pki-'));
t.teardown(() => rm(pkiRoot, { recursive: true, force: true }));
const CREDENTIALS = (await ensureControllerCa(join(pkiRoot, 'controller'))).paths.adminDir;

async function ctl(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runCtl(argv, { out: (s) => (out += s), err: (s) => (err += s), env: {} });
  return { code, out, err };
}

/** Every command the README documents, as its words. */
const DOCUMENTED = [
  'nodes',
  'node',
  'history',
  'watch',
  'reattest',
  'approve',
  'quote verify',
  'eventlog show',
  'eventlog replay',
  'eventlog export',
  'policy check',
  'policy measured-boot create',
  'policy runtime create',
  'policy import-keylime',
  'policy export-keylime',
  'policy push',
  'policy list',
  'policy show',
  'policy assign',
  'policy group',
  'keys init',
  'keys rotate',
  'keys show',
  'ima check',
  'hsm keygen',
  'hsm list',
  'hsm pubkey',
  'sign',
  'baseline check',
  'apps list',
  'apps deploy',
  'apps status',
  'apps stop',
  'credentials issue',
  'credentials revoke',
  'audit checkpoint',
  'audit export',
  'audit verify',
];

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function usageError(t: Test, r: { code: number; out: string; err: string }, what: RegExp): void {
  t.equal(r.code, 2, 'exit 2');
  t.match(r.err, /^bulwarkctl: USAGE: /, 'a coded line');
  t.match(r.err, what);
  t.match(r.err, /run 'bulwarkctl [a-z -]*--help' for usage/);
  t.notMatch(r.err, /\n\s+at .+:\d+:\d+/, 'no stack trace');
  t.equal(r.out, '', 'nothing on stdout');
}

t.test('--help lists every documented command with its synopsis, and the exit codes', async (t) => {
  const help = await ctl('--help');
  t.equal(help.code, 0);
  t.equal(help.err, '');
  t.equal(help.out, ctlHelp(), 'ctlHelp() is what --help prints');
  for (const words of DOCUMENTED) t.match(help.out, new RegExp(`^  ${escape(words)}( |$)`, 'm'), words);
  t.match(help.out, /^ {2}quote verify --ak AK\.pem --msg MSG --sig SIG --pcrs PCRS --nonce HEX$/m, 'required options bare, from the definition');
  t.match(help.out, /^ +\[--pcr-selection SEL\] \[--json\]$/m, 'optional ones in brackets');
  t.match(help.out, /^ {2}nodes \[--json\] /m);
  t.match(help.out, /\[--exclude REGEX\]\.\.\./, 'a repeatable option says so');
  t.match(help.out, /--controller <HOST:PORT>/);
  t.match(help.out, /Exit codes:\n {2}0 .*\n {2}1 .*\n {2}2 {2}usage error\n {2}3 .*\n {2}4 /);
  const bare = await ctl();
  t.equal(bare.code, 2, 'no command is a usage error');
  t.equal(bare.out, '');
  t.match(bare.err, /^Usage: bulwarkctl /, 'with the help on stderr');
});

t.test('COMMAND --help: usage, arguments and options of that command', async (t) => {
  for (const words of DOCUMENTED) {
    const r = await ctl(...words.split(' '), '--help');
    t.equal(r.code, 0, `${words} --help`);
    t.match(r.out, new RegExp(`^Usage: bulwarkctl ${escape(words)}( |$)`), `${words}: its usage line`);
    t.match(r.out, /Exit codes:/);
  }
  const verify = await ctl('quote', 'verify', '--help');
  for (const o of ['--ak <AK.pem>', '--msg <MSG>', '--sig <SIG>', '--pcrs <PCRS>', '--nonce <HEX>', '--pcr-selection <SEL>', '--json']) t.match(verify.out, o);
  t.match(verify.out, /Global Options:\n {2}--controller/);
  const ima = await ctl('ima', 'check', '--help');
  t.match(ima.out, /--bank <ALG> +.*\(choices: "sha1", "sha256", "sha384", "sha512"\)/s, 'choices come from the definition');
  const group = await ctl('policy', '--help');
  t.equal(group.code, 0);
  t.match(group.out, /^Usage: bulwarkctl policy COMMAND \[ARGS\]/);
  for (const words of DOCUMENTED.filter((w) => w.startsWith('policy '))) t.match(group.out, new RegExp(`^  ${escape(words)}( |$)`, 'm'), words);
  t.notMatch(group.out, /^ {2}nodes/m, 'only the commands of the group');
  t.same(await ctl('help', 'policy'), group, 'help COMMAND is COMMAND --help');
  const noSub = await ctl('policy');
  t.equal(noSub.code, 2, 'a group without its subcommand is a usage error');
  t.match(noSub.err, /^Usage: bulwarkctl policy /);
});

t.test('--json on every command that lists or reports', async (t) => {
  const listings = ['nodes', 'node', 'history', 'watch', 'reattest', 'approve', 'policy list', 'policy push', 'policy check', 'apps list', 'apps deploy', 'apps status', 'apps stop', 'quote verify', 'eventlog show', 'eventlog replay', 'ima check', 'baseline check'];
  for (const words of listings) t.match((await ctl(...words.split(' '), '--help')).out, /^ {2}--json +print JSON instead of text$/m, words);
  const defaults = await ctl('history', '--help');
  t.match(defaults.out, /--limit <N> +at most N transitions, newest last \(default: 50\)/, 'defaults come from the definition');
});

t.test('an option that needs a value and lacks it: exit 2', async (t) => {
  usageError(t, await ctl('history', 'node-1', '--limit'), /option '--limit <N>' argument missing/);
  usageError(t, await ctl('ima', 'check', 'x.log', '--policy'), /option '--policy <P>' argument missing/);
  usageError(t, await ctl('--controller'), /option '--controller <HOST:PORT>' argument missing/);
  usageError(t, await ctl('policy', 'runtime', 'create', '--rootfs'), /'--rootfs <DIR>' argument missing/);
  usageError(t, await ctl('eventlog', 'show'), /missing required argument 'FILE'/);
  usageError(t, await ctl('quote', 'verify', '--msg', 'm'), /required option '--ak <AK\.pem>' not specified/);
  usageError(t, await ctl('ima', 'check', 'x.log', '--policy', '--json'), /option '--policy <P>' argument missing \(--json is an option\)/);
  usageError(t, await ctl('--controller', '--help', 'nodes'), /option '--controller <HOST:PORT>' argument missing \(--help is an option\)/);
  usageError(t, await ctl('quote', 'verify', '--ak', '--msg=m', '--msg', 'm'), /'--ak <AK\.pem>' argument missing \(--msg=m is an option\)/);
  usageError(t, await ctl('history', 'node-1', '--limit', 'ten'), /'--limit <N>' argument 'ten' is invalid\. must be a positive integer/);
});

t.test('an unknown option or command: exit 2 with a short message', async (t) => {
  usageError(t, await ctl('eventlog', 'show', EVENTLOG, '--bogus'), /unknown option '--bogus'/);
  usageError(t, await ctl('--bogus', 'nodes'), /unknown option '--bogus'/);
  usageError(t, await ctl('nodes', '--limit', '3'), /unknown option '--limit'/);
  usageError(t, await ctl('frobnicate'), /unknown command 'frobnicate'/);
  usageError(t, await ctl('eventlog', 'frobnicate', EVENTLOG), /unknown command 'frobnicate'/);
  usageError(t, await ctl('eventlog', 'show', EVENTLOG, EVENTLOG), /too many arguments/);
  const near = await ctl('reatest', 'node-1');
  t.equal(near.code, 2);
  t.match(near.err, /Did you mean reattest\?/);
});

t.test('repeated options: a second value is refused, except --exclude which collects', async (t) => {
  usageError(t, await ctl('eventlog', 'show', EVENTLOG, '--json', '--json'), /option '--json' given more than once/);
  usageError(t, await ctl('ima', 'check', 'x.log', '--policy', 'a.json', '--policy', 'b.json'), /option '--policy <P>' given more than once/);
  usageError(t, await ctl('--controller', 'a:1', '--controller', 'b:2', 'nodes'), /option '--controller <HOST:PORT>' given more than once/);
  const dir = await mkdtemp(join(tmpdir(), 'bulwarkctl-commands-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await mkdir(join(dir, 'rootfs', 'usr', 'bin'), { recursive: true });
  const out = join(dir, 'policy.json');
  const r = await ctl('policy', 'runtime', 'create', '--rootfs', join(dir, 'rootfs'), '--exclude', '^/tmp/', '--exclude', '^/var/', '--output', out);
  t.equal(r.code, 0, r.err);
  t.match(JSON.parse(await readFile(out, 'utf8')), { excludes: ['boot_aggregate$', '^/tmp/', '^/var/'] }, 'both patterns, in order');
});

t.test('the options of the program work before or after the command', async (t) => {
  for (const argv of [
    ['--controller', '127.0.0.1:1', '--credentials', CREDENTIALS, 'nodes'],
    ['nodes', '--controller', '127.0.0.1:1', '--credentials', CREDENTIALS],
  ]) {
    const r = await ctl(...argv);
    t.equal(r.code, 4, `${argv.join(' ')}: the unreachable controller given was used`);
    t.match(r.err, /127\.0\.0\.1:1/);
  }
});

t.test('without credentials a controller command says how to get them, exit 2, no stack trace', async (t) => {
  const r = await ctl('--controller', '127.0.0.1:1', '--credentials', join(pkiRoot, 'nowhere'), 'nodes');
  t.equal(r.code, 2);
  t.match(r.err, /AUTH_CREDENTIALS_MISSING: no credentials in .*nowhere/);
  t.match(r.err, /credentials\/admin/, 'names the admin set on the controller host');
  t.match(r.err, /bulwarkctl credentials issue/, 'and how an admin issues one');
  t.notMatch(r.err, /\n\s+at /, 'no stack trace');
  const fromEnv = await runCtl(['nodes'], { out: () => undefined, err: () => undefined, env: { BULWARK_CREDENTIALS: join(pkiRoot, 'nowhere'), BULWARK_CONTROLLER: '127.0.0.1:1' } });
  t.equal(fromEnv, 2, '$BULWARK_CREDENTIALS is read');
  const withEnv = await runCtl(['nodes'], { out: () => undefined, err: () => undefined, env: { BULWARK_CREDENTIALS: CREDENTIALS, BULWARK_CONTROLLER: '127.0.0.1:1' } });
  t.equal(withEnv, 4, 'with credentials from $BULWARK_CREDENTIALS it goes on to the (unreachable) controller');
});

t.test('gRPC loads only for commands that talk to the controller', async (t) => {
  // Reports at exit whether node:http2 (which @grpc/grpc-js needs) was ever loaded.
  const probe = 'data:text/javascript,process.on("exit",()=>process.stderr.write("\\nhttp2 loaded: "+process.moduleLoadList.some((m)=>/ http2$/.test(m))+"\\n"))';
  const loadsHttp2 = async (args: string[]): Promise<boolean> => {
    const r = await execa('node', ['--import', probe, CTL_MAIN, ...args], { reject: false });
    const m = /http2 loaded: (true|false)\n?$/.exec(r.stderr);
    if (m === null) throw new Error(`no probe output: ${r.stderr}`);
    return m[1] === 'true';
  };
  t.equal(await loadsHttp2(['--help']), false, '--help');
  t.equal(await loadsHttp2(['policy', 'check', '--help']), false, 'policy check --help');
  t.equal(await loadsHttp2(['eventlog', 'replay', EVENTLOG]), false, 'eventlog replay (offline)');
  t.equal(await loadsHttp2(['--controller', '127.0.0.1:1', '--credentials', CREDENTIALS, 'nodes']), true, 'nodes does load it (the probe sees gRPC when it is there)');
});
