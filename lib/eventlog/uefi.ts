/**
 * Decoders for the UEFI structures event logs carry: EFI_GUID, CHAR16 strings, device
 * paths (UEFI 2.10, 10.3), EFI_LOAD_OPTION (3.1.3), EFI_SIGNATURE_LIST (32.4.1) and the
 * GPT header and entries (5.3). Every decoder reads through a bounds-checked ByteReader
 * and throws EVENTLOG_MALFORMED (never anything else) on bytes that do not fit; callers
 * that decode event data turn that into an "undecodable" value instead of failing the log.
 * Pure; untrusted input in, untrusted values out.
 */
import { ByteReader, toHex } from '../bytes.js';
import { BulwarkError } from '../errors.js';
import { DEVICE_PATH_SUBTYPE, DEVICE_PATH_TYPE, EFI_GUID } from './constants.js';

/** Most nodes a device path may have before we call it hostile (real ones have fewer than 16). */
export const MAX_DEVICE_PATH_NODES = 64;
/** Most entries one signature database may list (the 2023 dbx has about 430). */
export const MAX_SIGNATURE_ENTRIES = 4096;
/** Most GPT entries decoded (UEFI requires room for 128; a few disks use more). */
export const MAX_GPT_PARTITIONS = 1024;

function malformed(message: string, offset?: number): BulwarkError {
  return new BulwarkError('EVENTLOG_MALFORMED', message, offset === undefined ? {} : { offset });
}

/** A u64 length read as a number, refused when it is larger than `limit` (what is left, or a cap). */
export function lengthFromU64(value: bigint, limit: number, what: string, offset: number): number {
  if (value > BigInt(limit)) throw malformed(`${what} declares ${value} but only ${limit} fit at offset ${offset}`, offset);
  return Number(value);
}

/**
 * EFI_GUID (UEFI 2.10 Appendix A): Data1 u32le, Data2 u16le, Data3 u16le, Data4[8] as is,
 * rendered in registry text form ("8be4df61-93ca-11d2-aa0d-00e098032b8c").
 */
export function decodeEfiGuid(r: ByteReader, what = 'EFI_GUID'): string {
  const d1 = r.u32le(`${what}.Data1`);
  const d2 = r.u16le(`${what}.Data2`);
  const d3 = r.u16le(`${what}.Data3`);
  const d4 = r.bytesN(8, `${what}.Data4`);
  const h = (v: number, n: number): string => v.toString(16).padStart(n, '0');
  return `${h(d1, 8)}-${h(d2, 4)}-${h(d3, 4)}-${toHex(d4.subarray(0, 2))}-${toHex(d4.subarray(2))}`;
}

