/**
 * Known firmware (and early boot loader) quirks, in one table. A quirk is applied only
 * where it explains a difference exactly: a replay quirk only when the replay of its PCR
 * fails without it and matches the quote with it; a digest quirk only when an event's
 * digest is not over its data but is over the data the quirk names. Every applied quirk
 * is listed in the verified log, so a verdict says which workaround it relied on. Each
 * quirk has its own fixture in test/fixtures/eventlog/ (see the README there).
 */
import { EFI_ACTION, TCG_EVENT_TYPE } from './constants.js';
import type { LoggedEvent } from './parse.js';
import { latin1 } from './uefi.js';

export type FirmwareQuirkId = 'EXIT_BOOT_SERVICES_NOT_LOGGED' | 'SHIM_AUTHORITY_TRAILING_OCTET';

export interface FirmwareQuirk {
  readonly id: FirmwareQuirkId;
  /** What the firmware does wrong. */
  readonly summary: string;
  /** Where the quirk is documented. */
  readonly reference: string;
  /** The PCRs it affects. */
  readonly pcrs: readonly number[];
  /** 'missing-events': measured but not logged; 'event-digest': the digest is not over the logged data. */
  readonly kind: 'missing-events' | 'event-digest';
}

/** The quirk table. Append only; ids are part of verdict details. */
export const FIRMWARE_QUIRKS: readonly FirmwareQuirk[] = [
  {
    id: 'EXIT_BOOT_SERVICES_NOT_LOGGED',
    summary:
      'the firmware extends PCR 5 with the EV_EFI_ACTION strings "Exit Boot Services Invocation" and "... Returned with Success/Failure" ' +
      'after the OS read the log, and the kernel did not copy them from the final events table, so they are measured but not logged',
    reference: 'google/go-attestation attest/eventlog_workarounds.go (PR #153); TCG PFP 10.4.4 (EV_EFI_ACTION strings)',
    pcrs: [5],
    kind: 'missing-events',
  },
  {
    id: 'SHIM_AUTHORITY_TRAILING_OCTET',
    summary:
      'shim before rhboot/shim commit 8a27a48 logs EV_EFI_VARIABLE_AUTHORITY events with one octet more than it hashed, ' +
      'so the digest is over the data without its last octet',
    reference: 'google/go-attestation issue #157 and attest/secureboot.go; rhboot/shim commit 8a27a4809a6a2b40fb6a4049071bf96d6ad71b50',
    pcrs: [7],
    kind: 'event-digest',
  },
];

export const FIRMWARE_QUIRK_IDS: readonly FirmwareQuirkId[] = FIRMWARE_QUIRKS.map((q) => q.id);

/**
 * The unlogged PCR 5 event sequences EXIT_BOOT_SERVICES_NOT_LOGGED may stand for, tried in
 * order; empty when the log already holds an ExitBootServices event (then the quirk cannot
 * be the explanation).
 */
export function exitBootServicesVariants(events: readonly LoggedEvent[]): readonly (readonly string[])[] {
  const ebs = new Set<string>([EFI_ACTION.EXIT_BOOT_SERVICES_INVOCATION, EFI_ACTION.EXIT_BOOT_SERVICES_SUCCEEDED, EFI_ACTION.EXIT_BOOT_SERVICES_FAILED]);
  for (const e of events) {
    if (e.pcrIndex === 5 && e.eventType === TCG_EVENT_TYPE.EV_EFI_ACTION && ebs.has(latin1(e.data))) return [];
  }
  return [
    [EFI_ACTION.EXIT_BOOT_SERVICES_INVOCATION, EFI_ACTION.EXIT_BOOT_SERVICES_SUCCEEDED],
    [EFI_ACTION.EXIT_BOOT_SERVICES_INVOCATION, EFI_ACTION.EXIT_BOOT_SERVICES_FAILED],
    [EFI_ACTION.EXIT_BOOT_SERVICES_INVOCATION, EFI_ACTION.EXIT_BOOT_SERVICES_FAILED, EFI_ACTION.EXIT_BOOT_SERVICES_SUCCEEDED],
  ];
}
