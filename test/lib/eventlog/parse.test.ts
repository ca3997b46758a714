/**
 * parseEventLog and the event data decoders: every fixture in test/fixtures/eventlog/ as a
 * test, edge cases written with ByteWriter (one comment per field), and the decoded
 * payloads a policy reads (variables, signature lists, device paths, GPT, GRUB strings).
 */
import t from 'tap';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ByteWriter, toHex } from '../../../lib/bytes.js';
import { BulwarkError } from '../../../lib/errors.js';
import {
  MAX_EVENT_DATA_SIZE,
  TCG_EVENT_TYPE,
  decodeEfiDevicePath,
  decodeEfiSignatureLists,
  decodeEventData,
  parseEventLog,
  replayPcrs,
  type EventData,
} from '../../../lib/eventlog/index.js';
import { BANK_ALG, EventLogBuilder, buildBootLog, char16, dp, efiSignatureList, uefiVariableData, TEST_CERTS, OWNER } from '../../helpers/eventlog-builder.js';
import { fixtureDir, listEventlogFixtures, loadEventlogFixture, tpm2Eventlog } from './eventlog-helpers.js';

const T = TCG_EVENT_TYPE;

/** The SHA-1 format header with a Spec ID event for `algs` (alg id, size). */
function header(algs: readonly (readonly [number, number])[], extra?: (w: ByteWriter) => void): ByteWriter {
  const spec = new ByteWriter();
  spec.bytes(Uint8Array.from('Spec ID Event03\0', (c) => c.charCodeAt(0))); // signature
  spec.u32le(0); // platformClass
  spec.u8(0).u8(2).u8(0); // specVersionMinor, specVersionMajor, specErrata
  spec.u8(2); // uintnSize: UINT64
  spec.u32le(algs.length); // numberOfAlgorithms
  for (const [id, size] of algs) spec.u16le(id).u16le(size); // algorithmId, digestSize
  spec.u8(0); // vendorInfoSize
  extra?.(spec);
  const body = spec.finish();
  const w = new ByteWriter();
  w.u32le(0); // PCRIndex
  w.u32le(T.EV_NO_ACTION); // EventType
  w.bytes(new Uint8Array(20)); // Digest (SHA-1 size)
  w.u32le(body.length); // EventSize
  w.bytes(body); // TCG_EfiSpecIDEvent
  return w;
}

/** One TCG_PCR_EVENT2 with a sha256 digest of `fill`. */
function event2(w: ByteWriter, pcr: number, type: number, data: Uint8Array, opts: { size?: number; digestCount?: number; alg?: number } = {}): ByteWriter {
  w.u32le(pcr); // PCRIndex
  w.u32le(type); // EventType
  w.u32le(opts.digestCount ?? 1); // TPML_DIGEST_VALUES.count
  w.u16le(opts.alg ?? 0x000b); // TPMT_HA.hashAlg: sha256
  w.bytes(new Uint8Array(32).fill(0x11)); // TPMT_HA.digest
  w.u32le(opts.size ?? data.length); // EventSize
  w.bytes(data); // Event
  return w;
}

const SHA256 = [[0x000b, 32]] as const;

t.test('every fixture parses as its NAME.json says (or fails with its code)', async (t) => {
  const names = await listEventlogFixtures();
  t.ok(names.length >= 7, 'fixtures are present');
  for (const name of names) {
    const f = await loadEventlogFixture(name);
    if (f.error !== undefined) {
      t.throws(() => parseEventLog(f.bytes), { code: f.error }, `${name}: ${f.error}`);
      continue;
    }
    const log = parseEventLog(f.bytes);
    t.equal(log.events.length, f.events, `${name}: event count`);
    t.same(
      log.algorithms.map((a) => a.algorithmId),
      (f.banks ?? []).map((b) => BANK_ALG[b]),
      `${name}: banks`,
    );
    t.equal(log.startupLocality, f.startupLocality ?? null, `${name}: StartupLocality`);
    const replayed = replayPcrs(log);
    for (const [bank, values] of f.pcrs ?? []) {
      for (const [pcr, hex] of values) t.equal(toHex(replayed.get(BANK_ALG[bank])?.get(pcr) ?? new Uint8Array(0)), hex, `${name}: ${bank} PCR ${pcr}`);
      t.equal(replayed.get(BANK_ALG[bank])?.size, values.size, `${name}: ${bank} replays exactly the PCRs the log extends`);
    }
    for (const e of log.events) t.not(decodeEventData(e.eventType, e.data, log.uintnSize).kind, 'undecodable', `${name}: event ${e.sequence} decodes`);
  }
});

