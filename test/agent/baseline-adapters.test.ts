/**
 * The baseline adapters on their own: the nft adapter against real nft in a network
 * namespace (list, check, apply, monitor, failures typed), the per-boot report log
 * (fsynced records read back, a cut-short tail dropped, a new boot starting over), and
 * the SELinux tree reader on a tree written here.
 */
import t from 'tap';
import { createHash } from 'node:crypto';
import { mkdir, readFile, readdir, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Nftables, ReportLog, writeSelinuxBooleans, writeSelinuxEnforcing } from '../../agent/baseline/index.js';
import { readSelinuxTree } from '../../daemon/index.js';
import { BulwarkError } from '../../lib/errors.js';
import { parseSelinuxTree } from '../../lib/baseline/index.js';
import { makeTempDir, removeDir } from '../helpers/swtpm.js';
import { NetnsHost, nftMonitorSubscribed } from '../helpers/netns.js';
import { waitFor, waitUntil } from '../helpers/wait.js';

const root = await makeTempDir('baseline-adapters');
t.teardown(() => removeDir(root));

t.test('nft adapter: list, check, apply in a namespace; failures are typed', async (t) => {
  const host = await NetnsHost.create({}, t);
  const nft = new Nftables({ command: host.nftCommand });
  const empty: unknown = JSON.parse(await nft.listRuleset());
  t.match(empty, { nftables: [{ metainfo: { json_schema_version: 1 } }] }, 'an empty ruleset is metainfo only');
  const table = 'table inet probe {\n  chain input { type filter hook input priority 0; policy accept; tcp dport 8080 accept; }\n}\n';
  await nft.check(table);
  t.notMatch(await nft.listRuleset(), /"probe"/, 'nft -c applies nothing');
  await nft.apply(table);
  t.match(await nft.listRuleset(), /"name": ?"probe"/, 'nft -f applied the table');
  await t.rejects(nft.check('table inet probe { chain input { bogus } }'), { code: 'NFT_TOOL_FAILED', message: /syntax error|Error/ }, 'a transaction nft refuses');
  await t.rejects(nft.apply('delete table inet missing\n'), { code: 'NFT_TOOL_FAILED' }, 'deleting a table that does not exist');

  const small = new Nftables({ command: host.nftCommand, maxOutputBytes: 64 });
  await t.rejects(small.listRuleset(), { code: 'NFT_TOOL_OUTPUT_TOO_LARGE' }, 'output past the cap');
  await t.rejects(new Nftables({ command: ['/nonexistent/nft'] }).listRuleset(), { code: 'NFT_TOOL_FAILED' }, 'no nft at all');
  // `sh -c 'sleep 30' sh -j list ruleset`: a command that never answers.
  await t.rejects(new Nftables({ command: ['sh', '-c', 'sleep 30', 'sh'], timeoutMs: 300 }).listRuleset(), { code: 'NFT_TOOL_TIMEOUT' }, 'a hung nft is killed');
  t.throws(() => new Nftables({ command: [] }), BulwarkError, 'an empty command');
});

t.test('nft monitor: a ruleset change calls onChange; a monitor that exits is started again; stop() ends it', async (t) => {
  const host = await NetnsHost.create({}, t);
  const nft = new Nftables({ command: host.nftCommand });
  let changes = 0;
  const monitor = nft.monitor(() => changes++);
  t.teardown(() => monitor.stop());
  const firstPid = await waitFor('the monitor process', () => monitor.pid, 10_000);
  await waitUntil('the monitor subscribed to nftables events', () => nftMonitorSubscribed(firstPid), 10_000);
  await host.nft('table inet watched { }\n');
  await waitUntil('onChange after a table was added', async () => changes > 0, 10_000);
  process.kill(firstPid, 'SIGKILL');
  const secondPid = await waitFor('a new monitor process', () => (monitor.pid !== undefined && monitor.pid !== firstPid ? monitor.pid : undefined), 15_000);
  t.equal(monitor.starts, 2, 'started again after it was killed');
  await waitUntil('the new monitor subscribed', () => nftMonitorSubscribed(secondPid), 10_000);
  const before = changes;
  await host.nft('delete table inet watched\n');
  await waitUntil('onChange from the restarted monitor', async () => changes > before, 10_000);
  await monitor.stop();
  t.equal(monitor.pid, undefined, 'no process after stop');
  await t.rejects(stat(`/proc/${secondPid}/status`), { code: 'ENOENT' }, 'the monitor process is gone');
});

