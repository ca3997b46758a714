/**
 * Runtime integrity in the evidence flow. Per node the controller keeps, durably in KV
 * `bulwark_ima`, where IMA replay stands (entry count, byte offset, PCR 10 per bank) for
 * the current boot (resetCount). Each round carries only the entries after that point;
 * they must replay from the stored PCR 10 to the quoted one (entries past the quote wait
 * for the next round), and every verified entry is judged against the node's runtime
 * policy. A controller restart resumes from the stored state and asks for nothing it
 * has verified. The last `selinux-state` and `selinux-policy-hash` buffers (ima-buf
 * critical data the kernel measured) of the boot are kept with it, for the baseline
 * appraiser: what the kernel measured wins over what a host reports. Findings on verified entries (an unknown binary ran) and a log that no
 * longer replays are sticky: the next clean round does not undo what already ran.
 */
import { Type, type Static } from '@sinclair/typebox';
import { StorageType, type JetStreamClient, type KV } from 'nats';
import { isBulwarkError, toBulwarkError } from '../../lib/index.js';
import {
  checkBootAggregate,
  decodeImaReplayState,
  encodeImaReplayState,
  evaluateImaEntries,
  initialImaReplayState,
  parseImaAscii,
  parseImaBinary,
  parseRuntimePolicy,
  replayImaEntries,
  type ImaEntry,
  type ImaReplayState,
  type RuntimePolicy,
} from '../../lib/ima/index.js';
import { IMA_FORMATS, corruptPath, imaFormatOf, type ImaFormat, type PolicyKindName } from '../../lib/attestation/index.js';
import { defineDocument, literalUnion } from '../../lib/schema/index.js';
import { TPM_ALG } from '../../lib/tpm/index.js';
import { finding, fromHex, toHex, type Finding } from '../../lib/index.js';
import { resolvePolicy, type AppraisalContext, type AppraisalResult, type Appraiser } from './appraiser.js';
import { silentLogger, type Logger } from '../../daemon/index.js';
import { STREAM_LIMITS, enforceStreamLimits, kvLimits } from '../state/index.js';
import type { PolicyKind, PolicyStore } from '../policies/index.js';

export const IMA_BUCKET = 'bulwark_ima' as const;

/** The runtime policy kind (Bulwark's format; `bulwarkctl policy import-keylime` converts Keylime's). */
export const RUNTIME_POLICY: PolicyKind<RuntimePolicy, Extract<PolicyKindName, 'runtime'>> = {
  kind: 'runtime',
  parse: (document: unknown) => parseRuntimePolicy(document),
  parsed: new Map(),
};

