/**
 * Judging a replayed boot against a measured-boot policy, and building a reference policy
 * from a known-good host's log. Evaluation accepts only a VerifiedEventLog (a replay that
 * matched a verified quote); the forensic variant for logs without a quote has its own
 * name and result type, so the two cannot be mixed up.
 *
 * Each check needs PCRs proven in the policy's bank: Secure Boot PCR 7, firmware PCR 0,
 * shim/grub/kernel PCR 4, kernel/initrd/grubFiles PCR 9, the command line PCR 8. A check
 * whose PCR the quote does not prove is not skipped: it is EVENTLOG_PCR_NOT_QUOTED.
 */
import { BulwarkError } from '../errors.js';
import { HASH_ALGS, TPM_ALG, type QuotedPcrs } from '../tpm/index.js';
import { finding, type Finding, type Verdict } from '../verdict.js';
import { readBootChain, type BootComponent } from './boot-chain.js';
import { eventTypeName } from './constants.js';
import type { EventLog } from './parse.js';
import { formatMeasuredBootPolicy, parseMeasuredBootPolicies, type BootStage, type MeasuredBootPolicy, type SecureBootRequirement } from './policy.js';
import type { FirmwareQuirkId } from './quirks.js';
import { bankName, checkEventDataDigest, isPcrProven, replayEventLog, type ReplayOptions, type ReplayedEventLog, type SelfReplayedEventLog, type VerifiedEventLog } from './replay.js';
import { readSecureBootState, type SignatureEntry } from './secure-boot.js';

/** Longest kernel command line matched against a policy pattern (x86 COMMAND_LINE_SIZE is 2048, newer kernels 4096). */
export const MAX_KERNEL_CMDLINE = 4096;

/** The judgement of a verified boot against a policy. */
export interface MeasuredBootResult {
  readonly policy: string;
  readonly verdict: Verdict;
  /** Firmware quirks the replay relied on. */
  readonly quirks: readonly FirmwareQuirkId[];
  readonly warnings: readonly string[];
}

/** The forensic judgement of a log that was not replayed against a quote. Not a verdict. */
export interface UnquotedMeasuredBootReport {
  readonly quoted: false;
  readonly policy: string;
  /** The log satisfies the policy — as far as a log proven by nothing can. */
  readonly passed: boolean;
  readonly findings: readonly Finding[];
  readonly warnings: readonly string[];
}

function short(text: string, max = 300): string {
  return text.length <= max ? text : `${text.slice(0, max)}…`;
}

/** What the SHA-1-only rule reads of a log: a parsed EventLog and a replayed one both have it. */
type LogBanks = Pick<EventLog, 'format' | 'algorithms'>;

/** Whether the log carries SHA-1 digests only (a SHA-1 format log, or a crypto-agile one listing SHA-1 alone). */
function isSha1Only(log: LogBanks): boolean {
  return log.algorithms.every((a) => a.algorithmId === TPM_ALG.SHA1);
}

/**
 * EVENTLOG_SHA1_ONLY unless the policy accepts SHA-1 alone: applied before every other
 * check, accept-all policies included (accepting every boot is not accepting SHA-1 evidence).
 */
function sha1OnlyFindings(policy: MeasuredBootPolicy, log: LogBanks): Finding[] {
  if (policy.allowSha1OnlyLog || !isSha1Only(log)) return [];
  const what = log.format === 'sha1' ? 'a SHA-1 format (TCG 1.2) event log' : 'an event log whose only bank is SHA-1';
  return [
    finding('EVENTLOG_SHA1_ONLY', `${what} is not evidence under measured-boot policy "${policy.name}" (set "allowSha1OnlyLog": true to accept it)`, {
      format: log.format,
      policy: policy.name,
    }),
  ];
}

function judge(policy: MeasuredBootPolicy, log: ReplayedEventLog): Finding[] {
  const sha1 = sha1OnlyFindings(policy, log);
  if (policy.acceptAll) return sha1;
  return [...sha1, ...judgeChecks(policy, log)];
}

