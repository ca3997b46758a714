/**
 * The binary measurement list, /sys/kernel/security/ima/binary_runtime_measurements
 * (Linux security/integrity/ima/ima_fs.c, ima_measurements_show). One record per entry;
 * integers in the host's byte order, little-endian with ima_canonical_fmt:
 *
 *   offset  size  field
 *   0       4     PCR index                       u32
 *   4       H     template hash                   TPM_DIGEST_SIZE (20, SHA-1); the bank's digest
 *                                                  size in the per-bank files (Linux 6.10+)
 *   4+H     4     template name length N          u32, 1..64 here
 *   8+H     N     template name                   no NUL
 *   8+H+N   4     template data length L          u32 — absent for the 'ima' template
 *   12+H+N  L     template data                   per field: u32 length, then the data
 *
 * The 'ima' template (ima_fs.c: is_ima_template) is written differently: no template data
 * length, its d field without a length (IMA_SHOW_BINARY_NO_FIELD_LEN: 20 bytes, SHA-1), its
 * n field as u32 strlen then the name without NUL (IMA_SHOW_BINARY_OLD_STRING_FMT).
 *
 * For every other template the template data is exactly what the kernel hashed into the
 * template hash (ima_calc_field_array_hash_tfm), so the entry's hashInput is a view of the
 * input. Every length is checked against what is left and a named cap before it is used.
 */
import { ByteReader } from '../bytes.js';
import { asBuffer, dataViewOf, decodeEntry, FieldBounds, SlotTable, IMA_TEMPLATE_NAME_PAD, logError, resolveParseOptions, templateAt, unknownTemplate, view } from './fields.js';
import { IMA_LIMITS, IMA_TEMPLATE_FIELDS, type ImaEntry, type ImaParseOptions, type ParsedImaLog } from './types.js';

/** Size of the bare digest of the 'ima' template's d field in a binary record (SHA_DIGEST_SIZE). */
const IMA_TEMPLATE_DIGEST_SIZE = 20;

/**
 * Parses binary_runtime_measurements bytes (the whole list, or the part read from byte
 * `fromOffset` where entry `fromEntry` begins). Pure; malformed input throws a BulwarkError
 * with the entry index and byte offset: IMA_LOG_MALFORMED, IMA_TEMPLATE_UNSUPPORTED, or
 * IMA_LOG_TRUNCATED for a record cut short (unless allowIncompleteTail, which leaves it for
 * the next call). Untrusted output: replay it before believing any entry.
 */
