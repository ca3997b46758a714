/**
 * parseImaAscii / parseImaBinary on lists the test builder writes the kernel's way: every
 * template, both formats, the SHA-1 and the per-bank SHA-256 column; input split at every
 * offset (pg-protocol style) gives the same entries as one read; malformed lines and records
 * fail with their position.
 */
import t, { type Test } from 'tap';
import { ByteWriter, toHex } from '../../../lib/bytes.js';
import { BulwarkError } from '../../../lib/errors.js';
import { parseImaAscii, parseImaBinary, type ImaEntry, type ImaParseOptions, type ParsedImaLog } from '../../../lib/ima/index.js';
import { ImaLogBuilder } from '../../helpers/ima-builder.js';
import { allTemplatesLog, builtView, entryView, sha256 } from './ima-test-logs.js';

type Parser = (bytes: Uint8Array, options?: ImaParseOptions) => ParsedImaLog;
const FORMATS: readonly { name: 'ascii' | 'binary'; parse: Parser; bytes: (b: ImaLogBuilder, from?: number, to?: number) => Buffer }[] = [
  { name: 'ascii', parse: parseImaAscii, bytes: (b, from, to) => b.ascii(from, to) },
  { name: 'binary', parse: parseImaBinary, bytes: (b, from, to) => b.binary(from, to) },
];

function recordSizes(b: ImaLogBuilder, format: 'ascii' | 'binary'): number[] {
  return b.entries.map((e) => (format === 'ascii' ? Buffer.byteLength(b.asciiLine(e)) : b.binaryRecord(e).length));
}

function expectError(t: Test, fn: () => unknown, code: string, details: Record<string, unknown>, what: string): void {
  try {
    fn();
    t.fail(`${what}: no error`);
  } catch (err) {
    if (!(err instanceof BulwarkError)) {
      t.fail(`${what}: ${String(err)}`);
      return;
    }
    t.equal(err.code, code, `${what}: ${err.message}`);
    for (const [k, v] of Object.entries(details)) t.equal(err.details[k], v, `${what}: details.${k}`);
  }
}

for (const column of ['sha1', 'sha256'] as const) {
  for (const f of FORMATS) {
    t.test(`${f.name}, ${column} template hash column: every template decodes to what was written`, async (t) => {
      const b = allTemplatesLog({ templateHashAlgorithm: column });
      const bytes = f.bytes(b);
      const parsed = f.parse(bytes, { templateHashAlgorithm: column });
      const sizes = recordSizes(b, f.name);
      t.equal(parsed.entries.length, b.entries.length);
      t.equal(parsed.nextEntry, b.entries.length);
      t.equal(parsed.nextOffset, bytes.length);
      t.equal(parsed.remainder, 0);
      let offset = 0;
      b.entries.forEach((e, i) => {
        const got = parsed.entries[i];
        if (got === undefined) return;
        t.same(entryView(got), builtView(b, e, i, offset, sizes[i] ?? -1), `entry ${i} ${e.template} ${e.path}`);
        offset += sizes[i] ?? 0;
      });
      const v = parsed.entries.find((e) => e.violation);
      t.equal(v?.path, '/var/log/app.log', 'the violation entry is recognised by its zero template hash');
    });
  }
}

t.test('ASCII and binary forms of one list decode to the same entries (but for offsets and sizes)', async (t) => {
  const b = allTemplatesLog();
  const a = parseImaAscii(b.ascii()).entries.map((e) => ({ ...entryView(e), offset: 0, size: 0 }));
  const n = parseImaBinary(b.binary()).entries.map((e) => ({ ...entryView(e), offset: 0, size: 0 }));
  t.same(a, n);
});

t.test('the ASCII line is exactly the kernel format: "%2d " PCR, trailing space for an empty field', async (t) => {
  const b = new ImaLogBuilder();
  const e = b.realFile('/usr/bin/sed', { template: 'ima-sig' });
  const line = b.asciiLine(e);
  t.match(line, /^10 [0-9a-f]{40} ima-sig sha256:[0-9a-f]{64} \/usr\/bin\/sed \n$/);
  const parsed = parseImaAscii(Buffer.from(line));
  t.equal(parsed.entries[0]?.signature, null, 'an empty sig field is null');
  // A PCR below 10 is printed with a leading space.
  const nine = new ImaLogBuilder();
  const e9 = nine.file('/usr/bin/ls', { digest: sha256(Buffer.from('x')), pcr: 9 });
  const line9 = nine.asciiLine(e9);
  t.equal(line9.slice(0, 3), ' 9 ');
  t.equal(parseImaAscii(Buffer.from(line9)).entries[0]?.pcr, 9);
});

