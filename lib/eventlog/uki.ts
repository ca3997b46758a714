/**
 * A systemd-boot / unified kernel image (UKI) boot: what systemd-stub measured before
 * ExitBootServices() (in the firmware log) and what systemd measured after it (in its own
 * log, systemd-log.ts), replayed together against the quoted PCRs they share, and read
 * into the parts a measured-boot policy judges.
 *
 * Who extends what (systemd docs/TPM2_PCR_MEASUREMENTS.md, UAPI "Linux TPM PCR Registry"):
 * - PCR 11: systemd-stub, each UKI PE section in the UKI specification's order as a pair of
 *   EV_IPL events (the section name in ASCII with its NUL, then the section's contents; both
 *   described by the name in UTF-16); then systemd-pcrphase's boot phases ("enter-initrd",
 *   "leave-initrd", "sysinit", "ready", ...) in the systemd log.
 * - PCR 12: systemd-boot and systemd-stub, the kernel command line when it came from the
 *   loader (EV_IPL, the UTF-16 text is what is hashed; systemd 257 includes the NUL),
 *   credentials and add-ons.
 * - PCR 13: systemd-stub, the system extensions passed on the ESP (EV_IPL "System extension
 *   initrd", the hash of the cpio archive the stub builds).
 * - PCR 15: systemd-pcrmachine ("machine-id:<id>"), systemd-pcrfs ("file-system:..."),
 *   systemd-cryptsetup (volume keys), in the systemd log.
 *
 * PCR 13 is also Bulwark's default baseline PCR (README, "Why PCR 13"). A host whose stub
 * measures system extensions shares it; such a host must set another `baselinePcr`
 * (the agent refuses the overlap), and the baseline PCR is left out of this replay.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { toHex } from '../bytes.js';
import { HASH_ALGS, type PcrBanks, type QuotedPcrs } from '../tpm/index.js';
import { finding, type Finding } from '../verdict.js';
import { TCG_EVENT_TYPE } from './constants.js';
import type { EventLog, LoggedEvent } from './parse.js';
import { bankName, eventDigest, initialPcrValue } from './replay.js';
import { SYSTEMD_EVENT_TYPE, systemdRecordPayload, type SystemdLog, type SystemdLogRecord } from './systemd-log.js';

/** The PCRs systemd-stub and systemd userspace own (UAPI Linux TPM PCR Registry). */
export const SYSTEMD_PCR = { kernelBoot: 11, kernelConfig: 12, sysexts: 13, systemIdentity: 15 } as const;

/** The PCRs replaySystemdBoot compares when quoted. */
export const SYSTEMD_BOOT_PCRS: readonly number[] = [11, 12, 13, 15];

/** The EV_IPL descriptions systemd-stub gives its PCR 12 and 13 cpio measurements. */
export const STUB_DESCRIPTION = {
  credentials: 'Credentials initrd',
  globalCredentials: 'Global credentials initrd',
  sysext: 'System extension initrd',
  confext: 'Configuration extension initrd',
} as const;

declare const verifiedBrand: unique symbol;

/** Firmware-log events and systemd records of the PCRs a quote proved. Only replaySystemdBoot makes one. */
export interface VerifiedSystemdBoot {
  readonly quoted: true;
  /** Measured firmware-log events of proven SYSTEMD_BOOT_PCRS, in log order. */
  readonly stubEvents: readonly LoggedEvent[];
  /** systemd records of proven PCRs, in log order. */
  readonly records: readonly SystemdLogRecord[];
  /** Bank → the SYSTEMD_BOOT_PCRS proven in it. */
  readonly provenPcrs: ReadonlyMap<number, readonly number[]>;
  /** Bank → PCR → the replayed (and quoted) value. */
  readonly pcrValues: PcrBanks;
  readonly [verifiedBrand]: true;
}

/** The outcome of replaySystemdBoot. Trusted when `ok: true`. */
export type SystemdBootReplayResult = { readonly ok: true; readonly boot: VerifiedSystemdBoot } | { readonly ok: false; readonly findings: readonly Finding[] };

