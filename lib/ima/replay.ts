/**
 * Incremental replay of IMA entries into PCR 10 and comparison with a quoted PCR 10. Pure.
 *
 * What the kernel extends (Linux security/integrity/ima/):
 * - ima_queue.c ima_add_template_entry: each entry extends its PCR (10 unless a policy rule
 *   names another) in every allocated bank with that entry's template hash for the bank.
 * - ima_crypto.c ima_calc_field_array_hash (Linux 5.1+, "ima: Calculate and extend PCR with
 *   digests in ima_template_entry"): the template hash of a bank is computed with the bank's
 *   own algorithm over the same input (ima_calc_field_array_hash_tfm), so the SHA-256 bank is
 *   extended with SHA-256(template input). Only banks the kernel has no crypto for get the
 *   SHA-1 template hash zero-padded to the bank size ("for unmapped TPM algorithms digest is
 *   still a padded SHA1"). This is rule 'per-bank', the default.
 * - Before Linux 5.1, drivers/char/tpm/tpm-interface.c tpm_pcr_extend copied the one SHA-1
 *   digest into a zeroed TPM2B for every active bank: the SHA-256 bank was extended with
 *   SHA-1(template input) followed by 12 zero bytes. This is rule 'sha1-padded' (evmctl
 *   ima_measurement checks both and reports "SHA1 padded TPM digest(s)").
 * - Violations (ima_add_violation → ima_add_template_entry with violation set): the list shows
 *   an all-zero template hash, but ima_init_digests filled the extended value with 0xff for
 *   the bank's digest size (per-bank), or 20 bytes of 0xff then zero padding (sha1-padded,
 *   the older `memset(digest, 0xff, TPM_DIGEST_SIZE)`). A violation's template data is not
 *   covered by the PCR, so its path and digest prove nothing.
 *
 * The list and the quote are read at different moments, so the list may be ahead of the
 * quote: replay stops at the first entry after which every replayed bank equals the quoted
 * value, and leaves the rest for the next round. A reboot starts again from
 * initialImaReplayState().
 */
import { createHash, hash as oneShotHash } from 'node:crypto';
import { Type, type Static } from '@sinclair/typebox';
import { toHex } from '../bytes.js';
import { BulwarkError } from '../errors.js';
import { defineDocument } from '../schema/index.js';
import { HASH_ALG_NAMES, HASH_ALGS, HASH_ALGS_BY_NAME, TPM_ALG, type HashAlgInfo, type HashAlgName, type PcrBanks, type QuotedPcrs } from '../tpm/index.js';
import { finding, type Finding } from '../verdict.js';
import { asBuffer, templateHashLength } from './fields.js';
import { BOOT_AGGREGATE_NAME, IMA_PCR, type ImaEntry, type ImaReplayKind, type SelfReplayedImaEntries, type VerifiedImaEntries } from './types.js';

/** Where replay stands after the entries verified so far since boot. Persisted by the controller between rounds. */
export interface ImaReplayState {
  /** Entries verified so far (the index the next entry must have). */
  readonly entryCount: number;
  /** Byte offset in the list right after the last verified entry (where the next entry must begin). */
  readonly byteOffset: number;
  /** PCR 10 after those entries, per bank (TPM_ALG_ID → value). The banks replayed. */
  readonly pcr10: ReadonlyMap<number, Uint8Array>;
}

/** How non-SHA-1 banks were extended (see the module comment). */
export type ImaBankRule = 'per-bank' | 'sha1-padded';

export interface ImaReplayOptions {
  /** Default 'per-bank' (Linux 5.1 and later). */
  readonly bankRule?: ImaBankRule;
  /** The PCR IMA extends; default 10. An entry for another PCR cannot be proven by this replay. */
  readonly pcr?: number;
}

export type ImaReplayResult =
  | {
      readonly ok: true;
      /** The state after the verified entries: store it for the next round. */
      readonly state: ImaReplayState;
      /** How many of the given entries the reference covers. */
      readonly consumed: number;
      /** The first `consumed` entries, now verified against the quote. */
      readonly verified: VerifiedImaEntries;
      /** Entries after the reference value (the list was ahead of the quote): replay them next round. */
      readonly pending: readonly ImaEntry[];
    }
  | ImaReplayFailure;