/** Where IMA replay stands for a node (KV `bulwark_ima`); written without `version` before it existed. */
export const StoredImaSchema = Type.Object(
  {
    version: Type.Optional(Type.Literal(1)),
    /** TPM resetCount of the boot this state belongs to. */
    resetCount: Type.Integer({ minimum: 0, maximum: 0xffffffff }),
    format: literalUnion(IMA_FORMATS),
    /** ImaReplayStateJson: the bank names and PCR 10 lengths are checked by decodeImaReplayState. */
    state: Type.Object(
      {
        entryCount: Type.Integer({ minimum: 0 }),
        byteOffset: Type.Integer({ minimum: 0 }),
        pcr10: Type.Record(Type.String({ maxLength: 16 }), Type.String({ pattern: '^[0-9a-f]{1,256}$' }), { maxProperties: 8 }),
      },
      { additionalProperties: false },
    ),
    /** The last selinux-state and selinux-policy-hash buffers verified in this boot (hex); absent before they were kept. */
    kernelSelinux: Type.Optional(
      Type.Object(
        {
          state: Type.Union([Type.String({ pattern: '^([0-9a-f]{2}){0,4096}$' }), Type.Null()]),
          policyHash: Type.Union([Type.String({ pattern: '^([0-9a-f]{2}){0,4096}$' }), Type.Null()]),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);

/** The kernel's own measurements of SELinux (IMA critical data, ima-buf entries) in one boot: the last buffer of each, or null. */
export interface KernelSelinuxBuffers {
  readonly state: Uint8Array | null;
  readonly policyHash: Uint8Array | null;
}

const NO_KERNEL_SELINUX: KernelSelinuxBuffers = { state: null, policyHash: null };

/** Critical-data buffers longer than this are not kept (the kernel's selinux-state is about 150 bytes, the policy hash 32). */
const MAX_KERNEL_SELINUX_BUFFER = 4096;

interface StoredIma {
  readonly resetCount: number;
  readonly format: ImaFormat;
  readonly state: ImaReplayState;
  readonly kernelSelinux: KernelSelinuxBuffers;
}

const STORED_IMA = defineDocument(StoredImaSchema, 'stored IMA replay state', 'STORE_CORRUPT');

const enc = new TextEncoder();

/** Decodes a node's stored IMA replay state: STORE_CORRUPT (or IMA_STATE_INVALID for its banks) when it does not. */
export function decodeStoredIma(bytes: Uint8Array, nodeId: string): StoredIma {
  const doc = STORED_IMA.parseJson(bytes, `${IMA_BUCKET}/${nodeId}`);
  const k = doc.kernelSelinux;
  const kernelSelinux = k === undefined ? NO_KERNEL_SELINUX : { state: k.state === null ? null : fromHex(k.state), policyHash: k.policyHash === null ? null : fromHex(k.policyHash) };
  return { resetCount: doc.resetCount, format: doc.format, state: decodeImaReplayState(doc.state), kernelSelinux };
}

export class ImaAppraiser implements Appraiser {
  readonly name = 'ima';
  private readonly kv: KV;
  private readonly policies: PolicyStore;
  private readonly log: Logger;
  /** The kernel's SELinux measurements verified by this replica, per node and boot (the KV state has them too). */
  private readonly selinuxSeen = new Map<string, { readonly resetCount: number; readonly buffers: KernelSelinuxBuffers }>();

  private constructor(kv: KV, policies: PolicyStore, log: Logger) {
    this.log = log;
    this.kv = kv;
    this.policies = policies;
  }

  /**
   * The last selinux-state and selinux-policy-hash buffers the kernel measured in the boot
   * with `resetCount`, from entries that replayed to a quoted PCR 10 (this round's
   * included, once the IMA appraiser has run on it). Trust: proven by the TPM.
   */
  async kernelSelinux(nodeId: string, resetCount: number): Promise<KernelSelinuxBuffers> {
    const seen = this.selinuxSeen.get(nodeId);
    if (seen !== undefined && seen.resetCount === resetCount) return seen.buffers;
    const entry = await this.kv.get(nodeId);
    if (entry === null || entry.operation !== 'PUT' || entry.value.length === 0) return NO_KERNEL_SELINUX;
    try {
      const stored = decodeStoredIma(entry.value, nodeId);
      return stored.resetCount === resetCount ? stored.kernelSelinux : NO_KERNEL_SELINUX;
    } catch (err) {
      if (!isBulwarkError(err)) throw err;
      return NO_KERNEL_SELINUX; // the IMA appraiser reports the corrupt state itself
    }
  }

  static async open(js: JetStreamClient, policies: PolicyStore, log: Logger = silentLogger()): Promise<ImaAppraiser> {
    policies.register(RUNTIME_POLICY);
    try {
      const kv = await js.views.kv(IMA_BUCKET, { history: 1, storage: StorageType.File, ...kvLimits(IMA_BUCKET) });
      await enforceStreamLimits(await js.jetstreamManager(), `KV_${IMA_BUCKET}`, STREAM_LIMITS[IMA_BUCKET]);
      return new ImaAppraiser(kv, policies, log);
    } catch (err) {
      throw toBulwarkError(err, 'NATS_FAILED', 'cannot open the IMA bucket');
    }
  }

  async appraise(ctx: AppraisalContext): Promise<AppraisalResult> {
    const { evidence: ev, record } = ctx;
    const resolved = await resolvePolicy(this.policies, RUNTIME_POLICY, record.nodeId, this.log);
    if (resolved.findings.length > 0) return { findings: resolved.findings };
    const policy = resolved.policy;
    if (ev.imaFormat === '') {
      return policy === null ? { findings: [] } : { findings: [finding('IMA_LOG_MISSING', `runtime policy ${policy.name} applies, but the host sent no IMA log`)] };
    }
    const format = imaFormatOf(ev.imaFormat);
    if (format === null) {
      return { findings: [finding('WIRE_MALFORMED', `unknown IMA list format ${JSON.stringify(ev.imaFormat.slice(0, 16))}`)] };
    }
    const entry = await this.kv.get(record.nodeId);
    let stored: StoredIma | null = null;
    const findings: Finding[] = [];
    if (entry !== null && entry.operation === 'PUT' && entry.value.length > 0) {
      try {
        stored = decodeStoredIma(entry.value, record.nodeId);
      } catch (err) {
        if (!isBulwarkError(err)) throw err;
        // The stored position cannot be trusted: the replay starts again from entry 0 (the
        // agent resends the list, which must replay to the quoted PCR 10 from the start, so
        // nothing unverified is accepted), and this round is untrusted with STATE_CORRUPT.
        const path = corruptPath(err);
        this.log.warn({ node: record.nodeId, path, error: err.message }, 'stored IMA replay state is corrupt: replaying from entry 0');
        findings.push(finding('STATE_CORRUPT', `the stored IMA replay state does not decode (${err.message}); replaying the list from entry 0`, { path }));
      }
    }
    // A new boot (or a stored state of another boot or format) starts from entry 0.
    const sameBoot = stored !== null && stored.resetCount === ctx.clockInfo.resetCount && stored.format === format && !ctx.newBoot;
    const state = sameBoot && stored !== null ? stored.state : initialImaReplayState(quotedBanks(ctx));
    const position = { imaEntry: state.entryCount, imaOffset: state.byteOffset };

    if (ev.imaFromEntry > state.entryCount || (ev.imaFromEntry === state.entryCount && ev.imaFromOffset !== state.byteOffset)) {
      // The agent skipped entries we have not verified: PCR 10 cannot be proven this round.
      return {
        findings: [...findings, finding('IMA_LOG_DISCONTINUOUS', `the agent sent IMA entries from ${ev.imaFromEntry}, the controller verified up to ${state.entryCount}`)],
        reply: position,
      };
    }
    let entries: readonly ImaEntry[];
    try {
      const options = { fromEntry: ev.imaFromEntry, fromOffset: ev.imaFromOffset, allowIncompleteTail: true };
      entries = (format === 'binary' ? parseImaBinary(ev.imaEntries, options) : parseImaAscii(ev.imaEntries, options)).entries;
    } catch (err) {
      if (!isBulwarkError(err)) throw err;
      return { findings: [...findings, finding(err.code, err.message, err.details)], reply: position };
    }
    // Entries the controller verified before (the agent resent from an older position).
    const fresh = entries.filter((e) => e.index >= state.entryCount);
    const first = fresh[0];
    if (first !== undefined && (first.index !== state.entryCount || first.offset !== state.byteOffset)) {
      return {
        findings: [...findings, finding('IMA_LOG_DISCONTINUOUS', `IMA entry ${first.index} at offset ${first.offset} does not continue the verified list (${state.entryCount} at ${state.byteOffset})`)],
        reply: position,
      };
    }

    const replay = replayImaEntries(state, fresh, ctx.quoted);
    if (!replay.ok) {
      // With more entries still to come the quote may simply be ahead of what arrived.
      if (ev.imaMore) {
        return { findings: [...findings, finding('IMA_LOG_INCOMPLETE', 'the IMA backlog is larger than one round carries; the quoted PCR 10 is not reached yet')], reply: position };
      }
      return { findings: [...findings, ...replay.findings], sticky: true, reply: position };
    }
    // boot_aggregate is proven against the quoted PCRs 0-9, not looked up in the policy.
    let aggregateProven = false;
    for (const e of replay.verified) {
      if (e.index !== 0 || e.path !== 'boot_aggregate') continue;
      const check = checkBootAggregate(e, ctx.quoted);
      if (check.status === 'mismatch') findings.push(check.finding);
      aggregateProven = check.status === 'match';
    }
    if (policy !== null) {
      const judged = evaluateImaEntries(policy.policy, replay.verified);
      findings.push(...judged.filter((f) => !(aggregateProven && f.details?.['entry'] === 0 && f.details['path'] === 'boot_aggregate')));
    }
    const kernelSelinux = kernelSelinuxOf(replay.verified, sameBoot ? (stored?.kernelSelinux ?? NO_KERNEL_SELINUX) : NO_KERNEL_SELINUX);
    if (this.selinuxSeen.size > 100_000) this.selinuxSeen.clear();
    this.selinuxSeen.set(record.nodeId, { resetCount: ctx.clockInfo.resetCount, buffers: kernelSelinux });
    const next: StoredIma = { resetCount: ctx.clockInfo.resetCount, format, state: replay.state, kernelSelinux };
    const advanced = replay.state.entryCount !== state.entryCount || stored === null || stored.resetCount !== next.resetCount;
    // STATE_CORRUPT is not sticky: the state is rebuilt from a full replay, and once written the next round reads it.
    const sticky = findings.some((f) => f.code !== 'STATE_CORRUPT');
    return {
      findings,
      sticky,
      reply: { imaEntry: replay.state.entryCount, imaOffset: replay.state.byteOffset },
      ...(advanced
        ? {
            commit: async () => {
              const k = next.kernelSelinux;
              const value: Static<typeof StoredImaSchema> = {
                version: 1,
                ...next,
                state: encodeImaReplayState(next.state),
                kernelSelinux: { state: k.state === null ? null : toHex(k.state), policyHash: k.policyHash === null ? null : toHex(k.policyHash) },
              };
              await this.kv.put(record.nodeId, enc.encode(JSON.stringify(value)));
            },
          }
        : {}),
    };
  }

  async reset(nodeId: string): Promise<void> {
    await this.kv.delete(nodeId);
  }
}

/** `before`, with the last selinux-state / selinux-policy-hash ima-buf buffers among `verified` in place of its own. */
function kernelSelinuxOf(verified: readonly ImaEntry[], before: KernelSelinuxBuffers): KernelSelinuxBuffers {
  let { state, policyHash } = before;
  for (const e of verified) {
    if (e.template !== 'ima-buf' || e.buffer === null || e.buffer.length > MAX_KERNEL_SELINUX_BUFFER) continue;
    if (e.path === 'selinux-state') state = e.buffer;
    else if (e.path === 'selinux-policy-hash') policyHash = e.buffer;
  }
  return { state, policyHash };
}

/** The banks whose PCR 10 the quote proves (SHA-256 by default). */
function quotedBanks(ctx: AppraisalContext): number[] {
  const banks = [...ctx.quoted.entries()].filter(([, pcrs]) => pcrs.has(10)).map(([alg]) => alg);
  return banks.length > 0 ? banks : [TPM_ALG.SHA256];
}
