/**
 * DerWriter against encodings stated in X.690 and RFC 5280, and DerReader reading back
 * what the writer wrote.
 */
import t from 'tap';
import { toHex } from '../../../lib/bytes.js';
import { BulwarkError } from '../../../lib/errors.js';
import { DER_TAG, DerReader, DerWriter, decodeOid, decodeTime, decodeUnsignedInteger, encodeOid } from '../../../lib/pki/index.js';

const hex = (w: DerWriter): string => toHex(w.finish());

t.test('primitive encodings', async (t) => {
  // ecdsa-with-SHA256 (RFC 5758, 3.2): 06 08 2A 86 48 CE 3D 04 03 02.
  t.equal(hex(new DerWriter().oid('1.2.840.10045.4.3.2')), '06082a8648ce3d040302');
  // id-Ed25519 (RFC 8410, 3): 06 03 2B 65 70.
  t.equal(hex(new DerWriter().oid('1.3.101.112')), '06032b6570');
  // An arc of exactly 128 takes two base-128 octets.
  t.equal(toHex(encodeOid('2.5.29.128')), '551d8100');
  t.equal(hex(new DerWriter().boolean(true)), '0101ff', 'DER TRUE is 0xff (X.690, 11.1)');
  t.equal(hex(new DerWriter().smallInteger(0)), '020100');
  t.equal(hex(new DerWriter().smallInteger(127)), '02017f');
  t.equal(hex(new DerWriter().smallInteger(128)), '02020080', 'a set high bit gets a 0x00 octet');
  t.equal(hex(new DerWriter().unsignedInteger(Uint8Array.of(0, 0, 1))), '020101', 'leading zero octets are dropped');
  t.equal(hex(new DerWriter().null()), '0500');
  t.equal(hex(new DerWriter().bitString(Uint8Array.of(0x80), 7)), '03020780');
  t.equal(hex(new DerWriter().octetString(new Uint8Array(128))).slice(0, 6), '048180', 'length 128 in long form, one octet');
  t.equal(hex(new DerWriter().octetString(new Uint8Array(256))).slice(0, 8), '04820100', 'length 256 in long form, two octets');
  t.equal(hex(new DerWriter().implicit(6, Uint8Array.of(0x61))), '860161');
  t.equal(hex(new DerWriter().explicit(0, (w) => w.smallInteger(2))), 'a003020102');
});

t.test('times: UTCTime through 2049, GeneralizedTime from 2050 (RFC 5280, 4.1.2.5)', async (t) => {
  const utc = new DerWriter().time(new Date(Date.UTC(2049, 11, 31, 23, 59, 59, 999))).finish();
  t.equal(Buffer.from(utc.subarray(2)).toString('latin1'), '491231235959Z');
  t.equal(utc[0], DER_TAG.UTC_TIME);
  const gen = new DerWriter().time(new Date(Date.UTC(2050, 0, 1, 0, 0, 0))).finish();
  t.equal(gen[0], DER_TAG.GENERALIZED_TIME);
  t.equal(Buffer.from(gen.subarray(2)).toString('latin1'), '20500101000000Z');
  for (const at of [Date.UTC(1950, 0, 1), Date.UTC(2026, 5, 30, 12, 1, 2), Date.UTC(2049, 11, 31, 23, 59, 59), Date.UTC(2050, 0, 1), Date.UTC(9999, 11, 31)]) {
    const r = new DerReader(new DerWriter().time(new Date(at)).finish(), 'CERT_MALFORMED');
    t.equal(decodeTime(r.tlv('time'), 'CERT_MALFORMED', 'time'), at, new Date(at).toISOString());
  }
  t.throws(() => new DerWriter().time(new Date(Number.NaN)), { code: 'PKI_TEMPLATE_INVALID' }, 'an invalid date');
});

t.test('SET OF is sorted by encoding (X.690, 11.6)', async (t) => {
  const w = new DerWriter().setOf([(w) => w.smallInteger(3), (w) => w.smallInteger(1), (w) => w.octetString(Uint8Array.of(0))]);
  t.equal(hex(w), '3109020101020103040100');
});

t.test('reader reads back what the writer wrote', async (t) => {
  const der = new DerWriter()
    .sequence((s) => s.oid('1.2.840.113549.1.1.11').unsignedInteger(Uint8Array.of(0xff, 0x01)).octetString(new Uint8Array(300)))
    .finish();
  const top = new DerReader(der, 'CERT_MALFORMED');
  const seq = top.nested(DER_TAG.SEQUENCE, 'seq');
  top.end('seq');
  t.equal(decodeOid(seq.expect(DER_TAG.OID, 'oid'), 'CERT_MALFORMED'), '1.2.840.113549.1.1.11');
  t.equal(toHex(decodeUnsignedInteger(seq.expect(DER_TAG.INTEGER, 'int'), 'CERT_MALFORMED', 'int')), 'ff01');
  t.equal(seq.expect(DER_TAG.OCTET_STRING, 'octets').length, 300);
  seq.end('seq');
});

t.test('the reader refuses what DER does not allow, with its code', async (t) => {
  const code = (bytes: number[]): string => {
    try {
      new DerReader(Uint8Array.from(bytes), 'CERT_MALFORMED').tlv('x');
      return 'returned';
    } catch (err) {
      return err instanceof BulwarkError ? err.code : 'other';
    }
  };
  t.equal(code([0x04, 0x80]), 'CERT_MALFORMED', 'indefinite length');
  t.equal(code([0x04, 0x81, 0x05, 1, 2, 3, 4, 5]), 'CERT_MALFORMED', 'non-minimal long form');
  t.equal(code([0x04, 0x85, 1, 1, 1, 1, 1]), 'CERT_MALFORMED', 'five length octets');
  t.equal(code([0x04, 0x84, 0x7f, 0xff, 0xff, 0xff]), 'CERT_MALFORMED', 'length past the end');
  t.equal(code([0x1f, 0x01, 0x00]), 'CERT_MALFORMED', 'high tag number');
  t.equal(code([0x04, 0x01, 0x00]), 'returned');
  t.throws(() => decodeUnsignedInteger(Uint8Array.of(0x80), 'CERT_MALFORMED', 'n'), /negative/);
  t.throws(() => decodeUnsignedInteger(Uint8Array.of(0x00, 0x01), 'CERT_MALFORMED', 'n'), /minimally/);
});

t.test('the writer refuses what it cannot encode', async (t) => {
  const refused = (fn: () => unknown): boolean => {
    try {
      fn();
      return false;
    } catch (err) {
      return err instanceof BulwarkError && err.code === 'PKI_TEMPLATE_INVALID';
    }
  };
  t.ok(refused(() => encodeOid('3.1')), 'first arc above 2');
  t.ok(refused(() => encodeOid('1.40')), 'second arc 40 under arc 1');
  t.ok(refused(() => encodeOid('1.2.03')), 'leading zero');
  t.ok(refused(() => new DerWriter().smallInteger(-1)));
  t.ok(refused(() => new DerWriter().bitString(Uint8Array.of(1), 8)));
  t.ok(refused(() => new DerWriter().ia5String('é')));
});
