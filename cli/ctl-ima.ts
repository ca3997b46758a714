/**
 * bulwarkctl's runtime-integrity commands, offline: checking an IMA measurement list against
 * a runtime policy, converting Keylime runtime policies, and generating a policy from a root
 * filesystem. controller/ctl.ts dispatches here before its own argument parsing; errors are
 * BulwarkErrors that ctl.ts turns into exit codes (2 usage, 3 malformed input).
 */
import { randomBytes } from 'node:crypto';
import { rename, writeFile } from 'node:fs/promises';
import { fromHex, toHex } from '../lib/index.js';
import { BulwarkError, EXIT_CODES } from '../lib/index.js';
import {
  computeImaPcr10,
  evaluateImaEntriesOffline,
  exportKeylimeRuntimePolicy,
  formatRuntimePolicy,
  importKeylimeRuntimePolicy,
  initialImaReplayState,
  isTemplateHashAlgorithm,
  loadRuntimePolicy,
  parseImaAscii,
  parseImaBinary,
  replayImaEntriesOffline,
  type ImaBankRule,
  type RuntimePolicy,
} from '../lib/ima/index.js';
import { HASH_ALGS, TPM_ALG } from '../lib/tpm/index.js';
import type { Finding } from '../lib/index.js';
import type { CtlIo } from './ctl.js';
import { generateRuntimePolicy } from './runtime-policy-generator.js';
import { readInput } from './ctl-io.js';

/** Help lines for CTL_HELP. */
export const CTL_IMA_HELP = `Runtime integrity (IMA, offline):
  ima check LOG --policy P [--pcr10 HEX] [--bank sha256|sha1] [--bank-rule per-bank|sha1-padded]
                [--format ascii|binary] [--template-hash sha1|sha256]
      replays LOG (ascii_ or binary_runtime_measurements) to PCR 10 — against HEX when given —
      and judges every entry against the runtime policy P (Bulwark or Keylime JSON)
  policy runtime create --rootfs DIR [--output FILE] [--release N] [--base POLICY] [--exclude REGEX]...
      hashes what IMA would measure in a Debian root filesystem into a runtime policy
  policy import-keylime FILE [--output F]   a Keylime runtime policy as Bulwark's
  policy export-keylime FILE [--output F]   a runtime policy as Keylime's
`;

const VALUE_FLAGS = new Set([
  '--policy',
  '--pcr10',
  '--bank',
  '--bank-rule',
  '--format',
  '--template-hash',
  '--output',
  '--rootfs',
  '--release',
  '--base',
  '--exclude',
  '--max-findings',
  '--controller',
]);

interface ImaArgs {
  readonly positional: string[];
  readonly flags: Map<string, string[]>;
  readonly json: boolean;
  readonly help: boolean;
}

function usage(message: string): BulwarkError {
  return new BulwarkError('USAGE', message);
}

function parseArgs(argv: readonly string[]): ImaArgs {
  const positional: string[] = [];
  const flags = new Map<string, string[]>();
  let json = false;
  let help = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] ?? '';
    if (a === '--json') json = true;
    else if (a === '--help' || a === '-h') help = true;
    else if (VALUE_FLAGS.has(a)) {
      const v = argv[i + 1];
      if (v === undefined) throw usage(`${a} needs a value`);
      flags.set(a, [...(flags.get(a) ?? []), v]);
      i++;
    } else if (a.startsWith('--')) throw usage(`unknown option ${a}`);
    else positional.push(a);
  }
  return { positional, flags, json, help };
}

/** The positional words of argv, skipping global options (--json, --controller X). */
function words(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length && out.length < 3; i++) {
    const a = argv[i] ?? '';
    if (VALUE_FLAGS.has(a)) i++;
    else if (!a.startsWith('-')) out.push(a);
  }
  return out;
}

/** Whether argv is one of the commands this module runs (so ctl.ts hands it over untouched). */
export function isCtlImaCommand(argv: readonly string[]): boolean {
  const [a, b] = words(argv);
  if (a === 'ima') return true;
  return a === 'policy' && (b === 'runtime' || b === 'import-keylime' || b === 'export-keylime');
}

function one(args: ImaArgs, flag: string): string | undefined {
  const v = args.flags.get(flag);
  if (v !== undefined && v.length > 1) throw usage(`${flag} given more than once`);
  return v?.[0];
}

function need(args: ImaArgs, flag: string, command: string): string {
  const v = one(args, flag);
  if (v === undefined) throw usage(`${command} needs ${flag}`);
  return v;
}


