/**
 * The measured-boot policy format (documented by policies/measured-boot/schema.json): what
 * a boot must look like — Secure Boot state and keys, allowed digests per boot stage,
 * the kernel command line — in JSON a person can read and review.
 *
 * The validator is written by hand: the parsed JSON is `unknown` and every field is
 * narrowed with a check; anything unexpected (an unknown key, a wrong type, a digest of the
 * wrong length, a pattern that does not compile) is MEASURED_BOOT_POLICY_INVALID with the
 * JSON path in `details.path`. A policy that checks nothing is refused
 * (MEASURED_BOOT_POLICY_CHECKS_NOTHING) unless it says `"acceptAll": true`.
 */
import { BulwarkError } from '../errors.js';
import { HASH_ALGS, TPM_ALG } from '../tpm/index.js';

/** The boot stages a policy lists digests for (see evaluate.ts for which events each covers). */
export type BootStage = 'firmware' | 'shim' | 'grub' | 'grubFiles' | 'kernel' | 'initrd';
export const BOOT_STAGES: readonly BootStage[] = ['firmware', 'shim', 'grub', 'grubFiles', 'kernel', 'initrd'];

/** The Secure Boot part of a policy; every field is optional and only what is set is checked. */
export interface SecureBootRequirement {
  /** The required value of the SecureBoot variable. */
  readonly enabled?: boolean;
  /** Every PK / KEK / db entry must be one of these fingerprints (SignatureEntry.fingerprint). */
  readonly pk?: ReadonlySet<string>;
  readonly kek?: ReadonlySet<string>;
  readonly db?: ReadonlySet<string>;
  /** Entries dbx must contain (revoked hashes or certificates). */
  readonly dbxRequired?: readonly string[];
  /** Every authority that verified a boot application must be one of these. */
  readonly authorities?: ReadonlySet<string>;
}

/** A validated measured-boot policy. Trusted: it comes from the security team (signed bundles). */
export interface MeasuredBootPolicy {
  readonly name: string;
  readonly description?: string;
  /** The PCR bank (TPM_ALG_ID) whose digests the stages list and whose PCRs must be proven. */
  readonly bank: number;
  readonly acceptAll: boolean;
  readonly secureBoot?: SecureBootRequirement;
  /** Allowed digests (lower-case hex in `bank`) per stage; a stage that is absent is not checked. */
  readonly stages: Readonly<Partial<Record<BootStage, ReadonlySet<string>>>>;
  /** The kernel command line must match `pattern` as a whole (ECMAScript regular expression). */
  readonly kernelCmdline?: { readonly pattern: string; readonly regex: RegExp };
  /** What a reader should know (accept-all, stages that will refuse GRUB's own files, ...). */
  readonly warnings: readonly string[];
}

/** Largest policy document read (a full reference policy with a 2023 dbx is about 40 KiB). */
export const MAX_POLICY_DOCUMENT_SIZE = 4 * 1024 * 1024;
/** Most digests or fingerprints in one list. */
export const MAX_POLICY_LIST = 10_000;
/** Longest kernel command line pattern. */
export const MAX_CMDLINE_PATTERN = 4096;
/** Most policies in one document. */
export const MAX_POLICIES = 256;

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const BANKS: ReadonlyMap<string, number> = new Map([
  ['sha1', TPM_ALG.SHA1],
  ['sha256', TPM_ALG.SHA256],
  ['sha384', TPM_ALG.SHA384],
  ['sha512', TPM_ALG.SHA512],
]);

function invalid(path: string, message: string): BulwarkError {
  return new BulwarkError('MEASURED_BOOT_POLICY_INVALID', `${path}: ${message}`, { path });
}

function typeOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}

/** A JSON object as a plain record, refusing other types and keys outside `allowed`. */
function object(v: unknown, path: string, allowed: readonly string[]): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw invalid(path, `must be an object, not ${typeOf(v)}`);
  const out: Record<string, unknown> = {};
  for (const [k, value] of Object.entries(v)) {
    if (!allowed.includes(k)) throw invalid(`${path}.${k}`, `unknown property (allowed: ${allowed.join(', ')})`);
    out[k] = value;
  }
  return out;
}

function string(v: unknown, path: string, max: number): string {
  if (typeof v !== 'string') throw invalid(path, `must be a string, not ${typeOf(v)}`);
  if (v.length > max) throw invalid(path, `is longer than ${max} characters`);
  return v;
}

function boolean(v: unknown, path: string): boolean {
  if (typeof v !== 'boolean') throw invalid(path, `must be true or false, not ${typeOf(v)}`);
  return v;
}

