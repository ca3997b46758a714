/**
 * The NATS codecs over the generated code: every fixture in test/fixtures/wire/ (bytes the
 * earlier protobufjs codec wrote, see its README) decodes to its NAME.json, encodes back
 * to the same message (byte for byte where protobufjs left no default field out), and
 * hostile input (truncated, mutated, oversized, out-of-range) yields WIRE_MALFORMED.
 */
import t, { type Test } from 'tap';
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { BulwarkError, ByteWriter, concatBytes, toHex } from '../../lib/index.js';
import { EMPTY_REPLY_STATE, NO_LOGS, WIRE_LIMITS, wire, type Codec, type EvidenceMsg } from '../../proto/index.js';

const DIR = fileURLToPath(new URL('../../../test/fixtures/wire/', import.meta.url));

/** Fixtures whose protobufjs bytes carry no explicitly written default field. */
const BYTE_IDENTICAL = new Set(['nonce-request', 'challenge', 'evidence-full', 'evidence-reply', 'trust-event']);

interface RoundTrip {
  readonly decoded: unknown;
  readonly again: Uint8Array;
  readonly redecoded: unknown;
}

/** Decodes, encodes what it decoded, and decodes that again, with one codec. */
function roundTripper<T>(codec: Codec<T>): (bytes: Uint8Array) => RoundTrip {
  return (bytes) => {
    const decoded = codec.decode(bytes);
    const again = codec.encode(decoded);
    return { decoded, again, redecoded: codec.decode(again) };
  };
}

/** By the `message` of NAME.json. */
const CODECS: ReadonlyMap<string, { decode(bytes: Uint8Array): unknown; roundTrip(bytes: Uint8Array): RoundTrip }> = new Map([
  ['nonceRequest', { decode: (b: Uint8Array) => wire.nonceRequest.decode(b), roundTrip: roundTripper(wire.nonceRequest) }],
  ['challenge', { decode: (b: Uint8Array) => wire.challenge.decode(b), roundTrip: roundTripper(wire.challenge) }],
  ['evidence', { decode: (b: Uint8Array) => wire.evidence.decode(b), roundTrip: roundTripper(wire.evidence) }],
  ['evidenceReply', { decode: (b: Uint8Array) => wire.evidenceReply.decode(b), roundTrip: roundTripper(wire.evidenceReply) }],
  ['trustEvent', { decode: (b: Uint8Array) => wire.trustEvent.decode(b), roundTrip: roundTripper(wire.trustEvent) }],
]);

/** Bytes as hex, so decoded messages compare with NAME.json. */
function jsonable(v: unknown): unknown {
  if (v instanceof Uint8Array) return toHex(v);
  if (Array.isArray(v)) return v.map(jsonable);
  if (typeof v === 'object' && v !== null) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, jsonable(x)]));
  return v;
}

function fixture(name: string): { bytes: Uint8Array; codec: { decode(bytes: Uint8Array): unknown; roundTrip(bytes: Uint8Array): RoundTrip }; value: unknown } {
  const bytes = new Uint8Array(readFileSync(`${DIR}${name}.bin`));
  const doc: unknown = JSON.parse(readFileSync(`${DIR}${name}.json`, 'utf8'));
  if (typeof doc !== 'object' || doc === null) throw new Error(`${name}.json is not an object`);
  const message: unknown = Reflect.get(doc, 'message');
  const codec = typeof message === 'string' ? CODECS.get(message) : undefined;
  if (codec === undefined) throw new Error(`${name}.json names no known message`);
  return { bytes, codec, value: Reflect.get(doc, 'value') };
}

function malformed(t: Test, fn: () => unknown, what: string): void {
  t.throws(fn, { name: 'BulwarkError', code: 'WIRE_MALFORMED' }, what);
}

/** Decodes or refuses with WIRE_MALFORMED; anything else (RangeError, TypeError) fails. */
function decodesOrRefuses(decode: () => unknown): string | null {
  try {
    decode();
    return null;
  } catch (err) {
    if (err instanceof BulwarkError && err.code === 'WIRE_MALFORMED') return null;
    return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  }
}

