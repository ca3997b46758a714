/**
 * `bulwarkctl baseline check` as an operator runs it, the built binary against recorded
 * fixtures (test/fixtures/nft rulesets from network namespaces, test/fixtures/selinux
 * trees): the open inbound ports and each deviation; exit 0 conforms, 1 drift, 2 usage,
 * 3 malformed input.
 */
import t from 'tap';
import { execa } from 'execa';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const CTL_MAIN = fileURLToPath(new URL('../../cli/bulwarkctl.js', import.meta.url));
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const DEFAULT = join(ROOT, 'policies/baselines/default.json');
const NFT = (name: string): string => join(ROOT, 'test/fixtures/nft', `${name}.json`);
const SELINUX = (name: string): string => join(ROOT, 'test/fixtures/selinux', name, 'root');

async function ctl(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const r = await execa('node', [CTL_MAIN, 'baseline', 'check', ...args], { reject: false });
  return { code: r.exitCode ?? -1, out: r.stdout, err: r.stderr };
}

t.test('a conforming host: exit 0, its open ports', async (t) => {
  const r = await ctl('--baseline', DEFAULT, '--nft-json', NFT('default'), '--selinux-root', SELINUX('debian12-enforcing'));
  t.equal(r.code, 0, r.err);
  t.match(r.out, /^inbound exposure: tcp 22,443; udp none$/m);
  t.match(r.out, /^forwarding: dropped$/m);
  t.match(r.out, /^SELinux: enforcing \(enforcing at next boot, policy default, version 33/m);
  t.match(r.out, /conforms: no deviations/);
});

t.test('drift: exit 1, each deviation named', async (t) => {
  const r = await ctl('--baseline', DEFAULT, '--nft-json', NFT('extra-8080'), '--selinux-root', SELINUX('debian12-permissive'));
  t.equal(r.code, 1, r.err);
  t.match(r.out, /tcp 22,443,8080/);
  t.match(r.out, /NFT_BASELINE_DRIFT: 8080\/tcp is reachable/);
  t.match(r.out, /SELINUX_NOT_ENFORCING: SELinux is permissive now and will be permissive at next boot/);
  const json = await ctl('--baseline', DEFAULT, '--selinux-root', SELINUX('fedora-targeted'), '--json');
  t.equal(json.code, 1);
  const doc = JSON.parse(json.out) as { conforms: boolean; exposure: unknown; selinux: { policyType: string }; findings: { code: string; details: Record<string, unknown> }[] };
  t.equal(doc.conforms, false);
  t.equal(doc.exposure, null, 'no ruleset given: exposure not judged');
  t.equal(doc.selinux.policyType, 'targeted');
  t.same(doc.findings.map((f) => [f.code, f.details['item']]), [['SELINUX_POLICY_MISMATCH', 'policyType']]);
});

t.test('conditional exposure is printed with its condition', async (t) => {
  const r = await ctl('--baseline', DEFAULT, '--nft-json', NFT('saddr-restricted'));
  t.match(r.out, /^ {2}conditional: tcp 22 when .*10\.0\.0\.0\/8/m);
});

t.test('usage and malformed input', async (t) => {
  const none = await ctl('--baseline', DEFAULT);
  t.equal(none.code, 2, 'neither --nft-json nor --selinux-root');
  t.match(none.err, /USAGE: baseline check needs --nft-json FILE, --selinux-root DIR, or both/);
  const dir = await mkdtemp(join(tmpdir(), 'bulwark-ctl-baseline-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const badBaseline = join(dir, 'bad.json');
  const doc = JSON.parse(await readFile(DEFAULT, 'utf8')) as { nftables: { inbound: { port: number }[] } };
  for (const s of doc.nftables.inbound) s.port = 70000;
  await writeFile(badBaseline, JSON.stringify(doc));
  const b = await ctl('--baseline', badBaseline, '--nft-json', NFT('default'));
  t.equal(b.code, 3);
  t.match(b.err, /BASELINE_INVALID: .* at \/nftables\/inbound\/0\/port/);
  const badNft = join(dir, 'nft.json');
  await writeFile(badNft, '{"nftables": [');
  const n = await ctl('--baseline', DEFAULT, '--nft-json', badNft);
  t.equal(n.code, 3);
  t.match(n.err, /BASELINE_REPORT_INVALID/);
  const badRoot = join(dir, 'root');
  await mkdir(join(badRoot, 'sys/fs/selinux'), { recursive: true });
  await writeFile(join(badRoot, 'sys/fs/selinux/enforce'), '7');
  const s = await ctl('--baseline', DEFAULT, '--selinux-root', badRoot);
  t.equal(s.code, 3);
  t.match(s.err, /BASELINE_REPORT_INVALID: SELinux tree: sys\/fs\/selinux\/enforce is "7"/);
  const missing = await ctl('--baseline', DEFAULT, '--selinux-root', join(dir, 'nowhere'));
  t.equal(missing.code, 3, 'a root that does not exist is an input error, not "SELinux disabled"');
  t.notMatch(missing.err + s.err + n.err + b.err, /\n\s+at .+:\d+:\d+/, 'no stack trace');
});