/** A list of hex digests of `octets` octets each, lower-cased. */
function hexList(v: unknown, path: string, octets: number): string[] {
  if (!Array.isArray(v)) throw invalid(path, `must be an array of hex digests, not ${typeOf(v)}`);
  if (v.length > MAX_POLICY_LIST) throw invalid(path, `lists more than ${MAX_POLICY_LIST} entries`);
  const re = new RegExp(`^[0-9a-fA-F]{${octets * 2}}$`);
  return v.map((item: unknown, i) => {
    if (typeof item !== 'string' || !re.test(item)) throw invalid(`${path}[${i}]`, `must be ${octets * 2} hex digits`);
    return item.toLowerCase();
  });
}

/** Compiles a command line pattern anchored at both ends. */
export function compileCmdlinePattern(pattern: string, path = '$.kernelCmdline.pattern'): RegExp {
  try {
    return new RegExp(`^(?:${pattern})$`, 'u');
  } catch (err) {
    throw invalid(path, `is not a valid regular expression: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** Validates one policy object found at `path` (see the module comment and schema.json). */
export function validateMeasuredBootPolicy(value: unknown, path = '$'): MeasuredBootPolicy {
  const o = object(value, path, ['$schema', 'name', 'description', 'bank', 'acceptAll', 'secureBoot', 'stages', 'kernelCmdline']);
  if (o['$schema'] !== undefined) string(o['$schema'], `${path}.$schema`, 1024);
  if (o['name'] === undefined) throw invalid(`${path}.name`, 'is required');
  const name = string(o['name'], `${path}.name`, 64);
  if (!NAME.test(name)) throw invalid(`${path}.name`, 'must be 1-64 letters, digits, ".", "_" or "-", starting with a letter or digit');
  const description = o['description'] === undefined ? undefined : string(o['description'], `${path}.description`, 4000);
  const bankName = o['bank'] === undefined ? 'sha256' : string(o['bank'], `${path}.bank`, 16);
  const bank = BANKS.get(bankName);
  if (bank === undefined) throw invalid(`${path}.bank`, `must be one of ${[...BANKS.keys()].join(', ')}`);
  const digestSize = HASH_ALGS.get(bank)?.size ?? 32;
  const acceptAll = o['acceptAll'] === undefined ? false : boolean(o['acceptAll'], `${path}.acceptAll`);
  const checks: string[] = [];

  let secureBoot: SecureBootRequirement | undefined;
  if (o['secureBoot'] !== undefined) {
    const sp = `${path}.secureBoot`;
    const s = object(o['secureBoot'], sp, ['enabled', 'pk', 'kek', 'db', 'dbxRequired', 'authorities']);
    const set = (key: string): ReadonlySet<string> | undefined => {
      if (s[key] === undefined) return undefined;
      checks.push(`secureBoot.${key}`);
      return new Set(hexList(s[key], `${sp}.${key}`, 32));
    };
    const enabled = s['enabled'] === undefined ? undefined : boolean(s['enabled'], `${sp}.enabled`);
    if (enabled !== undefined) checks.push('secureBoot.enabled');
    const dbxRequired = s['dbxRequired'] === undefined ? undefined : hexList(s['dbxRequired'], `${sp}.dbxRequired`, 32);
    if (dbxRequired !== undefined) checks.push('secureBoot.dbxRequired');
    secureBoot = { enabled, pk: set('pk'), kek: set('kek'), db: set('db'), dbxRequired, authorities: set('authorities') };
  }

  const stages: Partial<Record<BootStage, ReadonlySet<string>>> = {};
  if (o['stages'] !== undefined) {
    const sp = `${path}.stages`;
    const s = object(o['stages'], sp, BOOT_STAGES);
    for (const stage of BOOT_STAGES) {
      if (s[stage] === undefined) continue;
      stages[stage] = new Set(hexList(s[stage], `${sp}.${stage}`, digestSize));
      checks.push(`stages.${stage}`);
    }
  }

  let kernelCmdline: { pattern: string; regex: RegExp } | undefined;
  if (o['kernelCmdline'] !== undefined) {
    const kp = `${path}.kernelCmdline`;
    const k = object(o['kernelCmdline'], kp, ['pattern']);
    if (k['pattern'] === undefined) throw invalid(`${kp}.pattern`, 'is required');
    const pattern = string(k['pattern'], `${kp}.pattern`, MAX_CMDLINE_PATTERN);
    kernelCmdline = { pattern, regex: compileCmdlinePattern(pattern, `${kp}.pattern`) };
    checks.push('kernelCmdline');
  }

  const warnings: string[] = [];
  if (acceptAll) {
    if (checks.length > 0) throw invalid(`${path}.acceptAll`, `cannot be combined with checks (${checks.join(', ')})`);
    warnings.push(`policy "${name}" accepts every boot ("acceptAll": true): only the replay against the quote is checked`);
  } else if (checks.length === 0) {
    throw new BulwarkError(
      'MEASURED_BOOT_POLICY_CHECKS_NOTHING',
      `policy "${name}" checks nothing and would accept any boot; add checks, or set "acceptAll": true to accept every boot on purpose`,
      { path },
    );
  }
  if ((stages.kernel !== undefined || stages.initrd !== undefined) && stages.grubFiles === undefined) {
    warnings.push(
      `policy "${name}": stages.kernel/initrd judge every measurement in PCR 9; without stages.grubFiles, GRUB's own files (grub.cfg, modules) are refused`,
    );
  }
  return { name, description, bank, acceptAll, secureBoot, stages, kernelCmdline, warnings };
}