t.test('the replay agrees with tpm2_eventlog on every fixture it does not crash on (differences documented in NAME.json)', async (t) => {
  for (const name of await listEventlogFixtures()) {
    const f = await loadEventlogFixture(name);
    if (f.error !== undefined) continue;
    const tool = await tpm2Eventlog(join(fixtureDir(), `${name}.bin`));
    if (!tool.ok) {
      t.comment(`${name}: tpm2_eventlog failed (exit ${String(tool.exitCode)}, ${String(tool.signal)})`);
      continue;
    }
    const replayed = replayPcrs(parseEventLog(f.bytes));
    const differs = new Set(f.tpm2EventlogDiffers?.pcrs ?? []);
    let compared = 0;
    for (const [bank, values] of tool.pcrs) {
      for (const [pcr, hex] of values) {
        const ours = toHex(replayed.get(BANK_ALG[bank])?.get(pcr) ?? new Uint8Array(0));
        if (differs.has(pcr)) t.not(ours, hex, `${name}: ${bank} PCR ${pcr} differs as documented (${f.tpm2EventlogDiffers?.reason ?? ''})`);
        else t.equal(ours, hex, `${name}: ${bank} PCR ${pcr} agrees with tpm2_eventlog`);
        compared++;
      }
    }
    t.ok(compared >= 10, `${name}: compared ${compared} PCR values`);
  }
});

t.test('generated and mutated logs: the replay agrees with tpm2_eventlog wherever the tool does not fail', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'bulwark-evcross-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  // No StartupLocality event: tpm2_eventlog 5.4 mishandles it (see the fixture README).
  const scenarios = [
    buildBootLog({ startupLocality: null }),
    buildBootLog({ startupLocality: null, banks: ['sha256'], secureBoot: false }),
    buildBootLog({ startupLocality: null, banks: ['sha1', 'sha256', 'sha384', 'sha512'], efistubInitrdTag: true }),
    buildBootLog({ startupLocality: null, padTo: 120, rogueDbEntry: true }),
    buildBootLog({ startupLocality: null, exitBootServicesLogged: false, shimAuthorityTrailingOctet: true }),
  ];
  // Mutations our parser accepts (digest and data bytes changed, events dropped at boundaries).
  const rnd = ((seed: number) => () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32)(7);
  const base = scenarios[0]?.bytes ?? new Uint8Array(0);
  const baseLog = parseEventLog(base);
  const mutated: Uint8Array[] = [];
  for (let i = 0; i < 24; i++) {
    const b = base.slice();
    const e = baseLog.events[Math.floor(rnd() * baseLog.events.length)];
    if (e === undefined) continue;
    const target = i % 2 === 0 ? (e.digests[1]?.digest ?? e.data) : e.data;
    if (target.length === 0) continue;
    const at = target.byteOffset - base.byteOffset + Math.floor(rnd() * target.length);
    b[at] = (b[at] ?? 0) ^ (1 + Math.floor(rnd() * 255));
    mutated.push(b);
  }
  let agreed = 0;
  let toolFailed = 0;
  const logs = [...scenarios.map((s) => s.bytes), ...mutated];
  for (const [i, bytes] of logs.entries()) {
    let ours;
    try {
      ours = replayPcrs(parseEventLog(bytes));
    } catch {
      continue; // a mutation that our parser refuses is the hostile test's business
    }
    const path = join(dir, `log${i}.bin`);
    await writeFile(path, bytes);
    const tool = await tpm2Eventlog(path);
    if (!tool.ok) {
      toolFailed++;
      continue;
    }
    let same = true;
    for (const [bank, values] of tool.pcrs) {
      for (const [pcr, hex] of values) if (toHex(ours.get(BANK_ALG[bank])?.get(pcr) ?? new Uint8Array(0)) !== hex) same = false;
      if (values.size !== (ours.get(BANK_ALG[bank])?.size ?? -1)) same = false;
    }
    t.ok(same, `log ${i}: every bank and PCR agrees with tpm2_eventlog`);
    if (same) agreed++;
  }
  t.ok(agreed >= scenarios.length + 10, `${agreed} logs agree, tpm2_eventlog failed on ${toolFailed}`);
});

