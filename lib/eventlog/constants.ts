/**
 * Constants of the TCG PC Client event log and of the UEFI structures it carries, spelled
 * as in the specifications. Values Bulwark does not know stay plain numbers (or GUID text).
 *
 * Sources: TCG PC Client Platform Firmware Profile Specification (PFP) 1.05/1.06,
 * section 10 "Event Logging"; UEFI Specification 2.10, sections 10.3 (device path nodes),
 * 3.3 (globally defined variables) and 32.4.1 (signature database).
 */
import { HASH_ALG_TABLE } from '../tpm/index.js';

/** Event types (PFP 10.4.1 "Event Types", Table 9). */
export const TCG_EVENT_TYPE = {
  EV_PREBOOT_CERT: 0x00000000,
  EV_POST_CODE: 0x00000001,
  EV_UNUSED: 0x00000002,
  EV_NO_ACTION: 0x00000003,
  EV_SEPARATOR: 0x00000004,
  EV_ACTION: 0x00000005,
  EV_EVENT_TAG: 0x00000006,
  EV_S_CRTM_CONTENTS: 0x00000007,
  EV_S_CRTM_VERSION: 0x00000008,
  EV_CPU_MICROCODE: 0x00000009,
  EV_PLATFORM_CONFIG_FLAGS: 0x0000000a,
  EV_TABLE_OF_DEVICES: 0x0000000b,
  EV_COMPACT_HASH: 0x0000000c,
  EV_IPL: 0x0000000d,
  EV_IPL_PARTITION_DATA: 0x0000000e,
  EV_NONHOST_CODE: 0x0000000f,
  EV_NONHOST_CONFIG: 0x00000010,
  EV_NONHOST_INFO: 0x00000011,
  EV_OMIT_BOOT_DEVICE_EVENTS: 0x00000012,
  EV_POST_CODE2: 0x00000013,
  EV_EFI_EVENT_BASE: 0x80000000,
  EV_EFI_VARIABLE_DRIVER_CONFIG: 0x80000001,
  EV_EFI_VARIABLE_BOOT: 0x80000002,
  EV_EFI_BOOT_SERVICES_APPLICATION: 0x80000003,
  EV_EFI_BOOT_SERVICES_DRIVER: 0x80000004,
  EV_EFI_RUNTIME_SERVICES_DRIVER: 0x80000005,
  EV_EFI_GPT_EVENT: 0x80000006,
  EV_EFI_ACTION: 0x80000007,
  EV_EFI_PLATFORM_FIRMWARE_BLOB: 0x80000008,
  EV_EFI_HANDOFF_TABLES: 0x80000009,
  EV_EFI_PLATFORM_FIRMWARE_BLOB2: 0x8000000a,
  EV_EFI_HANDOFF_TABLES2: 0x8000000b,
  EV_EFI_VARIABLE_BOOT2: 0x8000000c,
  EV_EFI_HCRTM_EVENT: 0x80000010,
  EV_EFI_VARIABLE_AUTHORITY: 0x800000e0,
  EV_EFI_SPDM_FIRMWARE_BLOB: 0x800000e1,
  EV_EFI_SPDM_FIRMWARE_CONFIG: 0x800000e2,
} as const;

const EVENT_TYPE_NAMES: ReadonlyMap<number, string> = new Map(Object.entries(TCG_EVENT_TYPE).map(([name, value]) => [value, name]));

/** The spec name of an event type ("EV_SEPARATOR"), or its hex value when unknown. */
export function eventTypeName(type: number): string {
  return EVENT_TYPE_NAMES.get(type) ?? `0x${type.toString(16).padStart(8, '0')}`;
}

/** TCG_EfiSpecIDEvent.signature of a crypto-agile log (PFP 10.4.5.1), 16 octets with the NUL. */
export const SPEC_ID_EVENT03_SIGNATURE = 'Spec ID Event03\0';
/** TCG_EfiStartupLocalityEvent.Signature (PFP 10.4.5.3), 16 octets with the NUL. */
export const STARTUP_LOCALITY_SIGNATURE = 'StartupLocality\0';

/** EV_EFI_ACTION strings (PFP 10.4.4). */
export const EFI_ACTION = {
  CALLING_EFI_APPLICATION: 'Calling EFI Application from Boot Option',
  RETURNING_FROM_EFI_APPLICATION: 'Returning from EFI Application from Boot Option',
  EXIT_BOOT_SERVICES_INVOCATION: 'Exit Boot Services Invocation',
  EXIT_BOOT_SERVICES_FAILED: 'Exit Boot Services Returned with Failure',
  EXIT_BOOT_SERVICES_SUCCEEDED: 'Exit Boot Services Returned with Success',
  FIRMWARE_DEBUGGER_EVENT: 'UEFI Debug Mode',
  DMA_PROTECTION_DISABLED: 'DMA Protection Disabled',
} as const;

/** EV_SEPARATOR event data values (PFP 10.4.1: 0 normally, 1 on an error; 0xFFFFFFFF was the TPM 1.2 era error value). */
export const SEPARATOR_VALUE = { NORMAL: 0x00000000, ERROR: 0x00000001, LEGACY_ERROR: 0xffffffff } as const;