/** The result of replayImaEntriesOffline: as ImaReplayResult, but nothing in it is proven by a quote. */
export type ImaOfflineReplayResult =
  | {
      readonly ok: true;
      readonly state: ImaReplayState;
      readonly consumed: number;
      /** The first `consumed` entries: consistent with the reference, which no quote proved. */
      readonly replayed: SelfReplayedImaEntries;
      readonly pending: readonly ImaEntry[];
    }
  | ImaReplayFailure;

/** A replay that failed: the findings, and the state it started from (unchanged). */
export interface ImaReplayFailure {
  readonly ok: false;
  readonly findings: readonly Finding[];
  readonly state: ImaReplayState;
}

/**
 * A backlog replay that has not reached the reference yet: every entry given continued the
 * state without a gap and with consistent template hashes, and `running` is PCR 10 after
 * all of them. Nothing in it is proven until a later replay from `running` reaches a quote.
 */
export interface ImaBacklogShortfall {
  readonly ok: false;
  readonly reached: false;
  /** The state after every given entry (unproven): where the next chunk continues. */
  readonly running: ImaReplayState;
  /** The findings a replay that must reach the reference would give (IMA_REPLAY_MISMATCH per bank). */
  readonly findings: readonly Finding[];
  readonly state: ImaReplayState;
}

/** The result of replayImaBacklog: as ImaReplayResult, or a shortfall that more entries may still close. */
export type ImaBacklogReplayResult = ImaReplayResult | ImaBacklogShortfall;

/** What replayCore found, before the entries are branded with the kind of reference they met. */
type CoreReplayResult =
  | { readonly ok: true; readonly state: ImaReplayState; readonly consumed: number; readonly entries: readonly ImaEntry[]; readonly pending: readonly ImaEntry[] }
  | ImaReplayFailure
  | ImaBacklogShortfall;

/** The banks Bulwark replays, by TPM_ALG_ID, with node:crypto names and sizes. */
function bankInfo(alg: number): HashAlgInfo {
  const info = HASH_ALGS.get(alg);
  if (info === undefined) throw new BulwarkError('TPM_ALG_UNSUPPORTED', `cannot replay bank 0x${alg.toString(16)}`, { hashAlg: alg });
  return info;
}

/**
 * One-shot digest as a latin1 string (one char per byte): crypto.hash where Node has it
 * (20.12+), else createHash. A string result costs a third of a Buffer result (no
 * ArrayBuffer per hash), and two strings compare at once.
 */
const digestLatin1: (name: string, data: Uint8Array) => string =
  // 'binary' is Node's name for latin1 in the BinaryToTextEncoding type.
  typeof oneShotHash === 'function' ? (name, data) => oneShotHash(name, data, 'binary') : (name, data) => createHash(name).update(data).digest('binary');