t.test('fromEntry and fromOffset carry positions into a list read from the middle', async (t) => {
  const b = allTemplatesLog();
  for (const f of FORMATS) {
    const sizes = recordSizes(b, f.name);
    const skip = 5;
    const fromOffset = sizes.slice(0, skip).reduce((x, y) => x + y, 0);
    const parsed = f.parse(f.bytes(b, skip), { fromEntry: skip, fromOffset });
    t.equal(parsed.entries[0]?.index, skip, f.name);
    t.equal(parsed.entries[0]?.offset, fromOffset, f.name);
    t.equal(parsed.nextOffset, f.bytes(b).length, f.name);
    t.equal(parsed.nextEntry, b.entries.length, f.name);
  }
});

/** Parses `bytes` split at the given points, carrying the remainder forward like a reader of securityfs would. */
function parseInChunks(parse: Parser, bytes: Buffer, cuts: readonly number[]): ImaEntry[] {
  const out: ImaEntry[] = [];
  let carry: Buffer = Buffer.alloc(0);
  let fromEntry = 0;
  let fromOffset = 0;
  let last = 0;
  for (const cut of [...cuts, bytes.length]) {
    const chunk = Buffer.concat([carry, bytes.subarray(last, cut)]);
    last = cut;
    const p = parse(chunk, { fromEntry, fromOffset, allowIncompleteTail: true });
    out.push(...p.entries);
    carry = chunk.subarray(chunk.length - p.remainder);
    fromEntry = p.nextEntry;
    fromOffset = p.nextOffset;
  }
  if (carry.length !== 0) throw new Error(`${carry.length} bytes left over`);
  return out;
}

for (const f of FORMATS) {
  t.test(`${f.name}: input split at every offset parses to the same entries as one read`, async (t) => {
    const b = allTemplatesLog();
    const bytes = f.bytes(b);
    const whole = f.parse(bytes).entries.map(entryView);
    let mismatches = 0;
    for (let cut = 0; cut <= bytes.length; cut++) {
      const got = parseInChunks(f.parse, bytes, [cut]).map(entryView);
      if (JSON.stringify(got) !== JSON.stringify(whole)) {
        mismatches++;
        t.same(got, whole, `split at ${cut}`);
      }
    }
    t.equal(mismatches, 0, `${bytes.length + 1} split points`);
    // Three pieces at a sample of point pairs.
    for (let a = 1; a < bytes.length; a += 97) {
      for (let c = a; c < bytes.length; c += 131) {
        const got = parseInChunks(f.parse, bytes, [a, c]).map(entryView);
        if (JSON.stringify(got) !== JSON.stringify(whole)) t.fail(`split at ${a} and ${c}`);
      }
    }
  });

  t.test(`${f.name}: a list cut anywhere but between entries is IMA_LOG_TRUNCATED at the cut entry`, async (t) => {
    const b = allTemplatesLog();
    const bytes = f.bytes(b);
    const sizes = recordSizes(b, f.name);
    const starts: number[] = [];
    let at = 0;
    for (const s of sizes) {
      starts.push(at);
      at += s;
    }
    let failures = 0;
    for (let cut = 0; cut < bytes.length; cut++) {
      const boundary = starts.indexOf(cut);
      try {
        const p = f.parse(bytes.subarray(0, cut));
        if (boundary === -1) failures++;
        else if (p.entries.length !== boundary) failures++;
      } catch (err) {
        const entry = starts.filter((s) => s <= cut).length - 1;
        if (!(err instanceof BulwarkError) || err.code !== 'IMA_LOG_TRUNCATED' || err.details['entry'] !== entry || err.details['offset'] !== starts[entry]) {
          failures++;
          t.fail(`cut at ${cut}: ${String(err)}`);
        }
      }
    }
    t.equal(failures, 0, `${bytes.length} cuts`);
  });
}