/**
 * Parses a measured-boot policy document: one policy object, or `{ "policies": [ ... ] }`
 * with unique names. Untrusted text in; MEASURED_BOOT_POLICY_INVALID (with the JSON path)
 * or MEASURED_BOOT_POLICY_CHECKS_NOTHING out on bad input.
 */
export function parseMeasuredBootPolicies(text: string): MeasuredBootPolicy[] {
  if (text.length > MAX_POLICY_DOCUMENT_SIZE) throw invalid('$', `the document is larger than ${MAX_POLICY_DOCUMENT_SIZE} characters`);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw invalid('$', `not JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (typeof value === 'object' && value !== null && !Array.isArray(value) && Object.prototype.hasOwnProperty.call(value, 'policies')) {
    const o = object(value, '$', ['$schema', 'policies']);
    const list = o['policies'];
    if (!Array.isArray(list)) throw invalid('$.policies', `must be an array, not ${typeOf(list)}`);
    if (list.length === 0 || list.length > MAX_POLICIES) throw invalid('$.policies', `must hold 1..${MAX_POLICIES} policies`);
    const out = list.map((p: unknown, i) => validateMeasuredBootPolicy(p, `$.policies[${i}]`));
    const names = new Set<string>();
    out.forEach((p, i) => {
      if (names.has(p.name)) throw invalid(`$.policies[${i}].name`, `"${p.name}" is used twice`);
      names.add(p.name);
    });
    return out;
  }
  return [validateMeasuredBootPolicy(value)];
}

/** Picks the policy named `name`, or the only one when `name` is undefined; USAGE otherwise. */
export function selectMeasuredBootPolicy(policies: readonly MeasuredBootPolicy[], name?: string): MeasuredBootPolicy {
  if (name === undefined) {
    const only = policies[0];
    if (policies.length !== 1 || only === undefined) {
      throw new BulwarkError('USAGE', `the document holds ${policies.length} policies (${policies.map((p) => p.name).join(', ')}); name one`);
    }
    return only;
  }
  const found = policies.find((p) => p.name === name);
  if (found === undefined) throw new BulwarkError('USAGE', `no policy named "${name}" (the document holds ${policies.map((p) => p.name).join(', ')})`);
  return found;
}

/** A policy as JSON text in the schema's form (stable key order, sorted lists); parseMeasuredBootPolicies reads it back. */
export function formatMeasuredBootPolicy(policy: MeasuredBootPolicy): string {
  const sorted = (s: ReadonlySet<string> | readonly string[] | undefined): string[] | undefined => (s === undefined ? undefined : [...s].sort());
  const bank = [...BANKS].find(([, v]) => v === policy.bank)?.[0] ?? 'sha256';
  const sb = policy.secureBoot;
  const doc = {
    $schema: './schema.json',
    name: policy.name,
    description: policy.description,
    bank,
    acceptAll: policy.acceptAll ? true : undefined,
    secureBoot:
      sb === undefined
        ? undefined
        : {
            enabled: sb.enabled,
            pk: sorted(sb.pk),
            kek: sorted(sb.kek),
            db: sorted(sb.db),
            dbxRequired: sorted(sb.dbxRequired),
            authorities: sorted(sb.authorities),
          },
    stages: Object.keys(policy.stages).length === 0 ? undefined : Object.fromEntries(BOOT_STAGES.filter((s) => policy.stages[s] !== undefined).map((s) => [s, sorted(policy.stages[s])])),
    kernelCmdline: policy.kernelCmdline === undefined ? undefined : { pattern: policy.kernelCmdline.pattern },
  };
  return `${JSON.stringify(doc, null, 2)}\n`;
}