export interface SystemdReplayOptions {
  /** PCRs left out (the baseline PCR, which Bulwark's own chain extends). */
  readonly excludePcrs?: readonly number[];
}

function hashName(alg: number): string {
  return HASH_ALGS.get(alg)?.name ?? 'sha256';
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/** The PCRs of SYSTEMD_BOOT_PCRS a replay compares: quoted in `alg`, not excluded. */
function comparedSystemdPcrs(quoted: PcrBanks, alg: number, exclude: readonly number[]): number[] {
  const bank = quoted.get(alg);
  return bank === undefined ? [] : SYSTEMD_BOOT_PCRS.filter((p) => bank.has(p) && !exclude.includes(p));
}

/**
 * Replays PCRs 11, 12, 13 and 15 (those quoted, less `excludePcrs`) from both logs: each
 * PCR starts at zero, takes the firmware log's events for it (systemd-stub's, before
 * ExitBootServices), then the systemd log's records for it, in order. Every compared PCR
 * must equal the quote in every quoted bank, else SYSTEMD_LOG_REPLAY_MISMATCH (one finding
 * per PCR and bank). Trust: both logs untrusted, `quoted` from verifyQuote; the firmware
 * log's other PCRs are replayEventLog's (call it with `pcrs` leaving these out).
 */
export function replaySystemdBoot(firmware: EventLog, systemd: SystemdLog, quoted: QuotedPcrs, options: SystemdReplayOptions = {}): SystemdBootReplayResult {
  const exclude = options.excludePcrs ?? [];
  const findings: Finding[] = [];
  const provenPcrs = new Map<number, number[]>();
  const pcrValues = new Map<number, Map<number, Uint8Array>>();
  const logBanks = new Set(firmware.algorithms.map((a) => a.algorithmId));
  for (const alg of quoted.keys()) {
    const pcrs = comparedSystemdPcrs(quoted, alg, exclude);
    if (pcrs.length === 0) continue;
    const bank = bankName(alg);
    if (!HASH_ALGS.has(alg) || !logBanks.has(alg)) continue; // replayEventLog reports EVENTLOG_BANK_MISSING
    const values = new Map<number, Uint8Array>();
    for (const pcr of pcrs) {
      let value = initialPcrValue(alg, pcr, null);
      const extend = (d: Uint8Array): void => {
        value = createHash(hashName(alg)).update(value).update(d).digest();
      };
      for (const e of firmware.events) {
        if (e.pcrIndex !== pcr || e.eventType === TCG_EVENT_TYPE.EV_NO_ACTION) continue;
        const d = eventDigest(e, alg);
        if (d !== undefined) extend(d);
      }
      let missing: SystemdLogRecord | undefined;
      for (const r of systemd.records) {
        if (r.pcr !== pcr) continue;
        const d = r.digests.find((x) => x.hashAlg === alg)?.digest;
        if (d === undefined) missing ??= r;
        else extend(d);
      }
      const q = quoted.get(alg)?.get(pcr) ?? new Uint8Array(0);
      if (missing !== undefined) {
        findings.push(
          finding('SYSTEMD_LOG_REPLAY_MISMATCH', `systemd log record ${missing.index} (PCR ${pcr}) carries no ${bank} digest, so PCR ${pcr} cannot be replayed in the quoted ${bank} bank`, {
            pcr,
            bank,
            record: missing.index,
          }),
        );
      } else if (!sameBytes(value, q)) {
        findings.push(
          finding('SYSTEMD_LOG_REPLAY_MISMATCH', `PCR ${pcr} (${bank}) replayed from systemd-stub's events and the systemd log is ${toHex(value)}, the quote says ${toHex(q)}`, {
            pcr,
            bank,
            replayed: toHex(value),
            quoted: toHex(q),
          }),
        );
      } else {
        values.set(pcr, value);
      }
    }
    provenPcrs.set(alg, pcrs);
    pcrValues.set(alg, values);
  }
  if (findings.length > 0) return { ok: false, findings };
  const proven = (pcr: number): boolean => [...provenPcrs.values()].some((p) => p.includes(pcr));
  const boot = {
    quoted: true as const,
    stubEvents: firmware.events.filter((e) => e.eventType !== TCG_EVENT_TYPE.EV_NO_ACTION && SYSTEMD_BOOT_PCRS.includes(e.pcrIndex) && proven(e.pcrIndex)),
    records: systemd.records.filter((r) => proven(r.pcr)),
    provenPcrs,
    pcrValues,
  };
  return { ok: true, boot: toVerifiedSystemdBoot(boot) };
}

/** The one place a VerifiedSystemdBoot is made: the brand is a claim only replaySystemdBoot may make. */
function toVerifiedSystemdBoot(body: Omit<VerifiedSystemdBoot, typeof verifiedBrand>): VerifiedSystemdBoot {
  return body as unknown as VerifiedSystemdBoot;
}

/** True when the replay proved `pcr` in `alg`. */
export function isSystemdPcrProven(boot: VerifiedSystemdBoot, alg: number, pcr: number): boolean {
  return boot.provenPcrs.get(alg)?.includes(pcr) ?? false;
}

/** One UKI PE section as systemd-stub measured it into PCR 11. */
export interface UkiSection {
  readonly name: string;
  /** Hex digest of the section's contents in the bank read. */
  readonly digest: string;
  readonly sequence: number;
}

/** A PCR 12 or 13 measurement of systemd-stub. */
export interface StubMeasurement {
  readonly sequence: number;
  readonly pcr: number;
  readonly digest: string;
  /** The event's description (UTF-16 data), as the stub wrote it. */
  readonly description: string;
  /** A kernel command line: the digest is over the description (so the text is evidence). */
  readonly cmdline: boolean;
}

/** A systemd record read. */
export interface SystemdMeasurement {
  readonly index: number;
  readonly pcr: number;
  readonly eventType: string;
  readonly string: string | null;
  /** The digest is the hash of `string` in the bank read, so the string is evidence. */
  readonly bound: boolean;
  readonly digest: string;
}

/** What a UKI boot consisted of, in one bank. */
export interface UkiBoot {
  /** PCR 11 after systemd-stub's measurements, before any boot phase: the UKI's identity (`systemd-measure calculate --phase=`), or null when PCR 11 holds no stub events. */
  readonly ukiDigest: string | null;
  readonly sections: readonly UkiSection[];
  /** PCR 11 firmware events that are not a section name/contents pair. */
  readonly unpairedPcr11: readonly number[];
  readonly pcr12: readonly StubMeasurement[];
  readonly pcr13: readonly StubMeasurement[];
  /** systemd records of PCR 11 (boot phases) and 15 (machine id, file systems, volume keys). */
  readonly phases: readonly SystemdMeasurement[];
  readonly identity: readonly SystemdMeasurement[];
}

/** Decodes UTF-16LE event data without its trailing NULs; null when it is not UTF-16. */
function utf16(data: Uint8Array): string | null {
  if (data.length % 2 !== 0) return null;
  let end = data.length;
  while (end >= 2 && data[end - 1] === 0 && data[end - 2] === 0) end -= 2;
  try {
    return new TextDecoder('utf-16le', { fatal: true }).decode(data.subarray(0, end));
  } catch {
    return null;
  }
}

function hashHex(alg: number, data: Uint8Array): string {
  return createHash(hashName(alg)).update(data).digest('hex');
}

/**
 * Reads a replayed UKI boot in bank `alg`: the stub's PCR 11 section pairs (a pair is
 * recognised by its name event, whose digest must be the hash of the ASCII name and NUL
 * the description shows), its PCR 12/13 measurements, and systemd's records. Only proven
 * PCRs are read. Pure.
 */
export function readUkiBoot(boot: VerifiedSystemdBoot, alg: number): UkiBoot {
  const digestOf = (e: LoggedEvent): string => {
    const d = eventDigest(e, alg);
    return d === undefined ? '' : toHex(d);
  };
  const pcr11 = boot.stubEvents.filter((e) => e.pcrIndex === 11);
  const sections: UkiSection[] = [];
  const unpaired: number[] = [];
  let ukiDigest: string | null = null;
  if (pcr11.length > 0) {
    let value = initialPcrValue(alg, 11, null);
    for (const e of pcr11) value = createHash(hashName(alg)).update(value).update(eventDigest(e, alg) ?? new Uint8Array(0)).digest();
    ukiDigest = toHex(value);
  }
  for (let i = 0; i < pcr11.length; i++) {
    const e = pcr11[i];
    const next = pcr11[i + 1];
    if (e === undefined) continue;
    const name = e.eventType === TCG_EVENT_TYPE.EV_IPL ? utf16(e.data) : null;
    const nameBytes = name === null ? null : Uint8Array.from([...name].map((c) => c.charCodeAt(0) & 0xff).concat(0));
    const isName = name !== null && nameBytes !== null && /^\.[\x21-\x7e]{1,15}$/.test(name) && hashHex(alg, nameBytes) === digestOf(e);
    if (isName && next !== undefined && next.eventType === TCG_EVENT_TYPE.EV_IPL && utf16(next.data) === name) {
      sections.push({ name, digest: digestOf(next), sequence: next.sequence });
      i++;
    } else {
      unpaired.push(e.sequence);
    }
  }
  const stub = (pcr: number): StubMeasurement[] =>
    boot.stubEvents
      .filter((e) => e.pcrIndex === pcr)
      .map((e) => {
        const description = (e.eventType === TCG_EVENT_TYPE.EV_IPL ? utf16(e.data) : null) ?? '';
        const digest = digestOf(e);
        // A command line's digest is over its UTF-16 text: with the trailing NUL, as the event data
        // holds it (systemd 257, recorded), or without (TPM2_PCR_MEASUREMENTS.md today); a cpio's is not.
        const text = new Uint8Array(Buffer.from(description, 'utf16le'));
        const bound = description !== '' && (hashHex(alg, text) === digest || hashHex(alg, e.data) === digest);
        return { sequence: e.sequence, pcr, digest, description, cmdline: pcr === 12 && bound };
      });
  const record = (r: SystemdLogRecord): SystemdMeasurement => {
    const d = r.digests.find((x) => x.hashAlg === alg)?.digest;
    const digest = d === undefined ? '' : toHex(d);
    const payload = systemdRecordPayload(r);
    return { index: r.index, pcr: r.pcr, eventType: r.eventType, string: r.string, digest, bound: payload !== null && hashHex(alg, payload) === digest };
  };
  return {
    ukiDigest,
    sections,
    unpairedPcr11: unpaired,
    pcr12: stub(12),
    pcr13: stub(13),
    phases: boot.records.filter((r) => r.pcr === 11).map(record),
    identity: boot.records.filter((r) => r.pcr === 15).map(record),
  };
}

/** The UKI part of a measured-boot policy (policy.ts `uki`). */
export interface UkiRequirement {
  /** Allowed UKI digests (UkiBoot.ukiDigest) in the policy's bank. */
  readonly digests?: ReadonlySet<string>;
  /** The boot phases measured so far must be a prefix of this sequence. */
  readonly phases?: readonly string[];
  /** Every command line the stub measured into PCR 12 must match (whole). */
  readonly cmdline?: { readonly pattern: string; readonly regex: RegExp };
  /** Allowed digests of the stub's system extension (PCR 13) measurements. */
  readonly sysexts?: ReadonlySet<string>;
}

/** The PCR each UKI check needs proven. */
const UKI_CHECK_PCR = { digests: 11, phases: 11, cmdline: 12, sysexts: 13 } as const;

/**
 * Judges a replayed UKI boot: UKI_NOT_ALLOWED (another UKI), BOOT_PHASE_NOT_ALLOWED,
 * KERNEL_CMDLINE_NOT_ALLOWED (PCR 12), SYSEXT_NOT_ALLOWED; EVENTLOG_PCR_NOT_QUOTED when a
 * check's PCR is not proven in `alg`. Trust: `boot` verified, `req` trusted.
 */
export function judgeUkiBoot(req: UkiRequirement, boot: VerifiedSystemdBoot, alg: number, maxCmdline: number): Finding[] {
  const bank = bankName(alg);
  const out: Finding[] = [];
  const need = (check: keyof typeof UKI_CHECK_PCR): boolean => {
    const pcr = UKI_CHECK_PCR[check];
    if (isSystemdPcrProven(boot, alg, pcr)) return true;
    out.push(finding('EVENTLOG_PCR_NOT_QUOTED', `uki.${check} needs PCR ${pcr} in the ${bank} bank, which the quote does not prove (or which is the baseline PCR)`, { pcr, bank, check: `uki.${check}` }));
    return false;
  };
  const uki = readUkiBoot(boot, alg);
  if (req.digests !== undefined && need('digests')) {
    if (uki.ukiDigest === null) out.push(finding('UKI_NOT_ALLOWED', 'no UKI was measured into PCR 11 (no systemd-stub events)', { pcr: 11 }));
    else if (!req.digests.has(uki.ukiDigest)) {
      const linux = uki.sections.find((s) => s.name === '.linux');
      out.push(
        finding('UKI_NOT_ALLOWED', `the UKI measured into PCR 11 (${bank} ${uki.ukiDigest}; .linux ${linux?.digest ?? 'not measured'}) is not one uki.digests allows`, {
          pcr: 11,
          bank,
          digest: uki.ukiDigest,
          sections: uki.sections.map((s) => s.name).join(','),
        }),
      );
    }
  }
  if (req.phases !== undefined && need('phases')) {
    uki.phases.forEach((p, i) => {
      const expected = req.phases?.[i];
      if (p.eventType !== SYSTEMD_EVENT_TYPE.phase || !p.bound || p.string !== expected) {
        out.push(
          finding(
            'BOOT_PHASE_NOT_ALLOWED',
            `systemd log record ${p.index} in PCR 11 is ${p.bound ? `${p.eventType} "${p.string ?? ''}"` : 'a measurement its digest does not match'}, where uki.phases expects ${expected === undefined ? 'no more phases' : `"${expected}"`}`,
            { pcr: 11, record: p.index, phase: p.string ?? undefined, expected },
          ),
        );
      }
    });
  }
  if (req.cmdline !== undefined && need('cmdline')) {
    for (const m of uki.pcr12) {
      if (!m.cmdline) {
        if (m.description === STUB_DESCRIPTION.credentials || m.description === STUB_DESCRIPTION.globalCredentials) continue;
        out.push(finding('KERNEL_CMDLINE_NOT_ALLOWED', `event ${m.sequence} in PCR 12 ("${m.description.slice(0, 120)}") is not a command line its digest proves`, { pcr: 12, sequence: m.sequence }));
      } else if (m.description.length > maxCmdline || !req.cmdline.regex.test(m.description)) {
        out.push(
          finding('KERNEL_CMDLINE_NOT_ALLOWED', `kernel command line (event ${m.sequence}, PCR 12) "${m.description.slice(0, 300)}" does not match uki.cmdline`, {
            pcr: 12,
            sequence: m.sequence,
            cmdline: m.description.slice(0, 1000),
          }),
        );
      }
    }
  }
  if (req.sysexts !== undefined && need('sysexts')) {
    for (const m of uki.pcr13) {
      if (!req.sysexts.has(m.digest)) {
        out.push(
          finding('SYSEXT_NOT_ALLOWED', `event ${m.sequence} in PCR 13 ("${m.description.slice(0, 120)}") has ${bank} digest ${m.digest}, which uki.sysexts does not allow`, {
            pcr: 13,
            sequence: m.sequence,
            digest: m.digest,
          }),
        );
      }
    }
  }
  return out;
}
