/**
 * Writes TCG PC Client event logs in the real binary format (PFP 10.2: a SHA-1 format
 * header event with TCG_EfiSpecIDEvent, then crypto-agile TCG_PCR_EVENT2 records), with
 * realistic UEFI payloads: UEFI_VARIABLE_DATA for SecureBoot/PK/KEK/db/dbx and Boot####,
 * EFI_SIGNATURE_LISTs holding real X.509 certificates (test/fixtures/eventlog/certs),
 * UEFI_IMAGE_LOAD_EVENT with device paths for shim, GRUB and the kernel, UEFI_GPT_DATA,
 * GRUB's PCR 8 strings and PCR 9 file measurements, separators. Every digest is computed
 * here for every bank, and the same measurements can be extended into a swtpm, so a test
 * can run log → PCRs → quote → policy against a real TPM.
 *
 * The images are not real PE files: each "image" is a few bytes named after the file, and
 * its digest (standing in for the Authenticode hash) is the hash of those bytes. Test code.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ByteWriter } from '../../lib/bytes.js';
import { EFI_ACTION, EFI_GUID, LINUX_EVENT_TAG_ID, TCG_EVENT_TYPE } from '../../lib/eventlog/constants.js';
import { encodeEfiGuid } from '../../lib/eventlog/uefi.js';
import { TPM_ALG } from '../../lib/tpm/types.js';
import type { SwtpmProcess } from './swtpm.js';

export type BankName = 'sha1' | 'sha256' | 'sha384' | 'sha512';

export const BANK_ALG: Readonly<Record<BankName, number>> = { sha1: TPM_ALG.SHA1, sha256: TPM_ALG.SHA256, sha384: TPM_ALG.SHA384, sha512: TPM_ALG.SHA512 };
const BANK_SIZE: Readonly<Record<BankName, number>> = { sha1: 20, sha256: 32, sha384: 48, sha512: 64 };

const ascii = (s: string): Uint8Array => Uint8Array.from(s, (c) => c.charCodeAt(0));
const asciiz = (s: string): Uint8Array => ascii(`${s}\0`);
/** CHAR16 (UCS-2 little-endian) with a NUL terminator when `nul`. */
export function char16(s: string, nul = true): Uint8Array {
  const w = new ByteWriter();
  for (const c of s) w.u16le(c.charCodeAt(0));
  if (nul) w.u16le(0);
  return w.finish();
}

export function hash(bank: BankName, data: Uint8Array | string): Uint8Array {
  return createHash(bank).update(data).digest();
}

/** One event as built: logged or (for quirk fixtures) only extended into the TPM. */
export interface BuiltEvent {
  readonly pcr: number;
  readonly type: number;
  readonly data: Uint8Array;
  readonly digests: ReadonlyMap<BankName, Uint8Array>;
  /** False for a measurement the firmware made but did not log. */
  readonly logged: boolean;
  readonly label: string;
}

/** The low-level writer: the header event, then events in the order they are added. */
export class EventLogBuilder {
  readonly banks: readonly BankName[];
  readonly events: BuiltEvent[] = [];
  private readonly noActions: { at: number; data: Uint8Array; pcr: number }[] = [];
  private readonly uintnSize: 4 | 8;
  private readonly vendorInfo: Uint8Array;

  constructor(options: { banks: readonly BankName[]; uintnSize?: 4 | 8; vendorInfo?: Uint8Array }) {
    this.banks = options.banks;
    this.uintnSize = options.uintnSize ?? 8;
    this.vendorInfo = options.vendorInfo ?? new Uint8Array(0);
  }

  /** An EV_NO_ACTION event (not extended) at the current position. */
  noAction(data: Uint8Array, pcr = 0): this {
    this.noActions.push({ at: this.events.length, data, pcr });
    return this;
  }

  /** TCG_EfiStartupLocalityEvent (PFP 10.4.5.3): "StartupLocality\0" then the locality octet. */
  startupLocality(locality: number): this {
    return this.noAction(Uint8Array.of(...ascii('StartupLocality\0'), locality));
  }

  /**
   * A measured event: the digest in every bank is the hash of `measured` (default: the
   * data itself), or the explicit digests given.
   */
  measure(pcr: number, type: number, data: Uint8Array, options: { measured?: Uint8Array; digests?: ReadonlyMap<BankName, Uint8Array>; logged?: boolean; label?: string } = {}): this {
    const digests = new Map<BankName, Uint8Array>();
    for (const b of this.banks) digests.set(b, options.digests?.get(b) ?? hash(b, options.measured ?? data));
    this.events.push({ pcr, type, data, digests, logged: options.logged ?? true, label: options.label ?? '' });
    return this;
  }