/** PCR 10 at boot: zero in every bank (TCG PC Client PFP: PCRs 0-15 reset to zero). */
export function initialImaReplayState(banks: readonly number[] = [TPM_ALG.SHA256]): ImaReplayState {
  if (banks.length === 0) throw new BulwarkError('USAGE', 'replay needs at least one bank');
  const pcr10 = new Map<number, Uint8Array>();
  for (const alg of banks) pcr10.set(alg, new Uint8Array(bankInfo(alg).size));
  return { entryCount: 0, byteOffset: 0, pcr10 };
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Per-bank working state of one replay. */
interface Bank {
  readonly alg: number;
  readonly name: string;
  readonly size: number;
  /** pcr || extended value: [0, size) always holds the current PCR value, hashed to extend. */
  readonly scratch: Buffer;
  /** The value a violation extends. */
  readonly violationValue: Buffer;
  /** The current PCR value, latin1. */
  value: string;
  /** The reference value, latin1 ('' when absent). */
  readonly expected: string;
  /** Whether the SHA-1 template hash is zero-padded into this bank (the pre-5.1 rule for other banks). */
  readonly padded: boolean;
}

function makeBanks(state: ImaReplayState, rule: ImaBankRule, expected: PcrBanks | undefined, pcr: number): Bank[] {
  const banks: Bank[] = [];
  for (const [alg, value] of state.pcr10) {
    const { name, size } = bankInfo(alg);
    if (value.length !== size) throw new BulwarkError('IMA_STATE_INVALID', `stored PCR ${pcr} of bank ${name} has ${value.length} bytes`);
    const padded = rule === 'sha1-padded' && alg !== TPM_ALG.SHA1;
    const violationValue = Buffer.alloc(size, 0);
    violationValue.fill(0xff, 0, padded ? 20 : size);
    const scratch = Buffer.alloc(2 * size);
    scratch.set(value, 0);
    const ref = expected?.get(alg)?.get(pcr);
    banks.push({
      alg,
      name,
      size,
      scratch,
      violationValue,
      value: Buffer.from(value).toString('latin1'),
      expected: ref === undefined || ref.length !== size ? '' : Buffer.from(ref).toString('latin1'),
      padded,
    });
  }
  return banks;
}

/**
 * Extends one entry into a bank (TPM 2.0 Part 1, 17.2: new = H(old || value)) with the value
 * the kernel extends (module comment); returns the value extended, latin1, for the column check.
 */
function extend(e: ImaEntry, b: Bank): string | undefined {
  const scratch = b.scratch;
  const size = b.size;
  let extended: string | undefined;
  if (e.violation) scratch.set(b.violationValue, size);
  else {
    // Under the padded rule only the first 20 bytes are written: the rest of the scratch stays zero.
    extended = digestLatin1(b.padded ? 'sha1' : b.name, e.hashInput);
    // A latin1 string holds one byte per char: copying it by hand beats Buffer.write's native call.
    for (let j = 0; j < extended.length; j++) scratch[size + j] = extended.charCodeAt(j);
  }
  const value = digestLatin1(b.name, scratch);
  for (let j = 0; j < size; j++) scratch[j] = value.charCodeAt(j);
  b.value = value;
  return extended;
}

/** The lists branded VerifiedImaEntries, so the brand can also be told at run time (imaReplayKind). */
const quoteVerified = new WeakSet<readonly ImaEntry[]>();

/** The one place VerifiedImaEntries are made: the brand is a claim only a replay against a quote may make. */
function brandVerified(entries: readonly ImaEntry[]): VerifiedImaEntries {
  const frozen = Object.freeze(entries.slice());
  quoteVerified.add(frozen);
  return frozen as unknown as VerifiedImaEntries;
}

/** The one place SelfReplayedImaEntries are made: a replay against a reference no quote proved. */
function brandSelfReplayed(entries: readonly ImaEntry[]): SelfReplayedImaEntries {
  return Object.freeze(entries.slice()) as unknown as SelfReplayedImaEntries;
}

/**
 * Which replay made a list: 'quoted' only for lists replayImaEntries returned; anything
 * else, whatever its static type claims, is 'self-replayed' (fail closed).
 */
export function imaReplayKind(entries: VerifiedImaEntries | SelfReplayedImaEntries): ImaReplayKind {
  return quoteVerified.has(entries) ? 'quoted' : 'self-replayed';
}

function discontinuity(e: ImaEntry, expectEntry: number, expectOffset: number): Finding {
  return finding(
    'IMA_LOG_DISCONTINUOUS',
    `entry ${e.index} at byte offset ${e.offset} does not follow on: entry ${expectEntry} at byte offset ${expectOffset} is next`,
    { entry: e.index, offset: e.offset, expectedEntry: expectEntry, expectedOffset: expectOffset },
  );
}

function replayCore(state: ImaReplayState, entries: readonly ImaEntry[], expected: PcrBanks, options: ImaReplayOptions): CoreReplayResult {
  const rule = options.bankRule ?? 'per-bank';
  const pcr = options.pcr ?? IMA_PCR;
  const fail = (...findings: Finding[]): ImaReplayFailure => ({ ok: false, findings, state });

  const banks = makeBanks(state, rule, expected, pcr);
  const missing = banks.filter((b) => b.expected === '');
  if (missing.length > 0) {
    return fail(
      ...missing.map((b) => finding('IMA_BANK_MISSING', `the reference has no ${b.name} PCR ${pcr} to replay against`, { bank: b.name, pcr })),
    );
  }
  const matches = (): boolean => {
    for (const b of banks) if (b.value !== b.expected) return false;
    return true;
  };

  let consumed = -1;
  if (matches()) consumed = 0;
  const nBanks = banks.length;
  let expectOffset = state.byteOffset;
  for (let i = 0; consumed < 0 && i < entries.length; i++) {
    const e = entries[i];
    if (e === undefined) break;
    // Entries must continue where the state stopped, without a gap (later ones are checked when replayed).
    const offset = e.offset;
    if (e.index !== state.entryCount + i || offset !== expectOffset) return fail(discontinuity(e, state.entryCount + i, expectOffset));
    expectOffset = offset + e.size;
    if (e.pcr !== pcr) {
      return fail(
        finding('IMA_PCR_UNEXPECTED', `entry ${e.index} (${e.path}) extends PCR ${e.pcr}; only PCR ${pcr} is replayed`, {
          entry: e.index,
          offset: e.offset,
          pcr: e.pcr,
          path: e.path,
        }),
      );
    }
    // The template hash column is checked against a bank of its own algorithm (the sizes tell them apart).
    const column = e.violation ? 0 : templateHashLength(e);
    let all = true;
    for (let k = 0; k < nBanks; k++) {
      const b = banks[k];
      if (b === undefined) continue;
      const extended = extend(e, b);
      if (column === b.size && !b.padded && extended !== undefined && extended !== asBuffer(e.templateHash).toString('latin1')) {
        return fail(
          finding('IMA_TEMPLATE_HASH_MISMATCH', `entry ${e.index} (${e.path}) shows a template hash its template data does not hash to`, {
            entry: e.index,
            offset: e.offset,
            path: e.path,
            bank: b.name,
          }),
        );
      }
      if (all && b.value !== b.expected) all = false;
    }
    if (all) consumed = i + 1;
  }
  // An empty round, or one whose first entry already does not follow on, is a gap too.
  if (consumed === 0 && entries.length > 0) {
    const first = entries[0];
    if (first !== undefined && (first.index !== state.entryCount || first.offset !== state.byteOffset)) return fail(discontinuity(first, state.entryCount, state.byteOffset));
  }

  if (consumed < 0) {
    const first = entries[0];
    const findings = banks.map((b) =>
        finding('IMA_REPLAY_MISMATCH', `no prefix of ${entries.length} entries from entry ${state.entryCount} replays to the reference ${b.name} PCR ${pcr}`, {
          bank: b.name,
          pcr,
          fromEntry: state.entryCount,
          entries: entries.length,
          firstPath: first?.path,
          reference: Buffer.from(b.expected, 'latin1').toString('hex'),
          replayed: Buffer.from(b.value, 'latin1').toString('hex'),
        }),
      );
    const pcr10 = new Map<number, Uint8Array>();
    for (const b of banks) pcr10.set(b.alg, new Uint8Array(Buffer.from(b.value, 'latin1')));
    const running: ImaReplayState = { entryCount: state.entryCount + entries.length, byteOffset: expectOffset, pcr10 };
    return { ok: false, reached: false, running, findings, state };
  }

  // Replay stopped at the first match, so the bank values are those after `consumed` entries.
  const pcr10 = new Map<number, Uint8Array>();
  for (const b of banks) pcr10.set(b.alg, new Uint8Array(Buffer.from(b.value, 'latin1')));
  let byteOffset = state.byteOffset;
  for (let i = 0; i < consumed; i++) byteOffset += entries[i]?.size ?? 0;
  const next: ImaReplayState = { entryCount: state.entryCount + consumed, byteOffset, pcr10 };
  return { ok: true, state: next, consumed, entries: entries.slice(0, consumed), pending: entries.slice(consumed) };
}

/**
 * Replays `entries` (the next ones after `state`, in order, without gaps) into PCR 10 of every
 * bank in `state` and compares with the quoted PCR 10. On success returns the new state,
 * how many entries the quote covers (the list may be ahead of the quote; the rest come back
 * as `pending`), and those entries as VerifiedImaEntries. Findings (state unchanged):
 * IMA_LOG_DISCONTINUOUS (entries do not start at state.entryCount/byteOffset or skip),
 * IMA_BANK_MISSING, IMA_PCR_UNEXPECTED, IMA_TEMPLATE_HASH_MISMATCH (the list's column is a
 * replayed bank's and disagrees), IMA_REPLAY_MISMATCH (no prefix reaches the quoted value:
 * an entry removed, reordered, duplicated or edited, a log behind the quote, or a foreign log).
 * Trust: `quoted` comes from verifyQuote; the entries are untrusted until this returns ok.
 */
export function replayImaEntries(state: ImaReplayState, entries: readonly ImaEntry[], quoted: QuotedPcrs, options: ImaReplayOptions = {}): ImaReplayResult {
  const r = replayCore(state, entries, quoted, options);
  if (!r.ok) return 'reached' in r ? { ok: false, findings: r.findings, state: r.state } : r;
  return { ok: true, state: r.state, consumed: r.consumed, verified: brandVerified(r.entries), pending: r.pending };
}

/**
 * replayImaEntries for one chunk of a backlog larger than a round carries (the quote is
 * ahead of what arrived): as replayImaEntries, except that when no prefix reaches the quoted
 * PCR 10 and nothing else is wrong, the result is a shortfall carrying `running`, PCR 10
 * after every given entry. The caller keeps `running` (unproven) and replays the next chunk
 * from it; once a later replay from there reaches a quote, every entry in the chain is
 * proven by that quote (the hash chain runs from the last proven state through all of them).
 * Trust: `quoted` comes from verifyQuote; `running` proves nothing on its own.
 */
export function replayImaBacklog(state: ImaReplayState, entries: readonly ImaEntry[], quoted: QuotedPcrs, options: ImaReplayOptions = {}): ImaBacklogReplayResult {
  const r = replayCore(state, entries, quoted, options);
  if (!r.ok) return r;
  return { ok: true, state: r.state, consumed: r.consumed, verified: brandVerified(r.entries), pending: r.pending };
}

/**
 * replayImaEntries against PCR values no quote proved: an operator's value for offline
 * forensics (`bulwarkctl ima check --pcr10`), or the value the log itself replays to. The
 * entries come back as SelfReplayedImaEntries, which only the offline evaluation accepts.
 * Never use it for a live node. Trust: the entries are consistent with `reference`, nothing more.
 */
export function replayImaEntriesOffline(state: ImaReplayState, entries: readonly ImaEntry[], reference: PcrBanks, options: ImaReplayOptions = {}): ImaOfflineReplayResult {
  const r = replayCore(state, entries, reference, options);
  if (!r.ok) return 'reached' in r ? { ok: false, findings: r.findings, state: r.state } : r;
  return { ok: true, state: r.state, consumed: r.consumed, replayed: brandSelfReplayed(r.entries), pending: r.pending };
}

/**
 * Extends every entry into the state's banks and returns the resulting state, without
 * comparing with anything: what PCR 10 would be if the list were true. Proves nothing.
 * Entries for another PCR are skipped, as the kernel would not extend PCR 10 with them.
 */
export function computeImaPcr10(state: ImaReplayState, entries: readonly ImaEntry[], options: ImaReplayOptions = {}): ImaReplayState {
  const rule = options.bankRule ?? 'per-bank';
  const pcr = options.pcr ?? IMA_PCR;
  const banks = makeBanks(state, rule, undefined, pcr);
  let byteOffset = state.byteOffset;
  for (const e of entries) {
    byteOffset += e.size;
    if (e.pcr !== pcr) continue;
    for (const b of banks) extend(e, b);
  }
  const pcr10 = new Map<number, Uint8Array>();
  for (const b of banks) pcr10.set(b.alg, new Uint8Array(Buffer.from(b.value, 'latin1')));
  return { entryCount: state.entryCount + entries.length, byteOffset, pcr10 };
}

/** The stored replay state (banks by name, values as lower-case hex); digest lengths are checked after the schema. */
export const ImaReplayStateSchema = Type.Object(
  {
    entryCount: Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }),
    byteOffset: Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }),
    pcr10: Type.Record(Type.String({ pattern: `^(?:${HASH_ALG_NAMES.join('|')})$` }), Type.String({ pattern: '^[0-9a-f]+$' }), { additionalProperties: false, minProperties: 1 }),
  },
  { additionalProperties: false },
);

