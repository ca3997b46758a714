/**
 * bulwarkctl's measured-boot commands through runCtl, on the fixtures: output, JSON and the
 * exit codes of cli/ctl.ts (0 ok, 1 finding, 2 usage, 3 malformed input). The check
 * against real tpm2_quote files runs in test/lib/eventlog/eventlog-swtpm.test.ts.
 */
import t from 'tap';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ctlHelp, runCtl } from '../../cli/index.js';
import { loadEventlogFixture } from '../lib/eventlog/eventlog-helpers.js';

const FIX = fileURLToPath(new URL('../../../test/fixtures/eventlog/', import.meta.url));
const EXAMPLE = fileURLToPath(new URL('../../../policies/measured-boot/example.json', import.meta.url));
const GOOD = `${FIX}debian-secureboot-sha1-sha256.bin`;

async function ctl(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runCtl(args, { out: (s) => (out += s), err: (s) => (err += s), env: {} });
  return { code, out, err };
}

function record(v: unknown): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('not an object');
  return Object.fromEntries(Object.entries(v));
}

const dir = await mkdtemp(join(tmpdir(), 'bulwark-ctl-eventlog-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));

t.test('eventlog show', async (t) => {
  const r = await ctl(['eventlog', 'show', GOOD]);
  t.equal(r.code, 0, r.err);
  t.match(r.out, /banks sha1, sha256, StartupLocality 0, 41 events/);
  t.match(r.out, /not checked against a quote/);
  t.match(r.out, /EV_EFI_VARIABLE_DRIVER_CONFIG\s+\S+\s+EFI_GLOBAL_VARIABLE\/SecureBoot, 1 octets = 1/);
  t.match(r.out, /EV_EFI_BOOT_SERVICES_APPLICATION\s+\S+\s+PciRoot\(0x0\)\/Pci\(0x1f,0x2\)\/Sata\(0x0,0xffff,0x0\)\/HD\(1,GPT,/);
  t.match(r.out, /kernel_cmdline: BOOT_IMAGE=\/vmlinuz-6\.1\.0-18-amd64 root=UUID=/);
  const j = await ctl(['eventlog', 'show', GOOD, '--json']);
  t.equal(j.code, 0);
  const doc = record(JSON.parse(j.out));
  t.equal(doc['quoted'], false);
  const events = doc['events'];
  if (!Array.isArray(events)) return t.fail('events');
  t.equal(events.length, 41);
  const sb = record(events[8]);
  t.match(sb, { pcr: 7, typeName: 'EV_EFI_VARIABLE_DRIVER_CONFIG', decoded: { kind: 'uefi-variable', unicodeName: 'SecureBoot', variableData: '01' } });
  t.match(record(sb['digests']), { sha1: /^[0-9a-f]{40}$/, sha256: /^[0-9a-f]{64}$/ });
});

t.test('eventlog replay', async (t) => {
  const f = await loadEventlogFixture('startup-locality-3');
  const r = await ctl(['eventlog', 'replay', `${FIX}startup-locality-3.bin`, '--json']);
  t.equal(r.code, 0, r.err);
  const doc = record(JSON.parse(r.out));
  t.equal(doc['quoted'], false);
  const pcrs = record(doc['pcrs']);
  for (const [bank, values] of f.pcrs ?? []) t.same(record(pcrs[bank]), Object.fromEntries([...values].map(([p, v]) => [String(p), v])), `${bank} as the fixture says`);
  const text = await ctl(['eventlog', 'replay', GOOD]);
  t.match(text.out, /not checked against a quote/);
  t.match(text.out, /sha256:\n\s+0: f8bf50c0/);
});

t.test('malformed input and usage errors', async (t) => {
  const cut = await ctl(['eventlog', 'show', `${FIX}truncated.bin`]);
  t.equal(cut.code, 3);
  t.match(cut.err, /EVENTLOG_TRUNCATED/);
  t.notMatch(cut.err, /at .*\.js/, 'no stack trace');
  await writeFile(join(dir, 'random.bin'), Uint8Array.from({ length: 200 }, (_, i) => (i * 37) & 0xff));
  t.equal((await ctl(['eventlog', 'replay', join(dir, 'random.bin')])).code, 3);
  t.equal((await ctl(['eventlog', 'show', join(dir, 'missing.bin')])).code, 3, 'a file that cannot be read');
  t.equal((await ctl(['eventlog', 'frobnicate', GOOD])).code, 2);
  t.equal((await ctl(['eventlog', 'show'])).code, 2);
  t.equal((await ctl(['eventlog', 'show', GOOD, GOOD])).code, 2);
  t.equal((await ctl(['eventlog', 'show', GOOD, '--bogus'])).code, 2);
  t.equal((await ctl(['policy', 'measured-boot', 'create'])).code, 2, 'create without --from-eventlog');
  t.equal((await ctl(['policy', 'check', '--eventlog', GOOD])).code, 2, 'check without --policy');
  const partial = await ctl(['policy', 'check', '--policy', EXAMPLE, '--name', 'lab-accept-all', '--eventlog', GOOD, '--ak', 'x.pem']);
  t.equal(partial.code, 2);
  t.match(partial.err, /needs all of --ak --msg --sig --pcrs --nonce/);
  t.match(ctlHelp(), /eventlog show FILE/);
  t.match(ctlHelp(), /policy measured-boot create --from-eventlog FILE/);
  const help = await ctl(['eventlog', 'show', '--help']);
  t.equal(help.code, 0);
  t.match(help.out, /policy check --policy P/);
});

t.test('policy measured-boot create, then policy check without a quote', async (t) => {
  const created = await ctl(['policy', 'measured-boot', 'create', '--from-eventlog', GOOD, '--name', 'host-a']);
  t.equal(created.code, 0, created.err);
  t.match(created.err, /warning: built from an event log that was not checked against a quote/);
  const doc = record(JSON.parse(created.out));
  t.equal(doc['name'], 'host-a');
  await writeFile(join(dir, 'host-a.json'), created.out);
  const pass = await ctl(['policy', 'check', '--policy', join(dir, 'host-a.json'), '--eventlog', GOOD]);
  t.equal(pass.code, 0, pass.out);
  t.match(pass.out, /policy host-a: the log satisfies it\nNOT checked against a quote/);
  const off = await ctl(['policy', 'check', '--policy', join(dir, 'host-a.json'), '--eventlog', `${FIX}secure-boot-off.bin`, '--json']);
  t.equal(off.code, 1);
  t.match(JSON.parse(off.out), { quoted: false, passed: false, findings: [{ code: 'SECURE_BOOT_DISABLED' }] });
  // The same policy as YAML (.yaml): the same judgement.
  const yamlText = Object.entries(doc)
    .filter(([k]) => k !== '$schema')
    .map(([k, v]) => `${k}: ${JSON.stringify(v)}`)
    .join('\n');
  await writeFile(join(dir, 'host-a.yaml'), `# host-a as YAML\n${yamlText}\n`);
  const yamlPass = await ctl(['policy', 'check', '--policy', join(dir, 'host-a.yaml'), '--eventlog', GOOD]);
  t.equal(yamlPass.code, 0, yamlPass.err);
  const yamlOff = await ctl(['policy', 'check', '--policy', join(dir, 'host-a.yaml'), '--eventlog', `${FIX}secure-boot-off.bin`, '--json']);
  t.match(JSON.parse(yamlOff.out), { passed: false, findings: [{ code: 'SECURE_BOOT_DISABLED' }] });
  await writeFile(join(dir, 'dup.yml'), 'name: a\nname: b\nacceptAll: true\n');
  const dup = await ctl(['policy', 'check', '--policy', join(dir, 'dup.yml'), '--eventlog', GOOD]);
  t.equal(dup.code, 3, 'a duplicate key is malformed input');
  t.match(dup.err, /MEASURED_BOOT_POLICY_INVALID: .*not strict YAML/);
  // A SHA-1 format log against a policy: refused unless the policy accepts SHA-1 alone.
  await writeFile(join(dir, 'all.yaml'), 'name: all\nacceptAll: true\n');
  const win = `${FIX}public/go-attestation-windows-gcp-shielded-vm.bin`;
  const sha1Only = await ctl(['policy', 'check', '--policy', join(dir, 'all.yaml'), '--eventlog', win, '--json']);
  t.equal(sha1Only.code, 1);
  t.match(JSON.parse(sha1Only.out), { passed: false, findings: [{ code: 'EVENTLOG_SHA1_ONLY' }] });
  await writeFile(join(dir, 'all-sha1.yaml'), 'name: all\nacceptAll: true\nallowSha1OnlyLog: true\n');
  t.equal((await ctl(['policy', 'check', '--policy', join(dir, 'all-sha1.yaml'), '--eventlog', win])).code, 0, 'allowSha1OnlyLog accepts it');
  const sha1 = await ctl(['policy', 'measured-boot', 'create', '--from-eventlog', GOOD, '--bank', 'sha1']);
  t.match(JSON.parse(sha1.out), { bank: 'sha1' });
  t.equal((await ctl(['policy', 'measured-boot', 'create', '--from-eventlog', `${FIX}secure-boot-off.bin`, '--bank', 'sha1'])).code, 2, 'a bank the log lacks');
});

t.test('policy documents: named policies, bad JSON, policies that check nothing', async (t) => {
  const bundle = await ctl(['policy', 'check', '--policy', EXAMPLE, '--eventlog', GOOD]);
  t.equal(bundle.code, 2, 'two policies and no --name');
  t.match(bundle.err, /debian12-secureboot, lab-accept-all/);
  const named = await ctl(['policy', 'check', '--policy', EXAMPLE, '--name', 'debian12-secureboot', '--eventlog', GOOD]);
  t.equal(named.code, 0, named.out);
  const lab = await ctl(['policy', 'check', '--policy', EXAMPLE, '--name', 'lab-accept-all', '--eventlog', `${FIX}secure-boot-off.bin`]);
  t.equal(lab.code, 0);
  t.match(lab.err, /warning: policy "lab-accept-all" accepts every boot/);
  await writeFile(join(dir, 'bad.json'), '{"name":"x","stages":{"kernel":["nothex"]}}');
  const bad = await ctl(['policy', 'check', '--policy', join(dir, 'bad.json'), '--eventlog', GOOD]);
  t.equal(bad.code, 3);
  t.match(bad.err, /MEASURED_BOOT_POLICY_INVALID: measured-boot policy \(\S+bad\.json\) is invalid at \/stages\/kernel\/0: /);
  await writeFile(join(dir, 'empty.json'), '{"name":"nothing"}');
  const empty = await ctl(['policy', 'check', '--policy', join(dir, 'empty.json'), '--eventlog', GOOD]);
  t.equal(empty.code, 2);
  t.match(empty.err, /MEASURED_BOOT_POLICY_CHECKS_NOTHING/);
});

const PUBLIC = `${FIX}public/`;

t.test('eventlog show and replay: SHA-1 format and StartupLocality-only logs, fully', async (t) => {
  const win = await ctl(['eventlog', 'show', `${PUBLIC}go-attestation-windows-gcp-shielded-vm.bin`]);
  t.equal(win.code, 0, win.err);
  t.match(win.out, /^TCG SHA-1 format event log \(TCG 1\.2: no Spec ID event, SHA-1 digests only\).*banks sha1, StartupLocality not logged, 21 events/);
  t.match(win.out, /EFI_GLOBAL_VARIABLE\/SecureBoot, 1 octets = 1/, 'UEFI data decoded');
  const j = record(JSON.parse((await ctl(['eventlog', 'show', `${PUBLIC}go-attestation-short-no-action.bin`, '--json'])).out));
  t.equal(j['format'], 'sha1');
  t.equal(j['specId'], null);
  t.equal(j['startupLocality'], 3);
  t.match(j['events'], [{ pcr: 0, typeName: 'EV_NO_ACTION', decoded: { kind: 'startup-locality', startupLocality: 3 } }]);
  const r = record(JSON.parse((await ctl(['eventlog', 'replay', `${PUBLIC}go-attestation-short-no-action.bin`, '--json'])).out));
  t.same(r['pcrs'], { sha1: { 0: `${'00'.repeat(19)}03` } }, 'PCR 0 seeded with the locality');
  const text = await ctl(['eventlog', 'replay', `${PUBLIC}go-attestation-option-rom.bin`]);
  t.match(text.out, /a SHA-1 format log: SHA-1 bank only/);
  t.equal((await ctl(['eventlog', 'show', `${PUBLIC}keylime-create-mb-policy-bogus.bin`])).code, 3, 'not a log: malformed input');
});

t.test('eventlog export --cel: TCG CEL-JSON that replays to the same PCRs', async (t) => {
  for (const name of ['go-attestation-sb-cert', 'go-attestation-ebs-event-missing', 'keylime-create-mb-policy']) {
    const out = join(dir, `${name}.cel.json`);
    const r = await ctl(['eventlog', 'export', `${PUBLIC}${name}.bin`, '--cel', '-o', out]);
    t.equal(r.code, 0, r.err);
    const records: unknown = JSON.parse(await readFile(out, 'utf8'));
    if (!Array.isArray(records)) return t.fail('an array');
    const want = record(JSON.parse(await readFile(`${PUBLIC}${name}.json`, 'utf8')));
    t.equal(records.length, want['events'], `${name}: one record per event`);
    // Replay the CEL records alone (PFP rules: EV_NO_ACTION not extended, StartupLocality seeds PCR 0).
    const pcrs = new Map<string, Map<number, Buffer>>();
    let locality: number | null = null;
    records.forEach((raw: unknown, i) => {
      const rec = record(raw);
      t.equal(rec['recnum'], i);
      t.equal(rec['content_type'], 'pcclient_std');
      const content = record(rec['content']);
      const data = Buffer.from(String(content['event_data']), 'base64');
      if (content['event_type'] === 3) {
        if (data.length === 17 && data.subarray(0, 15).toString('latin1') === 'StartupLocality') locality = data[16] ?? 0;
        return;
      }
      const digests = rec['digests'];
      if (!Array.isArray(digests)) return;
      for (const d of digests) {
        const { hashAlg, digest } = record(d);
        const bank = pcrs.get(String(hashAlg)) ?? new Map<number, Buffer>();
        pcrs.set(String(hashAlg), bank);
        const pcr = Number(rec['pcr']);
        const size = createHash(String(hashAlg)).digest().length;
        const init = Buffer.alloc(size);
        if (pcr === 0 && locality !== null) init[size - 1] = locality;
        bank.set(pcr, createHash(String(hashAlg)).update(bank.get(pcr) ?? init).update(Buffer.from(String(digest), 'hex')).digest());
      }
    });
    for (const [bank, values] of Object.entries(record(want['pcrs']))) {
      const got = pcrs.get(bank) ?? new Map<number, Buffer>();
      t.same(Object.fromEntries([...got].map(([p, v]) => [String(p), v.toString('hex')])), record(values), `${name}: ${bank} from the CEL records`);
    }
  }
  const stdout = await ctl(['eventlog', 'export', `${PUBLIC}go-attestation-short-no-action.bin`, '--cel']);
  t.match(stdout.out, /^\[\n\{"recnum":0,"pcr":0,"digests":\[\{"hashAlg":"sha1","digest":"0{40}"\}\],"content_type":"pcclient_std","content":\{"event_type":3,"event_data":"U3RhcnR1cExvY2FsaXR5AAM="\}\}\n\]\n$/);
  const noFormat = await ctl(['eventlog', 'export', `${PUBLIC}go-attestation-short-no-action.bin`]);
  t.equal(noFormat.code, 2, 'a format is required');
  t.match(noFormat.err, /--cel/);
});
