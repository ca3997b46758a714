/**
 * Decoded event data for the event types a measured-boot policy reads (TCG PC Client PFP
 * 10.4, 10.4.5; UEFI 2.10 for the structures inside). Decoding never fails the log: data
 * that does not fit its type comes back as `{ kind: 'undecodable', reason }` with the raw
 * octets still in the event, and unknown types as `{ kind: 'raw' }` — kept, not dropped.
 *
 * Trust: the data of most events is *not* covered by their digest (an image load event's
 * digest is of the PE image, not of the device path). Whether a digest is over the data
 * is decided by `eventDataDigestRule` in replay.ts; only there do decoded values become
 * evidence.
 */
import { ByteReader } from '../bytes.js';
import { isBulwarkError } from '../errors.js';
import { GRUB_STRING_PREFIX, LINUX_EVENT_TAG_ID, SPEC_ID_EVENT03_SIGNATURE, STARTUP_LOCALITY_SIGNATURE, TCG_EVENT_TYPE } from './constants.js';
import {
  decodeChar16,
  decodeEfiDevicePath,
  decodeEfiGuid,
  decodeEfiLoadOption,
  decodeUefiGptData,
  isPrintableAscii,
  latin1,
  lengthFromU64,
  type DevicePath,
  type EfiLoadOption,
  type GptHeader,
  type GptPartition,
} from './uefi.js';

/** The kinds of GRUB string measurement (grub-core/commands/tpm.c), by prefix. */
export type GrubStringKind = 'grub_cmd' | 'kernel_cmdline' | 'module_cmdline';

/** UEFI_VARIABLE_DATA (PFP 10.4.5 / UEFI_VARIABLE_DATA): the data of EV_EFI_VARIABLE_* events. */
export interface UefiVariableData {
  readonly kind: 'uefi-variable';
  /** VariableName: the vendor GUID of the variable, in text form. */
  readonly variableName: string;
  /** UnicodeName: the variable's name ("SecureBoot", "db", "Boot0001"). */
  readonly unicodeName: string;
  readonly variableData: Uint8Array;
  /** Octets after VariableData inside the event (0 for a well-formed event). */
  readonly trailing: number;
  /** The EFI_LOAD_OPTION of a Boot#### variable, when it decodes. */
  readonly bootOption?: EfiLoadOption;
  /** The option numbers of BootOrder. */
  readonly bootOrder?: readonly number[];
}

export type EventData =
  | { readonly kind: 'startup-locality'; readonly startupLocality: number }
  | { readonly kind: 'no-action'; readonly signature: string }
  | { readonly kind: 'separator'; readonly value: number }
  | { readonly kind: 'text'; readonly text: string; readonly encoding: 'ascii' | 'ucs-2' }
  | { readonly kind: 'grub-string'; readonly grub: GrubStringKind; readonly text: string }
  | UefiVariableData
  | {
      readonly kind: 'image-load';
      readonly imageLocationInMemory: bigint;
      readonly imageLengthInMemory: bigint;
      readonly imageLinkTimeAddress: bigint;
      readonly devicePath: DevicePath;
    }
  | { readonly kind: 'gpt'; readonly header: GptHeader; readonly partitions: readonly GptPartition[] }
  | { readonly kind: 'firmware-blob'; readonly blobBase: bigint; readonly blobLength: bigint; readonly description?: string }
  | { readonly kind: 'handoff-tables'; readonly description?: string; readonly tables: readonly { readonly vendorGuid: string; readonly vendorTable: bigint }[] }
  | { readonly kind: 'tagged'; readonly taggedEventId: number; readonly taggedEventData: Uint8Array; readonly text?: string }
  | { readonly kind: 'guid'; readonly guid: string }
  | { readonly kind: 'raw' }
  | { readonly kind: 'undecodable'; readonly reason: string };

/**
 * Event data as text: printable ASCII optionally ended by one NUL (GRUB, EV_EFI_ACTION), or
 * CHAR16 with a zero high octet per unit up to an optional NUL unit (EDK2's S-CRTM
 * version, systemd-boot). Undefined when the octets are neither.
 */