/** Writes `text` to `path` atomically (a temporary file renamed over it), or to stdout without a path. */
async function output(io: CtlIo, path: string | undefined, text: string): Promise<void> {
  if (path === undefined) {
    io.out(text);
    return;
  }
  const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    await writeFile(tmp, text, { mode: 0o644 });
    await rename(tmp, path);
  } catch (err) {
    throw new BulwarkError('IO_FAILED', `cannot write ${path}`, {}, { cause: err });
  }
}

async function readPolicy(path: string): Promise<RuntimePolicy> {
  return loadRuntimePolicy(new TextDecoder().decode(await readInput(path, 'policy')));
}

const BANKS: ReadonlyMap<string, number> = new Map([
  ['sha1', TPM_ALG.SHA1],
  ['sha256', TPM_ALG.SHA256],
  ['sha384', TPM_ALG.SHA384],
  ['sha512', TPM_ALG.SHA512],
]);

function findingLine(f: Finding): string {
  const d = f.details ?? {};
  const where = d['entry'] === undefined ? '' : ` [entry ${String(d['entry'])}]`;
  const digest = d['digest'] === undefined ? '' : ` ${String(d['digest'])}`;
  return `  ${f.code}${where}: ${f.message}${digest}\n`;
}

async function imaCheck(args: ImaArgs, io: CtlIo): Promise<number> {
  const logPath = args.positional[2];
  if (logPath === undefined || args.positional.length > 3) throw usage('ima check takes one LOG');
  const policy = await readPolicy(need(args, '--policy', 'ima check'));
  const bankName = one(args, '--bank') ?? 'sha256';
  const bank = BANKS.get(bankName);
  if (bank === undefined) throw usage(`--bank must be one of ${[...BANKS.keys()].join(', ')}`);
  const ruleText = one(args, '--bank-rule') ?? 'per-bank';
  if (ruleText !== 'per-bank' && ruleText !== 'sha1-padded') throw usage('--bank-rule must be per-bank or sha1-padded');
  const bankRule: ImaBankRule = ruleText;
  const templateHash = one(args, '--template-hash') ?? policy.logHashAlgorithm;
  if (!isTemplateHashAlgorithm(templateHash)) throw usage('--template-hash must be sha1, sha256, sha384 or sha512');
  const log = await readInput(logPath, 'IMA log');
  let format = one(args, '--format');
  if (format === undefined) {
    // An ASCII list starts with the "%2d" PCR; a binary one with a little-endian u32 (10 = "\n").
    const c = log[0];
    format = c !== undefined && (c === 0x20 || (c >= 0x30 && c <= 0x39)) ? 'ascii' : 'binary';
  }
  if (format !== 'ascii' && format !== 'binary') throw usage('--format must be ascii or binary');
  const parsed = (format === 'ascii' ? parseImaAscii : parseImaBinary)(log, { templateHashAlgorithm: templateHash });

  const state = initialImaReplayState([bank]);
  const pcr10Hex = one(args, '--pcr10');
  const size = HASH_ALGS.get(bank)?.size ?? 0;
  let reference: Uint8Array;
  if (pcr10Hex === undefined) {
    reference = computeImaPcr10(state, parsed.entries, { bankRule }).pcr10.get(bank) ?? new Uint8Array(size);
  } else {
    reference = fromHex(pcr10Hex.replace(/^0x/i, '').toLowerCase(), '--pcr10');
    if (reference.length !== size) throw usage(`--pcr10 must be ${size} bytes for ${bankName}`);
  }
  const maxText = one(args, '--max-findings');
  const maxFindings = maxText === undefined ? 1000 : Number(maxText);
  if (!Number.isSafeInteger(maxFindings) || maxFindings <= 0) throw usage('--max-findings must be a positive integer');

  const replay = replayImaEntriesOffline(state, parsed.entries, new Map([[bank, new Map([[10, reference]])]]), { bankRule });
  const findings: Finding[] = replay.ok ? evaluateImaEntriesOffline(policy, replay.replayed, { maxFindings }).findings : [...replay.findings];
  const verified = pcr10Hex !== undefined;
  const consumed = replay.ok ? replay.consumed : 0;
  const pending = replay.ok ? replay.pending.length : parsed.entries.length;
  if (args.json) {
    io.out(
      `${JSON.stringify({
        format,
        entries: parsed.entries.length,
        bank: bankName,
        bankRule,
        pcr10: toHex(reference),
        verifiedAgainstPcr10: verified,
        replayed: replay.ok,
        consumed,
        pending,
        policyRelease: policy.release,
        findings,
      })}\n`,
    );
  } else {
    io.out(`${parsed.entries.length} entries (${format}), policy release ${policy.release}\n`);
    if (verified) {
      io.out(replay.ok ? `replay: ${consumed} entries reach the given ${bankName} PCR 10${pending > 0 ? `; ${pending} later entries not judged` : ''}\n` : 'replay: the list does NOT reach the given PCR 10\n');
    } else {
      io.out(`replay: the list extends ${bankName} PCR 10 to ${toHex(reference)} — NOT verified against a TPM (no --pcr10)\n`);
    }
    io.out(findings.length === 0 ? 'no findings\n' : `${findings.length} findings:\n`);
    for (const f of findings) io.out(findingLine(f));
  }
  return findings.length === 0 ? EXIT_CODES.ok : EXIT_CODES.finding;
}