t.test('the Spec ID header', async (t) => {
  const log = parseEventLog(buildBootLog().bytes);
  t.equal(log.specId?.specVersionMajor, 2);
  t.equal(log.uintnSize, 8);
  t.same(log.algorithms, [
    { algorithmId: 0x0004, digestSize: 20 },
    { algorithmId: 0x000b, digestSize: 32 },
  ]);
  t.throws(() => parseEventLog(new Uint8Array(0)), { code: 'EVENTLOG_TRUNCATED' }, 'empty log');
  // A TPM 1.2 style first event (not EV_NO_ACTION) starts a SHA-1 format log, not a crypto-agile one.
  const notAgile = new ByteWriter().u32le(0).u32le(T.EV_S_CRTM_VERSION).bytes(new Uint8Array(20)).u32le(0).finish();
  t.equal(parseEventLog(notAgile).format, 'sha1', 'a TCG 1.2 first event: a SHA-1 format log');
  t.equal(parseEventLog(notAgile).specId, null);
  const wrongSig = header(SHA256).finish();
  wrongSig[32 + 14] = 0x32; // "Spec ID Event02"
  t.equal(parseEventLog(wrongSig).format, 'sha1', 'Spec ID Event02 is not a crypto-agile header: a SHA-1 format log with one EV_NO_ACTION');
  const agileInPcr1 = header(SHA256).finish();
  agileInPcr1[0] = 1; // PCRIndex of the Spec ID event
  t.throws(() => parseEventLog(agileInPcr1), { code: 'EVENTLOG_MALFORMED' }, 'a Spec ID Event03 outside PCR 0 refused');
  t.throws(() => parseEventLog(header([[0x000b, 20]]).finish()), { code: 'EVENTLOG_MALFORMED' }, 'sha256 with a 20-octet size');
  t.throws(() => parseEventLog(header([[0x000b, 32], [0x000b, 32]]).finish()), { code: 'EVENTLOG_MALFORMED' }, 'an algorithm listed twice');
  t.throws(() => parseEventLog(header([]).finish()), { code: 'EVENTLOG_MALFORMED' }, 'no algorithms');
  t.throws(() => parseEventLog(header(SHA256, (w) => w.u8(7)).finish()), { code: 'EVENTLOG_MALFORMED' }, 'octets after vendorInfo');
  // An unknown algorithm is carried (its size from the header) but not replayed.
  const w = header([...SHA256, [0x00ff, 16]]);
  w.u32le(0).u32le(T.EV_POST_CODE).u32le(2); // PCRIndex, EventType, count
  w.u16le(0x000b).bytes(new Uint8Array(32)); // sha256 digest
  w.u16le(0x00ff).bytes(new Uint8Array(16)); // unknown algorithm, 16 octets
  w.u32le(0); // EventSize
  const log2 = parseEventLog(w.finish());
  t.equal(log2.events[0]?.digests.length, 2);
  t.same([...replayPcrs(log2).keys()], [0x000b], 'only known banks replay');
});

