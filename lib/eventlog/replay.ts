/**
 * Replay of an event log into PCR values, and the one step that turns logged events into
 * evidence: `replayEventLog(log, quoted)` compares the replay with PCR values proven by a
 * verified quote and hands out events only when every compared PCR matches (the split of
 * go-attestation's ParseEventLog / EventLog.Verify).
 *
 * Replay (TPM 2.0 Part 1, 17.3 "PCR extend"; PFP 10.2.2): per bank, each PCR starts at
 * zero — PCR 0 at zero with the last octet set to the StartupLocality when one is logged
 * (PFP 10.4.5.3) — and each measured event extends it: PCR = H(PCR || digest). EV_NO_ACTION
 * events are not extended. A log may carry more banks than the TPM has; only banks the
 * quote covers are proven.
 *
 * What a match proves: the digests, their order within each PCR, and their PCR index. It
 * does not prove an event's type or data, nor the order of events in different PCRs; an
 * event's data is evidence only where its digest is over that data (`checkEventDataDigest`).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { toHex } from '../bytes.js';
import { BulwarkError } from '../errors.js';
import { HASH_ALGS, type PcrBanks, type QuotedPcrs } from '../tpm/index.js';
import { finding, type Finding } from '../verdict.js';
import { GRUB_STRING_PREFIX, SEPARATOR_VALUE, TCG_EVENT_TYPE } from './constants.js';
import type { EventLog, EventLogFormat, LoggedEvent, SpecIdAlgorithm, TcgEfiSpecIdEvent } from './parse.js';
import { FIRMWARE_QUIRK_IDS, exitBootServicesVariants, type FirmwareQuirkId } from './quirks.js';
import { latin1 } from './uefi.js';

/** The PCRs the firmware and boot loader own (PFP, "PCR Usage"): compared whenever quoted, events or not. */
export const BOOT_LOG_PCRS: readonly number[] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];

/** A logged event, or one a firmware quirk put back (measured into the TPM but missing from the log). */
export interface ReplayedEvent extends LoggedEvent {
  readonly injectedBy?: FirmwareQuirkId;
}

declare const verifiedBrand: unique symbol;
declare const selfReplayedBrand: unique symbol;

/** An event whose digest, PCR and place in its PCR's sequence a verified quote proves. Only replayEventLog makes one. */
export type VerifiedEvent = ReplayedEvent & { readonly [verifiedBrand]: true };

/** What a replay established, shared by the quoted and the forensic (unquoted) forms. */
export interface ReplayedEventLogBody {
  readonly format: EventLogFormat;
  /** The Spec ID header; null for a SHA-1 format log. */
  readonly specId: TcgEfiSpecIdEvent | null;
  /** The banks the log carries digests for (SHA-1 alone for a SHA-1 format log). */
  readonly algorithms: readonly SpecIdAlgorithm[];
  readonly uintnSize: 4 | 8;
  readonly startupLocality: number | null;
  /** Measured events (no EV_NO_ACTION) of proven PCRs, in log order, then quirk-injected ones. */
  readonly events: readonly ReplayedEvent[];
  /** Bank (TPM_ALG_ID) → the PCRs proven in that bank, ascending. */
  readonly provenPcrs: ReadonlyMap<number, readonly number[]>;
  /** Bank → PCR → the replayed (and, when quoted, proven) value. */
  readonly pcrValues: PcrBanks;
  /** Firmware quirks the replay relied on. */
  readonly quirks: readonly FirmwareQuirkId[];
  /** Measured events left out because their PCR was not compared (not quoted, or excluded). */
  readonly unprovenEvents: number;
}

/**
 * A log replayed against a verified quote: every compared PCR matched. Trusted as far as
 * replay goes (see the module comment). Only replayEventLog makes one.
 */
export type VerifiedEventLog = ReplayedEventLogBody & {
  readonly quoted: true;
  readonly events: readonly VerifiedEvent[];
  readonly [verifiedBrand]: true;
};

