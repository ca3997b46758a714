/**
 * `bulwark-agent baseline apply` (the real binary) against nft in a network namespace and a
 * SELinux tree written here: --dry-run prints the transaction and the SELinux changes and
 * leaves the host as it was (a real connection to 8080 still connects); without it the
 * table is applied (8080 times out, 22 connects) and SELinux set enforcing.
 */
import t from 'tap';
import { execa } from 'execa';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_BASELINE } from '../../lib/baseline/index.js';
import { NetnsHost } from '../helpers/netns.js';
import { writeSelinuxTree } from '../helpers/selinux-tree.js';
import { makeTempDir, removeDir } from '../helpers/swtpm.js';

const AGENT_MAIN = fileURLToPath(new URL('../../agent/main.js', import.meta.url));
const root = await makeTempDir('baseline-apply');
t.teardown(() => removeDir(root));

t.test('baseline apply --dry-run prints and applies nothing; without it, it applies', async (t) => {
  const host = await NetnsHost.create({ ports: [22, 8080] }, t);
  const tree = join(root, 'tree');
  await writeSelinuxTree(tree, { enforce: '0' });
  const dataDir = join(root, 'data');
  await mkdir(dataDir);
  const config = join(root, 'agent.json');
  await writeFile(config, JSON.stringify({ dataDir, selinuxRoot: tree, nftCommand: host.nftCommand }));
  const baselineFile = join(root, 'baseline.json');
  await writeFile(baselineFile, JSON.stringify(DEFAULT_BASELINE));
  const agent = (...args: string[]) => execa('node', [AGENT_MAIN, ...args, '--config', config], { reject: false, all: true, env: { BULWARK_LOG_LEVEL: 'error' } });

  const held = await agent('baseline', 'apply', '--dry-run');
  t.equal(held.exitCode, 2, 'no held baseline and none given: a usage error');
  t.match(held.all, /no baseline is held/, 'the fatal log line says why');

  const dry = await agent('baseline', 'apply', '--dry-run', '--baseline', baselineFile);
  t.equal(dry.exitCode, 0, dry.stderr);
  t.match(dry.stdout, /baseline default \(mode report, sha256 [0-9a-f]{64}\)/);
  t.match(dry.stdout, /drift: Bulwark's table inet bulwark is missing/);
  t.match(dry.stdout, /table inet bulwark \{/, 'the transaction');
  t.match(dry.stdout, /tcp dport 22 accept/);
  t.match(dry.stdout, /selinux: would setenforce 1/);
  t.match(dry.stdout, /dry run: nothing applied/);
  t.equal((await host.run(['nft', 'list', 'ruleset'])).trim(), '', 'no ruleset was applied');
  t.equal(await readFile(join(tree, 'sys/fs/selinux/enforce'), 'utf8'), '0', 'SELinux untouched');
  t.equal(await host.connect(8080), 'connected', '8080 still connects');

  const applied = await agent('baseline', 'apply', '--baseline', baselineFile);
  t.equal(applied.exitCode, 0, applied.stderr);
  t.match(applied.stdout, /done: nftables: replaced table inet bulwark/);
  t.match(applied.stdout, /done: selinux: setenforce 1/);
  t.equal(await host.connect(8080), 'timeout', '8080 times out');
  t.equal(await host.connect(22), 'connected', '22 connects');
  t.equal(await readFile(join(tree, 'sys/fs/selinux/enforce'), 'utf8'), '1', 'SELinux enforcing');

  await writeFile(join(dataDir, 'baseline.json'), JSON.stringify({ version: 1, name: 'broken' }));
  const broken = await agent('baseline', 'apply', '--dry-run');
  t.equal(broken.exitCode, 1, 'a held baseline that does not validate');
  t.match(broken.all, /BASELINE_INVALID/);
});
