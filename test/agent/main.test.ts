/**
 * bulwark-agent's command line (the real binary): --help, and usage errors (exit 2, before
 * any configuration, TPM or controller is touched) for unknown flags, a flag without its
 * value, a flag given twice and an unknown command.
 */
import t from 'tap';
import { execa } from 'execa';
import { fileURLToPath } from 'node:url';

const AGENT_MAIN = fileURLToPath(new URL('../../agent/main.js', import.meta.url));

async function agent(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  // A config path that does not exist: a run that got past argument parsing would fail differently.
  const r = await execa('node', [AGENT_MAIN, ...args], { reject: false, env: { BULWARK_AGENT_CONFIG: '/nonexistent/agent.json' } });
  return { code: r.exitCode ?? -1, stdout: r.stdout, stderr: r.stderr };
}

t.test('--help prints the usage', async (t) => {
  for (const flag of ['--help', '-h']) {
    const r = await agent(flag);
    t.equal(r.code, 0, flag);
    t.match(r.stdout, /^usage: bulwark-agent \[run\|enroll\|gate\|baseline apply\|sign\] \[--config FILE\]/);
    t.match(r.stdout, /sign FILE \[-o ENVELOPE\] \[--key PEM\|pkcs11:URI\]/);
    t.match(r.stdout, /baseline apply \[--dry-run\] \[--baseline FILE\]/);
    t.match(r.stdout, /gate --wait-trusted \[--timeout 5m\]/);
  }
});

t.test('usage errors: exit 2 with the reason and the usage', async (t) => {
  const cases: Array<[string[], RegExp]> = [
    [['--config'], /--config <value>' argument missing/],
    [['run', '--config'], /--config <value>' argument missing/],
    [['--config', '--help'], /--config' argument is ambiguous/],
    [['--bogus'], /Unknown option '--bogus'/],
    [['frobnicate'], /unknown command frobnicate/],
    [['run', 'enroll'], /unexpected argument enroll/],
    [['--config', 'a.json', '--config', 'b.json'], /option '--config' given more than once/],
    [['gate'], /gate needs --wait-trusted/],
    [['gate', '--wait-trusted', '--timeout'], /--timeout <value>' argument missing/],
    [['gate', '--wait-trusted', '--timeout', 'soon'], /--timeout takes a duration/],
    [['baseline'], /baseline needs a subcommand: apply/],
    [['baseline', 'remove'], /unknown baseline subcommand remove/],
    [['baseline', 'apply', 'now'], /unexpected argument now/],
    [['baseline', 'apply', '--baseline'], /--baseline <value>' argument missing/],
    [['run', '--dry-run'], /--dry-run and --baseline belong to baseline apply/],
    [['sign'], /sign needs a FILE/],
    [['sign', 'a', 'b'], /unexpected argument b/],
    [['sign', 'a', '-o'], /-o, --output <value>' argument missing/],
    [['run', '--key', 'k.pem'], /-o and --key are options of sign/],
  ];
  for (const [args, reason] of cases) {
    const r = await agent(...args);
    t.equal(r.code, 2, args.join(' '));
    t.match(r.stderr, /^bulwark-agent: /, `${args.join(' ')}: one line saying why`);
    t.match(r.stderr, reason);
    t.notMatch(r.stderr, /\n\s+at .+:\d+:\d+/, 'no stack trace');
  }
});
