/**
 * bulwarkctl's IMA commands through runCtl, as an operator runs them: a policy generated
 * from a Debian-like root filesystem, `ima check` of lists of that host (exit 0 ok, 1 finding,
 * 2 usage, 3 malformed), and Keylime import/export of the fixture policy.
 */
import t from 'tap';
import { copyFile, mkdir, mkdtemp, readFile, rm, symlink, writeFile, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runCtl, scanRootfs } from '../../cli/index.js';
import { importKeylimeRuntimePolicy, parseRuntimePolicy, formatRuntimePolicy } from '../../lib/ima/index.js';
import { ImaLogBuilder } from '../helpers/ima-builder.js';
import { sha256 } from '../lib/ima/ima-test-logs.js';

const FIXTURES = fileURLToPath(new URL('../../../test/fixtures/ima/', import.meta.url));

async function ctl(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runCtl(argv, { out: (s) => (out += s), err: (s) => (err += s), env: {} });
  return { code, out, err };
}

t.test('bulwarkctl policy runtime create, ima check, policy import/export-keylime', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'bulwark-ctl-ima-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));

  // A small Debian-like root filesystem (merged /usr): real binaries and a library, a module,
  // scripts, and files IMA would not measure.
  const rootfs = join(dir, 'rootfs');
  const p = (rel: string): string => join(rootfs, rel);
  for (const d of ['usr/bin', 'usr/lib/x86_64-linux-gnu', 'usr/lib/modules/6.1.0-18-amd64/kernel/fs', 'usr/share/doc/bash', 'etc/init.d']) await mkdir(p(d), { recursive: true });
  await copyFile('/usr/bin/ls', p('usr/bin/ls'));
  await copyFile('/usr/bin/cat', p('usr/bin/cat'));
  await copyFile('/usr/lib/x86_64-linux-gnu/libssl.so.3', p('usr/lib/x86_64-linux-gnu/libssl.so.3'));
  await chmod(p('usr/lib/x86_64-linux-gnu/libssl.so.3'), 0o644); // ELF without exec bits
  await writeFile(p('usr/lib/modules/6.1.0-18-amd64/kernel/fs/fat.ko.xz'), 'not really xz');
  await writeFile(p('usr/share/doc/bash/README'), 'docs');
  await writeFile(p('usr/bin/my tool'), '#!/bin/sh\necho hi\n', { mode: 0o755 });
  await writeFile(p('etc/init.d/bulwark'), '#!/bin/sh\n', { mode: 0o755 });
  await writeFile(p('etc/hostname'), 'node1\n');
  await symlink('usr/bin', p('bin'));
  await symlink('/usr/bin/ls', p('usr/bin/dir'));

  const scan = await scanRootfs(rootfs);
  t.same(
    scan.files.map((f) => f.path),
    ['/etc/init.d/bulwark', '/usr/bin/cat', '/usr/bin/ls', '/usr/bin/my_tool', '/usr/lib/modules/6.1.0-18-amd64/kernel/fs/fat.ko.xz', '/usr/lib/x86_64-linux-gnu/libssl.so.3'],
    'executables, scripts, ELF libraries and modules; no docs, no config, no symlinks; spaces as IMA logs them',
  );
  t.equal(scan.notMeasured, 2);

  const policyFile = join(dir, 'policy.json');
  const created = await ctl('policy', 'runtime', 'create', '--rootfs', rootfs, '--output', policyFile);
  t.equal(created.code, 0, created.err);
  t.match(created.err, /6 files measured, 2 not measured/);
  const policy = parseRuntimePolicy(JSON.parse(await readFile(policyFile, 'utf8')));
  t.equal(policy.release, 1);
  t.ok(policy.generatedAt !== null && !Number.isNaN(Date.parse(policy.generatedAt)), 'generated-at');
  t.equal(policy.digests.get('/usr/bin/ls')?.[0]?.algorithm, 'sha256');

  // The host's IMA list: boot_aggregate and files of that root filesystem.
  const b = new ImaLogBuilder();
  b.bootAggregate(sha256(Buffer.from('agg')));
  b.file('/usr/bin/ls', { digest: sha256(await readFile(p('usr/bin/ls'))) });
  b.file('/usr/lib/x86_64-linux-gnu/libssl.so.3', { digest: sha256(await readFile(p('usr/lib/x86_64-linux-gnu/libssl.so.3'))) });
  b.file('/usr/bin/my tool', { digest: sha256(await readFile(p('usr/bin/my tool'))) });
  const good = join(dir, 'good.log');
  await writeFile(good, b.ascii());
  const pcr = b.pcr10('sha256').toString('hex');

  await t.test('ima check: only allowed files → exit 0', async (t) => {
    const r = await ctl('ima', 'check', good, '--policy', policyFile, '--pcr10', pcr);
    t.equal(r.code, 0, r.out + r.err);
    t.match(r.out, /4 entries \(ascii\), policy release 1/);
    t.match(r.out, /no findings/);
    const bin = join(dir, 'good.bin');
    await writeFile(bin, b.binary());
    t.equal((await ctl('ima', 'check', bin, '--policy', policyFile, '--pcr10', pcr)).code, 0, 'the binary form too');
    const unverified = await ctl('ima', 'check', good, '--policy', policyFile);
    t.equal(unverified.code, 0);
    t.match(unverified.out, /NOT verified against a TPM/);
    t.match(unverified.out, /^replay: self-consistent only \(no quoted PCR 10 given\)/m, 'it says which replay it judged');
    const selfJson = await ctl('ima', 'check', good, '--policy', policyFile, '--json');
    t.equal(selfJson.code, 0);
    t.match(JSON.parse(selfJson.out), { replay: 'self', verifiedAgainstPcr10: false, pcr10: pcr });
  });

  await t.test('ima check: an unknown binary → exit 1 naming it; a wrong PCR 10 → exit 1', async (t) => {
    const bad = new ImaLogBuilder();
    for (const e of b.entries) bad.file(e.path, { digest: e.digest });
    bad.file('/usr/bin/xmrig', { digest: sha256(Buffer.from('miner')) });
    const file = join(dir, 'bad.log');
    await writeFile(file, bad.ascii());
    const r = await ctl('ima', 'check', file, '--policy', policyFile, '--pcr10', bad.pcr10('sha256').toString('hex'), '--json');
    t.equal(r.code, 1);
    const out: unknown = JSON.parse(r.out);
    t.match(out, { entries: 5, replay: 'pcr10', replayed: true, consumed: 5, verifiedAgainstPcr10: true, findings: [{ code: 'IMA_DIGEST_NOT_ALLOWED', details: { path: '/usr/bin/xmrig' } }] });
    const wrong = await ctl('ima', 'check', good, '--policy', policyFile, '--pcr10', 'ab'.repeat(32));
    t.equal(wrong.code, 1);
    t.match(wrong.out, /IMA_REPLAY_MISMATCH/);
    // The list is ahead of the PCR value: the later entries are not judged.
    const ahead = await ctl('ima', 'check', file, '--policy', policyFile, '--pcr10', pcr);
    t.equal(ahead.code, 0, ahead.out);
    t.match(ahead.out, /4 entries reach the given sha256 PCR 10; 1 later entries not judged/);
  });

  await t.test('ima check: usage errors → 2, malformed input → 3', async (t) => {
    t.equal((await ctl('ima', 'check', good)).code, 2, 'no --policy');
    t.equal((await ctl('ima', 'frob')).code, 2, 'unknown subcommand');
    t.equal((await ctl('ima', 'check', good, '--policy', policyFile, '--bank', 'md5')).code, 2, 'unknown bank');
    t.equal((await ctl('ima', 'check', good, '--policy', policyFile, '--pcr10', 'abcd')).code, 2, 'PCR 10 of the wrong size');
    const malformed = join(dir, 'malformed.log');
    await writeFile(malformed, `${b.ascii().toString('utf8')}10 nonsense\n`);
    const m = await ctl('ima', 'check', malformed, '--policy', policyFile);
    t.equal(m.code, 3);
    t.match(m.err, /IMA_LOG_MALFORMED: IMA entry 4 at byte offset \d+/);
    t.equal((await ctl('ima', 'check', join(dir, 'missing.log'), '--policy', policyFile)).code, 3, 'unreadable list');
    const badPolicy = join(dir, 'bad-policy.json');
    await writeFile(badPolicy, '{"meta": {"version": 1, "generator": 0}}');
    const bp = await ctl('ima', 'check', good, '--policy', badPolicy);
    t.equal(bp.code, 3);
    t.match(bp.err, /IMA_POLICY_INVALID: runtime policy is invalid at \/(ima|release): Expected required property/);
  });

  await t.test('policy runtime create --base: an update rolled into the next release', async (t) => {
    await writeFile(p('usr/bin/ls'), 'a new ls');
    await chmod(p('usr/bin/ls'), 0o755);
    const next = join(dir, 'policy-2.json');
    const r = await ctl('policy', 'runtime', 'create', '--rootfs', rootfs, '--base', policyFile, '--output', next, '--exclude', '/tmp/');
    t.equal(r.code, 0, r.err);
    const p2 = parseRuntimePolicy(JSON.parse(await readFile(next, 'utf8')));
    t.equal(p2.release, 2);
    t.equal(p2.digests.get('/usr/bin/ls')?.length, 2, 'old and new ls both allowed during the rollout');
    t.same(p2.excludes, ['boot_aggregate$', '/tmp/']);
    t.equal((await ctl('policy', 'runtime', 'create', '--rootfs', join(dir, 'nope'))).code, 3, 'a missing root filesystem');
    t.equal((await ctl('policy', 'runtime', 'create')).code, 2, 'no --rootfs');
  });

  await t.test('policy import-keylime / export-keylime', async (t) => {
    const keylimeFile = join(FIXTURES, 'policies', 'debian.keylime.json');
    const keylime: unknown = JSON.parse(await readFile(keylimeFile, 'utf8'));
    const imported = join(dir, 'imported.json');
    const r = await ctl('policy', 'import-keylime', keylimeFile, '--output', imported);
    t.equal(r.code, 0, r.err);
    const native = parseRuntimePolicy(JSON.parse(await readFile(imported, 'utf8')));
    t.same(formatRuntimePolicy(native), formatRuntimePolicy(importKeylimeRuntimePolicy(keylime)));
    const e = await ctl('policy', 'export-keylime', imported);
    t.equal(e.code, 0, e.err);
    t.same(JSON.parse(e.out), keylime, 'exported back unchanged');
    const broken = join(dir, 'broken.json');
    await writeFile(broken, JSON.stringify({ ...Object(keylime), excludes: ['(unclosed'] }));
    const b2 = await ctl('policy', 'import-keylime', broken);
    t.equal(b2.code, 3);
    t.match(b2.err, /IMA_POLICY_INVALID: runtime policy is invalid at \/excludes\/0: not a regular expression/);
  });
});