  /** TCG_EfiSpecIDEvent (PFP 10.4.5.1) for this builder's banks. */
  specIdEvent(): Uint8Array {
    const w = new ByteWriter();
    w.bytes(ascii('Spec ID Event03\0')); // signature[16]
    w.u32le(0); // platformClass: client
    w.u8(0); // specVersionMinor
    w.u8(2); // specVersionMajor
    w.u8(2); // specErrata (PFP 1.05)
    w.u8(this.uintnSize === 8 ? 2 : 1); // uintnSize: 2 = UINT64
    w.u32le(this.banks.length); // numberOfAlgorithms
    for (const b of this.banks) w.u16le(BANK_ALG[b]).u16le(BANK_SIZE[b]); // digestSizes[]: algorithmId, digestSize
    w.u8(this.vendorInfo.length); // vendorInfoSize
    w.bytes(this.vendorInfo); // vendorInfo
    return w.finish();
  }

  private writeEvent2(w: ByteWriter, pcr: number, type: number, digests: ReadonlyMap<BankName, Uint8Array> | null, data: Uint8Array): void {
    w.u32le(pcr); // PCRIndex
    w.u32le(type); // EventType
    w.u32le(this.banks.length); // TPML_DIGEST_VALUES.count
    for (const b of this.banks) {
      w.u16le(BANK_ALG[b]); // TPMT_HA.hashAlg
      w.bytes(digests?.get(b) ?? new Uint8Array(BANK_SIZE[b])); // TPMT_HA.digest (zero for EV_NO_ACTION)
    }
    w.u32le(data.length); // EventSize
    w.bytes(data); // Event
  }

  /** The log bytes: header event, then no-action and logged events in order. */
  build(): Uint8Array {
    const w = new ByteWriter(64 * 1024);
    const spec = this.specIdEvent();
    w.u32le(0); // PCRIndex
    w.u32le(TCG_EVENT_TYPE.EV_NO_ACTION); // EventType
    w.bytes(new Uint8Array(20)); // Digest (SHA-1 size, zero)
    w.u32le(spec.length); // EventSize
    w.bytes(spec); // TCG_EfiSpecIDEvent
    let n = 0;
    for (let i = 0; i <= this.events.length; i++) {
      while (n < this.noActions.length && this.noActions[n]?.at === i) {
        const na = this.noActions[n];
        if (na !== undefined) this.writeEvent2(w, na.pcr, TCG_EVENT_TYPE.EV_NO_ACTION, null, na.data);
        n++;
      }
      const e = this.events[i];
      if (e !== undefined && e.logged) this.writeEvent2(w, e.pcr, e.type, e.digests, e.data);
    }
    return w.finish();
  }

  /** The PCR values these measurements produce (own arithmetic), bank → PCR → hex. */
  expectedPcrs(startupLocality: number | null): Map<BankName, Map<number, string>> {
    const out = new Map<BankName, Map<number, string>>();
    for (const b of this.banks) {
      const values = new Map<number, Uint8Array>();
      const init = (pcr: number): Uint8Array => {
        const v = new Uint8Array(BANK_SIZE[b]);
        if (pcr === 0 && startupLocality !== null) v[v.length - 1] = startupLocality;
        return v;
      };
      for (const e of this.events) values.set(e.pcr, hash(b, Buffer.concat([values.get(e.pcr) ?? init(e.pcr), e.digests.get(b) ?? new Uint8Array(0)])));
      out.set(b, new Map([...values].map(([p, v]) => [p, Buffer.from(v).toString('hex')])));
    }
    return out;
  }

  /**
   * Extends every measurement (logged or not) into a swtpm, in order, for the banks the
   * TPM has: tpm2_pcrextend "PCR:alg=hex,alg=hex" arguments, several per call.
   */
  async extendInto(tpm: SwtpmProcess, tpmBanks: readonly BankName[]): Promise<void> {
    const specs = this.events.map((e) => `${e.pcr}:${tpmBanks.map((b) => `${b}=${Buffer.from(e.digests.get(b) ?? new Uint8Array(0)).toString('hex')}`).join(',')}`);
    for (let i = 0; i < specs.length; i += 16) await tpm.tool('tpm2_pcrextend', specs.slice(i, i + 16));
  }
}

// --- UEFI structure encoders (UEFI 2.10 and PFP field order; little-endian) ---

/** UEFI_VARIABLE_DATA (PFP 10.4.5): VariableName GUID, UnicodeNameLength u64 (CHAR16 units), VariableDataLength u64, UnicodeName, VariableData. */
export function uefiVariableData(guid: string, name: string, data: Uint8Array): Uint8Array {
  const nameBytes = char16(name, false);
  return new ByteWriter()
    .bytes(encodeEfiGuid(guid)) // VariableName
    .u64le(BigInt(name.length)) // UnicodeNameLength (no NUL)
    .u64le(BigInt(data.length)) // VariableDataLength
    .bytes(nameBytes) // UnicodeName
    .bytes(data) // VariableData
    .finish();
}