t.test('TCG_PCR_EVENT2 framing', async (t) => {
  const ok = event2(header(SHA256), 4, T.EV_EFI_ACTION, new Uint8Array(0)).finish();
  t.equal(parseEventLog(ok).events[0]?.data.length, 0, 'a zero-length event');
  const max = event2(header(SHA256), 4, 0x12345678, new Uint8Array(MAX_EVENT_DATA_SIZE)).finish();
  t.equal(parseEventLog(max).events[0]?.data.length, MAX_EVENT_DATA_SIZE, 'an event at the size cap');
  t.equal(parseEventLog(max).events[0]?.eventType, 0x12345678, 'an unknown type is kept');
  t.same(decodeEventData(0x12345678, new Uint8Array(3), 8), { kind: 'raw' });
  const over = event2(header(SHA256), 4, T.EV_IPL, new Uint8Array(0), { size: MAX_EVENT_DATA_SIZE + 1 }).finish();
  t.throws(() => parseEventLog(over), { code: 'EVENTLOG_MALFORMED' }, 'a declared size over the cap');
  const huge = event2(header(SHA256), 4, T.EV_IPL, new Uint8Array(0), { size: 0xffffffff }).finish();
  t.throws(() => parseEventLog(huge), { code: 'EVENTLOG_MALFORMED' }, 'a 4 GiB declared size is an error, not an allocation');
  const past = event2(header(SHA256), 4, T.EV_IPL, new Uint8Array(10), { size: 11 }).finish();
  t.throws(() => parseEventLog(past), { code: 'EVENTLOG_TRUNCATED' }, 'a declared size one past the end');
  t.throws(() => parseEventLog(event2(header(SHA256), 4, T.EV_IPL, new Uint8Array(0), { digestCount: 2 }).finish()), { code: 'EVENTLOG_MALFORMED' }, 'two digests for one algorithm');
  t.throws(() => parseEventLog(event2(header(SHA256), 4, T.EV_IPL, new Uint8Array(0), { digestCount: 0 }).finish()), { code: 'EVENTLOG_MALFORMED' }, 'no digest');
  t.throws(() => parseEventLog(event2(header(SHA256), 4, T.EV_IPL, new Uint8Array(0), { alg: 0x0004 }).finish()), { code: 'EVENTLOG_MALFORMED' }, 'an algorithm the header does not list');
  t.throws(() => parseEventLog(event2(header(SHA256), 24, T.EV_IPL, new Uint8Array(0)).finish()), { code: 'EVENTLOG_MALFORMED' }, 'PCR 24');
  t.equal(parseEventLog(event2(header(SHA256), 24, T.EV_NO_ACTION, new Uint8Array(0)).finish()).events.length, 1, 'EV_NO_ACTION in any PCR is kept');
  // StartupLocality: once, before PCR 0 is extended.
  const loc = Uint8Array.of(...Array.from('StartupLocality\0', (c) => c.charCodeAt(0)), 3);
  const twice = event2(event2(header(SHA256), 0, T.EV_NO_ACTION, loc), 0, T.EV_NO_ACTION, loc).finish();
  t.throws(() => parseEventLog(twice), { code: 'EVENTLOG_MALFORMED' }, 'two StartupLocality events');
  const late = event2(event2(header(SHA256), 0, T.EV_POST_CODE, new Uint8Array(0)), 0, T.EV_NO_ACTION, loc).finish();
  t.throws(() => parseEventLog(late), { code: 'EVENTLOG_MALFORMED' }, 'StartupLocality after PCR 0 was extended');
  const log = parseEventLog(event2(event2(header(SHA256), 0, T.EV_NO_ACTION, loc), 0, T.EV_POST_CODE, new Uint8Array(0)).finish());
  t.equal(log.startupLocality, 3);
  const seed = new Uint8Array(32);
  seed[31] = 3;
  const expected = createHash('sha256').update(seed).update(new Uint8Array(32).fill(0x11)).digest('hex');
  t.equal(toHex(replayPcrs(log).get(0x000b)?.get(0) ?? new Uint8Array(0)), expected, 'PCR 0 starts at 0x00..03 and is extended once');
});

