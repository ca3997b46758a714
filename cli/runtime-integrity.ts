/**
 * bulwarkctl's runtime-integrity work, offline: checking an IMA measurement list against a
 * runtime policy, converting Keylime runtime policies, and generating a policy from a root
 * filesystem. Loaded on use by cli/commands/ima.ts and cli/commands/policy.ts; a thrown
 * BulwarkError becomes the exit code (2 usage, 3 malformed input).
 */
import { BulwarkError, EXIT_CODES, fromHex, toHex, type Finding } from '../lib/index.js';
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
import type { Call } from './command.js';
import { printJson, readInput, readTextInput, writeOutput } from './io.js';
import { generateRuntimePolicy } from './runtime-policy-generator.js';

function usage(message: string): BulwarkError {
  return new BulwarkError('USAGE', message);
}

async function readPolicy(path: string): Promise<RuntimePolicy> {
  return loadRuntimePolicy(await readTextInput(path, 'policy'));
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

/**
 * `ima check LOG --policy P [--pcr10 HEX]`: replays LOG to PCR 10 and judges every entry
 * against the runtime policy. With --pcr10 the entries are replayed against that (quoted)
 * value; without it the list is only replayed against the value it extends to itself, and
 * the output says so (`replay: "self"` in JSON).
 */
export async function imaCheck(call: Call): Promise<number> {
  const io = call.io;
  const policy = await readPolicy(call.required('--policy'));
  const bankName = call.string('--bank') ?? 'sha256';
  const bank = BANKS.get(bankName);
  if (bank === undefined) throw usage(`--bank must be one of ${[...BANKS.keys()].join(', ')}`);
  const ruleText = call.string('--bank-rule') ?? 'per-bank';
  if (ruleText !== 'per-bank' && ruleText !== 'sha1-padded') throw usage('--bank-rule must be per-bank or sha1-padded');
  const bankRule: ImaBankRule = ruleText;
  const templateHash = call.string('--template-hash') ?? policy.logHashAlgorithm;
  if (!isTemplateHashAlgorithm(templateHash)) throw usage('--template-hash must be sha1, sha256, sha384 or sha512');
  const log = await readInput(call.arg(0), 'IMA log');
  let format = call.string('--format');
  if (format === undefined) {
    // An ASCII list starts with the "%2d" PCR; a binary one with a little-endian u32 (10 = "\n").
    const c = log[0];
    format = c !== undefined && (c === 0x20 || (c >= 0x30 && c <= 0x39)) ? 'ascii' : 'binary';
  }
  if (format !== 'ascii' && format !== 'binary') throw usage('--format must be ascii or binary');
  const parsed = (format === 'ascii' ? parseImaAscii : parseImaBinary)(log, { templateHashAlgorithm: templateHash });

  const state = initialImaReplayState([bank]);
  const pcr10Hex = call.string('--pcr10');
  const size = HASH_ALGS.get(bank)?.size ?? 0;
  let reference: Uint8Array;
  if (pcr10Hex === undefined) {
    reference = computeImaPcr10(state, parsed.entries, { bankRule }).pcr10.get(bank) ?? new Uint8Array(size);
  } else {
    reference = fromHex(pcr10Hex.replace(/^0x/i, '').toLowerCase(), '--pcr10');
    if (reference.length !== size) throw usage(`--pcr10 must be ${size} bytes for ${bankName}`);
  }
  const maxFindings = call.number('--max-findings') ?? 1000;

  const replay = replayImaEntriesOffline(state, parsed.entries, new Map([[bank, new Map([[10, reference]])]]), { bankRule });
  const findings: Finding[] = replay.ok ? evaluateImaEntriesOffline(policy, replay.replayed, { maxFindings }).findings : [...replay.findings];
  // Which replay was evaluated: against the given (quoted) PCR 10, or the list against itself.
  const kind: 'pcr10' | 'self' = pcr10Hex === undefined ? 'self' : 'pcr10';
  const consumed = replay.ok ? replay.consumed : 0;
  const pending = replay.ok ? replay.pending.length : parsed.entries.length;
  if (call.json) {
    printJson(io, {
      format,
      entries: parsed.entries.length,
      bank: bankName,
      bankRule,
      pcr10: toHex(reference),
      replay: kind,
      verifiedAgainstPcr10: kind === 'pcr10',
      replayed: replay.ok,
      consumed,
      pending,
      policyRelease: policy.release,
      findings,
    });
  } else {
    io.out(`${parsed.entries.length} entries (${format}), policy release ${policy.release}\n`);
    if (kind === 'pcr10') {
      io.out(replay.ok ? `replay: ${consumed} entries reach the given ${bankName} PCR 10${pending > 0 ? `; ${pending} later entries not judged` : ''}\n` : 'replay: the list does NOT reach the given PCR 10\n');
    } else {
      io.out(
        `replay: self-consistent only (no quoted PCR 10 given): the entries are NOT verified against a TPM; the list extends ${bankName} PCR 10 to ${toHex(reference)}\n`,
      );
    }
    io.out(findings.length === 0 ? 'no findings\n' : `${findings.length} findings:\n`);
    for (const f of findings) io.out(findingLine(f));
  }
  return findings.length === 0 ? EXIT_CODES.ok : EXIT_CODES.finding;
}

/** `policy import-keylime FILE [--output F]`: a Keylime runtime policy as Bulwark's. */
export async function keylimePolicyImport(call: Call): Promise<number> {
  const file = call.arg(0);
  // The schema layer (TypeBox) loads here, not for every command that imports this module.
  const { parseJsonText } = await import('../lib/schema/index.js');
  const value = parseJsonText(await readInput(file, 'Keylime policy'), 'Keylime runtime policy', 'IMA_POLICY_INVALID', file);
  const policy = importKeylimeRuntimePolicy(value);
  const output = call.string('--output');
  await writeOutput(call.io, output, `${JSON.stringify(formatRuntimePolicy(policy), null, 2)}\n`);
  if (output !== undefined) call.io.err(`imported ${policy.digests.size} paths, release ${policy.release}\n`);
  return EXIT_CODES.ok;
}

/** `policy export-keylime FILE [--output F]`: a runtime policy as Keylime's. */
export async function keylimePolicyExport(call: Call): Promise<number> {
  const policy = await readPolicy(call.arg(0));
  await writeOutput(call.io, call.string('--output'), `${JSON.stringify(exportKeylimeRuntimePolicy(policy), null, 2)}\n`);
  return EXIT_CODES.ok;
}

/** `policy runtime create --rootfs DIR`: hashes what IMA would measure in a root filesystem into a runtime policy. */
export async function runtimePolicyCreate(call: Call): Promise<number> {
  const rootfs = call.required('--rootfs');
  const release = call.number('--release');
  const basePath = call.string('--base');
  const base = basePath === undefined ? undefined : await readPolicy(basePath);
  const { policy, scan } = await generateRuntimePolicy(rootfs, {
    generator: `bulwarkctl policy runtime create --rootfs ${rootfs}${basePath === undefined ? '' : ` --base ${basePath}`}`,
    ...(release === undefined ? {} : { release }),
    ...(base === undefined ? {} : { base }),
    excludes: call.strings('--exclude'),
  });
  await writeOutput(call.io, call.string('--output'), `${JSON.stringify(formatRuntimePolicy(policy), null, 2)}\n`);
  call.io.err(`${scan.files.length} files measured, ${scan.notMeasured} not measured by IMA; release ${policy.release}\n`);
  for (const name of scan.unnamable.slice(0, 20)) call.io.err(`warning: ${name} is not valid UTF-8 and cannot be listed\n`);
  return EXIT_CODES.ok;
}
