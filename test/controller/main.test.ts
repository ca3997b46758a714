/**
 * bulwark-controller's command line (the real binary): --help, and usage errors (exit 2,
 * before any configuration is loaded) for unknown flags, --config without its value, a flag
 * given twice and a stray argument.
 */
import t from 'tap';
import { execa } from 'execa';
import { fileURLToPath } from 'node:url';

const CONTROLLER_MAIN = fileURLToPath(new URL('../../controller/main.js', import.meta.url));

async function controller(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const r = await execa('node', [CONTROLLER_MAIN, ...args], { reject: false });
  return { code: r.exitCode ?? -1, stdout: r.stdout, stderr: r.stderr };
}

t.test('--help prints the usage', async (t) => {
  for (const flag of ['--help', '-h']) {
    const r = await controller(flag);
    t.equal(r.code, 0, flag);
    t.match(r.stdout, /^usage: bulwark-controller \[--config FILE\]/);
  }
});

t.test('usage errors: exit 2 with the reason and the usage', async (t) => {
  const cases: Array<[string[], RegExp]> = [
    [['--config'], /--config <value>' argument missing/],
    [['--config', '--help'], /--config' argument is ambiguous/],
    [['--bogus'], /Unknown option '--bogus'/],
    [['serve'], /Unexpected argument 'serve'/],
    [['--config', 'a.json', '--config', 'b.json'], /option '--config' given more than once/],
  ];
  for (const [args, reason] of cases) {
    const r = await controller(...args);
    t.equal(r.code, 2, args.join(' '));
    t.match(r.stderr, /^bulwark-controller: /);
    t.match(r.stderr, reason);
    t.match(r.stderr, /usage: bulwark-controller/);
    t.notMatch(r.stderr, /\n\s+at .+:\d+:\d+/, 'no stack trace');
  }
});
