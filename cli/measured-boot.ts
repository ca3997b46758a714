/**
 * bulwarkctl's measured-boot work, all offline on files: `eventlog show`, `eventlog replay`, `eventlog export`,
 * `policy measured-boot create --from-eventlog`, `policy check`. Loaded on use by
 * cli/commands/eventlog.ts and cli/commands/policy.ts; a thrown BulwarkError becomes the
 * exit code (2 usage, 3 malformed input).
 */
import { BulwarkError, EXIT_CODES, toHex, type Finding } from '../lib/index.js';
import {
  createReferencePolicy,
  decodeEventData,
  efiGuidName,
  encodeCelJson,
  evaluateMeasuredBootPolicy,
  evaluateMeasuredBootPolicyUnquoted,
  eventTypeName,
  formatMeasuredBootPolicy,
  parseEventLog,
  parseMeasuredBootPolicies,
  replayEventLog,
  replayEventLogUnquoted,
  selectMeasuredBootPolicy,
  bankName,
  type EventData,
  type EventLog,
  type LoggedEvent,
} from '../lib/eventlog/index.js';
import { documentFormatOf } from '../lib/schema/index.js';
import { HASH_ALGS, type PcrBanks } from '../lib/tpm/index.js';
import type { Call } from './command.js';
import { printJson, readInput, readTextInput, writeOutput, type CtlIo } from './io.js';
import { verifyQuoteFiles } from './quote-verify.js';
import { formatTable } from './table.js';

/** The quote file options of `policy check`; all or none of them are given. */
const QUOTE_FLAGS = ['--ak', '--msg', '--sig', '--pcrs', '--nonce'] as const;

function usage(message: string): BulwarkError {
  return new BulwarkError('USAGE', message);
}

async function readLog(path: string): Promise<EventLog> {
  return parseEventLog(await readInput(path, 'event log'));
}

/** JSON for decoded data: bigint as decimal text, octets as hex. */
function jsonValue(_key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return value.toString();
  if (value instanceof Uint8Array) return toHex(value);
  return value;
}