export function decodeEventText(data: Uint8Array): { text: string; encoding: 'ascii' | 'ucs-2' } | undefined {
  if (data.length === 0) return { text: '', encoding: 'ascii' };
  const asciiEnd = data[data.length - 1] === 0 ? data.length - 1 : data.length;
  if (isPrintableAscii(data.subarray(0, asciiEnd)) && (asciiEnd > 0 || data.length === 1)) return { text: latin1(data.subarray(0, asciiEnd)), encoding: 'ascii' };
  if (data.length % 2 !== 0) return undefined;
  let end = data.length;
  for (let i = 0; i + 1 < data.length; i += 2) {
    const lo = data[i] ?? 0;
    const hi = data[i + 1] ?? 0;
    if (lo === 0 && hi === 0) {
      end = i;
      break;
    }
    if (hi !== 0 || lo < 0x20 || lo > 0x7e) return undefined;
  }
  // After the NUL unit only NUL padding may follow.
  for (let i = end; i < data.length; i++) if (data[i] !== 0) return undefined;
  return { text: decodeChar16(data.subarray(0, end)), encoding: 'ucs-2' };
}

function variableData(data: Uint8Array): UefiVariableData {
  const r = new ByteReader(data, 'EVENTLOG_MALFORMED');
  const variableName = decodeEfiGuid(r, 'UEFI_VARIABLE_DATA.VariableName');
  const nameAt = r.offset;
  const nameUnits = r.u64le('UEFI_VARIABLE_DATA.UnicodeNameLength');
  const dataLength = r.u64le('UEFI_VARIABLE_DATA.VariableDataLength');
  // UnicodeNameLength counts CHAR16 units; both lengths are checked against what is left.
  const nameOctets = lengthFromU64(nameUnits, Math.floor(r.remaining / 2), 'UnicodeNameLength', nameAt) * 2;
  const unicodeName = decodeChar16(r.bytesN(nameOctets, 'UEFI_VARIABLE_DATA.UnicodeName'), 'UnicodeName');
  const valueLength = lengthFromU64(dataLength, r.remaining, 'VariableDataLength', nameAt + 8);
  const value = r.bytesN(valueLength, 'UEFI_VARIABLE_DATA.VariableData');
  const base: UefiVariableData = { kind: 'uefi-variable', variableName, unicodeName, variableData: value, trailing: r.remaining };
  if (/^Boot[0-9A-Fa-f]{4}$/.test(unicodeName)) {
    try {
      return { ...base, bootOption: decodeEfiLoadOption(value) };
    } catch (err) {
      if (!isBulwarkError(err)) throw err;
      return base;
    }
  }
  if (unicodeName === 'BootOrder' && value.length % 2 === 0) {
    const order: number[] = [];
    for (let i = 0; i + 1 < value.length; i += 2) order.push((value[i] ?? 0) | ((value[i + 1] ?? 0) << 8));
    return { ...base, bootOrder: order };
  }
  return base;
}

/** UEFI_IMAGE_LOAD_EVENT (PFP 10.4.5): location u64, then length, link-time address and device path length as UINTN. */
function imageLoad(data: Uint8Array, uintnSize: 4 | 8): EventData {
  const r = new ByteReader(data, 'EVENTLOG_MALFORMED');
  const uintn = (what: string): bigint => (uintnSize === 8 ? r.u64le(what) : BigInt(r.u32le(what)));
  const imageLocationInMemory = r.u64le('ImageLocationInMemory');
  const imageLengthInMemory = uintn('ImageLengthInMemory');
  const imageLinkTimeAddress = uintn('ImageLinkTimeAddress');
  const at = r.offset;
  const pathLength = lengthFromU64(uintn('LengthOfDevicePath'), r.remaining, 'LengthOfDevicePath', at);
  const devicePath = decodeEfiDevicePath(r.bytesN(pathLength, 'DevicePath'));
  return { kind: 'image-load', imageLocationInMemory, imageLengthInMemory, imageLinkTimeAddress, devicePath };
}