/**
 * A log replayed against itself for offline forensics (`bulwarkctl eventlog`, reference
 * policies): self-consistent, proven by nothing. Only replayEventLogUnquoted makes one.
 */
export type SelfReplayedEventLog = ReplayedEventLogBody & { readonly quoted: false; readonly [selfReplayedBrand]: true };

/** Either form, for read-only views (Secure Boot state, reports) that record which they had. */
export type ReplayedEventLog = VerifiedEventLog | SelfReplayedEventLog;

/** One PCR that disagrees with the quote. */
export interface PcrMismatch {
  readonly hashAlg: number;
  readonly pcr: number;
  readonly replayed: Uint8Array;
  readonly quoted: Uint8Array;
}

/** The outcome of replayEventLog. Trusted when `ok: true`. */
export type EventLogReplayResult =
  | { readonly ok: true; readonly log: VerifiedEventLog }
  | { readonly ok: false; readonly findings: readonly Finding[]; readonly mismatches: readonly PcrMismatch[] };

export interface ReplayOptions {
  /** PCRs to compare; default: the quoted PCRs among BOOT_LOG_PCRS and any other quoted PCR the log extends. */
  readonly pcrs?: readonly number[];
  /** Quirks that may be applied; default: every one in FIRMWARE_QUIRKS. */
  readonly quirks?: readonly FirmwareQuirkId[];
}

function hashName(hashAlg: number): string {
  const h = HASH_ALGS.get(hashAlg);
  if (h === undefined) throw new BulwarkError('TPM_ALG_UNSUPPORTED', `hash algorithm 0x${hashAlg.toString(16)} cannot be replayed`, { hashAlg });
  return h.name;
}

export function bankName(hashAlg: number): string {
  return HASH_ALGS.get(hashAlg)?.name ?? `0x${hashAlg.toString(16).padStart(4, '0')}`;
}

/** The value a PCR holds after TPM2_Startup(CLEAR): zero, PCR 0 carrying the startup locality in its last octet. */
export function initialPcrValue(hashAlg: number, pcr: number, startupLocality: number | null): Uint8Array {
  const size = HASH_ALGS.get(hashAlg)?.size ?? 0;
  const v = new Uint8Array(size);
  if (pcr === 0 && startupLocality !== null && size > 0) v[size - 1] = startupLocality;
  return v;
}

function extend(name: string, pcr: Uint8Array, digest: Uint8Array): Uint8Array {
  return createHash(name).update(pcr).update(digest).digest();
}

/** The banks of a log Bulwark can replay (known hash algorithms), in Spec ID order. */
export function replayableBanks(log: EventLog): number[] {
  return log.algorithms.map((a) => a.algorithmId).filter((alg) => HASH_ALGS.has(alg));
}

/**
 * Replays every replayable bank of the log (or only `banks`): bank → PCR → value, for each
 * PCR the log extends (and PCR 0 when a StartupLocality is logged). Pure arithmetic over untrusted
 * digests: the values mean something only once compared with a quote.
 */