/** One EFI_SIGNATURE_LIST (UEFI 2.10 32.4.1) of equally sized entries. */
export function efiSignatureList(signatureType: string, entries: readonly { owner: string; data: Uint8Array }[]): Uint8Array {
  const size = 16 + (entries[0]?.data.length ?? 0);
  const w = new ByteWriter();
  w.bytes(encodeEfiGuid(signatureType)); // SignatureType
  w.u32le(28 + entries.length * size); // SignatureListSize
  w.u32le(0); // SignatureHeaderSize
  w.u32le(size); // SignatureSize
  for (const e of entries) w.bytes(encodeEfiGuid(e.owner)).bytes(e.data); // EFI_SIGNATURE_DATA: SignatureOwner, SignatureData
  return w.finish();
}

/** EFI_SIGNATURE_DATA alone (how firmware logs a db authority): SignatureOwner, SignatureData. */
export function efiSignatureData(owner: string, data: Uint8Array): Uint8Array {
  return new ByteWriter().bytes(encodeEfiGuid(owner)).bytes(data).finish();
}

/** Device path nodes (UEFI 2.10 10.3): Type, SubType, Length u16 (with the header), data. */
export const dp = {
  node(type: number, subType: number, data: Uint8Array): Uint8Array {
    return new ByteWriter().u8(type).u8(subType).u16le(4 + data.length).bytes(data).finish();
  },
  /** ACPI_HID_DEVICE_PATH with HID PNP0A03: PciRoot(uid). */
  pciRoot(uid: number): Uint8Array {
    return dp.node(0x02, 0x01, new ByteWriter().u32le(0x0a0341d0).u32le(uid).finish());
  },
  /** PCI_DEVICE_PATH: Function u8, Device u8. */
  pci(device: number, fn: number): Uint8Array {
    return dp.node(0x01, 0x01, Uint8Array.of(fn, device));
  },
  /** SATA_DEVICE_PATH: HBAPortNumber, PortMultiplierPortNumber, Lun (u16 each). */
  sata(port: number, multiplier: number, lun: number): Uint8Array {
    return dp.node(0x03, 0x12, new ByteWriter().u16le(port).u16le(multiplier).u16le(lun).finish());
  },
  /** NVME_NAMESPACE_DEVICE_PATH: NamespaceId u32, IEEE EUI-64. */
  nvme(nsid: number, eui: Uint8Array): Uint8Array {
    return dp.node(0x03, 0x17, new ByteWriter().u32le(nsid).bytes(eui).finish());
  },
  /** HARDDRIVE_DEVICE_PATH: PartitionNumber u32, PartitionStart u64, PartitionSize u64, Signature[16], MBRType 2 (GPT), SignatureType 2 (GUID). */
  hd(partition: number, start: bigint, size: bigint, guid: string): Uint8Array {
    return dp.node(0x04, 0x01, new ByteWriter().u32le(partition).u64le(start).u64le(size).bytes(encodeEfiGuid(guid)).u8(2).u8(2).finish());
  },
  /** FILEPATH_DEVICE_PATH: PathName CHAR16 with NUL. */
  file(path: string): Uint8Array {
    return dp.node(0x04, 0x04, char16(path));
  },
  /** MEDIA_RELATIVE_OFFSET_RANGE: Reserved u32, StartingOffset u64, EndingOffset u64 (an option ROM image). */
  offset(start: bigint, end: bigint): Uint8Array {
    return dp.node(0x04, 0x08, new ByteWriter().u32le(0).u64le(start).u64le(end).finish());
  },
  /** MEDIA_FW_VOL_DEVICE_PATH / MEDIA_FW_VOL_FILEPATH: a GUID. */
  fv(guid: string): Uint8Array {
    return dp.node(0x04, 0x07, encodeEfiGuid(guid));
  },
  fvFile(guid: string): Uint8Array {
    return dp.node(0x04, 0x06, encodeEfiGuid(guid));
  },
  end(): Uint8Array {
    return Uint8Array.of(0x7f, 0xff, 0x04, 0x00);
  },
  path(...nodes: Uint8Array[]): Uint8Array {
    const w = new ByteWriter();
    for (const n of nodes) w.bytes(n);
    return w.bytes(dp.end()).finish();
  },
};