/** UEFI_PLATFORM_FIRMWARE_BLOB (base u64, length u64) or, for the 2 variants, a u8-sized description first (PFP 10.4.5). */
function firmwareBlob(data: Uint8Array, described: boolean): EventData {
  const r = new ByteReader(data, 'EVENTLOG_MALFORMED');
  let description: string | undefined;
  if (described) {
    const size = r.u8('BlobDescriptionSize');
    const raw = r.bytesN(size, 'BlobDescription');
    description = decodeEventText(raw)?.text ?? latin1(raw);
  }
  const blobBase = r.u64le('BlobBase');
  const blobLength = r.u64le('BlobLength');
  if (!r.atEnd) return { kind: 'undecodable', reason: `${r.remaining} octets after the firmware blob` };
  return description === undefined ? { kind: 'firmware-blob', blobBase, blobLength } : { kind: 'firmware-blob', blobBase, blobLength, description };
}

/** UEFI_HANDOFF_TABLE_POINTERS (NumberOfTables UINTN, then GUID + pointer each) and its "2" variant with a description. */
function handoffTables(data: Uint8Array, uintnSize: 4 | 8, described: boolean): EventData {
  const r = new ByteReader(data, 'EVENTLOG_MALFORMED');
  let description: string | undefined;
  if (described) {
    const size = r.u8('TableDescriptionSize');
    description = latin1(r.bytesN(size, 'TableDescription'));
  }
  const at = r.offset;
  const entrySize = 16 + uintnSize;
  const count = uintnSize === 8 || described ? lengthFromU64(r.u64le('NumberOfTables'), Math.floor(r.remaining / entrySize), 'NumberOfTables', at) : r.u32le('NumberOfTables');
  if (count * entrySize > r.remaining) return { kind: 'undecodable', reason: `${count} handoff tables do not fit in ${r.remaining} octets` };
  const tables: { vendorGuid: string; vendorTable: bigint }[] = [];
  for (let i = 0; i < count; i++) {
    const vendorGuid = decodeEfiGuid(r, 'VendorGuid');
    tables.push({ vendorGuid, vendorTable: uintnSize === 8 ? r.u64le('VendorTable') : BigInt(r.u32le('VendorTable')) });
  }
  return description === undefined ? { kind: 'handoff-tables', tables } : { kind: 'handoff-tables', description, tables };
}

/** TCG_PCClientTaggedEvent (PFP, EV_EVENT_TAG data): taggedEventID u32, taggedEventDataSize u32, taggedEventData. */
function taggedEvent(data: Uint8Array): EventData {
  const r = new ByteReader(data, 'EVENTLOG_MALFORMED');
  const taggedEventId = r.u32le('taggedEventID');
  const size = r.u32le('taggedEventDataSize');
  const taggedEventData = r.bytesN(size, 'taggedEventData');
  if (!r.atEnd) return { kind: 'undecodable', reason: `${r.remaining} octets after TCG_PCClientTaggedEvent` };
  const text = decodeEventText(taggedEventData)?.text;
  return text === undefined ? { kind: 'tagged', taggedEventId, taggedEventData } : { kind: 'tagged', taggedEventId, taggedEventData, text };
}

function textOrRaw(data: Uint8Array): EventData {
  const t = decodeEventText(data);
  return t === undefined ? { kind: 'undecodable', reason: 'not an ASCII or CHAR16 string' } : { kind: 'text', text: t.text, encoding: t.encoding };
}

/** EV_IPL: GRUB's prefixed strings in PCR 8, any other string, or raw octets. */
function ipl(data: Uint8Array): EventData {
  const t = decodeEventText(data);
  if (t === undefined) return { kind: 'raw' };
  if (t.encoding === 'ascii') {
    for (const [key, prefix] of [
      ['grub_cmd', GRUB_STRING_PREFIX.COMMAND],
      ['kernel_cmdline', GRUB_STRING_PREFIX.KERNEL_CMDLINE],
      ['module_cmdline', GRUB_STRING_PREFIX.MODULE_CMDLINE],
    ] as const) {
      if (t.text.startsWith(prefix)) return { kind: 'grub-string', grub: key, text: t.text.slice(prefix.length) };
    }
  }
  return { kind: 'text', text: t.text, encoding: t.encoding };
}