export function replayPcrs(log: EventLog, banks?: readonly number[]): PcrBanks {
  const out = new Map<number, Map<number, Uint8Array>>();
  for (const alg of replayableBanks(log)) {
    if (banks !== undefined && !banks.includes(alg)) continue;
    const name = hashName(alg);
    const bank = new Map<number, Uint8Array>();
    if (log.startupLocality !== null) bank.set(0, initialPcrValue(alg, 0, log.startupLocality));
    for (const e of log.events) {
      if (e.eventType === TCG_EVENT_TYPE.EV_NO_ACTION) continue;
      const d = e.digests.find((x) => x.hashAlg === alg);
      if (d === undefined) throw new BulwarkError('INTERNAL', `event ${e.sequence} has no ${name} digest after parsing`);
      bank.set(e.pcrIndex, extend(name, bank.get(e.pcrIndex) ?? initialPcrValue(alg, e.pcrIndex, log.startupLocality), d.digest));
    }
    out.set(alg, new Map([...bank].sort((a, b) => a[0] - b[0])));
  }
  return out;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/** The PCRs a log extends (measured events only). */
export function extendedPcrs(log: EventLog): Set<number> {
  const s = new Set<number>();
  for (const e of log.events) if (e.eventType !== TCG_EVENT_TYPE.EV_NO_ACTION) s.add(e.pcrIndex);
  return s;
}

/** What a replayed log keeps of the parsed log's header. */
function logHeader(log: EventLog): Pick<ReplayedEventLogBody, 'format' | 'specId' | 'algorithms' | 'uintnSize'> {
  return { format: log.format, specId: log.specId, algorithms: log.algorithms, uintnSize: log.uintnSize };
}

/** The one place a VerifiedEventLog is made: the brand is a claim only this module may make. */
function toVerified(body: ReplayedEventLogBody): VerifiedEventLog {
  return { ...body, quoted: true } as unknown as VerifiedEventLog;
}

function toSelfReplayed(body: ReplayedEventLogBody): SelfReplayedEventLog {
  return { ...body, quoted: false } as unknown as SelfReplayedEventLog;
}

/** Events a quirk put back: EV_EFI_ACTION strings with a digest per log bank (digest = H(string), PFP 10.4.4). */
function injectedActions(log: EventLog, pcr: number, strings: readonly string[], quirk: FirmwareQuirkId): ReplayedEvent[] {
  const last = log.events.length;
  return strings.map((s, i) => {
    const data = Uint8Array.from(s, (c) => c.charCodeAt(0) & 0xff);
    return {
      sequence: last + 1 + i,
      offset: -1,
      pcrIndex: pcr,
      eventType: TCG_EVENT_TYPE.EV_EFI_ACTION,
      digests: log.algorithms.map((a) => ({
        hashAlg: a.algorithmId,
        digest: HASH_ALGS.has(a.algorithmId) ? createHash(hashName(a.algorithmId)).update(data).digest() : new Uint8Array(a.digestSize),
      })),
      data,
      injectedBy: quirk,
    };
  });
}

/**
 * Which quoted PCRs a replay compares, per bank (see replayEventLog), and the quoted banks
 * the log carries no digests for. Pure; used by EventLogCache to key its memo on exactly
 * the values a verdict depends on.
 */
export function comparedPcrs(
  log: EventLog,
  quoted: PcrBanks,
  options: ReplayOptions = {},
  extended: ReadonlySet<number> = extendedPcrs(log),
): { compare: Map<number, number[]>; missingBanks: number[] } {
  const logBanks = new Set(log.algorithms.map((a) => a.algorithmId));
  const wanted = options.pcrs === undefined ? undefined : new Set(options.pcrs);
  const compare = new Map<number, number[]>();
  const missingBanks: number[] = [];
  // A SHA-1 format log cannot carry other banks: when the SHA-1 bank is quoted, it alone is
  // compared (the policy decides whether SHA-1 alone is enough, EVENTLOG_SHA1_ONLY).
  const sha1Format = log.format === 'sha1' && [...quoted.keys()].some((alg) => logBanks.has(alg));
  for (const [alg, bank] of quoted) {
    if (!logBanks.has(alg) || !HASH_ALGS.has(alg)) {
      if (!sha1Format) missingBanks.push(alg);
      continue;
    }
    const pcrs = [...bank.keys()].filter((p) => (wanted === undefined ? BOOT_LOG_PCRS.includes(p) || extended.has(p) : wanted.has(p))).sort((a, b) => a - b);
    compare.set(alg, pcrs);
  }
  return { compare, missingBanks };
}

/**
 * Compares a precomputed replay (replayPcrs of the same log) with quoted PCRs; see
 * replayEventLog. Module-internal: only EventLogCache, which replays an unchanged log once,
 * calls it; it is not in index.ts because wrong `replayed` values would make a
 * VerifiedEventLog of a log that does not replay.
 */
export function verifyReplay(
  log: EventLog,
  replayed: PcrBanks,
  quoted: QuotedPcrs,
  options: ReplayOptions = {},
  extended: ReadonlySet<number> = extendedPcrs(log),
): EventLogReplayResult {
  const findings: Finding[] = [];
  const { compare, missingBanks } = comparedPcrs(log, quoted, options, extended);
  for (const alg of missingBanks) {
    findings.push(
      finding('EVENTLOG_BANK_MISSING', `the quote covers the ${bankName(alg)} bank but the event log carries no ${bankName(alg)} digests`, {
        hashAlg: alg,
        bank: bankName(alg),
      }),
    );
  }

  const mismatches: PcrMismatch[] = [];
  const valueOf = (alg: number, pcr: number): Uint8Array => replayed.get(alg)?.get(pcr) ?? initialPcrValue(alg, pcr, log.startupLocality);
  for (const [alg, pcrs] of compare) {
    for (const pcr of pcrs) {
      const q = quoted.get(alg)?.get(pcr);
      const r = valueOf(alg, pcr);
      if (q === undefined || !sameBytes(r, q)) mismatches.push({ hashAlg: alg, pcr, replayed: r, quoted: q ?? new Uint8Array(0) });
    }
  }

  // A quirk is tried only when every mismatch is in its PCR, and kept only when it makes that PCR match in every bank.
  const allowed = new Set(options.quirks ?? FIRMWARE_QUIRK_IDS);
  let injected: ReplayedEvent[] = [];
  const quirks: FirmwareQuirkId[] = [];
  if (mismatches.length > 0 && findings.length === 0 && allowed.has('EXIT_BOOT_SERVICES_NOT_LOGGED') && mismatches.every((m) => m.pcr === 5)) {
    for (const variant of exitBootServicesVariants(log.events)) {
      const events = injectedActions(log, 5, variant, 'EXIT_BOOT_SERVICES_NOT_LOGGED');
      const fixed = mismatches.every((m) => {
        let v = m.replayed;
        for (const e of events) {
          const d = e.digests.find((x) => x.hashAlg === m.hashAlg);
          if (d === undefined) return false;
          v = extend(hashName(m.hashAlg), v, d.digest);
        }
        return sameBytes(v, m.quoted);
      });
      if (fixed) {
        injected = events;
        quirks.push('EXIT_BOOT_SERVICES_NOT_LOGGED');
        mismatches.length = 0;
        break;
      }
    }
  }

  for (const m of mismatches) {
    findings.push(
      finding(
        'EVENTLOG_REPLAY_MISMATCH',
        `PCR ${m.pcr} (${bankName(m.hashAlg)}): the event log replays to ${toHex(m.replayed)}, the quote proves ${m.quoted.length === 0 ? 'no value' : toHex(m.quoted)}`,
        { pcr: m.pcr, hashAlg: m.hashAlg, bank: bankName(m.hashAlg), replayed: toHex(m.replayed), quoted: toHex(m.quoted) },
      ),
    );
  }
  if (findings.length > 0) return { ok: false, findings, mismatches };

  const proven = new Set<number>();
  const provenPcrs = new Map<number, readonly number[]>();
  const pcrValues = new Map<number, ReadonlyMap<number, Uint8Array>>();
  for (const [alg, pcrs] of compare) {
    provenPcrs.set(alg, pcrs);
    const values = new Map<number, Uint8Array>();
    for (const p of pcrs) {
      proven.add(p);
      const q = quoted.get(alg)?.get(p);
      if (q !== undefined) values.set(p, q);
    }
    pcrValues.set(alg, values);
  }
  const events: ReplayedEvent[] = [];
  let unprovenEvents = 0;
  for (const e of log.events) {
    if (e.eventType === TCG_EVENT_TYPE.EV_NO_ACTION) continue;
    if (proven.has(e.pcrIndex)) events.push(e);
    else unprovenEvents++;
  }
  events.push(...injected);
  return {
    ok: true,
    log: toVerified({ ...logHeader(log), startupLocality: log.startupLocality, events, provenPcrs, pcrValues, quirks, unprovenEvents }),
  };
}

/**
 * Replays the log per bank and compares it with the PCR values a verified quote proves.
 * For every quoted bank the log must carry digests (else EVENTLOG_BANK_MISSING); every
 * compared PCR — by default each quoted PCR in 0–9 and each other quoted PCR the log
 * extends — must match, else one EVENTLOG_REPLAY_MISMATCH per PCR and bank, naming it.
 * Quirks from FIRMWARE_QUIRKS are tried only to explain a mismatch exactly.
 *
 * Trust: `log` is untrusted, `quoted` proven by verifyQuote. On `ok: true` the result
 * holds the events of the proven PCRs (VerifiedEvent) — the only source of them.
 */
export function replayEventLog(log: EventLog, quoted: QuotedPcrs, options: ReplayOptions = {}): EventLogReplayResult {
  // Only the quoted banks can be proven, so only they are replayed.
  return verifyReplay(log, replayPcrs(log, [...quoted.keys()]), quoted, options);
}

/**
 * Replays a log against itself, for forensics without a quote: every replayable bank and
 * every PCR the log extends count as "proven", which proves nothing. The result says
 * `quoted: false`; evaluateMeasuredBootPolicy does not accept it. Untrusted.
 */
export function replayEventLogUnquoted(log: EventLog): SelfReplayedEventLog {
  const values = replayPcrs(log);
  const provenPcrs = new Map<number, readonly number[]>();
  for (const [alg, bank] of values) provenPcrs.set(alg, [...bank.keys()]);
  const events = log.events.filter((e) => e.eventType !== TCG_EVENT_TYPE.EV_NO_ACTION);
  return toSelfReplayed({ ...logHeader(log), startupLocality: log.startupLocality, events, provenPcrs, pcrValues: values, quirks: [], unprovenEvents: 0 });
}

/** Whether `pcr` is proven in bank `hashAlg` of a replayed log. */
export function isPcrProven(log: ReplayedEventLogBody, hashAlg: number, pcr: number): boolean {
  return log.provenPcrs.get(hashAlg)?.includes(pcr) ?? false;
}

/** The digest of one event in one bank, or undefined when the log has no such bank. */
export function eventDigest(event: LoggedEvent, hashAlg: number): Uint8Array | undefined {
  return event.digests.find((d) => d.hashAlg === hashAlg)?.digest;
}

/**
 * What an event's digest is a hash of (PFP 10.4.1 per event type):
 * - 'data': the event data itself (or, for GRUB's PCR 8 strings, the string after its
 *   prefix without the NUL, grub-core/commands/tpm.c) — the data is evidence once matched;
 * - 'content': something not in the log (a PE image, a file, firmware) — the data is a hint;
 * - 'not-extended': EV_NO_ACTION.
 */
export type EventDigestRule = { readonly rule: 'data'; readonly payload: Uint8Array } | { readonly rule: 'content' } | { readonly rule: 'not-extended' };

export function eventDigestRule(event: LoggedEvent): EventDigestRule {
  const T = TCG_EVENT_TYPE;
  switch (event.eventType) {
    case T.EV_NO_ACTION:
      return { rule: 'not-extended' };
    case T.EV_SEPARATOR:
    case T.EV_EFI_ACTION:
    case T.EV_ACTION:
    case T.EV_EFI_VARIABLE_DRIVER_CONFIG:
    case T.EV_EFI_VARIABLE_AUTHORITY:
    case T.EV_EFI_GPT_EVENT:
      return { rule: 'data', payload: event.data };
    case T.EV_IPL: {
      if (event.pcrIndex !== 8) return { rule: 'content' };
      for (const prefix of Object.values(GRUB_STRING_PREFIX)) {
        if (event.data.length >= prefix.length && latin1(event.data.subarray(0, prefix.length)) === prefix) {
          const nul = event.data.indexOf(0, prefix.length);
          return { rule: 'data', payload: event.data.subarray(prefix.length, nul < 0 ? event.data.length : nul) };
        }
      }
      return { rule: 'content' };
    }
    default:
      return { rule: 'content' };
  }
}

/** The outcome of checking an event's digest against its data. */
export type EventDataDigestCheck =
  | { readonly status: 'matches'; readonly payload: Uint8Array; readonly quirk?: FirmwareQuirkId }
  | { readonly status: 'mismatch'; readonly hashAlgs: readonly number[]; readonly reason: string }
  | { readonly status: 'content' };

/**
 * The shape a data-covered event must have besides its digest, so that one such event cannot
 * pass for another of a different type (the type is not in the digest): a separator is a
 * UINT32 of 0, 1 or 0xFFFFFFFF (PFP 10.4.1); an action is a non-empty ASCII string (10.4.4).
 */
function dataShapeProblem(event: LoggedEvent): string | undefined {
  const T = TCG_EVENT_TYPE;
  if (event.eventType === T.EV_SEPARATOR) {
    if (event.data.length !== 4) return `separator data of ${event.data.length} octets, not a UINT32`;
    const v = new DataView(event.data.buffer, event.data.byteOffset, 4).getUint32(0, true);
    if (!Object.values(SEPARATOR_VALUE).some((x) => x === v)) return `separator value 0x${v.toString(16)}`;
  }
  if (event.eventType === T.EV_EFI_ACTION || event.eventType === T.EV_ACTION) {
    if (event.data.length === 0 || !event.data.every((b) => b >= 0x20 && b <= 0x7e)) return 'action data is not an ASCII string';
  }
  return undefined;
}

/**
 * Checks, in each of `hashAlgs` (the proven banks), that the event's digest is the hash of
 * the data its type says it covers (eventDigestRule). SHIM_AUTHORITY_TRAILING_OCTET is
 * accepted for EV_EFI_VARIABLE_AUTHORITY when the digest is over the data less its last
 * octet, and then `payload` is that shorter data. Injected (quirk) events match by construction.
 */
export function checkEventDataDigest(event: ReplayedEvent, hashAlgs: readonly number[], quirks: readonly FirmwareQuirkId[] = FIRMWARE_QUIRK_IDS): EventDataDigestCheck {
  const rule = eventDigestRule(event);
  if (rule.rule !== 'data') return { status: 'content' };
  const shape = dataShapeProblem(event);
  if (shape !== undefined) return { status: 'mismatch', hashAlgs: [], reason: shape };
  const algs = hashAlgs.filter((a) => HASH_ALGS.has(a) && eventDigest(event, a) !== undefined);
  if (algs.length === 0) return { status: 'content' };
  const failing = (payload: Uint8Array): number[] =>
    algs.filter((a) => {
      const d = eventDigest(event, a);
      return d === undefined || !sameBytes(createHash(hashName(a)).update(payload).digest(), d);
    });
  const bad = failing(rule.payload);
  if (bad.length === 0) return { status: 'matches', payload: rule.payload };
  if (
    event.eventType === TCG_EVENT_TYPE.EV_EFI_VARIABLE_AUTHORITY &&
    quirks.includes('SHIM_AUTHORITY_TRAILING_OCTET') &&
    rule.payload.length > 0 &&
    failing(rule.payload.subarray(0, rule.payload.length - 1)).length === 0
  ) {
    return { status: 'matches', payload: rule.payload.subarray(0, rule.payload.length - 1), quirk: 'SHIM_AUTHORITY_TRAILING_OCTET' };
  }
  return { status: 'mismatch', hashAlgs: bad, reason: `the ${bad.map(bankName).join(', ')} digest is not the hash of the event data` };
}