t.test('truncation at every offset of a real log: EVENTLOG_TRUNCATED, or a shorter log at event boundaries', async (t) => {
  const bytes = buildBootLog().bytes;
  const boundaries = new Set(parseEventLog(bytes).events.map((e) => e.offset));
  let truncated = 0;
  let shorter = 0;
  for (let n = 0; n < bytes.length; n++) {
    const cut = (): unknown => parseEventLog(bytes.subarray(0, n));
    if (boundaries.has(n)) {
      if (t.doesNotThrow(cut, `cut at event boundary ${n}`)) shorter++;
      continue;
    }
    const err = t.throws(cut, { code: /^EVENTLOG_(TRUNCATED|MALFORMED)$/ }, `cut at ${n}`);
    if (err instanceof BulwarkError && err.code === 'EVENTLOG_TRUNCATED') truncated++;
  }
  t.equal(shorter, boundaries.size, 'every cut at an event boundary parses (replay catches it)');
  t.ok(truncated > bytes.length * 0.9, `${truncated} of ${bytes.length} cuts are EVENTLOG_TRUNCATED`);
});

function isKind<K extends EventData['kind']>(d: EventData, k: K): d is Extract<EventData, { kind: K }> {
  return d.kind === k;
}

function kind<K extends EventData['kind']>(d: EventData, k: K): Extract<EventData, { kind: K }> {
  if (isKind(d, k)) return d;
  throw new Error(`expected ${k}, got ${d.kind}${d.kind === 'undecodable' ? `: ${d.reason}` : ''}`);
}

t.test('decoded event data of a Debian Secure Boot log', async (t) => {
  const built = buildBootLog({ efistubInitrdTag: true });
  const log = parseEventLog(built.bytes);
  const decoded = log.events.map((e) => ({ e, d: decodeEventData(e.eventType, e.data, 8) }));
  const find = (pred: (x: { e: (typeof log.events)[number]; d: EventData }) => boolean): EventData => {
    const hit = decoded.find(pred);
    if (hit === undefined) throw new Error('event not found');
    return hit.d;
  };
  t.same(kind(find((x) => x.e.eventType === T.EV_NO_ACTION), 'startup-locality'), { kind: 'startup-locality', startupLocality: 0 });
  t.equal(kind(find((x) => x.e.eventType === T.EV_S_CRTM_VERSION), 'text').text, '1.0.0 Bulwark test firmware');
  t.equal(kind(find((x) => x.e.eventType === T.EV_S_CRTM_VERSION), 'text').encoding, 'ucs-2');
  const blob = kind(find((x) => x.e.eventType === T.EV_EFI_PLATFORM_FIRMWARE_BLOB2), 'firmware-blob');
  t.equal(blob.description, 'Fv(7cb8bdc9-f8eb-4f34-aaea-3ee4af6516a1)');
  t.equal(blob.blobBase, 0xffc84000n);
  const sb = kind(find((x) => x.e.pcrIndex === 7 && x.e.eventType === T.EV_EFI_VARIABLE_DRIVER_CONFIG), 'uefi-variable');
  t.equal(sb.unicodeName, 'SecureBoot');
  t.equal(sb.variableName, '8be4df61-93ca-11d2-aa0d-00e098032b8c');
  t.same([...sb.variableData], [1]);
  const db = decoded.map((x) => x.d).find((d): d is Extract<EventData, { kind: 'uefi-variable' }> => d.kind === 'uefi-variable' && d.unicodeName === 'db');
  t.ok(db !== undefined);
  const entries = decodeEfiSignatureLists(db?.variableData ?? new Uint8Array(0));
  t.equal(entries.length, 2);
  t.equal(entries[0]?.signatureType, 'a5c059a1-94e4-4aa7-87b5-ab155c2bf072', 'EFI_CERT_X509_GUID');
  t.equal(entries[0]?.signatureOwner, OWNER.MICROSOFT);
  t.same(entries[0]?.signatureData, TEST_CERTS.dbUefiCa);
  const boot = decoded.map((x) => x.d).find((d): d is Extract<EventData, { kind: 'uefi-variable' }> => d.kind === 'uefi-variable' && d.unicodeName === 'Boot0001');
  t.equal(boot?.bootOption?.description, 'debian');
  t.equal(boot?.bootOption?.devicePath.text, 'HD(1,GPT,3e4f5a10-8c8a-4c5e-9d7f-2b1c0a9e8d71,0x800,0x100000)/\\EFI\\debian\\shimx64.efi');
  const apps = decoded.filter((x) => x.e.eventType === T.EV_EFI_BOOT_SERVICES_APPLICATION).map((x) => kind(x.d, 'image-load').devicePath.text);
  t.same(apps, [
    'PciRoot(0x0)/Pci(0x1f,0x2)/Sata(0x0,0xffff,0x0)/HD(1,GPT,3e4f5a10-8c8a-4c5e-9d7f-2b1c0a9e8d71,0x800,0x100000)/\\EFI\\debian\\shimx64.efi',
    'HD(1,GPT,3e4f5a10-8c8a-4c5e-9d7f-2b1c0a9e8d71,0x800,0x100000)/\\EFI\\debian\\grubx64.efi',
    'HD(2,GPT,9a1b2c3d-4e5f-4a6b-8c7d-0e1f2a3b4c5d,0x100800,0x2625a00)/\\vmlinuz-6.1.0-18-amd64',
  ]);
  const rom = kind(find((x) => x.e.eventType === T.EV_EFI_BOOT_SERVICES_DRIVER), 'image-load');
  t.equal(rom.devicePath.text, 'PciRoot(0x0)/Pci(0x3,0x0)/Offset(0x10000,0x2bfff)');
  const gpt = kind(find((x) => x.e.eventType === T.EV_EFI_GPT_EVENT), 'gpt');
  t.equal(gpt.header.signature, 'EFI PART');
  t.same(
    gpt.partitions.map((p) => [p.partitionName, p.partitionTypeGuid]),
    [
      ['EFI System Partition', 'c12a7328-f81f-11d2-ba4b-00a0c93ec93b'],
      ['root', '0fc63daf-8483-4772-8e79-3d69d8477de4'],
    ],
  );
  const grub = decoded.filter((x) => x.d.kind === 'grub-string').map((x) => kind(x.d, 'grub-string'));
  t.same(grub.find((g) => g.grub === 'kernel_cmdline')?.text, built.kernelCmdline);
  t.ok(grub.some((g) => g.grub === 'grub_cmd' && g.text === 'initrd /initrd.img-6.1.0-18-amd64'));
  t.same(kind(find((x) => x.e.pcrIndex === 4 && x.e.eventType === T.EV_SEPARATOR), 'separator'), { kind: 'separator', value: 0 });
  t.equal(kind(find((x) => x.e.eventType === T.EV_EFI_ACTION), 'text').text, 'Calling EFI Application from Boot Option');
  const tag = kind(find((x) => x.e.eventType === T.EV_EVENT_TAG), 'tagged');
  t.equal(tag.taggedEventId, 0x8f3b22ec);
  t.equal(tag.text, 'Linux initrd');
  t.equal(kind(find((x) => x.e.pcrIndex === 14), 'text').text, 'MokList');
});