/** EV_NO_ACTION (PFP 10.4.5.1–10.4.5.3): the StartupLocality event, or another signed no-action event. */
function noAction(data: Uint8Array): EventData {
  if (data.length < 16) return { kind: 'undecodable', reason: `EV_NO_ACTION data of ${data.length} octets has no 16-octet signature` };
  const signature = latin1(data.subarray(0, 16));
  if (signature === STARTUP_LOCALITY_SIGNATURE) {
    if (data.length !== 17) return { kind: 'undecodable', reason: `StartupLocality event of ${data.length} octets, not 17` };
    return { kind: 'startup-locality', startupLocality: data[16] ?? 0 };
  }
  if (signature === SPEC_ID_EVENT03_SIGNATURE) return { kind: 'undecodable', reason: 'a second Spec ID event' };
  return { kind: 'no-action', signature: signature.replace(/\0+$/, '') };
}

function decodeOrThrow(eventType: number, data: Uint8Array, uintnSize: 4 | 8): EventData {
  const T = TCG_EVENT_TYPE;
  switch (eventType) {
    case T.EV_NO_ACTION:
      return noAction(data);
    case T.EV_SEPARATOR:
      if (data.length !== 4) return { kind: 'undecodable', reason: `separator data of ${data.length} octets, not 4` };
      return { kind: 'separator', value: new ByteReader(data).u32le() };
    case T.EV_EFI_ACTION:
    case T.EV_ACTION:
      return textOrRaw(data);
    case T.EV_S_CRTM_VERSION: {
      const t = decodeEventText(data);
      if (t !== undefined) return { kind: 'text', text: t.text, encoding: t.encoding };
      if (data.length === 16) return { kind: 'guid', guid: decodeEfiGuid(new ByteReader(data, 'EVENTLOG_MALFORMED')) };
      return { kind: 'undecodable', reason: 'S-CRTM version is neither a string nor a GUID' };
    }
    case T.EV_POST_CODE:
      if (data.length === 16) return firmwareBlob(data, false);
      return textOrRaw(data);
    case T.EV_IPL:
      return ipl(data);
    case T.EV_EVENT_TAG:
      return taggedEvent(data);
    case T.EV_EFI_VARIABLE_DRIVER_CONFIG:
    case T.EV_EFI_VARIABLE_BOOT:
    case T.EV_EFI_VARIABLE_BOOT2:
    case T.EV_EFI_VARIABLE_AUTHORITY:
      return variableData(data);
    case T.EV_EFI_BOOT_SERVICES_APPLICATION:
    case T.EV_EFI_BOOT_SERVICES_DRIVER:
    case T.EV_EFI_RUNTIME_SERVICES_DRIVER:
      return imageLoad(data, uintnSize);
    case T.EV_EFI_GPT_EVENT: {
      const gpt = decodeUefiGptData(data, uintnSize);
      return { kind: 'gpt', header: gpt.header, partitions: gpt.partitions };
    }
    case T.EV_EFI_PLATFORM_FIRMWARE_BLOB:
      return firmwareBlob(data, false);
    case T.EV_EFI_PLATFORM_FIRMWARE_BLOB2:
      return firmwareBlob(data, true);
    case T.EV_EFI_HANDOFF_TABLES:
      return handoffTables(data, uintnSize, false);
    case T.EV_EFI_HANDOFF_TABLES2:
      return handoffTables(data, uintnSize, true);
    default:
      return { kind: 'raw' };
  }
}

/**
 * Decodes the data of one event by its type. Never throws for bad data: it returns
 * `undecodable` with the reason (the log stays readable, and a policy that needs the
 * value reports it). `uintnSize` is the octet size of UINTN from the Spec ID event.
 * Untrusted input, untrusted output.
 */
export function decodeEventData(eventType: number, data: Uint8Array, uintnSize: 4 | 8): EventData {
  try {
    return decodeOrThrow(eventType, data, uintnSize);
  } catch (err) {
    if (isBulwarkError(err)) return { kind: 'undecodable', reason: err.message };
    throw err;
  }
}

/** The efistub tag name of a Linux EV_EVENT_TAG id, when it is one. */
export function linuxEventTagName(id: number): 'initrd' | 'load-options' | undefined {
  if (id === LINUX_EVENT_TAG_ID.INITRD_EVENT_TAG_ID) return 'initrd';
  if (id === LINUX_EVENT_TAG_ID.LOAD_OPTIONS_EVENT_TAG_ID) return 'load-options';
  return undefined;
}