/** A protobuf varint (base 128, least significant group first). */
function varint(w: ByteWriter, v: bigint): ByteWriter {
  let x = v;
  while (x >= 0x80n) {
    w.u8(Number(x & 0x7fn) | 0x80);
    x >>= 7n;
  }
  return w.u8(Number(x));
}

const names = readdirSync(DIR)
  .filter((f) => f.endsWith('.bin'))
  .map((f) => f.slice(0, -'.bin'.length))
  .sort();
t.ok(names.length >= 6, `${names.length} fixtures`);

for (const name of names) {
  t.test(name, async (t) => {
    const { bytes, codec, value } = fixture(name);
    const { decoded, again, redecoded } = codec.roundTrip(bytes);
    t.same(jsonable(decoded), value, 'the generated decoder reads what protobufjs wrote');
    t.same(jsonable(redecoded), value, 'the generated encoding decodes to the same message');
    if (BYTE_IDENTICAL.has(name)) t.same(toHex(again), toHex(bytes), 'byte for byte the same as protobufjs');
    else t.ok(again.length < bytes.length, 'shorter: default fields are left out');
  });
}

t.test('every truncation and every single-byte mutation decodes or is WIRE_MALFORMED', async (t) => {
  for (const name of names) {
    const { bytes, codec } = fixture(name);
    const failures: string[] = [];
    for (let end = 0; end < bytes.length; end++) {
      const f = decodesOrRefuses(() => codec.decode(bytes.subarray(0, end)));
      if (f !== null) failures.push(`truncated at ${end}: ${f}`);
    }
    for (let i = 0; i < bytes.length; i++) {
      for (const mask of [0xff, 0x80, 0x01]) {
        const mutated = bytes.slice();
        mutated[i] = (mutated[i] ?? 0) ^ mask;
        const f = decodesOrRefuses(() => codec.decode(mutated));
        if (f !== null) failures.push(`byte ${i} ^ ${mask}: ${f}`);
      }
    }
    t.same(failures, [], name);
  }
});

const EVIDENCE: EvidenceMsg = {
  nodeId: 'node-1',
  nonce: new Uint8Array(32).fill(7),
  attest: new Uint8Array([0xff, 0x54, 0x43, 0x47]),
  signature: new Uint8Array([0x00, 0x14]),
  pcrs: new Uint8Array([1]),
  bootId: 'boot',
  facts: null,
  factsDigest: '',
  round: 1,
  ...NO_LOGS,
};