export function parseImaBinary(bytes: Uint8Array, options: ImaParseOptions = {}): ParsedImaLog {
  const o = resolveParseOptions(options);
  const buf = asBuffer(bytes);
  // The reader works on a plain Uint8Array: its slices are cheaper than Buffer subarrays.
  const r = new ByteReader(new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength), 'IMA_LOG_TRUNCATED');
  const le = o.littleEndian;
  const hashSize = o.templateHashSize;
  const bounds = new FieldBounds();
  const bufView = dataViewOf(buf);
  const slots = new SlotTable();
  const entries: ImaEntry[] = [];
  let index = o.fromEntry;
  // One scratch buffer for the 'ima' template's padded hash inputs, sliced per entry.
  let scratch = Buffer.alloc(0);
  let scratchUsed = 0;

  while (!r.atEnd) {
    const start = r.offset;
    // Positions are made only for errors: no object per entry.
    /** Every length is checked against what is left before it is read; a short record is incomplete, not malformed. */
    let missing = 0;
    parse: {
      if (r.remaining < 8 + hashSize) {
        missing = 8 + hashSize;
        break parse;
      }
      const pcr = le ? r.u32le('PCR') : r.u32be('PCR');
      if (pcr > IMA_LIMITS.pcrMax) throw logError('IMA_LOG_MALFORMED', { entry: index, offset: o.fromOffset + start }, `PCR ${pcr} is above ${IMA_LIMITS.pcrMax}`, { field: 'pcr' });
      const hashAt = r.offset;
      r.skip(hashSize, 'template hash');
      const nameLen = le ? r.u32le('template name length') : r.u32be('template name length');
      if (nameLen === 0 || nameLen > IMA_LIMITS.templateNameMax) {
        throw logError('IMA_LOG_MALFORMED', { entry: index, offset: o.fromOffset + start }, `template name length ${nameLen} is outside 1..${IMA_LIMITS.templateNameMax}`, { field: 'template name' });
      }
      if (r.remaining < nameLen) {
        missing = nameLen;
        break parse;
      }
      const nameAt = r.offset;
      const template = templateAt(buf, nameAt, nameAt + nameLen);
      if (template === undefined) throw unknownTemplate(buf, nameAt, nameAt + nameLen, { entry: index, offset: o.fromOffset + start });
      r.skip(nameLen, 'template name');
      if (template === 'ima') {
        if (r.remaining < IMA_TEMPLATE_DIGEST_SIZE + 4) {
          missing = IMA_TEMPLATE_DIGEST_SIZE + 4;
          break parse;
        }
        const dAt = r.offset;
        r.skip(IMA_TEMPLATE_DIGEST_SIZE, 'd');
        const nLen = le ? r.u32le('n length') : r.u32be('n length');
        if (nLen > IMA_LIMITS.eventNameLenMax) {
          throw logError('IMA_LOG_MALFORMED', { entry: index, offset: o.fromOffset + start }, `'ima' template name of ${nLen} bytes, more than ${IMA_LIMITS.eventNameLenMax}`, { field: 'n' });
        }
        if (r.remaining < nLen) {
          missing = nLen;
          break parse;
        }
        const nAt = r.offset;
        r.skip(nLen, 'n');
        // Hash input: digest || name zero-padded to IMA_EVENT_NAME_LEN_MAX + 1 bytes.
        const inputLen = IMA_TEMPLATE_DIGEST_SIZE + IMA_TEMPLATE_NAME_PAD;
        if (scratch.length - scratchUsed < inputLen) {
          scratch = Buffer.alloc(64 * 1024);
          scratchUsed = 0;
        }
        const hashInput = view(scratch, scratchUsed, scratchUsed + inputLen);
        scratchUsed += inputLen;
        hashInput.set(view(buf, dAt, dAt + IMA_TEMPLATE_DIGEST_SIZE), 0);
        hashInput.set(view(buf, nAt, nAt + nLen), IMA_TEMPLATE_DIGEST_SIZE);
        bounds.set(0, dAt, dAt + IMA_TEMPLATE_DIGEST_SIZE);
        bounds.set(1, nAt, nAt + nLen);
        entries.push(decodeEntry(slots, buf, bufView, hashAt, hashSize, scratch, scratchUsed - inputLen, scratchUsed, template, bounds, index, o.fromOffset + start, r.offset - start, pcr));
      } else {
        if (r.remaining < 4) {
          missing = 4;
          break parse;
        }
        const dataLen = le ? r.u32le('template data length') : r.u32be('template data length');
        if (dataLen > IMA_LIMITS.templateDataMax) {
          throw logError('IMA_LOG_MALFORMED', { entry: index, offset: o.fromOffset + start }, `template data length ${dataLen} is above ${IMA_LIMITS.templateDataMax}`, { field: 'template data length' });
        }
        if (r.remaining < dataLen) {
          missing = dataLen;
          break parse;
        }
        const dataAt = r.offset;
        r.skip(dataLen, 'template data');
        const dataEnd = dataAt + dataLen;
        // The record is complete here; a field running past the template data is malformed, not truncated.
        const fieldIds = IMA_TEMPLATE_FIELDS[template];
        let f = dataAt;
        for (let i = 0; i < fieldIds.length; i++) {
          const id = fieldIds[i] ?? '';
          if (dataEnd - f < 4) {
            throw logError('IMA_LOG_MALFORMED', { entry: index, offset: o.fromOffset + start }, `template data ends before the length of field ${id}`, { field: id, fieldOffset: o.fromOffset + f });
          }
          const len = le ? buf.readUInt32LE(f) : buf.readUInt32BE(f);
          f += 4;
          if (len > dataEnd - f) {
            throw logError('IMA_LOG_MALFORMED', { entry: index, offset: o.fromOffset + start }, `field ${id} declares ${len} bytes, ${dataEnd - f} are left in the template data`, {
              field: id,
              fieldOffset: o.fromOffset + f - 4,
            });
          }
          bounds.set(i, f, f + len);
          f += len;
        }
        if (f !== dataEnd) {
          throw logError('IMA_LOG_MALFORMED', { entry: index, offset: o.fromOffset + start }, `${dataEnd - f} bytes after the last field of template ${template}`, { field: 'template data' });
        }
        entries.push(decodeEntry(slots, buf, bufView, hashAt, hashSize, buf, dataAt, dataEnd, template, bounds, index, o.fromOffset + start, r.offset - start, pcr));
      }
      index++;
      continue;
    }
    // The input ends inside this record.
    if (o.allowIncompleteTail) return finish(entries, index, o.fromOffset + start, buf.length - start);
    throw logError('IMA_LOG_TRUNCATED', { entry: index, offset: o.fromOffset + start }, `the list ends inside the record: ${missing} more bytes needed, ${r.remaining} left`, {
      need: missing,
      left: r.remaining,
    });
  }
  return finish(entries, index, o.fromOffset + r.offset, 0);
}

function finish(entries: ImaEntry[], nextEntry: number, nextOffset: number, remainder: number): ParsedImaLog {
  return { format: 'binary', entries, nextEntry, nextOffset, remainder };
}