function judgeChecks(policy: MeasuredBootPolicy, log: ReplayedEventLog): Finding[] {
  const bank = policy.bank;
  const bankText = bankName(bank);
  const findings: Finding[] = [];
  const judged = new Set<number>();
  const need = (pcr: number, check: string): boolean => {
    if (isPcrProven(log, bank, pcr)) {
      judged.add(pcr);
      return true;
    }
    findings.push(
      finding('EVENTLOG_PCR_NOT_QUOTED', `${check} needs PCR ${pcr} in the ${bankText} bank, which the ${log.quoted ? 'quote' : 'log'} does not cover`, {
        pcr,
        bank: bankText,
        check,
      }),
    );
    return false;
  };
  const stages = policy.stages;
  const sb = policy.secureBoot;
  const chain = readBootChain(log, bank);
  const proven = (c: BootComponent): boolean => isPcrProven(log, bank, c.pcr);
  const notAllowed = (c: BootComponent, label: string): Finding =>
    finding(
      'BOOT_COMPONENT_NOT_ALLOWED',
      `${label} (event ${c.event.sequence}, PCR ${c.pcr}) has ${bankText} digest ${c.digest}, which stages.${c.stage} does not allow${c.hint === undefined ? '' : ` [${short(c.hint, 120)}]`}`,
      { stage: c.stage, pcr: c.pcr, sequence: c.event.sequence, digest: c.digest, bank: bankText, hint: c.hint === undefined ? undefined : short(c.hint, 200) },
    );
  const secure: Finding[] = [];
  const stageFindings: Finding[] = [];
  const cmdline: Finding[] = [];

  if (sb !== undefined && need(7, 'secureBoot')) secure.push(...judgeSecureBoot(sb, log, bank));

  if (stages.firmware !== undefined && need(0, 'stages.firmware')) {
    for (const c of chain.firmware) if (proven(c) && !stages.firmware.has(c.digest)) stageFindings.push(notAllowed(c, 'firmware measurement'));
  }
  const pcr4Stages = (['shim', 'grub', 'kernel'] as const).filter((s) => stages[s] !== undefined);
  if (pcr4Stages.length > 0 && need(4, `stages.${pcr4Stages.join('/')}`)) {
    if (!chain.pcr4Separator) {
      stageFindings.push(
        finding('BOOT_COMPONENT_MISSING', 'PCR 4 holds no separator, so boot applications cannot be told from the firmware\'s own', { stage: 'separator', pcr: 4 }),
      );
    }
    for (const c of chain.applications) {
      const allowed = stages[c.stage];
      if (allowed !== undefined && !allowed.has(c.digest)) stageFindings.push(notAllowed(c, `${c.stage} boot application`));
    }
    for (const e of chain.unexpectedPcr4) {
      stageFindings.push(
        finding('BOOT_COMPONENT_NOT_ALLOWED', `event ${e.sequence} in PCR 4 is a ${eventTypeName(e.eventType)}, which no boot stage allows`, {
          stage: 'unknown',
          pcr: 4,
          sequence: e.sequence,
          eventType: e.eventType,
        }),
      );
    }
    for (const s of ['shim', 'grub'] as const) {
      if (stages[s] !== undefined && !chain.applications.some((c) => c.stage === s)) {
        stageFindings.push(finding('BOOT_COMPONENT_MISSING', `no ${s} boot application was measured into PCR 4`, { stage: s, pcr: 4 }));
      }
    }
  }
  const pcr9Stages = (['kernel', 'initrd', 'grubFiles'] as const).filter((s) => stages[s] !== undefined);
  let pcr9Judged = false;
  if (pcr9Stages.length > 0 && need(9, `stages.${pcr9Stages.join('/')}`)) {
    pcr9Judged = true;
    const union = new Set<string>();
    for (const s of pcr9Stages) for (const d of stages[s] ?? []) union.add(d);
    for (const c of chain.pcr9) {
      if (!union.has(c.digest)) {
        stageFindings.push(notAllowed(c, c.stage === 'grubFiles' ? 'file measured by the boot loader' : c.stage));
      }
    }
    const initrd = stages.initrd;
    if (initrd !== undefined && !chain.pcr9.some((c) => initrd.has(c.digest) || c.stage === 'initrd')) {
      stageFindings.push(finding('BOOT_COMPONENT_MISSING', 'no initrd was measured into PCR 9', { stage: 'initrd', pcr: 9 }));
    }
  }
  const kernel = stages.kernel;
  if (kernel !== undefined) {
    const inPcr4 = isPcrProven(log, bank, 4) && chain.applications.some((c) => c.stage === 'kernel');
    const inPcr9 = pcr9Judged && chain.pcr9.some((c) => kernel.has(c.digest) || c.stage === 'kernel');
    if (!inPcr4 && !inPcr9 && (isPcrProven(log, bank, 4) || pcr9Judged)) {
      stageFindings.push(finding('BOOT_COMPONENT_MISSING', 'no kernel was measured (PCR 4 boot application or PCR 9 file)', { stage: 'kernel' }));
    }
  }

  const k = policy.kernelCmdline;
  if (k !== undefined && need(8, 'kernelCmdline')) {
    const lines = chain.kernelCmdlines.filter((l) => l.bound);
    if (lines.length === 0) cmdline.push(finding('KERNEL_CMDLINE_NOT_ALLOWED', 'no kernel command line was measured into PCR 8', { pcr: 8 }));
    for (const l of lines) {
      const ok = l.text.length <= MAX_KERNEL_CMDLINE && k.regex.test(l.text);
      if (!ok) {
        cmdline.push(
          finding('KERNEL_CMDLINE_NOT_ALLOWED', `kernel command line (event ${l.event.sequence}) "${short(l.text)}" does not match the policy pattern`, {
            pcr: 8,
            sequence: l.event.sequence,
            cmdline: short(l.text, 1000),
          }),
        );
      }
    }
  }

  // Every event of a PCR judged here must be truthful about its data where its type says the digest covers it.
  const dataFindings: Finding[] = [];
  const banksFor = (pcr: number): number[] => [...log.provenPcrs].filter(([, pcrs]) => pcrs.includes(pcr)).map(([alg]) => alg);
  for (const e of log.events) {
    if (!judged.has(e.pcrIndex) || e.pcrIndex === 7) continue; // PCR 7 is checked by readSecureBootState
    const check = checkEventDataDigest(e, banksFor(e.pcrIndex));
    if (check.status === 'mismatch') {
      dataFindings.push(
        finding(
          'EVENTLOG_EVENT_DATA_MISMATCH',
          `event ${e.sequence} (PCR ${e.pcrIndex}, ${eventTypeName(e.eventType)}): ${check.reason}, so its type or data is a lie`,
          { sequence: e.sequence, pcr: e.pcrIndex, eventType: e.eventType },
        ),
      );
    }
  }
  return [...findings, ...dataFindings, ...secure, ...stageFindings, ...cmdline];
}