t.test('device paths', async (t) => {
  const eui = Uint8Array.of(0, 0x25, 0x38, 0xb2, 0x21, 0xa0, 0x12, 0x34);
  t.equal(decodeEfiDevicePath(dp.path(dp.pciRoot(0), dp.pci(0x1d, 0), dp.nvme(1, eui), dp.hd(1, 2048n, 1048576n, '3e4f5a10-8c8a-4c5e-9d7f-2b1c0a9e8d71'))).text, 'PciRoot(0x0)/Pci(0x1d,0x0)/NVMe(0x1,00-25-38-B2-21-A0-12-34)/HD(1,GPT,3e4f5a10-8c8a-4c5e-9d7f-2b1c0a9e8d71,0x800,0x100000)');
  t.equal(decodeEfiDevicePath(dp.path(dp.fv('7cb8bdc9-f8eb-4f34-aaea-3ee4af6516a1'), dp.fvFile('462caa21-7614-4503-836e-8ab6f4662331'))).text, 'Fv(7cb8bdc9-f8eb-4f34-aaea-3ee4af6516a1)/FvFile(462caa21-7614-4503-836e-8ab6f4662331)');
  t.equal(decodeEfiDevicePath(dp.path(dp.node(0x03, 0x7e, Uint8Array.of(1, 2)))).text, 'Path(3,126,0102)', 'an unknown node is shown generically');
  t.equal(decodeEfiDevicePath(Buffer.concat([dp.pciRoot(1), Uint8Array.of(0x7f, 0x01, 4, 0), dp.pciRoot(2), dp.end()])).text, 'PciRoot(0x1),PciRoot(0x2)', 'instances');
  t.throws(() => decodeEfiDevicePath(Uint8Array.of(1, 1, 3, 0)), { code: 'EVENTLOG_MALFORMED' }, 'a node shorter than its header');
  t.throws(() => decodeEfiDevicePath(Uint8Array.of(1, 1, 0xff, 0xff, 0)), { code: 'EVENTLOG_MALFORMED' }, 'a node longer than the path');
  const many = Buffer.concat(Array.from({ length: 65 }, () => dp.pci(0, 0)));
  t.throws(() => decodeEfiDevicePath(many), { code: 'EVENTLOG_MALFORMED' }, 'more than 64 nodes');
});