/** UEFI_IMAGE_LOAD_EVENT (PFP 10.4.5): ImageLocationInMemory u64, ImageLengthInMemory, ImageLinkTimeAddress, LengthOfDevicePath (UINTN), DevicePath. */
export function imageLoadEvent(location: bigint, length: bigint, devicePath: Uint8Array, uintnSize: 4 | 8 = 8): Uint8Array {
  const w = new ByteWriter();
  w.u64le(location); // ImageLocationInMemory
  const uintn = (v: bigint): void => void (uintnSize === 8 ? w.u64le(v) : w.u32le(Number(v)));
  uintn(length); // ImageLengthInMemory
  uintn(0n); // ImageLinkTimeAddress
  uintn(BigInt(devicePath.length)); // LengthOfDevicePath
  w.bytes(devicePath); // DevicePath
  return w.finish();
}

/** EFI_LOAD_OPTION (UEFI 2.10 3.1.3): Attributes u32, FilePathListLength u16, Description CHAR16z, FilePathList, OptionalData. */
export function efiLoadOption(attributes: number, description: string, devicePath: Uint8Array, optional = new Uint8Array(0)): Uint8Array {
  return new ByteWriter().u32le(attributes).u16le(devicePath.length).bytes(char16(description)).bytes(devicePath).bytes(optional).finish();
}

/** UEFI_GPT_DATA (PFP 10.4.5): the 92-octet EFI_PARTITION_TABLE_HEADER, NumberOfPartitions (UINTN), then 128-octet EFI_PARTITION_ENTRY each. */
export function gptData(diskGuid: string, partitions: readonly { type: string; guid: string; start: bigint; end: bigint; name: string }[]): Uint8Array {
  const w = new ByteWriter();
  w.bytes(ascii('EFI PART')); // Signature
  w.u32le(0x00010000); // Revision 1.0
  w.u32le(92); // HeaderSize
  w.u32le(0x1234abcd); // HeaderCRC32
  w.u32le(0); // Reserved
  w.u64le(1n); // MyLBA
  w.u64le(0x3a3812afn); // AlternateLBA
  w.u64le(34n); // FirstUsableLBA
  w.u64le(0x3a38128en); // LastUsableLBA
  w.bytes(encodeEfiGuid(diskGuid)); // DiskGUID
  w.u64le(2n); // PartitionEntryLBA
  w.u32le(128); // NumberOfPartitionEntries
  w.u32le(128); // SizeOfPartitionEntry
  w.u32le(0x5678ef01); // PartitionEntryArrayCRC32
  w.u64le(BigInt(partitions.length)); // NumberOfPartitions (UINTN, 64-bit)
  for (const p of partitions) {
    w.bytes(encodeEfiGuid(p.type)); // PartitionTypeGUID
    w.bytes(encodeEfiGuid(p.guid)); // UniquePartitionGUID
    w.u64le(p.start); // StartingLBA
    w.u64le(p.end); // EndingLBA
    w.u64le(0n); // Attributes
    const name = new Uint8Array(72);
    name.set(char16(p.name, false).subarray(0, 72)); // PartitionName CHAR16[36]
    w.bytes(name);
  }
  return w.finish();
}

/** TCG_PCClientTaggedEvent (PFP, EV_EVENT_TAG data): taggedEventID, taggedEventDataSize, taggedEventData. */
export function taggedEvent(id: number, data: Uint8Array): Uint8Array {
  return new ByteWriter().u32le(id).u32le(data.length).bytes(data).finish();
}

/** UEFI_PLATFORM_FIRMWARE_BLOB2 (PFP 10.4.5): BlobDescriptionSize u8, BlobDescription, BlobBase u64, BlobLength u64. */
export function firmwareBlob2(description: string, base: bigint, length: bigint): Uint8Array {
  const d = ascii(description);
  return new ByteWriter().u8(d.length).bytes(d).u64le(base).u64le(length).finish();
}

/** UEFI_HANDOFF_TABLE_POINTERS (PFP 10.4.5): NumberOfTables (UINTN), then VendorGuid + VendorTable each. */
export function handoffTables(tables: readonly { guid: string; address: bigint }[]): Uint8Array {
  const w = new ByteWriter().u64le(BigInt(tables.length));
  for (const t of tables) w.bytes(encodeEfiGuid(t.guid)).u64le(t.address);
  return w.finish();
}

// --- Test certificates and the boot scenario ---

function fixtureFile(rel: string): Uint8Array {
  return new Uint8Array(readFileSync(new URL(`../../../test/fixtures/eventlog/${rel}`, import.meta.url)));
}

/** The test certificates (openssl req -x509, see test/fixtures/eventlog/README.md). */
export const TEST_CERTS = {
  pk: fixtureFile('certs/pk.der'),
  kek: fixtureFile('certs/kek.der'),
  dbUefiCa: fixtureFile('certs/db-uefi-ca.der'),
  dbOs: fixtureFile('certs/db-os.der'),
  shimVendor: fixtureFile('certs/shim-vendor.der'),
  rogue: fixtureFile('certs/rogue.der'),
};