function entryText(e: SignatureEntry): string {
  return `${e.kind} ${e.fingerprint}${e.subject === undefined ? '' : ` (${e.subject})`}`;
}

function judgeSecureBoot(sb: SecureBootRequirement, log: ReplayedEventLog, bank: number): Finding[] {
  const state = readSecureBootState(log, bank, { subjects: false });
  const out: Finding[] = [...state.problems];
  if (sb.enabled === true && state.enabled !== true) {
    out.push(
      finding('SECURE_BOOT_DISABLED', state.enabled === false ? 'Secure Boot was off (SecureBoot = 0)' : 'the SecureBoot variable was not measured into PCR 7', {
        pcr: 7,
        measured: state.enabled !== null,
      }),
    );
  }
  if (sb.enabled === false && state.enabled === true) {
    out.push(finding('SECURE_BOOT_STATE_INVALID', 'Secure Boot was on but the policy requires it off', { pcr: 7 }));
  }
  for (const key of ['pk', 'kek', 'db'] as const) {
    const allowed = sb[key];
    if (allowed === undefined) continue;
    const list = state[key];
    if (list === null) {
      out.push(finding('SECURE_BOOT_STATE_INVALID', `${key.toUpperCase()} was not measured into PCR 7`, { pcr: 7, variable: key.toUpperCase() }));
      continue;
    }
    for (const e of list) {
      if (!allowed.has(e.fingerprint)) {
        out.push(
          finding('SECURE_BOOT_KEY_NOT_ALLOWED', `${key === 'db' ? 'db' : key.toUpperCase()} holds ${entryText(e)}, which secureBoot.${key} does not allow`, {
            variable: key,
            kind: e.kind,
            fingerprint: e.fingerprint,
            owner: e.owner,
          }),
        );
      }
    }
  }
  if (sb.dbxRequired !== undefined) {
    const have = new Set((state.dbx ?? []).map((e) => e.fingerprint));
    const missing = sb.dbxRequired.filter((d) => !have.has(d));
    if (missing.length > 0) {
      out.push(
        finding('DBX_ENTRY_MISSING', `dbx ${state.dbx === null ? 'was not measured and so ' : ''}lacks ${missing.length} required revocation(s), first ${missing[0] ?? ''}`, {
          missing: missing.length,
          entries: missing.slice(0, 8).join(','),
        }),
      );
    }
  }
  if (sb.authorities !== undefined) {
    for (const a of state.authorities) {
      if (!sb.authorities.has(a.entry.fingerprint)) {
        out.push(
          finding('SECURE_BOOT_AUTHORITY_NOT_ALLOWED', `event ${a.sequence}: authority ${a.variable} ${entryText(a.entry)} is not in secureBoot.authorities`, {
            sequence: a.sequence,
            variable: a.variable,
            fingerprint: a.entry.fingerprint,
          }),
        );
      }
    }
  }
  return out;
}

