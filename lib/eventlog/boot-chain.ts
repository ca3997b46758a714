/**
 * Which measured event is which boot stage, from the proven facts of a replay: the PCR,
 * the order within that PCR, and the digest. Labels taken from unproven data (file paths,
 * device paths) are hints for messages only; no decision rests on them.
 *
 * - firmware: every measured event in PCR 0 except the separator (S-CRTM version and
 *   contents, firmware blobs, POST code; PFP "PCR[0]"), and boot applications measured into
 *   PCR 4 before its separator (firmware's own applications).
 * - shim, grub, kernel: the EV_EFI_BOOT_SERVICES_APPLICATION events of PCR 4 after its
 *   separator, in order: the first is shim, the second GRUB, every later one a kernel
 *   (the Authenticode digest LoadImage or shim measures; PFP "PCR[4]").
 * - PCR 9: every measurement GRUB (files it reads, grub-core/commands/tpm.c) and the
 *   kernel's EFI stub (initrd, load options) make there; labelled kernel / initrd by the
 *   paths GRUB's `linux` / `initrd` commands name in PCR 8, otherwise grubFiles.
 * - kernel command lines: GRUB's "kernel_cmdline: " strings in PCR 8, whose digest is over
 *   the string (checked with checkEventDataDigest).
 */
import { toHex } from '../bytes.js';
import { TCG_EVENT_TYPE } from './constants.js';
import { decodeEventData, linuxEventTagName } from './event-data.js';
import type { BootStage } from './policy.js';
import { checkEventDataDigest, eventDigest, type ReplayedEvent, type ReplayedEventLogBody } from './replay.js';
import { latin1 } from './uefi.js';

/** One measured component with the stage it is judged as. */
export interface BootComponent {
  readonly stage: BootStage;
  readonly event: ReplayedEvent;
  readonly pcr: number;
  /** The digest in the bank read, lower-case hex ('' when the event has no digest in it). */
  readonly digest: string;
  /** A label from unproven data (device path, file path), for messages only. */
  readonly hint?: string;
}

/** A PCR 8 kernel command line with whether its digest is over the string. */
export interface KernelCmdline {
  readonly event: ReplayedEvent;
  readonly text: string;
  readonly bound: boolean;
}

export interface BootChain {
  /** PCR 0 measurements and pre-separator boot applications of PCR 4. */
  readonly firmware: readonly BootComponent[];
  /** PCR 4 boot applications after the separator: shim, grub, then kernel(s). */
  readonly applications: readonly BootComponent[];
  /** PCR 4 events that are neither applications, separators nor EV_EFI_ACTION strings. */
  readonly unexpectedPcr4: readonly ReplayedEvent[];
  /** PCR 9 measurements (label kernel, initrd or grubFiles). */
  readonly pcr9: readonly BootComponent[];
  readonly kernelCmdlines: readonly KernelCmdline[];
  /** Whether PCR 4 holds a separator; without one, boot applications cannot be told from firmware's. */
  readonly pcr4Separator: boolean;
}

function hintOf(event: ReplayedEvent, uintnSize: 4 | 8): string | undefined {
  const d = decodeEventData(event.eventType, event.data, uintnSize);
  if (d.kind === 'image-load') return d.devicePath.text;
  if (d.kind === 'text') return d.text;
  if (d.kind === 'tagged') return d.text;
  return undefined;
}

/** The first word after a GRUB command (`linux /vmlinuz-6.1 root=...` → /vmlinuz-6.1), with every path for `initrd`. */
function grubPaths(commands: readonly string[]): { kernel: Set<string>; initrd: Set<string> } {
  const kernel = new Set<string>();
  const initrd = new Set<string>();
  for (const c of commands) {
    const words = c.trim().split(/\s+/);
    const verb = words[0] ?? '';
    if (/^linux(efi|16)?$/.test(verb) && words[1] !== undefined) kernel.add(words[1]);
    if (/^initrd(efi|16)?$/.test(verb)) for (const w of words.slice(1)) initrd.add(w);
  }
  return { kernel, initrd };
}

