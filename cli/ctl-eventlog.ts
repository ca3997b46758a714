/**
 * bulwarkctl's measured-boot commands, all offline on files: `eventlog show`, `eventlog
 * replay`, `policy measured-boot create --from-eventlog`, `policy check`. controller/ctl.ts
 * dispatches here before its own argument parsing and maps a thrown BulwarkError to its
 * exit code (0 ok, 1 finding, 2 usage, 3 malformed input).
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { fromHex, toHex } from '../lib/index.js';
import { BulwarkError, EXIT_CODES } from '../lib/index.js';
import {
  createReferencePolicy,
  decodeEventData,
  efiGuidName,
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
import { parsePcrSelectionSpec } from '../lib/tpm/index.js';
import { verifyQuote } from '../lib/tpm/index.js';
import { HASH_ALGS, type PcrBanks } from '../lib/tpm/index.js';
import type { Finding } from '../lib/index.js';
import { readInput } from './ctl-io.js';

/** Where bulwarkctl writes (the CtlIo of ctl.ts, restated so this module does not import it back). */
export interface EventlogCtlIo {
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
}

const VALUE_FLAGS = new Set([
  '--controller',
  '--policy',
  '--eventlog',
  '--from-eventlog',
  '--name',
  '--bank',
  '--description',
  '--ak',
  '--msg',
  '--sig',
  '--pcrs',
  '--nonce',
  '--pcr-selection',
]);
const QUOTE_FLAGS = ['--ak', '--msg', '--sig', '--pcrs', '--nonce'] as const;

interface Args {
  readonly positional: string[];
  readonly flags: Map<string, string>;
  readonly json: boolean;
  readonly help: boolean;
}

function usage(message: string): BulwarkError {
  return new BulwarkError('USAGE', message);
}

function parseArgs(argv: readonly string[]): Args {
  const positional: string[] = [];
  const flags = new Map<string, string>();
  let json = false;
  let help = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] ?? '';
    if (a === '--json') json = true;
    else if (a === '--help' || a === '-h') help = true;
    else if (VALUE_FLAGS.has(a)) {
      const v = argv[i + 1];
      if (v === undefined) throw usage(`${a} needs a value`);
      if (flags.has(a)) throw usage(`${a} given twice`);
      flags.set(a, v);
      i++;
    } else if (a.startsWith('--')) throw usage(`unknown option ${a}`);
    else positional.push(a);
  }
  return { positional, flags, json, help };
}

/** Whether argv names one of this module's commands: `eventlog ...`, `policy measured-boot ...`, `policy check ...`. */
export function isEventlogCommand(argv: readonly string[]): boolean {
  const words: string[] = [];
  for (let i = 0; i < argv.length && words.length < 2; i++) {
    const a = argv[i] ?? '';
    if (VALUE_FLAGS.has(a)) {
      i++;
      continue;
    }
    if (!a.startsWith('--')) words.push(a);
  }
  const [a, b] = words;
  return a === 'eventlog' || (a === 'policy' && (b === 'measured-boot' || b === 'check'));
}

/** The help lines of these commands, for CTL_HELP. */
export const CTL_EVENTLOG_HELP = `Measured boot (offline, on an event log: /sys/kernel/security/tpm0/binary_bios_measurements):
  eventlog show FILE [--json]     the decoded events: PCR, type, digest, what each event says
  eventlog replay FILE [--json]   PCR values per bank the log replays to (not checked against a quote)
  policy measured-boot create --from-eventlog FILE [--name NAME] [--bank sha256] [--description TEXT]
      a reference policy (JSON on stdout) that accepts exactly the boot of a known-good host
  policy check --policy P [--name NAME] --eventlog FILE
               [--ak AK.pem --msg MSG --sig SIG --pcrs PCRS --nonce HEX [--pcr-selection SEL]]
      with the tpm2_quote files: verifyQuote, replay of the log against the quoted PCRs, then
      the policy; without them the log is replayed against itself and the result says so
`;


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

function formatTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n') + '\n';
}