/**
 * Judges a verified boot against a policy: every check the policy sets, each failure its
 * own finding (BOOT_COMPONENT_NOT_ALLOWED, SECURE_BOOT_DISABLED, KERNEL_CMDLINE_NOT_ALLOWED,
 * DBX_ENTRY_MISSING, ...). Trust: `log` is a VerifiedEventLog, `policy` trusted.
 */
export function evaluateMeasuredBootPolicy(policy: MeasuredBootPolicy, log: VerifiedEventLog): MeasuredBootResult {
  const findings = judge(policy, log);
  const verdict: Verdict = findings.length === 0 ? { verdict: 'trusted', findings: [] } : { verdict: 'untrusted', findings };
  return { policy: policy.name, verdict, quirks: log.quirks, warnings: policy.warnings };
}

/**
 * The same checks on a log replayed against itself (bulwarkctl forensics without quote
 * files). The report says `quoted: false`: nothing proves the log is what the TPM measured.
 */
export function evaluateMeasuredBootPolicyUnquoted(policy: MeasuredBootPolicy, log: SelfReplayedEventLog): UnquotedMeasuredBootReport {
  const findings = judge(policy, log);
  return {
    quoted: false,
    policy: policy.name,
    passed: findings.length === 0,
    findings,
    warnings: [...policy.warnings, 'the event log was not replayed against a quote: it proves nothing about what the TPM measured'],
  };
}

/**
 * The judgement of a failed replay: untrusted with the replay's findings, no policy check
 * made — except that a SHA-1-only `log` the policy does not accept says so first
 * (EVENTLOG_SHA1_ONLY): with the default PCR selection (sha256 only) such a log cannot
 * replay at all (EVENTLOG_BANK_MISSING), and the policy's refusal is the reason that matters.
 */
export function replayFailure(policy: MeasuredBootPolicy, findings: readonly Finding[], log?: LogBanks): MeasuredBootResult {
  const all = log === undefined ? findings : [...sha1OnlyFindings(policy, log), ...findings];
  return { policy: policy.name, verdict: { verdict: 'untrusted', findings: all }, quirks: [], warnings: policy.warnings };
}

/**
 * replayEventLog, then evaluateMeasuredBootPolicy: the controller's one call per round
 * (EventLogCache.evaluate does the same with memoization). Trust: `log` untrusted,
 * `quoted` from verifyQuote, `policy` trusted.
 */
export function evaluateEventLog(log: EventLog, quoted: QuotedPcrs, policy: MeasuredBootPolicy, options?: ReplayOptions): MeasuredBootResult {
  const replay = replayEventLog(log, quoted, options);
  return replay.ok ? evaluateMeasuredBootPolicy(policy, replay.log) : replayFailure(policy, replay.findings, log);
}