function shorten(text: string, max: number): string {
  const clean = text.replace(/[\u0000-\u001f\u007f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
  return clean.length <= max ? clean : `${clean.slice(0, max - 1)}…`;
}

/** One line saying what an event's data is. */
function describe(d: EventData, e: LoggedEvent): string {
  switch (d.kind) {
    case 'startup-locality':
      return `StartupLocality ${d.startupLocality}`;
    case 'no-action':
      return `no action: ${d.signature}`;
    case 'separator':
      return `separator 0x${d.value.toString(16).padStart(8, '0')}${d.value === 0 ? '' : ' (error)'}`;
    case 'text':
      return JSON.stringify(d.text);
    case 'grub-string':
      return `${d.grub}: ${d.text}`;
    case 'uefi-variable': {
      let what = `${efiGuidName(d.variableName)}/${d.unicodeName}, ${d.variableData.length} octets`;
      if (d.unicodeName === 'SecureBoot' && d.variableData.length === 1) what += ` = ${d.variableData[0] ?? ''}`;
      if (d.bootOption !== undefined) what += `: ${JSON.stringify(d.bootOption.description)} ${d.bootOption.devicePath.text}`;
      if (d.bootOrder !== undefined) what += `: ${d.bootOrder.map((n) => n.toString(16).padStart(4, '0')).join(',')}`;
      return what;
    }
    case 'image-load':
      return `${d.devicePath.text || '(no device path)'}, ${d.imageLengthInMemory} octets`;
    case 'gpt':
      return `GPT disk ${d.header.diskGuid}: ${d.partitions.map((p) => p.partitionName || p.uniquePartitionGuid).join(', ')}`;
    case 'firmware-blob':
      return `${d.description === undefined ? '' : `${d.description} `}at 0x${d.blobBase.toString(16)}, ${d.blobLength} octets`;
    case 'handoff-tables':
      return `${d.tables.length} table(s): ${d.tables.map((x) => efiGuidName(x.vendorGuid)).join(', ')}`;
    case 'tagged':
      return `tag 0x${d.taggedEventId.toString(16)}${d.text === undefined ? `, ${d.taggedEventData.length} octets` : ` ${JSON.stringify(d.text)}`}`;
    case 'guid':
      return d.guid;
    case 'raw':
      return `${e.data.length} octets`;
    case 'undecodable':
      return `undecodable (${d.reason})`;
  }
}

function banksOf(log: EventLog): string {
  return log.algorithms.map((a) => bankName(a.algorithmId)).join(', ');
}

/** The first line of `eventlog show`: the format and what its header says. */
function formatLine(log: EventLog): string {
  const s = log.specId;
  if (s === null) return `TCG SHA-1 format event log (TCG 1.2: no Spec ID event, SHA-1 digests only), UEFI structures read with UINTN ${log.uintnSize * 8}-bit`;
  return `TCG crypto-agile event log: spec ${s.specVersionMajor}.${s.specVersionMinor} errata ${s.specErrata}, UINTN ${log.uintnSize * 8}-bit`;
}

/** `eventlog show FILE`: the decoded events, as the file says (not checked against a quote). */
export async function eventlogShow(call: Call): Promise<number> {
  const io = call.io;
  const log = await readLog(call.arg(0));
  const uintn = log.uintnSize;
  if (call.json) {
    const events = log.events.map((e) => ({
      sequence: e.sequence,
      offset: e.offset,
      pcr: e.pcrIndex,
      type: e.eventType,
      typeName: eventTypeName(e.eventType),
      digests: Object.fromEntries(e.digests.map((d) => [bankName(d.hashAlg), toHex(d.digest)])),
      size: e.data.length,
      data: toHex(e.data),
      decoded: decodeEventData(e.eventType, e.data, uintn),
    }));
    printJson(
      io,
      { quoted: false, format: log.format, specId: log.specId, banks: log.algorithms.map((a) => bankName(a.algorithmId)), startupLocality: log.startupLocality, events },
      jsonValue,
    );
    return EXIT_CODES.ok;
  }
  const shown = log.algorithms.find((a) => a.algorithmId === 0x000b)?.algorithmId ?? log.algorithms[0]?.algorithmId ?? 0x000b;
  io.out(
    `${formatLine(log)}, banks ${banksOf(log)}, StartupLocality ${log.startupLocality ?? 'not logged'}, ${log.events.length} events\n` +
      'not checked against a quote: this is what the file says, not what the TPM measured\n\n',
  );
  const rows = log.events.map((e) => {
    const d = e.digests.find((x) => x.hashAlg === shown)?.digest;
    return [String(e.sequence), String(e.pcrIndex), eventTypeName(e.eventType), d === undefined ? '-' : `${toHex(d).slice(0, 16)}…`, shorten(describe(decodeEventData(e.eventType, e.data, uintn), e), 160)];
  });
  io.out(formatTable(['#', 'PCR', 'TYPE', bankName(shown).toUpperCase(), 'EVENT'], rows));
  return EXIT_CODES.ok;
}

function pcrJson(values: PcrBanks): Record<string, Record<string, string>> {
  return Object.fromEntries([...values].map(([alg, bank]) => [bankName(alg), Object.fromEntries([...bank].map(([p, v]) => [String(p), toHex(v)]))]));
}

/** `eventlog replay FILE`: the PCR values the log replays to (not checked against a quote). */
export async function eventlogReplay(call: Call): Promise<number> {
  const io = call.io;
  const log = await readLog(call.arg(0));
  const self = replayEventLogUnquoted(log);
  const skipped = log.algorithms.filter((a) => !HASH_ALGS.has(a.algorithmId)).map((a) => `0x${a.algorithmId.toString(16)}`);
  if (call.json) {
    printJson(io, { quoted: false, format: log.format, startupLocality: log.startupLocality, pcrs: pcrJson(self.pcrValues), notReplayed: skipped });
    return EXIT_CODES.ok;
  }
  io.out(`PCR values the event log replays to (not checked against a quote)${log.format === 'sha1' ? '; a SHA-1 format log: SHA-1 bank only' : ''}\n`);
  if (log.startupLocality !== null) io.out(`PCR 0 starts at the StartupLocality ${log.startupLocality} (PFP 10.4.5.3)\n`);
  for (const [alg, bank] of self.pcrValues) {
    io.out(`${bankName(alg)}:\n`);
    for (const [pcr, v] of bank) io.out(`  ${String(pcr).padStart(2)}: ${toHex(v)}\n`);
  }
  if (skipped.length > 0) io.out(`banks not replayed (unknown hash algorithm): ${skipped.join(', ')}\n`);
  return EXIT_CODES.ok;
}

/** `eventlog export FILE --cel [-o OUT]`: the log as TCG CEL-JSON (every event as logged, no quote). */
export async function eventlogExport(call: Call): Promise<number> {
  if (!call.flag('--cel')) throw usage('eventlog export needs a format: --cel (TCG Canonical Event Log JSON)');
  const log = await readLog(call.arg(0));
  await writeOutput(call.io, call.string('--output'), encodeCelJson(log));
  return EXIT_CODES.ok;
}

function bankFlag(call: Call): number | undefined {
  const text = call.string('--bank');
  if (text === undefined) return undefined;
  const found = [...HASH_ALGS].find(([, h]) => h.name === text.toLowerCase());
  if (found === undefined) throw usage(`--bank must be one of ${[...HASH_ALGS.values()].map((h) => h.name).join(', ')}`);
  return found[0];
}

/** `policy measured-boot create --from-eventlog FILE`: a reference policy accepting exactly that boot. */
export async function measuredBootPolicyCreate(call: Call): Promise<number> {
  const io = call.io;
  const self = replayEventLogUnquoted(await readLog(call.required('--from-eventlog')));
  const description = call.string('--description');
  const bank = bankFlag(call);
  const { policy, warnings } = createReferencePolicy(self, {
    name: call.string('--name') ?? 'reference',
    ...(description === undefined ? {} : { description }),
    ...(bank === undefined ? {} : { bank }),
  });
  for (const w of warnings) io.err(`bulwarkctl: warning: ${w}\n`);
  io.out(formatMeasuredBootPolicy(policy));
  return EXIT_CODES.ok;
}

function printFindings(io: CtlIo, findings: readonly Finding[]): void {
  for (const f of findings) io.out(`  ${f.code}: ${f.message}\n`);
}

/**
 * `policy check`: with the tpm2_quote files, verifyQuote, the log replayed against the quoted
 * PCRs, then the policy; without them the log replayed against itself, and the output says so.
 */
export async function measuredBootPolicyCheck(call: Call): Promise<number> {
  const io = call.io;
  const has = (flag: string): boolean => call.string(flag) !== undefined;
  const policyPath = call.required('--policy');
  const logPath = call.required('--eventlog');
  const given = QUOTE_FLAGS.filter(has);
  if (given.length > 0 && given.length < QUOTE_FLAGS.length) {
    throw usage(`checking against a quote needs all of ${QUOTE_FLAGS.join(' ')}; missing ${QUOTE_FLAGS.filter((f) => !has(f)).join(' ')}`);
  }
  if (given.length === 0 && has('--pcr-selection')) throw usage('--pcr-selection needs the quote files');
  const policyText = await readTextInput(policyPath, 'policy');
  const policy = selectMeasuredBootPolicy(parseMeasuredBootPolicies(policyText, policyPath, documentFormatOf(policyPath)), call.string('--name'));
  const log = await readLog(logPath);
  for (const w of policy.warnings) io.err(`bulwarkctl: warning: ${w}\n`);

  if (given.length === 0) {
    const report = evaluateMeasuredBootPolicyUnquoted(policy, replayEventLogUnquoted(log));
    if (call.json) printJson(io, report);
    else {
      io.out(`policy ${policy.name}: ${report.passed ? 'the log satisfies it' : 'the log does NOT satisfy it'}\n`);
      io.out('NOT checked against a quote: the log was replayed against itself, which proves nothing about what the TPM measured\n');
      printFindings(io, report.findings);
    }
    return report.passed ? EXIT_CODES.ok : EXIT_CODES.finding;
  }

  const quote = await verifyQuoteFiles(call);
  let findings: readonly Finding[];
  let quirks: readonly string[] = [];
  let proven = '';
  if (!quote.ok) findings = quote.findings;
  else {
    const replay = replayEventLog(log, quote.pcrs);
    if (!replay.ok) findings = replay.findings;
    else {
      const result = evaluateMeasuredBootPolicy(policy, replay.log);
      findings = result.verdict.findings;
      quirks = result.quirks;
      proven = [...replay.log.provenPcrs].map(([alg, pcrs]) => `${bankName(alg)}:${pcrs.join(',')}`).join(' ');
    }
  }
  const trusted = findings.length === 0;
  if (call.json) printJson(io, { policy: policy.name, quoted: true, verdict: trusted ? 'trusted' : 'untrusted', findings, quirks, provenPcrs: proven });
  else {
    io.out(`policy ${policy.name}: ${trusted ? 'trusted' : 'UNTRUSTED'} (event log replayed against a verified quote${proven === '' ? '' : `; proven PCRs ${proven}`})\n`);
    if (quirks.length > 0) io.out(`firmware quirks relied on: ${quirks.join(', ')}\n`);
    printFindings(io, findings);
  }
  return trusted ? EXIT_CODES.ok : EXIT_CODES.finding;
}