/** taggedEventID of the EV_EVENT_TAG events the Linux EFI stub logs into PCR 9 (drivers/firmware/efi/libstub). */
export const LINUX_EVENT_TAG_ID = {
  INITRD_EVENT_TAG_ID: 0x8f3b22ec,
  LOAD_OPTIONS_EVENT_TAG_ID: 0x8f3b22ed,
} as const;

/** Prefixes GRUB 2 gives the strings it measures into PCR 8 (grub-core/commands/tpm.c). */
export const GRUB_STRING_PREFIX = {
  COMMAND: 'grub_cmd: ',
  KERNEL_CMDLINE: 'kernel_cmdline: ',
  MODULE_CMDLINE: 'module_cmdline: ',
} as const;

/** GUIDs in their registry text form (UEFI 2.10 3.3, 32.4.1; shim's SHIM_LOCK_GUID). */
export const EFI_GUID = {
  EFI_GLOBAL_VARIABLE: '8be4df61-93ca-11d2-aa0d-00e098032b8c',
  EFI_IMAGE_SECURITY_DATABASE_GUID: 'd719b2cb-3d3a-4596-a3bc-dad00e67656f',
  SHIM_LOCK_GUID: '605dab50-e046-4300-abb6-3dd810dd8b23',
  EFI_CERT_SHA1_GUID: '826ca512-cf10-4ac9-b187-be01496631bd',
  EFI_CERT_SHA256_GUID: 'c1c41626-504c-4092-aca9-41f936934328',
  EFI_CERT_SHA384_GUID: 'ff3e5307-9fd0-48c9-85f1-8ad56c701e01',
  EFI_CERT_SHA512_GUID: '093e0fae-a6c4-4f50-9f1b-d41e2b89c19a',
  EFI_CERT_RSA2048_GUID: '3c5766e8-269c-4e34-aa14-ed776e85b3b6',
  EFI_CERT_X509_GUID: 'a5c059a1-94e4-4aa7-87b5-ab155c2bf072',
  EFI_CERT_X509_SHA256_GUID: '3bd2a492-96c0-4079-b420-fcf98ef103ed',
  /** PartitionTypeGUID of an EFI System Partition (UEFI 2.10 5.3.3). */
  EFI_SYSTEM_PARTITION_GUID: 'c12a7328-f81f-11d2-ba4b-00a0c93ec93b',
} as const;

/** EFI_DEVICE_PATH_PROTOCOL.Type (UEFI 2.10 10.3.1). */
export const DEVICE_PATH_TYPE = {
  HARDWARE_DEVICE_PATH: 0x01,
  ACPI_DEVICE_PATH: 0x02,
  MESSAGING_DEVICE_PATH: 0x03,
  MEDIA_DEVICE_PATH: 0x04,
  BBS_DEVICE_PATH: 0x05,
  END_DEVICE_PATH_TYPE: 0x7f,
} as const;

/** Sub-types of the device path nodes Bulwark renders as text (UEFI 2.10 10.3.2–10.3.7). */
export const DEVICE_PATH_SUBTYPE = {
  HW_PCI_DP: 0x01,
  HW_MEMMAP_DP: 0x03,
  HW_VENDOR_DP: 0x04,
  ACPI_DP: 0x01,
  ACPI_EXTENDED_DP: 0x02,
  MSG_SCSI_DP: 0x02,
  MSG_USB_DP: 0x05,
  MSG_VENDOR_DP: 0x0a,
  MSG_MAC_ADDR_DP: 0x0b,
  MSG_IPv4_DP: 0x0c,
  MSG_SATA_DP: 0x12,
  MSG_NVME_NAMESPACE_DP: 0x17,
  MSG_URI_DP: 0x18,
  MEDIA_HARDDRIVE_DP: 0x01,
  MEDIA_CDROM_DP: 0x02,
  MEDIA_VENDOR_DP: 0x03,
  MEDIA_FILEPATH_DP: 0x04,
  MEDIA_PIWG_FW_FILE_DP: 0x06,
  MEDIA_PIWG_FW_VOL_DP: 0x07,
  MEDIA_RELATIVE_OFFSET_RANGE_DP: 0x08,
  END_INSTANCE_DEVICE_PATH_SUBTYPE: 0x01,
  END_ENTIRE_DEVICE_PATH_SUBTYPE: 0xff,
} as const;

/** TPM_ALG_SM3_256 (TPM 2.0 Library, Part 2, 6.3): known in logs, not replayed. */
const TPM_ALG_SM3_256 = 0x0012;

/** The TCG algorithm ids (TPM_ALG_ID) a log's digests may use, with their sizes: lib/tpm's HASH_ALG_TABLE, and SM3, known but not replayed. */
export const TCG_DIGEST_SIZES: ReadonlyMap<number, number> = new Map([...HASH_ALG_TABLE.map((h): [number, number] => [h.alg, h.size]), [TPM_ALG_SM3_256, 32]]);