export interface ReferencePolicyOptions {
  readonly name: string;
  readonly description?: string;
  /** Bank whose digests the policy lists; default sha256. */
  readonly bank?: number;
}

function regexEscape(text: string): string {
  return text.replace(/[\\^$.*+?()[\]{}|]/g, '\\$&');
}

/**
 * A reference policy that accepts exactly the boot in `log` (a known-good host): its
 * Secure Boot state and keys, every boot stage digest, its kernel command line(s). Passing
 * an unquoted log is the operator's statement that the host is good. The result is built
 * through the JSON form and validated like any policy; `warnings` says what was left out.
 */
export function createReferencePolicy(log: ReplayedEventLog, options: ReferencePolicyOptions): { policy: MeasuredBootPolicy; warnings: string[] } {
  const bank = options.bank ?? 0x000b;
  if (!HASH_ALGS.has(bank) || !log.provenPcrs.has(bank)) {
    throw new BulwarkError('USAGE', `the event log has no replayable ${bankName(bank)} bank to build a policy from`, { bank: bankName(bank) });
  }
  const warnings: string[] = [];
  const fps = (list: readonly SignatureEntry[] | null): Set<string> | undefined => (list === null ? undefined : new Set(list.map((e) => e.fingerprint)));

  let secureBoot: SecureBootRequirement | undefined;
  const state = readSecureBootState(log, bank);
  if (!state.proven) warnings.push('PCR 7 is not in the log: no Secure Boot requirements');
  else if (state.problems.length > 0) warnings.push(`the Secure Boot measurements are inconsistent (${state.problems.map((p) => p.message).join('; ')}): no Secure Boot requirements`);
  else if (state.enabled === null) warnings.push('the SecureBoot variable was not measured: no Secure Boot requirements');
  else {
    const dbx = state.dbx === null ? undefined : state.dbx.map((e) => e.fingerprint);
    secureBoot = {
      enabled: state.enabled,
      pk: fps(state.pk),
      kek: fps(state.kek),
      db: fps(state.db),
      dbxRequired: dbx === undefined || dbx.length === 0 ? undefined : dbx,
      authorities: state.authorities.length === 0 ? undefined : new Set(state.authorities.map((a) => a.entry.fingerprint)),
    };
  }

  const chain = readBootChain(log, bank);
  const stages: Partial<Record<BootStage, Set<string>>> = {};
  const add = (stage: BootStage, digest: string): void => {
    if (digest === '') return;
    const s = stages[stage] ?? new Set<string>();
    s.add(digest);
    stages[stage] = s;
  };
  for (const c of chain.firmware) add('firmware', c.digest);
  for (const c of chain.applications) add(c.stage, c.digest);
  for (const c of chain.pcr9) add(c.stage, c.digest);
  if (chain.unexpectedPcr4.length > 0) warnings.push(`PCR 4 holds ${chain.unexpectedPcr4.length} event(s) of no boot stage; the policy will refuse them`);

  const lines = [...new Set(chain.kernelCmdlines.filter((l) => l.bound).map((l) => l.text))];
  const kernelCmdline = lines.length === 0 ? undefined : lines.map(regexEscape).join('|');
  if (kernelCmdline === undefined) warnings.push('no kernel command line was measured into PCR 8: no command line requirement');
  if (!log.quoted) warnings.push('built from an event log that was not checked against a quote');

  const draft: MeasuredBootPolicy = {
    name: options.name,
    description: options.description ?? `reference policy from a known-good host's event log (${log.events.length} events, ${bankName(bank)})`,
    bank,
    acceptAll: false,
    allowSha1OnlyLog: bank === TPM_ALG.SHA1 && log.algorithms.every((a) => a.algorithmId === TPM_ALG.SHA1),
    secureBoot,
    stages,
    kernelCmdline: kernelCmdline === undefined ? undefined : { pattern: kernelCmdline, regex: /(?:)/u },
    warnings: [],
  };
  const [policy] = parseMeasuredBootPolicies(formatMeasuredBootPolicy(draft));
  if (policy === undefined) throw new BulwarkError('INTERNAL', 'a reference policy did not read back');
  return { policy, warnings };
}