t.test('bad payloads decode as undecodable, the log stays readable', async (t) => {
  const v = uefiVariableData('8be4df61-93ca-11d2-aa0d-00e098032b8c', 'db', efiSignatureList('c1c41626-504c-4092-aca9-41f936934328', [{ owner: OWNER.MICROSOFT, data: new Uint8Array(32) }]));
  const lying = v.slice();
  new DataView(lying.buffer).setBigUint64(16, 0xffffffffffffffffn, true); // UnicodeNameLength
  t.equal(decodeEventData(T.EV_EFI_VARIABLE_DRIVER_CONFIG, lying, 8).kind, 'undecodable');
  const bigData = v.slice();
  new DataView(bigData.buffer).setBigUint64(24, 1n << 40n, true); // VariableDataLength
  t.equal(decodeEventData(T.EV_EFI_VARIABLE_DRIVER_CONFIG, bigData, 8).kind, 'undecodable');
  t.equal(decodeEventData(T.EV_SEPARATOR, new Uint8Array(3), 8).kind, 'undecodable');
  t.equal(decodeEventData(T.EV_EFI_GPT_EVENT, new Uint8Array(10), 8).kind, 'undecodable');
  t.equal(decodeEventData(T.EV_EFI_BOOT_SERVICES_APPLICATION, new Uint8Array(31), 8).kind, 'undecodable');
  t.equal(decodeEventData(T.EV_EVENT_TAG, new ByteWriter().u32le(1).u32le(0xffffffff).finish(), 8).kind, 'undecodable');
  const list = efiSignatureList('c1c41626-504c-4092-aca9-41f936934328', [{ owner: OWNER.MICROSOFT, data: new Uint8Array(32) }]);
  new DataView(list.buffer).setUint32(24, 47, true); // SignatureSize that does not divide the body
  t.throws(() => decodeEfiSignatureLists(list), { code: 'EVENTLOG_MALFORMED' });
  const big = efiSignatureList('c1c41626-504c-4092-aca9-41f936934328', [{ owner: OWNER.MICROSOFT, data: new Uint8Array(32) }]);
  new DataView(big.buffer).setUint32(16, 0xffffffff, true); // SignatureListSize past the end
  t.throws(() => decodeEfiSignatureLists(big), { code: 'EVENTLOG_MALFORMED' });
  t.same(decodeEventData(T.EV_IPL, char16('LoadOptions here'), 8), { kind: 'text', text: 'LoadOptions here', encoding: 'ucs-2' });
  t.same(decodeEventData(T.EV_IPL, Uint8Array.of(0xff, 0xfe, 0x01), 8), { kind: 'raw' });
  // A builder log with sha512 only, 32-bit UINTN.
  const b = new EventLogBuilder({ banks: ['sha512'], uintnSize: 4 });
  b.measure(4, T.EV_EFI_BOOT_SERVICES_APPLICATION, new ByteWriter().u64le(0x1000n).u32le(0x2000).u32le(0).u32le(dp.end().length).bytes(dp.end()).finish());
  const log = parseEventLog(b.build());
  t.equal(log.uintnSize, 4);
  t.equal(kind(decodeEventData(T.EV_EFI_BOOT_SERVICES_APPLICATION, log.events[0]?.data ?? new Uint8Array(0), 4), 'image-load').imageLengthInMemory, 0x2000n);
});