/** Owner GUIDs as real databases carry them (Microsoft's, a distribution's, the platform vendor's). */
export const OWNER = {
  MICROSOFT: '77fa9abd-0359-4d32-bd60-28f4e78f784b',
  PLATFORM: '55555555-0000-4000-8000-000000000001',
  DISTRO: '55555555-0000-4000-8000-000000000002',
} as const;

const ESP_GUID = '3e4f5a10-8c8a-4c5e-9d7f-2b1c0a9e8d71';
const ROOT_GUID = '9a1b2c3d-4e5f-4a6b-8c7d-0e1f2a3b4c5d';
const LINUX_FS_GUID = '0fc63daf-8483-4772-8e79-3d69d8477de4';
const SMBIOS3_TABLE_GUID = 'f2fd1544-9794-4a2c-992e-e5bbcf20e394';
const ROOT_UUID = '6f9c1a52-3d2e-4b8f-9a47-1c5e7d3b2a90';

export interface BootScenario {
  readonly banks: readonly BankName[];
  /** The StartupLocality logged (null: none; a swtpm starts at locality 0). */
  readonly startupLocality: number | null;
  readonly secureBoot: boolean;
  readonly kernelVersion: string;
  /** Seed of the kernel image bytes; change it to get another kernel digest. */
  readonly kernelBuild: string;
  /** The command line after BOOT_IMAGE=... (grub prepends BOOT_IMAGE=<kernel path>). */
  readonly cmdline: string;
  /** dbx entries (hex SHA-256 of revoked images). */
  readonly dbxHashes: readonly string[];
  /** Total measured events; padding adds `insmod` commands (PCR 8) and module files (PCR 9) in pairs. */
  readonly padTo: number;
  /** Quirk EXIT_BOOT_SERVICES_NOT_LOGGED: extend the PCR 5 EBS strings into the TPM but leave them out of the log. */
  readonly exitBootServicesLogged: boolean;
  /** Quirk SHIM_AUTHORITY_TRAILING_OCTET: log the Shim authority with one octet more than hashed. */
  readonly shimAuthorityTrailingOctet: boolean;
  /** The command line was typed at GRUB's menu ("e"): grub.cfg still holds the default one. */
  readonly cmdlineEditedAtMenu: boolean;
  /** Add the Linux EFI stub's EV_EVENT_TAG initrd measurement (PCR 9). */
  readonly efistubInitrdTag: boolean;
  /** Extra db entry (a rogue certificate enrolled). */
  readonly rogueDbEntry: boolean;
}

export const DEFAULT_DBX = [
  '80b4d96931bf0d02fd91a61e19d14f1da452e66db2408ca8604d411f92659f0a',
  'f52f83a3fa9cfbd6920f722824dbe4034534d25b8507246b3b957dac6e1bce7a',
  'c5d9d8a186e2c82d09afaa2a6f7f2e73870d3e64f72c4e08ef67796a840f0fbd',
];

export const DEFAULT_SCENARIO: BootScenario = {
  banks: ['sha1', 'sha256'],
  startupLocality: 0,
  secureBoot: true,
  kernelVersion: '6.1.0-18-amd64',
  kernelBuild: 'linux-image-6.1.0-18-amd64 6.1.76-1',
  cmdline: `root=UUID=${ROOT_UUID} ro quiet`,
  dbxHashes: DEFAULT_DBX,
  padTo: 40,
  exitBootServicesLogged: true,
  shimAuthorityTrailingOctet: false,
  cmdlineEditedAtMenu: false,
  efistubInitrdTag: false,
  rogueDbEntry: false,
};