/** The 16 octets of a GUID in its text form (the inverse of decodeEfiGuid); trusted text only. */
export function encodeEfiGuid(text: string): Uint8Array {
  const m = /^([0-9a-f]{8})-([0-9a-f]{4})-([0-9a-f]{4})-([0-9a-f]{4})-([0-9a-f]{12})$/i.exec(text);
  if (m === null) throw new BulwarkError('USAGE', `"${text}" is not a GUID`);
  const out = new Uint8Array(16);
  const view = new DataView(out.buffer);
  view.setUint32(0, Number.parseInt(m[1] ?? '', 16), true);
  view.setUint16(4, Number.parseInt(m[2] ?? '', 16), true);
  view.setUint16(6, Number.parseInt(m[3] ?? '', 16), true);
  const tail = `${m[4] ?? ''}${m[5] ?? ''}`;
  for (let i = 0; i < 8; i++) out[8 + i] = Number.parseInt(tail.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** A readable name for the GUIDs Bulwark knows ("EFI_GLOBAL_VARIABLE"), else the GUID itself. */
export function efiGuidName(guid: string): string {
  for (const [name, value] of Object.entries(EFI_GUID)) if (value === guid) return name;
  return guid;
}

/**
 * CHAR16 code units (UCS-2, UEFI 2.10 2.3.1) to a string, stopping at the first NUL.
 * Odd lengths are refused. Code units are taken as they are: a lone surrogate stays a
 * lone surrogate, which JSON and our printers escape.
 */
export function decodeChar16(bytes: Uint8Array, what = 'CHAR16 string'): string {
  if (bytes.length % 2 !== 0) throw malformed(`${what} has an odd length of ${bytes.length} octets`);
  let out = '';
  for (let i = 0; i + 1 < bytes.length; i += 2) {
    const unit = (bytes[i] ?? 0) | ((bytes[i + 1] ?? 0) << 8);
    if (unit === 0) break;
    out += String.fromCharCode(unit);
  }
  return out;
}

/** Reads a NUL-terminated CHAR16 string; the terminator must lie within the reader's bounds. */
export function readChar16z(r: ByteReader, what: string): string {
  let out = '';
  for (;;) {
    const unit = r.u16le(what);
    if (unit === 0) return out;
    out += String.fromCharCode(unit);
  }
}

/** True when every octet is printable ASCII or tab/newline (how strings in event data look). */
export function isPrintableAscii(bytes: Uint8Array): boolean {
  for (const b of bytes) if ((b < 0x20 || b > 0x7e) && b !== 0x09 && b !== 0x0a && b !== 0x0d) return false;
  return true;
}

/** Octets as Latin-1 text (each octet one code point): lossless for ASCII, never throws. */
export function latin1(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
}

/** One EFI_DEVICE_PATH_PROTOCOL node (UEFI 2.10 10.2). */
export interface DevicePathNode {
  readonly type: number;
  readonly subType: number;
  /** The node's data after its four-octet header. */
  readonly data: Uint8Array;
  /** The UEFI text form of this node (10.6.1.6), or Path(type,subtype,hex) when unknown. */
  readonly text: string;
}

/** A decoded device path: its nodes and its text form ("PciRoot(0x0)/Pci(0x1,0x1)/..."). */
export interface DevicePath {
  readonly nodes: readonly DevicePathNode[];
  readonly text: string;
}

const hex = (v: number | bigint): string => `0x${v.toString(16)}`;

/** EISA_PNP_ID(0x0A03) and EISA_PNP_ID(0x0A08): the HIDs printed as PciRoot/PcieRoot (10.6.1.6). */
const PNP0A03 = 0x0a0341d0;
const PNP0A08 = 0x0a0841d0;

function eisaIdText(hid: number): string {
  if ((hid & 0xffff) !== 0x41d0) return hex(hid);
  return `PNP${(hid >>> 16).toString(16).toUpperCase().padStart(4, '0')}`;
}

/** The text form of one node (UEFI 2.10 10.6.1.6 "Device Path to Text"), for the nodes boot logs use. */
function nodeText(type: number, subType: number, data: Uint8Array): string {
  const r = new ByteReader(data, 'EVENTLOG_MALFORMED');
  const generic = (): string => `Path(${type},${subType},${toHex(data)})`;
  try {
    if (type === DEVICE_PATH_TYPE.HARDWARE_DEVICE_PATH) {
      if (subType === DEVICE_PATH_SUBTYPE.HW_PCI_DP && data.length === 2) {
        const fn = r.u8();
        const dev = r.u8();
        return `Pci(${hex(dev)},${hex(fn)})`;
      }
      if (subType === DEVICE_PATH_SUBTYPE.HW_MEMMAP_DP && data.length === 20) {
        const memType = r.u32le();
        return `MemoryMapped(${hex(memType)},${hex(r.u64le())},${hex(r.u64le())})`;
      }
      if (subType === DEVICE_PATH_SUBTYPE.HW_VENDOR_DP && data.length >= 16) {
        const guid = decodeEfiGuid(r);
        return `VenHw(${guid}${r.remaining > 0 ? `,${toHex(r.bytesN(r.remaining))}` : ''})`;
      }
    } else if (type === DEVICE_PATH_TYPE.ACPI_DEVICE_PATH) {
      if (subType === DEVICE_PATH_SUBTYPE.ACPI_DP && data.length === 8) {
        const hid = r.u32le();
        const uid = r.u32le();
        if (hid === PNP0A03) return `PciRoot(${hex(uid)})`;
        if (hid === PNP0A08) return `PcieRoot(${hex(uid)})`;
        return `Acpi(${eisaIdText(hid)},${hex(uid)})`;
      }
    } else if (type === DEVICE_PATH_TYPE.MESSAGING_DEVICE_PATH) {
      if (subType === DEVICE_PATH_SUBTYPE.MSG_SATA_DP && data.length === 6) {
        return `Sata(${hex(r.u16le())},${hex(r.u16le())},${hex(r.u16le())})`;
      }
      if (subType === DEVICE_PATH_SUBTYPE.MSG_NVME_NAMESPACE_DP && data.length === 12) {
        const nsid = r.u32le();
        const eui = Array.from(r.bytesN(8), (b) => b.toString(16).padStart(2, '0').toUpperCase()).join('-');
        return `NVMe(${hex(nsid)},${eui})`;
      }
      if (subType === DEVICE_PATH_SUBTYPE.MSG_SCSI_DP && data.length === 4) {
        return `Scsi(${hex(r.u16le())},${hex(r.u16le())})`;
      }
      if (subType === DEVICE_PATH_SUBTYPE.MSG_USB_DP && data.length === 2) {
        return `USB(${hex(r.u8())},${hex(r.u8())})`;
      }
      if (subType === DEVICE_PATH_SUBTYPE.MSG_MAC_ADDR_DP && data.length === 33) {
        const mac = r.bytesN(32);
        const ifType = r.u8();
        const len = ifType === 0x00 || ifType === 0x01 ? 6 : 32;
        return `MAC(${toHex(mac.subarray(0, len))},${hex(ifType)})`;
      }
      if (subType === DEVICE_PATH_SUBTYPE.MSG_URI_DP) {
        return `Uri(${isPrintableAscii(data) ? latin1(data) : toHex(data)})`;
      }
      if (subType === DEVICE_PATH_SUBTYPE.MSG_VENDOR_DP && data.length >= 16) {
        const guid = decodeEfiGuid(r);
        return `VenMsg(${guid}${r.remaining > 0 ? `,${toHex(r.bytesN(r.remaining))}` : ''})`;
      }
    } else if (type === DEVICE_PATH_TYPE.MEDIA_DEVICE_PATH) {
      if (subType === DEVICE_PATH_SUBTYPE.MEDIA_HARDDRIVE_DP && data.length === 38) {
        const partition = r.u32le();
        const start = r.u64le();
        const size = r.u64le();
        const signature = r.bytesN(16);
        const format = r.u8();
        const sigType = r.u8();
        const formatText = format === 0x02 ? 'GPT' : format === 0x01 ? 'MBR' : hex(format);
        let sigText: string;
        if (sigType === 0x02) sigText = decodeEfiGuid(new ByteReader(signature, 'EVENTLOG_MALFORMED'));
        else if (sigType === 0x01) sigText = hex(new DataView(signature.buffer, signature.byteOffset, 4).getUint32(0, true));
        else sigText = '0';
        return `HD(${partition},${formatText},${sigText},${hex(start)},${hex(size)})`;
      }
      if (subType === DEVICE_PATH_SUBTYPE.MEDIA_FILEPATH_DP) return decodeChar16(data, 'FilePath.PathName');
      if (subType === DEVICE_PATH_SUBTYPE.MEDIA_PIWG_FW_FILE_DP && data.length === 16) return `FvFile(${decodeEfiGuid(r)})`;
      if (subType === DEVICE_PATH_SUBTYPE.MEDIA_PIWG_FW_VOL_DP && data.length === 16) return `Fv(${decodeEfiGuid(r)})`;
      if (subType === DEVICE_PATH_SUBTYPE.MEDIA_RELATIVE_OFFSET_RANGE_DP && data.length === 20) {
        r.u32le();
        return `Offset(${hex(r.u64le())},${hex(r.u64le())})`;
      }
      if (subType === DEVICE_PATH_SUBTYPE.MEDIA_VENDOR_DP && data.length >= 16) {
        const guid = decodeEfiGuid(r);
        return `VenMedia(${guid}${r.remaining > 0 ? `,${toHex(r.bytesN(r.remaining))}` : ''})`;
      }
    }
  } catch {
    // A node whose data does not fit its text form is shown generically; the path itself stays valid.
  }
  return generic();
}

/**
 * Decodes an EFI device path (UEFI 2.10 10.2 EFI_DEVICE_PATH_PROTOCOL: Type u8, SubType u8,
 * Length u16le including the 4-octet header, then data) up to its End Entire node or the
 * end of `bytes`. A node length below 4 or past the end is malformed; instances are joined
 * with ',' as in the text form. Untrusted: in an image load event the path is not covered
 * by the event digest, so it is a hint, never evidence.
 */
export function decodeEfiDevicePath(bytes: Uint8Array): DevicePath {
  const r = new ByteReader(bytes, 'EVENTLOG_MALFORMED');
  const nodes: DevicePathNode[] = [];
  let text = '';
  let sep = '';
  while (!r.atEnd) {
    const at = r.offset;
    const type = r.u8('device path node Type');
    const subType = r.u8('device path node SubType');
    const length = r.u16le('device path node Length');
    if (length < 4) throw malformed(`device path node at offset ${at} has length ${length}, less than its header`, at);
    const data = r.bytesN(length - 4, 'device path node data');
    if (type === DEVICE_PATH_TYPE.END_DEVICE_PATH_TYPE) {
      if (subType === DEVICE_PATH_SUBTYPE.END_ENTIRE_DEVICE_PATH_SUBTYPE) break;
      sep = ',';
      continue;
    }
    if (nodes.length >= MAX_DEVICE_PATH_NODES) throw malformed(`device path has more than ${MAX_DEVICE_PATH_NODES} nodes`, at);
    const t = nodeText(type, subType, data);
    nodes.push({ type, subType, data, text: t });
    text += sep === '' && text !== '' ? `/${t}` : `${sep}${t}`;
    sep = '';
  }
  return { nodes, text };
}

/** EFI_LOAD_OPTION (UEFI 2.10 3.1.3), the data of a Boot#### variable. */
export interface EfiLoadOption {
  readonly attributes: number;
  readonly description: string;
  readonly devicePath: DevicePath;
  readonly optionalData: Uint8Array;
}

/** Decodes an EFI_LOAD_OPTION: Attributes u32, FilePathListLength u16, Description (CHAR16, NUL), FilePathList, OptionalData. */
export function decodeEfiLoadOption(bytes: Uint8Array): EfiLoadOption {
  const r = new ByteReader(bytes, 'EVENTLOG_MALFORMED');
  const attributes = r.u32le('EFI_LOAD_OPTION.Attributes');
  const pathLength = r.u16le('EFI_LOAD_OPTION.FilePathListLength');
  const description = readChar16z(r, 'EFI_LOAD_OPTION.Description');
  const devicePath = decodeEfiDevicePath(r.bytesN(pathLength, 'EFI_LOAD_OPTION.FilePathList'));
  return { attributes, description, devicePath, optionalData: r.bytesN(r.remaining, 'EFI_LOAD_OPTION.OptionalData') };
}

/** One EFI_SIGNATURE_DATA of a signature list (UEFI 2.10 32.4.1). */
export interface EfiSignatureData {
  /** EFI_SIGNATURE_LIST.SignatureType (EFI_CERT_X509_GUID, EFI_CERT_SHA256_GUID, ...). */
  readonly signatureType: string;
  readonly signatureOwner: string;
  readonly signatureData: Uint8Array;
}

/**
 * Decodes the concatenated EFI_SIGNATURE_LISTs of PK, KEK, db or dbx (UEFI 2.10 32.4.1):
 * SignatureType GUID, SignatureListSize u32, SignatureHeaderSize u32, SignatureSize u32,
 * SignatureHeader, then (ListSize - 28 - HeaderSize) / SignatureSize EFI_SIGNATURE_DATA
 * (SignatureOwner GUID + SignatureSize - 16 octets). Sizes are checked before any slice.
 */
export function decodeEfiSignatureLists(bytes: Uint8Array): EfiSignatureData[] {
  const r = new ByteReader(bytes, 'EVENTLOG_MALFORMED');
  const out: EfiSignatureData[] = [];
  while (!r.atEnd) {
    const at = r.offset;
    const signatureType = decodeEfiGuid(r, 'EFI_SIGNATURE_LIST.SignatureType');
    const listSize = r.u32le('EFI_SIGNATURE_LIST.SignatureListSize');
    const headerSize = r.u32le('EFI_SIGNATURE_LIST.SignatureHeaderSize');
    const signatureSize = r.u32le('EFI_SIGNATURE_LIST.SignatureSize');
    if (listSize < 28 || listSize - 28 > r.remaining || headerSize > listSize - 28) {
      throw malformed(`EFI_SIGNATURE_LIST at offset ${at} declares ${listSize} octets (header ${headerSize}) with ${r.remaining + 28} left`, at);
    }
    const body = listSize - 28 - headerSize;
    if (signatureSize < 16 || body % signatureSize !== 0) {
      throw malformed(`EFI_SIGNATURE_LIST at offset ${at}: ${body} octets are not a whole number of ${signatureSize}-octet signatures`, at);
    }
    r.skip(headerSize, 'EFI_SIGNATURE_LIST.SignatureHeader');
    const count = body / signatureSize;
    if (out.length + count > MAX_SIGNATURE_ENTRIES) throw malformed(`signature database lists more than ${MAX_SIGNATURE_ENTRIES} entries`, at);
    for (let i = 0; i < count; i++) {
      const signatureOwner = decodeEfiGuid(r, 'EFI_SIGNATURE_DATA.SignatureOwner');
      out.push({ signatureType, signatureOwner, signatureData: r.bytesN(signatureSize - 16, 'EFI_SIGNATURE_DATA.SignatureData') });
    }
  }
  return out;
}

/** EFI_PARTITION_TABLE_HEADER (UEFI 2.10 5.3.2), as measured: 92 octets. */
export interface GptHeader {
  readonly signature: string;
  readonly revision: number;
  readonly headerSize: number;
  readonly myLba: bigint;
  readonly alternateLba: bigint;
  readonly firstUsableLba: bigint;
  readonly lastUsableLba: bigint;
  readonly diskGuid: string;
  readonly partitionEntryLba: bigint;
  readonly numberOfPartitionEntries: number;
  readonly sizeOfPartitionEntry: number;
}

/** EFI_PARTITION_ENTRY (UEFI 2.10 5.3.3). */
export interface GptPartition {
  readonly partitionTypeGuid: string;
  readonly uniquePartitionGuid: string;
  readonly startingLba: bigint;
  readonly endingLba: bigint;
  readonly attributes: bigint;
  readonly partitionName: string;
}

/** The 92 octets EDK2 and the PFP copy of the header (sizeof(EFI_PARTITION_TABLE_HEADER)). */
export const GPT_HEADER_SIZE = 92;
/** The smallest EFI_PARTITION_ENTRY (UEFI 2.10 5.3.2: 128 x 2^n). */
export const GPT_ENTRY_MIN_SIZE = 128;

/**
 * UEFI_GPT_DATA (PFP 10.4.5, the data of EV_EFI_GPT_EVENT): EFI_PARTITION_TABLE_HEADER,
 * NumberOfPartitions (UINTN: 4 or 8 octets after `uintnSize`), then that many entries of
 * SizeOfPartitionEntry octets. Count and size are checked against what is left first.
 */
export function decodeUefiGptData(bytes: Uint8Array, uintnSize: 4 | 8): { header: GptHeader; partitions: GptPartition[] } {
  const r = new ByteReader(bytes, 'EVENTLOG_MALFORMED');
  const signature = latin1(r.bytesN(8, 'EFI_PARTITION_TABLE_HEADER.Signature'));
  const revision = r.u32le('Revision');
  const headerSize = r.u32le('HeaderSize');
  r.skip(8, 'HeaderCRC32 and Reserved');
  const myLba = r.u64le('MyLBA');
  const alternateLba = r.u64le('AlternateLBA');
  const firstUsableLba = r.u64le('FirstUsableLBA');
  const lastUsableLba = r.u64le('LastUsableLBA');
  const diskGuid = decodeEfiGuid(r, 'DiskGUID');
  const partitionEntryLba = r.u64le('PartitionEntryLBA');
  const numberOfPartitionEntries = r.u32le('NumberOfPartitionEntries');
  const sizeOfPartitionEntry = r.u32le('SizeOfPartitionEntry');
  r.skip(4, 'PartitionEntryArrayCRC32');
  const header: GptHeader = {
    signature,
    revision,
    headerSize,
    myLba,
    alternateLba,
    firstUsableLba,
    lastUsableLba,
    diskGuid,
    partitionEntryLba,
    numberOfPartitionEntries,
    sizeOfPartitionEntry,
  };
  const countAt = r.offset;
  const count = uintnSize === 8 ? lengthFromU64(r.u64le('NumberOfPartitions'), MAX_GPT_PARTITIONS, 'NumberOfPartitions', countAt) : r.u32le('NumberOfPartitions');
  if (count > MAX_GPT_PARTITIONS) throw malformed(`UEFI_GPT_DATA declares ${count} partitions, more than ${MAX_GPT_PARTITIONS}`, countAt);
  const size = header.sizeOfPartitionEntry;
  if (count > 0 && (size < GPT_ENTRY_MIN_SIZE || count * size > r.remaining)) {
    throw malformed(`UEFI_GPT_DATA declares ${count} entries of ${size} octets with ${r.remaining} left`, countAt);
  }
  const partitions: GptPartition[] = [];
  for (let i = 0; i < count; i++) {
    const e = new ByteReader(r.bytesN(size, 'EFI_PARTITION_ENTRY'), 'EVENTLOG_MALFORMED');
    partitions.push({
      partitionTypeGuid: decodeEfiGuid(e, 'PartitionTypeGUID'),
      uniquePartitionGuid: decodeEfiGuid(e, 'UniquePartitionGUID'),
      startingLba: e.u64le('StartingLBA'),
      endingLba: e.u64le('EndingLBA'),
      attributes: e.u64le('Attributes'),
      partitionName: decodeChar16(e.bytesN(72, 'PartitionName'), 'PartitionName'),
    });
  }
  if (!r.atEnd) throw malformed(`${r.remaining} octets after UEFI_GPT_DATA`, r.offset);
  return { header, partitions };
}