t.test('malformed ASCII lines: IMA_LOG_MALFORMED (or IMA_TEMPLATE_UNSUPPORTED) with entry, offset and column', async (t) => {
  const b = new ImaLogBuilder();
  b.realFile('/usr/bin/ls');
  const good = b.asciiLine(b.entries[0] ?? b.realFile('/usr/bin/ls'));
  const prefix = good; // a valid first line: errors are reported for entry 1 at its offset
  const h40 = 'ab'.repeat(20);
  const d = `sha256:${'cd'.repeat(32)}`;
  const cases: readonly [string, string, string, number?][] = [
    ['PCR without leading space', `9 ${h40} ima-ng ${d} /x\n`, 'IMA_LOG_MALFORMED', 0],
    ['PCR with a leading zero', `09 ${h40} ima-ng ${d} /x\n`, 'IMA_LOG_MALFORMED', 0],
    ['PCR above 23', `24 ${h40} ima-ng ${d} /x\n`, 'IMA_LOG_MALFORMED', 0],
    ['short template hash', `10 ${h40.slice(2)} ima-ng ${d} /x\n`, 'IMA_LOG_MALFORMED', 3],
    ['uppercase template hash', `10 ${h40.toUpperCase()} ima-ng ${d} /x\n`, 'IMA_LOG_MALFORMED', 3],
    ['unknown template', `10 ${h40} ima-foo ${d} /x\n`, 'IMA_TEMPLATE_UNSUPPORTED'],
    ['unprintable template', `10 ${h40} ima\u0001ng ${d} /x\n`, 'IMA_LOG_MALFORMED'],
    ['missing field', `10 ${h40} ima-ng ${d}\n`, 'IMA_LOG_MALFORMED'],
    ['extra field', `10 ${h40} ima-ng ${d} /x y\n`, 'IMA_LOG_MALFORMED'],
    ['two spaces', `10 ${h40} ima-ng  ${d} /x\n`, 'IMA_LOG_MALFORMED'],
    ['digest without algorithm', `10 ${h40} ima-ng ${'cd'.repeat(32)} /x\n`, 'IMA_LOG_MALFORMED'],
    ['unknown algorithm', `10 ${h40} ima-ng sha999:${'cd'.repeat(32)} /x\n`, 'IMA_LOG_MALFORMED'],
    ['digest of the wrong length', `10 ${h40} ima-ng sha256:${'cd'.repeat(20)} /x\n`, 'IMA_LOG_MALFORMED'],
    ['odd hex digest', `10 ${h40} ima-ng sha256:${'cd'.repeat(32)}c /x\n`, 'IMA_LOG_MALFORMED'],
    ['empty name', `10 ${h40} ima-ng ${d} \n`, 'IMA_LOG_MALFORMED'],
    ['odd hex signature', `10 ${h40} ima-sig ${d} /x 030\n`, 'IMA_LOG_MALFORMED'],
    ['non-hex buffer', `10 ${h40} ima-buf ${d} kernel_version zz\n`, 'IMA_LOG_MALFORMED'],
    ['modsig without d-modsig', `10 ${h40} ima-modsig ${d} /x   3082\n`, 'IMA_LOG_MALFORMED'],
    ['violation with a digest', `10 ${'00'.repeat(20)} ima-ng ${d} /x\n`, 'IMA_LOG_MALFORMED'],
    ["'ima' template digest of 19 bytes", `10 ${h40} ima ${'ab'.repeat(19)} /x\n`, 'IMA_LOG_MALFORMED'],
    ["'ima' template name over 255 bytes", `10 ${h40} ima ${h40} /${'a'.repeat(255)}\n`, 'IMA_LOG_MALFORMED'],
  ];
  const offset = Buffer.byteLength(prefix);
  for (const [what, line, code, column] of cases) {
    const details: Record<string, unknown> = { entry: 1, offset };
    if (column !== undefined) details['column'] = column;
    expectError(t, () => parseImaAscii(Buffer.from(prefix + line, 'latin1')), code, details, what);
  }
  expectError(t, () => parseImaAscii(Buffer.from('x'.repeat(40))), 'IMA_LOG_TRUNCATED', { entry: 0, offset: 0 }, 'no newline at all');
});