/** A built boot log with what a test needs to write policies and expectations. */
export interface BuiltBoot {
  readonly scenario: BootScenario;
  readonly builder: EventLogBuilder;
  readonly bytes: Uint8Array;
  /** sha256 digests (hex) per stage. */
  readonly sha256: {
    readonly firmware: readonly string[];
    readonly shim: string;
    readonly grub: string;
    readonly kernelImage: string;
    readonly kernelFile: string;
    readonly initrd: string;
    readonly grubFiles: readonly string[];
  };
  /** The kernel command line as grub measures it (with BOOT_IMAGE=). */
  readonly kernelCmdline: string;
  /** SHA-256 fingerprints (hex) of the certificates as policies name them. */
  readonly certs: { readonly pk: string; readonly kek: string; readonly db: readonly string[]; readonly shimVendor: string };
  /** Measured events (logged + unlogged). */
  readonly measuredEvents: number;
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/**
 * A Debian-style Secure Boot chain on OVMF-like firmware: S-CRTM and firmware volumes in
 * PCR 0, boot variables in PCR 1, an option ROM in PCR 2, Secure Boot variables in PCR 7,
 * separators, shim → GRUB → kernel in PCR 4 with their authorities in PCR 7, shim's
 * MokList measurements in PCR 14, GRUB commands and kernel command line in PCR 8, files in
 * PCR 9, the GPT and ExitBootServices in PCR 5.
 */
export function buildBootLog(overrides: Partial<BootScenario> = {}): BuiltBoot {
  const s: BootScenario = { ...DEFAULT_SCENARIO, ...overrides };
  const b = new EventLogBuilder({ banks: s.banks });
  const T = TCG_EVENT_TYPE;
  const image = (name: string): Uint8Array => ascii(`MZ fake PE image: ${name}`);
  if (s.startupLocality !== null) b.startupLocality(s.startupLocality);

  // PCR 0: S-CRTM version (CHAR16, digest over it), two firmware volumes (digest over their contents).
  const fvPei = ascii('firmware volume PEIFV (Bulwark test firmware 1.0)');
  const fvDxe = ascii('firmware volume DXEFV (Bulwark test firmware 1.0)');
  b.measure(0, T.EV_S_CRTM_VERSION, char16('1.0.0 Bulwark test firmware'), { label: 'S-CRTM version' });
  b.measure(0, T.EV_EFI_PLATFORM_FIRMWARE_BLOB2, firmwareBlob2('Fv(7cb8bdc9-f8eb-4f34-aaea-3ee4af6516a1)', 0xffc84000n, 0xcc000n), { measured: fvPei, label: 'PEI FV' });
  b.measure(0, T.EV_EFI_PLATFORM_FIRMWARE_BLOB2, firmwareBlob2('Fv(7cb8bdc9-f8eb-4f34-aaea-3ee4af6516a1)', 0x900000n, 0xd00000n), { measured: fvDxe, label: 'DXE FV' });
  // PCR 1: SMBIOS handoff table, BootOrder, Boot0001 (digest over VariableData, as EDK2 does).
  b.measure(1, T.EV_EFI_HANDOFF_TABLES, handoffTables([{ guid: SMBIOS3_TABLE_GUID, address: 0x7f8e0000n }]), { measured: ascii('SMBIOS 3.0 tables'), label: 'SMBIOS' });
  const shimPath = dp.path(dp.pciRoot(0), dp.pci(0x1f, 2), dp.sata(0, 0xffff, 0), dp.hd(1, 2048n, 1048576n, ESP_GUID), dp.file('\\EFI\\debian\\shimx64.efi'));
  const bootOrder = Uint8Array.of(1, 0, 0, 0);
  const boot0001 = efiLoadOption(1, 'debian', dp.path(dp.hd(1, 2048n, 1048576n, ESP_GUID), dp.file('\\EFI\\debian\\shimx64.efi')));
  b.measure(1, T.EV_EFI_VARIABLE_BOOT, uefiVariableData(EFI_GUID.EFI_GLOBAL_VARIABLE, 'BootOrder', bootOrder), { measured: bootOrder, label: 'BootOrder' });
  b.measure(1, T.EV_EFI_VARIABLE_BOOT, uefiVariableData(EFI_GUID.EFI_GLOBAL_VARIABLE, 'Boot0001', boot0001), { measured: boot0001, label: 'Boot0001' });
  // PCR 2: an option ROM driver loaded from a PCI device.
  b.measure(2, T.EV_EFI_BOOT_SERVICES_DRIVER, imageLoadEvent(0x7e5d0000n, 0x1a000n, dp.path(dp.pciRoot(0), dp.pci(3, 0), dp.offset(0x10000n, 0x2bfffn))), {
    measured: image('iPXE option ROM'),
    label: 'option ROM',
  });
  // PCR 7: Secure Boot variables before the separator (digest over the whole UEFI_VARIABLE_DATA).
  const db = [
    efiSignatureList(EFI_GUID.EFI_CERT_X509_GUID, [{ owner: OWNER.MICROSOFT, data: TEST_CERTS.dbUefiCa }]),
    efiSignatureList(EFI_GUID.EFI_CERT_X509_GUID, [{ owner: OWNER.PLATFORM, data: TEST_CERTS.dbOs }]),
    ...(s.rogueDbEntry ? [efiSignatureList(EFI_GUID.EFI_CERT_X509_GUID, [{ owner: OWNER.PLATFORM, data: TEST_CERTS.rogue }])] : []),
  ];
  const dbx = efiSignatureList(
    EFI_GUID.EFI_CERT_SHA256_GUID,
    s.dbxHashes.map((h) => ({ owner: OWNER.MICROSOFT, data: new Uint8Array(Buffer.from(h, 'hex')) })),
  );
  b.measure(7, T.EV_EFI_VARIABLE_DRIVER_CONFIG, uefiVariableData(EFI_GUID.EFI_GLOBAL_VARIABLE, 'SecureBoot', Uint8Array.of(s.secureBoot ? 1 : 0)), { label: 'SecureBoot' });
  b.measure(7, T.EV_EFI_VARIABLE_DRIVER_CONFIG, uefiVariableData(EFI_GUID.EFI_GLOBAL_VARIABLE, 'PK', efiSignatureList(EFI_GUID.EFI_CERT_X509_GUID, [{ owner: OWNER.PLATFORM, data: TEST_CERTS.pk }])), { label: 'PK' });
  b.measure(7, T.EV_EFI_VARIABLE_DRIVER_CONFIG, uefiVariableData(EFI_GUID.EFI_GLOBAL_VARIABLE, 'KEK', efiSignatureList(EFI_GUID.EFI_CERT_X509_GUID, [{ owner: OWNER.MICROSOFT, data: TEST_CERTS.kek }])), { label: 'KEK' });
  b.measure(7, T.EV_EFI_VARIABLE_DRIVER_CONFIG, uefiVariableData(EFI_GUID.EFI_IMAGE_SECURITY_DATABASE_GUID, 'db', Buffer.concat(db)), { label: 'db' });
  b.measure(7, T.EV_EFI_VARIABLE_DRIVER_CONFIG, uefiVariableData(EFI_GUID.EFI_IMAGE_SECURITY_DATABASE_GUID, 'dbx', dbx), { label: 'dbx' });
  // PCR 4: the boot manager starts the boot option, then the separators of PCRs 0-7 (ReadyToBoot).
  b.measure(4, T.EV_EFI_ACTION, ascii(EFI_ACTION.CALLING_EFI_APPLICATION), { label: 'Calling EFI Application' });
  for (let pcr = 0; pcr <= 7; pcr++) b.measure(pcr, T.EV_SEPARATOR, Uint8Array.of(0, 0, 0, 0), { label: `separator ${pcr}` });
  // shim: its db authority (PCR 7), then the image (PCR 4).
  b.measure(7, T.EV_EFI_VARIABLE_AUTHORITY, uefiVariableData(EFI_GUID.EFI_IMAGE_SECURITY_DATABASE_GUID, 'db', efiSignatureData(OWNER.MICROSOFT, TEST_CERTS.dbUefiCa)), {
    label: 'authority db (UEFI CA)',
  });
  const shim = image('shimx64.efi 15.7-1');
  b.measure(4, T.EV_EFI_BOOT_SERVICES_APPLICATION, imageLoadEvent(0x7d2a1000n, 0xe5000n, shimPath), { measured: shim, label: 'shim' });
  // shim measures its MOK lists into PCR 14 (EV_IPL with the variable name; digest over the contents).
  b.measure(14, T.EV_IPL, asciiz('MokList'), { measured: ascii('MokList contents'), label: 'MokList' });
  b.measure(14, T.EV_IPL, asciiz('MokListX'), { measured: ascii('MokListX contents'), label: 'MokListX' });
  // shim's SBAT level after the separator (newer shims), then its vendor certificate as GRUB's authority.
  b.measure(7, T.EV_EFI_VARIABLE_DRIVER_CONFIG, uefiVariableData(EFI_GUID.SHIM_LOCK_GUID, 'SbatLevel', ascii('sbat,1,2022111500\nshim,2\ngrub,3\n')), { label: 'SbatLevel' });
  const shimAuthority = uefiVariableData(EFI_GUID.SHIM_LOCK_GUID, 'Shim', TEST_CERTS.shimVendor);
  b.measure(7, T.EV_EFI_VARIABLE_AUTHORITY, s.shimAuthorityTrailingOctet ? Buffer.concat([shimAuthority, Uint8Array.of(0)]) : shimAuthority, {
    measured: shimAuthority,
    label: 'authority Shim (vendor certificate)',
  });
  const grubImage = image('grubx64.efi 2.06-13+deb12u1');
  b.measure(4, T.EV_EFI_BOOT_SERVICES_APPLICATION, imageLoadEvent(0x7c000000n, 0x2a0000n, dp.path(dp.hd(1, 2048n, 1048576n, ESP_GUID), dp.file('\\EFI\\debian\\grubx64.efi'))), {
    measured: grubImage,
    label: 'grub',
  });
  // GRUB: commands (PCR 8, digest over the string without prefix) and files (PCR 9, digest over the file).
  const cmd = (text: string): void => void b.measure(8, T.EV_IPL, asciiz(`grub_cmd: ${text}`), { measured: ascii(text), label: `grub_cmd ${text.split(' ')[0] ?? ''}` });
  const file = (path: string, content: Uint8Array): void => void b.measure(9, T.EV_IPL, asciiz(path), { measured: content, label: `file ${path}` });
  const cfgCmdline = s.cmdlineEditedAtMenu ? DEFAULT_SCENARIO.cmdline : s.cmdline;
  const grubCfg = ascii(`menuentry 'Debian GNU/Linux' { linux /vmlinuz-${s.kernelVersion} ${cfgCmdline}; initrd /initrd.img-${s.kernelVersion} }`);
  const kernelPath = `/vmlinuz-${s.kernelVersion}`;
  const initrdPath = `/initrd.img-${s.kernelVersion}`;
  const kernelFile = ascii(`vmlinuz ${s.kernelBuild}`);
  const initrd = ascii(`initramfs for ${s.kernelVersion}`);
  const grubFiles: Uint8Array[] = [grubCfg];
  file(`(hd0,gpt1)/EFI/debian/grub.cfg`, grubCfg);
  cmd(`search.fs_uuid ${ROOT_UUID} root hd0,gpt2`);
  cmd('insmod part_gpt');
  // Padding to the requested size: pairs of an insmod command and the module file it loads.
  const fixedEvents = b.events.length + 9 + (s.efistubInitrdTag ? 1 : 0);
  const pairs = Math.max(0, Math.floor((s.padTo - fixedEvents) / 2));
  for (let i = 0; i < pairs; i++) {
    const mod = `mod${i.toString().padStart(3, '0')}`;
    const content = ascii(`grub module ${mod}.mod`);
    grubFiles.push(content);
    cmd(`insmod ${mod}`);
    file(`(hd0,gpt2)/boot/grub/x86_64-efi/${mod}.mod`, content);
  }
  cmd(`linux ${kernelPath} ${s.cmdline}`);
  file(kernelPath, kernelFile);
  const kernelCmdline = `BOOT_IMAGE=${kernelPath} ${s.cmdline}`;
  b.measure(8, T.EV_IPL, asciiz(`kernel_cmdline: ${kernelCmdline}`), { measured: ascii(kernelCmdline), label: 'kernel_cmdline' });
  cmd(`initrd ${initrdPath}`);
  file(initrdPath, initrd);
  // The kernel, verified through shim and started with LoadImage: an application in PCR 4.
  const kernelImage = image(`vmlinuz ${s.kernelBuild}`);
  b.measure(4, T.EV_EFI_BOOT_SERVICES_APPLICATION, imageLoadEvent(0x7a000000n, 0x7f0000n, dp.path(dp.hd(2, 1050624n, 40000000n, ROOT_GUID), dp.file(kernelPath.replace(/\//g, '\\')))), {
    measured: kernelImage,
    label: 'kernel',
  });
  if (s.efistubInitrdTag) {
    b.measure(9, T.EV_EVENT_TAG, taggedEvent(LINUX_EVENT_TAG_ID.INITRD_EVENT_TAG_ID, asciiz('Linux initrd')), { measured: initrd, label: 'efistub initrd' });
  }
  // PCR 5: the GPT of the boot disk, then ExitBootServices.
  b.measure(
    5,
    T.EV_EFI_GPT_EVENT,
    gptData('1b2c3d4e-5f60-4718-8293-a4b5c6d7e8f9', [
      { type: EFI_GUID.EFI_SYSTEM_PARTITION_GUID, guid: ESP_GUID, start: 2048n, end: 1050623n, name: 'EFI System Partition' },
      { type: LINUX_FS_GUID, guid: ROOT_GUID, start: 1050624n, end: 41050623n, name: 'root' },
    ]),
    { label: 'GPT' },
  );
  b.measure(5, T.EV_EFI_ACTION, ascii(EFI_ACTION.EXIT_BOOT_SERVICES_INVOCATION), { logged: s.exitBootServicesLogged, label: 'EBS invocation' });
  b.measure(5, T.EV_EFI_ACTION, ascii(EFI_ACTION.EXIT_BOOT_SERVICES_SUCCEEDED), { logged: s.exitBootServicesLogged, label: 'EBS success' });

  const sha256 = (d: Uint8Array): string => hex(hash('sha256', d));
  return {
    scenario: s,
    builder: b,
    bytes: b.build(),
    sha256: {
      firmware: [sha256(char16('1.0.0 Bulwark test firmware')), sha256(fvPei), sha256(fvDxe)],
      shim: sha256(shim),
      grub: sha256(grubImage),
      kernelImage: sha256(kernelImage),
      kernelFile: sha256(kernelFile),
      initrd: sha256(initrd),
      grubFiles: grubFiles.map(sha256),
    },
    kernelCmdline,
    certs: {
      pk: sha256(TEST_CERTS.pk),
      kek: sha256(TEST_CERTS.kek),
      db: [sha256(TEST_CERTS.dbUefiCa), sha256(TEST_CERTS.dbOs), ...(s.rogueDbEntry ? [sha256(TEST_CERTS.rogue)] : [])],
      shimVendor: sha256(TEST_CERTS.shimVendor),
    },
    measuredEvents: b.events.length,
  };
}