/** Whether a PCR 9 file path ("(hd0,gpt2)/vmlinuz-6.1") is one a GRUB command named ("/vmlinuz-6.1"). */
function samePath(logged: string, named: string): boolean {
  const strip = (p: string): string => p.replace(/^\([^)]*\)/, '');
  return strip(logged) === strip(named);
}

/** Splits the proven events of `log` into boot stages, reading digests of bank `hashAlg`. */
export function readBootChain(log: ReplayedEventLogBody, hashAlg: number): BootChain {
  const uintn = log.uintnSize;
  const digestOf = (e: ReplayedEvent): string => {
    const d = eventDigest(e, hashAlg);
    return d === undefined ? '' : toHex(d);
  };
  const component = (stage: BootStage, e: ReplayedEvent): BootComponent => {
    const hint = hintOf(e, uintn);
    return hint === undefined ? { stage, event: e, pcr: e.pcrIndex, digest: digestOf(e) } : { stage, event: e, pcr: e.pcrIndex, digest: digestOf(e), hint };
  };
  const banks = [...log.provenPcrs].map(([alg]) => alg);
  const T = TCG_EVENT_TYPE;

  const firmware: BootComponent[] = [];
  const applications: BootComponent[] = [];
  const unexpectedPcr4: ReplayedEvent[] = [];
  const pcr9Events: ReplayedEvent[] = [];
  const kernelCmdlines: KernelCmdline[] = [];
  const grubCommands: string[] = [];
  let pcr4Separator = false;
  const order: readonly BootStage[] = ['shim', 'grub'];

  for (const e of log.events) {
    switch (e.pcrIndex) {
      case 0:
        if (e.eventType !== T.EV_SEPARATOR) firmware.push(component('firmware', e));
        break;
      case 4:
        if (e.eventType === T.EV_SEPARATOR) {
          // A second separator is no boot stage: it is judged as an unexpected event.
          if (pcr4Separator) unexpectedPcr4.push(e);
          pcr4Separator = true;
        } else if (e.eventType === T.EV_EFI_BOOT_SERVICES_APPLICATION) {
          if (!pcr4Separator) firmware.push(component('firmware', e));
          else applications.push(component(order[applications.length] ?? 'kernel', e));
        } else if (e.eventType !== T.EV_EFI_ACTION) unexpectedPcr4.push(e);
        break;
      case 8: {
        if (e.eventType !== T.EV_IPL) break;
        const check = checkEventDataDigest(e, banks.filter((a) => log.provenPcrs.get(a)?.includes(8)));
        const decoded = decodeEventData(e.eventType, e.data, uintn);
        if (decoded.kind !== 'grub-string') break;
        // Only a string its digest covers is evidence; an unbound one still names a path for hints.
        const text = check.status === 'matches' ? latin1(check.payload) : decoded.text;
        if (decoded.grub === 'kernel_cmdline') kernelCmdlines.push({ event: e, text, bound: check.status === 'matches' });
        if (decoded.grub === 'grub_cmd') grubCommands.push(text);
        break;
      }
      case 9:
        pcr9Events.push(e);
        break;
      default:
        break;
    }
  }

  const paths = grubPaths(grubCommands);
  const pcr9 = pcr9Events.map((e): BootComponent => {
    const d = decodeEventData(e.eventType, e.data, uintn);
    let stage: BootStage = 'grubFiles';
    if (d.kind === 'tagged' && linuxEventTagName(d.taggedEventId) === 'initrd') stage = 'initrd';
    else if (d.kind === 'text') {
      const path = d.text;
      if ([...paths.kernel].some((k) => samePath(path, k))) stage = 'kernel';
      else if ([...paths.initrd].some((k) => samePath(path, k))) stage = 'initrd';
    }
    return component(stage, e);
  });
  return { firmware, applications, unexpectedPcr4, pcr9, kernelCmdlines, pcr4Separator };
}