/** JSON form of a replay state, for durable storage (banks by name, values as hex). */
export type ImaReplayStateJson = Static<typeof ImaReplayStateSchema>;

const IMA_REPLAY_STATE = defineDocument(ImaReplayStateSchema, 'stored IMA replay state', 'IMA_STATE_INVALID');

export function encodeImaReplayState(state: ImaReplayState): ImaReplayStateJson {
  const pcr10: Record<string, string> = {};
  for (const [alg, value] of state.pcr10) pcr10[bankInfo(alg).name] = toHex(value);
  return { entryCount: state.entryCount, byteOffset: state.byteOffset, pcr10 };
}

/** Validates a stored replay state (read back from storage others can write): IMA_STATE_INVALID with the JSON path. */
export function decodeImaReplayState(value: unknown): ImaReplayState {
  const doc = IMA_REPLAY_STATE.parse(value);
  const banks = new Map<number, Uint8Array>();
  for (const [name, hex] of Object.entries(doc.pcr10)) {
    const info = HASH_ALGS_BY_NAME.get(name);
    if (info === undefined || hex.length !== 2 * info.size) {
      throw new BulwarkError('IMA_STATE_INVALID', `stored IMA replay state is invalid at /pcr10/${name}: not a ${name} value`, { path: `/pcr10/${name}` });
    }
    banks.set(info.alg, new Uint8Array(Buffer.from(hex, 'hex')));
  }
  return { entryCount: doc.entryCount, byteOffset: doc.byteOffset, pcr10: banks };
}