t.test('malformed binary records: each length checked against what is left and its cap', async (t) => {
  const d = Buffer.concat([Buffer.from('sha256:\0', 'latin1'), Buffer.alloc(32, 7)]);
  const n = Buffer.from('/x\0', 'latin1');
  const data = new ByteWriter().u32le(d.length).bytes(d).u32le(n.length).bytes(n).finish();
  const record = (o: { pcr?: number; nameLen?: number; name?: string; dataLen?: number; data?: Uint8Array; hash?: Uint8Array }): Uint8Array => {
    const name = o.name ?? 'ima-ng';
    const body = o.data ?? data;
    return new ByteWriter()
      .u32le(o.pcr ?? 10) // PCR
      .bytes(o.hash ?? new Uint8Array(20).fill(1)) // template hash
      .u32le(o.nameLen ?? name.length) // template name length
      .bytes(Buffer.from(name, 'latin1')) // template name
      .u32le(o.dataLen ?? body.length) // template data length
      .bytes(body) // template data
      .finish();
  };
  t.equal(parseImaBinary(record({})).entries.length, 1, 'the base record is valid');
  const cases: readonly [string, Uint8Array, string, Record<string, unknown>][] = [
    ['PCR 4 billion', record({ pcr: 0xffffffff }), 'IMA_LOG_MALFORMED', { field: 'pcr' }],
    ['template name length 0', record({ nameLen: 0, name: '' }), 'IMA_LOG_MALFORMED', { field: 'template name' }],
    ['template name length 2^32-1', record({ nameLen: 0xffffffff }), 'IMA_LOG_MALFORMED', { field: 'template name' }],
    ['unknown template', record({ name: 'evm-sig' }), 'IMA_TEMPLATE_UNSUPPORTED', { template: 'evm-sig' }],
    ['template data length 2^32-1', record({ dataLen: 0xffffffff }), 'IMA_LOG_MALFORMED', { field: 'template data length' }],
    ['field longer than the template data', record({ data: new ByteWriter().u32le(100).bytes(d).finish() }), 'IMA_LOG_MALFORMED', { field: 'd-ng' }],
    ['bytes after the last field', record({ data: new ByteWriter().bytes(data).u8(0).finish() }), 'IMA_LOG_MALFORMED', { field: 'template data' }],
    ['missing n-ng', record({ data: new ByteWriter().u32le(d.length).bytes(d).finish() }), 'IMA_LOG_MALFORMED', { field: 'n-ng' }],
    ['name without NUL', record({ data: new ByteWriter().u32le(d.length).bytes(d).u32le(2).bytes(Buffer.from('/x')).finish() }), 'IMA_LOG_MALFORMED', { field: 'n-ng' }],
    ['NUL inside the name', record({ data: new ByteWriter().u32le(d.length).bytes(d).u32le(4).bytes(Buffer.from('/\0x\0', 'latin1')).finish() }), 'IMA_LOG_MALFORMED', { field: 'n-ng' }],
    ['violation with a digest', record({ hash: new Uint8Array(20) }), 'IMA_LOG_MALFORMED', { field: 'd' }],
  ];
  const first = record({});
  for (const [what, bytes, code, details] of cases) {
    // After one good record, so the position is entry 1 at the first record's size.
    expectError(t, () => parseImaBinary(Buffer.concat([first, bytes])), code, { entry: 1, offset: first.length, ...details }, what);
  }
  // A huge declared length never allocates: the record is simply incomplete, or above the cap.
  const huge = record({ dataLen: 1 << 20 });
  expectError(t, () => parseImaBinary(huge), 'IMA_LOG_TRUNCATED', { entry: 0, offset: 0 }, 'declared 1 MiB, a few bytes present');
  t.equal(parseImaBinary(huge, { allowIncompleteTail: true }).remainder, huge.length, 'left for the next read');
});

t.test('big-endian hosts: binary integers and hashed field lengths in host order', async (t) => {
  const b = new ImaLogBuilder();
  b.realFile('/usr/bin/ls');
  const le = parseImaBinary(b.binary()).entries[0];
  // Re-encode the same entry as a big-endian host writes it.
  const digest = Buffer.concat([Buffer.from('sha256:\0', 'latin1'), le?.digest ?? Buffer.alloc(32)]);
  const name = Buffer.from('/usr/bin/ls\0', 'latin1');
  const data = new ByteWriter().u32be(digest.length).bytes(digest).u32be(name.length).bytes(name).finish();
  const rec = new ByteWriter().u32be(10).bytes(new Uint8Array(20).fill(9)).u32be(6).bytes(Buffer.from('ima-ng')).u32be(data.length).bytes(data).finish();
  const be = parseImaBinary(rec, { byteOrder: 'be' }).entries[0];
  t.equal(be?.path, '/usr/bin/ls');
  t.equal(be?.pcr, 10);
  t.equal(toHex(be?.hashInput ?? new Uint8Array(0)), toHex(data), 'the hash input keeps the host-order lengths');
  expectError(t, () => parseImaBinary(rec), 'IMA_LOG_MALFORMED', { entry: 0 }, 'read as little-endian');
});

t.test('options are checked', async (t) => {
  expectError(t, () => parseImaAscii(Buffer.alloc(0), { fromEntry: -1 }), 'USAGE', {}, 'negative fromEntry');
  expectError(t, () => parseImaBinary(Buffer.alloc(0), { fromOffset: 0.5 }), 'USAGE', {}, 'fractional fromOffset');
  t.same(parseImaAscii(Buffer.alloc(0), { fromEntry: 7, fromOffset: 99 }), { format: 'ascii', entries: [], nextEntry: 7, nextOffset: 99, remainder: 0 });
});

t.test('entries serialize without their source buffer and keep the logged name bytes', async (t) => {
  const b = new ImaLogBuilder();
  b.file('/opt/caf\u00e9/run', { digest: sha256(Buffer.from('x')) });
  const e = parseImaBinary(b.binary()).entries[0];
  if (e === undefined) return t.fail('no entry');
  t.equal(Buffer.from(e.pathBytes).toString('utf8'), '/opt/caf\u00e9/run');
  t.equal(e.path, '/opt/caf\u00e9/run');
  const json = JSON.stringify(e);
  t.ok(json.length < 600, `${json.length} bytes of JSON`);
  t.match(JSON.parse(json), { index: 0, template: 'ima-ng', path: '/opt/caf\u00e9/run', digest: `sha256:${sha256(Buffer.from('x')).toString('hex')}` });
});