function banksOf(log: EventLog): string {
  return log.specId.digestSizes.map((a) => bankName(a.algorithmId)).join(', ');
}

async function eventlogShow(args: Args, io: EventlogCtlIo): Promise<number> {
  const file = args.positional[2];
  if (file === undefined || args.positional.length > 3) throw usage('eventlog show takes one FILE');
  const log = await readLog(file);
  const uintn = log.specId.uintnSize;
  if (args.json) {
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
    io.out(`${JSON.stringify({ quoted: false, specId: log.specId, startupLocality: log.startupLocality, events }, jsonValue)}\n`);
    return EXIT_CODES.ok;
  }
  const shown = log.specId.digestSizes.find((a) => a.algorithmId === 0x000b)?.algorithmId ?? log.specId.digestSizes[0]?.algorithmId ?? 0x000b;
  io.out(
    `TCG crypto-agile event log: spec ${log.specId.specVersionMajor}.${log.specId.specVersionMinor} errata ${log.specId.specErrata}, UINTN ${uintn * 8}-bit, ` +
      `banks ${banksOf(log)}, StartupLocality ${log.startupLocality ?? 'not logged'}, ${log.events.length} events\n` +
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

async function eventlogReplay(args: Args, io: EventlogCtlIo): Promise<number> {
  const file = args.positional[2];
  if (file === undefined || args.positional.length > 3) throw usage('eventlog replay takes one FILE');
  const log = await readLog(file);
  const self = replayEventLogUnquoted(log);
  const skipped = log.specId.digestSizes.filter((a) => !HASH_ALGS.has(a.algorithmId)).map((a) => `0x${a.algorithmId.toString(16)}`);
  if (args.json) {
    io.out(`${JSON.stringify({ quoted: false, startupLocality: log.startupLocality, pcrs: pcrJson(self.pcrValues), notReplayed: skipped })}\n`);
    return EXIT_CODES.ok;
  }
  io.out('PCR values the event log replays to (not checked against a quote)\n');
  for (const [alg, bank] of self.pcrValues) {
    io.out(`${bankName(alg)}:\n`);
    for (const [pcr, v] of bank) io.out(`  ${String(pcr).padStart(2)}: ${toHex(v)}\n`);
  }
  if (skipped.length > 0) io.out(`banks not replayed (unknown hash algorithm): ${skipped.join(', ')}\n`);
  return EXIT_CODES.ok;
}

function bankFlag(args: Args): number | undefined {
  const text = args.flags.get('--bank');
  if (text === undefined) return undefined;
  const found = [...HASH_ALGS].find(([, h]) => h.name === text.toLowerCase());
  if (found === undefined) throw usage(`--bank must be one of ${[...HASH_ALGS.values()].map((h) => h.name).join(', ')}`);
  return found[0];
}

async function policyCreate(args: Args, io: EventlogCtlIo): Promise<number> {
  const file = args.flags.get('--from-eventlog');
  if (file === undefined) throw usage('policy measured-boot create needs --from-eventlog FILE');
  const self = replayEventLogUnquoted(await readLog(file));
  const description = args.flags.get('--description');
  const bank = bankFlag(args);
  const { policy, warnings } = createReferencePolicy(self, {
    name: args.flags.get('--name') ?? 'reference',
    ...(description === undefined ? {} : { description }),
    ...(bank === undefined ? {} : { bank }),
  });
  for (const w of warnings) io.err(`bulwarkctl: warning: ${w}\n`);
  io.out(formatMeasuredBootPolicy(policy));
  return EXIT_CODES.ok;
}

async function loadAk(path: string): Promise<KeyObject> {
  const pem = await readInput(path, 'AK');
  try {
    return createPublicKey(Buffer.from(pem));
  } catch (err) {
    throw new BulwarkError('KEY_INVALID', `${path} is not a PEM public key`, {}, { cause: err });
  }
}

function printFindings(io: EventlogCtlIo, findings: readonly Finding[]): void {
  for (const f of findings) io.out(`  ${f.code}: ${f.message}\n`);
}

async function policyCheck(args: Args, io: EventlogCtlIo): Promise<number> {
  const policyPath = args.flags.get('--policy');
  const logPath = args.flags.get('--eventlog');
  if (policyPath === undefined || logPath === undefined) throw usage('policy check needs --policy FILE and --eventlog FILE');
  const given = QUOTE_FLAGS.filter((f) => args.flags.has(f));
  if (given.length > 0 && given.length < QUOTE_FLAGS.length) {
    throw usage(`checking against a quote needs all of ${QUOTE_FLAGS.join(' ')}; missing ${QUOTE_FLAGS.filter((f) => !args.flags.has(f)).join(' ')}`);
  }
  if (given.length === 0 && args.flags.has('--pcr-selection')) throw usage('--pcr-selection needs the quote files');
  const policyText = new TextDecoder('utf-8', { fatal: false }).decode(await readInput(policyPath, 'policy'));
  const policy = selectMeasuredBootPolicy(parseMeasuredBootPolicies(policyText), args.flags.get('--name'));
  const log = await readLog(logPath);
  for (const w of policy.warnings) io.err(`bulwarkctl: warning: ${w}\n`);

  if (given.length === 0) {
    const report = evaluateMeasuredBootPolicyUnquoted(policy, replayEventLogUnquoted(log));
    if (args.json) io.out(`${JSON.stringify(report)}\n`);
    else {
      io.out(`policy ${policy.name}: ${report.passed ? 'the log satisfies it' : 'the log does NOT satisfy it'}\n`);
      io.out('NOT checked against a quote: the log was replayed against itself, which proves nothing about what the TPM measured\n');
      printFindings(io, report.findings);
    }
    return report.passed ? EXIT_CODES.ok : EXIT_CODES.finding;
  }

  const need = (flag: string): string => args.flags.get(flag) ?? '';
  const selectionText = args.flags.get('--pcr-selection');
  const selection = selectionText === undefined ? undefined : parsePcrSelectionSpec(selectionText);
  const quote = verifyQuote(
    await loadAk(need('--ak')),
    await readInput(need('--msg'), 'quote message'),
    await readInput(need('--sig'), 'signature'),
    await readInput(need('--pcrs'), 'PCR'),
    fromHex(need('--nonce').replace(/^0x/i, ''), '--nonce'),
    selection === undefined ? undefined : { selection },
  );
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
  if (args.json) io.out(`${JSON.stringify({ policy: policy.name, quoted: true, verdict: trusted ? 'trusted' : 'untrusted', findings, quirks, provenPcrs: proven })}\n`);
  else {
    io.out(`policy ${policy.name}: ${trusted ? 'trusted' : 'UNTRUSTED'} (event log replayed against a verified quote${proven === '' ? '' : `; proven PCRs ${proven}`})\n`);
    if (quirks.length > 0) io.out(`firmware quirks relied on: ${quirks.join(', ')}\n`);
    printFindings(io, findings);
  }
  return trusted ? EXIT_CODES.ok : EXIT_CODES.finding;
}

/** Runs an `eventlog ...` or `policy ...` command line (argv without node and script). */
export async function runEventlogCtl(argv: readonly string[], io: EventlogCtlIo): Promise<number> {
  const args = parseArgs(argv);
  if (args.help) {
    io.out(CTL_EVENTLOG_HELP);
    return EXIT_CODES.ok;
  }
  const [command, sub, third] = args.positional;
  if (command === 'eventlog') {
    if (sub === 'show') return eventlogShow(args, io);
    if (sub === 'replay') return eventlogReplay(args, io);
    throw usage('eventlog takes the subcommand show or replay');
  }
  if (command === 'policy') {
    if (sub === 'measured-boot' && third === 'create' && args.positional.length === 3) return policyCreate(args, io);
    if (sub === 'check' && args.positional.length === 2) return policyCheck(args, io);
    throw usage('policy takes "measured-boot create --from-eventlog FILE" or "check --policy FILE --eventlog FILE"');
  }
  throw usage(`unknown command ${command ?? ''}`);
}