export type BootAggregateCheck =
  | { readonly status: 'match'; readonly bank: HashAlgName; readonly pcrs: readonly number[] }
  | { readonly status: 'mismatch'; readonly finding: Finding }
  | { readonly status: 'unverifiable'; readonly reason: string };

/**
 * Checks a boot_aggregate entry against quoted PCRs (ima_crypto.c ima_calc_boot_aggregate,
 * Linux 5.8+): the digest is taken with the algorithm of the bank it reads, over PCRs 0-7,
 * plus 8 and 9 for every bank but SHA-1 ("Registers 8-9 are only included in non-SHA1
 * boot_aggregate digests"); the entry's digest algorithm names that bank. Before 5.8 it was
 * always SHA-1 over the SHA-1 PCRs 0-7, which is the same rule for a "sha1" entry.
 * 'unverifiable' when the quote does not carry the PCRs needed (e.g. 8-9).
 * Trust: `quoted` from verifyQuote, `entry` from a verified replay.
 */
export function checkBootAggregate(entry: ImaEntry, quoted: QuotedPcrs): BootAggregateCheck {
  if (entry.path !== BOOT_AGGREGATE_NAME) return { status: 'unverifiable', reason: `entry ${entry.index} is ${entry.path}, not ${BOOT_AGGREGATE_NAME}` };
  const alg = HASH_ALGS_BY_NAME.get(entry.digestAlgorithm)?.alg;
  if (alg === undefined) return { status: 'unverifiable', reason: `no TPM bank for ${entry.digestAlgorithm}` };
  const bank = quoted.get(alg);
  const pcrs = alg === TPM_ALG.SHA1 ? [0, 1, 2, 3, 4, 5, 6, 7] : [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
  const values: Uint8Array[] = [];
  for (const p of pcrs) {
    const v = bank?.get(p);
    if (v === undefined) return { status: 'unverifiable', reason: `the quote has no ${entry.digestAlgorithm} PCR ${p}` };
    values.push(v);
  }
  const info = bankInfo(alg);
  const h = createHash(info.name);
  for (const v of values) h.update(v);
  const computed = h.digest();
  if (sameBytes(computed, entry.digest)) return { status: 'match', bank: info.name, pcrs };
  return {
    status: 'mismatch',
    finding: finding('IMA_BOOT_AGGREGATE_MISMATCH', `boot_aggregate does not match the quoted ${info.name} PCRs ${pcrs.join(',')}`, {
      entry: entry.index,
      bank: info.name,
      logged: toHex(entry.digest),
      computed: toHex(computed),
    }),
  };
}
