import t from 'tap';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { collectHostFacts, collectHostFactsReport } from '../../agent/facts.js';
import { factsDigest, validateHostFacts } from '../../lib/facts/facts.js';

t.test('collectHostFacts returns validated facts of this machine', async (t) => {
  const facts = await collectHostFacts();
  t.equal(facts.hostname, hostname());
  t.ok(facts.hostname.length > 0);
  t.same(validateHostFacts(JSON.parse(JSON.stringify(facts))), facts, 'survives a JSON round trip and validation');
  t.ok(facts.memoryBytes > 0, 'memory is known');
  t.ok(facts.cpuCores > 0, 'cores are known');
  t.match(facts.kernel, /\S/, 'kernel release is known');
  t.ok(facts.interfaces.every((i) => i.name !== 'lo'), 'no loopback');
  t.same(
    facts.interfaces.map((i) => i.name),
    [...facts.interfaces.map((i) => i.name)].sort(),
    'interfaces sorted',
  );
  const again = await collectHostFacts();
  t.equal(factsDigest(again), factsDigest(facts), 'two collections of an unchanged host have the same digest');
});

t.test('a source that fails is reported and left empty, the rest is collected', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'bulwark-facts-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));

  const missing = await collectHostFactsReport({ machineIdPath: join(dir, 'no-such-file') });
  t.equal(missing.facts.machineId, '');
  t.ok(missing.failures.some((f) => f.section === 'machineId' && /ENOENT/.test(f.message)), 'the missing machine id is reported');
  t.equal(missing.facts.hostname, hostname(), 'other facts are still there');

  const garbage = join(dir, 'machine-id');
  await writeFile(garbage, 'not-a-machine-id\u001b[2J\n');
  const bad = await collectHostFactsReport({ machineIdPath: garbage });
  t.equal(bad.facts.machineId, '', 'a malformed machine id is not reported as a fact');
  t.ok(bad.failures.some((f) => f.section === 'machineId'));

  await writeFile(garbage, '3d1219c7c4c5404aaa1f6d2a48adfda4\n');
  t.equal((await collectHostFactsReport({ machineIdPath: garbage })).facts.machineId, '3d1219c7c4c5404aaa1f6d2a48adfda4');
});

t.test('a source slower than its limit is reported, not waited for', async (t) => {
  // A FIFO without a writer blocks the read forever: the limit must end it.
  const dir = await mkdtemp(join(tmpdir(), 'bulwark-facts-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const { execFileSync } = await import('node:child_process');
  const fifo = join(dir, 'fifo');
  execFileSync('mkfifo', [fifo]);
  // Returning at all is the point (a read that is waited for never returns; tap's timeout catches that).
  const report = await collectHostFactsReport({ machineIdPath: fifo, sourceTimeoutMs: 1500 });
  t.ok(report.failures.some((f) => f.section === 'machineId' && /no answer within 1500 ms/.test(f.message)), 'the timeout is reported');
  t.equal(report.facts.hostname, hostname());
  // Unblock the pending read so the process can exit.
  const { writeFileSync } = await import('node:fs');
  writeFileSync(fifo, 'x');
});