t.test('report log: records read back, a cut-short tail dropped, a new boot starts over', async (t) => {
  const dir = join(root, 'log');
  const { log } = await ReportLog.open(dir, 'boot-a');
  const records = [new TextEncoder().encode('{"seq":0}'), new TextEncoder().encode('{"seq":1}'), new Uint8Array(70_000).fill(7)];
  for (const r of records) await log.append(r);
  t.equal(log.length, 3);

  const again = await ReportLog.open(dir, 'boot-a');
  t.equal(again.droppedTail, 0);
  t.same(again.log.records.map((r) => Buffer.from(r).toString('hex')), records.map((r) => Buffer.from(r).toString('hex')), 'the same boot reads its chain back');

  // The agent stopped while writing a fourth record: half of it is on disk.
  const file = join(dir, 'boot-a.log');
  const whole = (await stat(file)).size;
  await again.log.append(new Uint8Array(100).fill(9));
  await truncate(file, whole + 50);
  const cut = await ReportLog.open(dir, 'boot-a');
  t.equal(cut.log.length, 3, 'the cut-short record is not part of the chain');
  t.equal(cut.droppedTail, 50);
  t.equal((await stat(file)).size, whole, 'and is cut from the file');
  await cut.log.append(new Uint8Array([1, 2, 3]));
  t.equal((await ReportLog.open(dir, 'boot-a')).log.length, 4, 'appending goes on after the dropped tail');

  const next = await ReportLog.open(dir, 'boot-b');
  t.equal(next.log.length, 0, 'a new boot id starts a new chain');
  t.same(await readdir(dir), ['boot-b.log'], 'and removes the old boot\'s log');

  // A length no report can have is corruption, not a tail.
  await writeFile(join(dir, 'boot-c.log'), Buffer.from([0xff, 0xff, 0xff, 0xff, 1, 2, 3]));
  await t.rejects(ReportLog.open(dir, 'boot-c'), { code: 'STORE_CORRUPT' }, 'a record longer than any report');
  const odd = await ReportLog.open(dir, '../../etc/passwd');
  await odd.log.append(new Uint8Array([1]));
  t.ok((await readdir(dir)).every((n) => /^[0-9a-f]{64}\.log$/.test(n)), 'a boot id that is no plain token is hashed into the file name');
});

t.test('SELinux tree (daemon reader) as the agent reads it; writes go to the existing files only', async (t) => {
  const tree = join(root, 'selinux');
  await mkdir(join(tree, 'sys/fs/selinux/booleans'), { recursive: true });
  await mkdir(join(tree, 'etc/selinux'), { recursive: true });
  for (const m of ['base', 'apache']) await mkdir(join(tree, 'var/lib/selinux/default/active/modules/100', m), { recursive: true });
  await mkdir(join(tree, 'var/lib/selinux/default/active/modules/400/local'), { recursive: true });
  await writeFile(join(tree, 'sys/fs/selinux/enforce'), '0');
  await writeFile(join(tree, 'sys/fs/selinux/policyvers'), '33');
  await writeFile(join(tree, 'sys/fs/selinux/policy'), 'policy bytes');
  await writeFile(join(tree, 'sys/fs/selinux/commit_pending_bools'), '0');
  await writeFile(join(tree, 'sys/fs/selinux/booleans/httpd_can_network_connect'), '0 0');
  await writeFile(join(tree, 'etc/selinux/config'), 'SELINUX=enforcing\nSELINUXTYPE=default\n');
  const read = await readSelinuxTree(tree);
  const text = (key: string): string | null => {
    const v = read.get(key);
    return v === undefined || v === null ? null : Buffer.from(v).toString();
  };
  t.equal(text('sys/fs/selinux/enforce'), '0');
  t.equal(text('sys/fs/selinux/policy#sha256'), createHash('sha256').update('policy bytes').digest('hex'), 'the policy is hashed, not copied');
  t.equal(text('sys/fs/selinux/booleans/'), 'httpd_can_network_connect', 'the booleans listed');
  t.equal(text('sys/fs/selinux/booleans/httpd_can_network_connect'), '0 0', 'and each read');
  t.equal(text('var/lib/selinux/default/active/modules/'), '100\n400', 'the priorities of the configured policy type');
  t.equal(text('var/lib/selinux/default/active/modules/100/'), 'apache\nbase', 'the modules at priority 100');
  t.equal(text('var/lib/selinux/default/active/modules/400/'), 'local');
  t.same(parseSelinuxTree(read), {
    present: true,
    mode: 'permissive',
    configMode: 'enforcing',
    policyType: 'default',
    policyVersion: 33,
    policyHash: createHash('sha256').update('policy bytes').digest('hex'),
    booleans: { httpd_can_network_connect: false },
    modules: ['apache', 'base', 'local'],
  }, 'the lib parses what the reader read');
  const none = await readSelinuxTree(join(root, 'no-selinux'));
  t.same([...none.values()].filter((v) => v !== null), [], 'no tree at all: every key null');
  t.equal(parseSelinuxTree(none).present, false, 'which is SELinux absent');

  await writeSelinuxEnforcing(tree);
  t.equal(await readFile(join(tree, 'sys/fs/selinux/enforce'), 'utf8'), '1');
  await writeSelinuxBooleans(tree, { httpd_can_network_connect: true });
  t.equal(await readFile(join(tree, 'sys/fs/selinux/booleans/httpd_can_network_connect'), 'utf8'), '1 0', 'written over the value, as selinuxfs takes it');
  t.equal(await readFile(join(tree, 'sys/fs/selinux/commit_pending_bools'), 'utf8'), '1', 'and committed');
  await t.rejects(writeSelinuxBooleans(tree, { no_such_boolean: true }), { code: 'IO_FAILED' }, 'a boolean selinuxfs does not have is not created');
  await t.rejects(writeSelinuxBooleans(tree, { '../enforce': true }), { code: 'USAGE' }, 'a name that leaves the booleans folder');
  await writeFile(join(tree, 'sys/fs/selinux/policyvers'), Buffer.alloc(600 * 1024, 0x31));
  await t.rejects(readSelinuxTree(tree), { code: 'BASELINE_REPORT_INVALID' }, 'a value larger than any selinuxfs value');
  await writeFile(join(tree, 'sys/fs/selinux/policyvers'), '33');
  await writeFile(join(tree, 'etc/selinux/config'), 'SELINUX=enforcing\nSELINUXTYPE=../../../etc\n');
  await t.rejects(readSelinuxTree(tree), { code: 'BASELINE_REPORT_INVALID' }, 'a policy type that would lead out of the store is refused before anything is read');
});