t.test('size caps: each decoded field is bounded', async (t) => {
  const over = (n: number): Uint8Array => new Uint8Array(n + 1);
  malformed(t, () => wire.evidence.decode(wire.evidence.encode({ ...EVIDENCE, attest: over(WIRE_LIMITS.tpmBlob) })), 'attest past tpmBlob');
  malformed(t, () => wire.evidence.decode(wire.evidence.encode({ ...EVIDENCE, nonce: over(64) })), 'nonce past 64 bytes');
  malformed(t, () => wire.evidence.decode(wire.evidence.encode({ ...EVIDENCE, eventLog: over(WIRE_LIMITS.eventLog) })), 'event log past its cap');
  malformed(t, () => wire.evidence.decode(wire.evidence.encode({ ...EVIDENCE, systemdLog: over(WIRE_LIMITS.systemdLog) })), 'systemd log past its cap');
  malformed(t, () => wire.evidence.decode(wire.evidence.encode({ ...EVIDENCE, imaEntries: over(WIRE_LIMITS.imaChunk) })), 'IMA chunk past its cap');
  malformed(t, () => wire.evidence.decode(wire.evidence.encode({ ...EVIDENCE, bootId: 'b'.repeat(129) })), 'boot id past 128 characters');
  malformed(t, () => wire.evidence.decode(wire.evidence.encode({ ...EVIDENCE, imaFormat: 'text' })), 'ima_format outside ascii/binary');
  malformed(t, () => wire.evidence.decode(wire.evidence.encode({ ...EVIDENCE, nodeId: 'no/de' })), 'node id outside the safe alphabet');
  malformed(t, () => wire.evidence.decode(wire.evidence.encode({ ...EVIDENCE, nodeId: '' })), 'empty node id');
  const facts = {
    hostname: 'h',
    osDistro: '',
    osRelease: '',
    kernel: '',
    arch: '',
    cpu: '',
    cpuCores: 1,
    memoryBytes: 1,
    disks: [],
    interfaces: Array.from({ length: WIRE_LIMITS.list + 1 }, (_, i) => ({ name: `eth${i}`, mac: '', addresses: [] })),
    machineId: '',
    systemManufacturer: '',
    systemModel: '',
    systemSerial: '',
    systemUuid: '',
    boardManufacturer: '',
    boardModel: '',
    boardSerial: '',
  };
  malformed(t, () => wire.evidence.decode(wire.evidence.encode({ ...EVIDENCE, facts })), 'more interfaces than the list cap');
  malformed(t, () => wire.evidence.decode(wire.evidence.encode({ ...EVIDENCE, facts: { ...facts, interfaces: [], hostname: 'h'.repeat(256) } })), 'hostname past 255');
  t.equal(wire.evidence.decode(wire.evidence.encode({ ...EVIDENCE, facts: { ...facts, interfaces: [] } })).facts?.hostname, 'h', 'facts within the caps pass');

  const reply = { verdict: 'untrusted', ...EMPTY_REPLY_STATE };
  const finding = { code: 'PCR_MISMATCH', message: 'm', details: {} };
  malformed(t, () => wire.evidenceReply.decode(wire.evidenceReply.encode({ ...reply, findings: Array.from({ length: WIRE_LIMITS.list + 1 }, () => finding) })), 'more findings than the list cap');
  const details = Object.fromEntries(Array.from({ length: WIRE_LIMITS.list + 1 }, (_, i) => [`k${i}`, 'v']));
  malformed(t, () => wire.evidenceReply.decode(wire.evidenceReply.encode({ ...reply, findings: [{ ...finding, details }] })), 'more finding details than the list cap');
  malformed(t, () => wire.evidenceReply.decode(wire.evidenceReply.encode({ ...reply, findings: [{ ...finding, code: 'C'.repeat(65) }] })), 'finding code past 64');
  malformed(t, () => wire.evidenceReply.decode(wire.evidenceReply.encode({ ...reply, findings: [{ ...finding, details: { k: 'v'.repeat(WIRE_LIMITS.string + 1) } }] })), 'detail value past the string cap');
});

t.test('hand-built payloads the encoder would never write', async (t) => {
  const base = wire.evidence.encode(EVIDENCE);
  const huge = varint(new ByteWriter(), 9n << 3n) // Evidence.round, field 9, varint
    .bytes(new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01])); // 2^64 - 1
  malformed(t, () => wire.evidence.decode(concatBytes(base, huge.finish())), 'a uint64 past 2^53');

  const longNonce = varint(new ByteWriter(), (2n << 3n) | 2n) // Evidence.nonce, field 2, length-delimited
    .bytes(new Uint8Array([0xff, 0xff, 0xff, 0xff, 0x07])); // length 2^31 - 1, no bytes follow
  malformed(t, () => wire.evidence.decode(longNonce.finish()), 'a length prefix past the end');

  const badVarint = new Uint8Array(12).fill(0xff); // a tag varint that never ends
  malformed(t, () => wire.evidence.decode(badVarint), 'a varint longer than 10 bytes');

  const event = wire.trustEvent.encode({ nodeId: 'node-1', previous: 'trusted', state: 'untrusted', reasons: [], at: '', sequence: 1 });
  const unknownState = varint(new ByteWriter(), 3n << 3n) // TrustEvent.state, field 3, varint
    .u8(9); // no TrustState has the value 9
  malformed(t, () => wire.trustEvent.decode(concatBytes(event, unknownState.finish())), 'an unknown TrustState value');

  const endGroup = varint(new ByteWriter(), (20n << 3n) | 4n); // field 20, end-group with no start
  t.equal(decodesOrRefuses(() => wire.evidence.decode(concatBytes(base, endGroup.finish()))), null, 'a stray end-group decodes or is refused');
});