async function policyImportKeylime(args: ImaArgs, io: CtlIo): Promise<number> {
  const file = args.positional[2];
  if (file === undefined || args.positional.length > 3) throw usage('policy import-keylime takes one FILE');
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder().decode(await readInput(file, 'Keylime policy')));
  } catch (err) {
    if (err instanceof BulwarkError) throw err;
    throw new BulwarkError('IMA_POLICY_INVALID', `${file} is not JSON`, { path: '$' }, { cause: err });
  }
  const policy = importKeylimeRuntimePolicy(value);
  await output(io, one(args, '--output'), `${JSON.stringify(formatRuntimePolicy(policy), null, 2)}\n`);
  if (one(args, '--output') !== undefined) io.err(`imported ${policy.digests.size} paths, release ${policy.release}\n`);
  return EXIT_CODES.ok;
}

async function policyExportKeylime(args: ImaArgs, io: CtlIo): Promise<number> {
  const file = args.positional[2];
  if (file === undefined || args.positional.length > 3) throw usage('policy export-keylime takes one FILE');
  const policy = await readPolicy(file);
  await output(io, one(args, '--output'), `${JSON.stringify(exportKeylimeRuntimePolicy(policy), null, 2)}\n`);
  return EXIT_CODES.ok;
}

async function policyRuntimeCreate(args: ImaArgs, io: CtlIo): Promise<number> {
  if (args.positional[2] !== 'create' || args.positional.length > 3) throw usage('policy runtime takes the subcommand create');
  const rootfs = need(args, '--rootfs', 'policy runtime create');
  const releaseText = one(args, '--release');
  const release = releaseText === undefined ? undefined : Number(releaseText);
  if (release !== undefined && (!Number.isSafeInteger(release) || release < 0)) throw usage('--release must be a non-negative integer');
  const basePath = one(args, '--base');
  const base = basePath === undefined ? undefined : await readPolicy(basePath);
  const { policy, scan } = await generateRuntimePolicy(rootfs, {
    generator: `bulwarkctl policy runtime create --rootfs ${rootfs}${basePath === undefined ? '' : ` --base ${basePath}`}`,
    ...(release === undefined ? {} : { release }),
    ...(base === undefined ? {} : { base }),
    excludes: args.flags.get('--exclude') ?? [],
  });
  await output(io, one(args, '--output'), `${JSON.stringify(formatRuntimePolicy(policy), null, 2)}\n`);
  io.err(`${scan.files.length} files measured, ${scan.notMeasured} not measured by IMA; release ${policy.release}\n`);
  for (const name of scan.unnamable.slice(0, 20)) io.err(`warning: ${name} is not valid UTF-8 and cannot be listed\n`);
  return EXIT_CODES.ok;
}

/** Runs an IMA command (isCtlImaCommand(argv) is true) and returns its exit code; errors are thrown for ctl.ts. */
export async function runCtlIma(argv: readonly string[], io: CtlIo): Promise<number> {
  const args = parseArgs(argv);
  if (args.help) {
    io.out(CTL_IMA_HELP);
    return EXIT_CODES.ok;
  }
  const [a, b] = args.positional;
  if (a === 'ima') {
    if (b !== 'check') throw usage('ima takes the subcommand check');
    return imaCheck(args, io);
  }
  if (a === 'policy' && b === 'import-keylime') return policyImportKeylime(args, io);
  if (a === 'policy' && b === 'export-keylime') return policyExportKeylime(args, io);
  if (a === 'policy' && b === 'runtime') return policyRuntimeCreate(args, io);
  throw usage(`not an IMA command: ${argv.join(' ')}`);
}
