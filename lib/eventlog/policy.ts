/**
 * The measured-boot policy format: what a boot must look like — Secure Boot state and keys,
 * allowed digests per boot stage, the kernel command line — in JSON a person can read and
 * review.
 *
 * The TypeBox schemas below are the format: the validator is the schema layer's
 * (lib/schema) over them, and policies/measured-boot/schema.json is generated from them
 * (`node dist/test/tools/write-schemas.js`; a test fails when it is out of date). A
 * document that does not validate is MEASURED_BOOT_POLICY_INVALID with the JSON pointer of
 * the first problem in `details.path`. What JSON Schema cannot say is checked after it, with
 * the same code and path: digest lengths follow `bank`, command line patterns must compile,
 * names in a bundle are unique, `acceptAll` excludes checks; a policy that checks nothing
 * is refused (MEASURED_BOOT_POLICY_CHECKS_NOTHING) unless it says `"acceptAll": true`.
 */
import { Type, type Static } from '@sinclair/typebox';
import { BulwarkError } from '../errors.js';
import { defineDocument, literalUnion, parseDocumentText, type DocumentFormat } from '../schema/index.js';
import { HASH_ALG_NAMES, HASH_ALGS, HASH_ALGS_BY_NAME, TPM_ALG, type HashAlgName } from '../tpm/index.js';

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
  /** Whether a log with SHA-1 digests only (a TCG 1.2 format log) may be evidence; default false (EVENTLOG_SHA1_ONLY). */
  readonly allowSha1OnlyLog: boolean;
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

const WHAT = 'measured-boot policy';
const CODE = 'MEASURED_BOOT_POLICY_INVALID';

// ---------------------------------------------------------------------------------------------
// The schema (the source of policies/measured-boot/schema.json)

function fingerprints(description: string) {
  return Type.Array(
    Type.String({
      pattern: '^[0-9a-fA-F]{64}$',
      description:
        'A SHA-256 fingerprint as lib/eventlog/secure-boot.ts names signature entries: the SHA-256 of the DER certificate for X.509 entries, the hash itself for EFI_CERT_SHA256 entries (the TBS hash for EFI_CERT_X509_SHA256), the SHA-256 of the data otherwise.',
    }),
    { maxItems: MAX_POLICY_LIST, description },
  );
}

function digests(description: string) {
  return Type.Array(Type.String({ pattern: '^[0-9a-fA-F]+$' }), {
    maxItems: MAX_POLICY_LIST,
    description: `${description} Event digests in the policy's bank, as hex: 40 digits for sha1, 64 for sha256, 96 for sha384, 128 for sha512 (checked against "bank" after the schema). An empty list allows nothing.`,
  });
}

/** One measured-boot policy. */
export const MeasuredBootPolicySchema = Type.Object(
  {
    $schema: Type.Optional(Type.String({ maxLength: 1024 })),
    name: Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$', description: 'Names the policy in verdicts and in bundles.' }),
    description: Type.Optional(Type.String({ maxLength: 4000 })),
    bank: Type.Optional(
      literalUnion(HASH_ALG_NAMES, { default: 'sha256', description: 'The PCR bank whose digests the stages list and whose PCRs the quote must prove.' }),
    ),
    acceptAll: Type.Optional(
      Type.Boolean({
        default: false,
        description: 'Accept every boot on purpose: only the replay against the quote is checked. Cannot be combined with any check; evaluation carries a warning.',
      }),
    ),
    allowSha1OnlyLog: Type.Optional(
      Type.Boolean({
        default: false,
        description:
          'Accept an event log that carries SHA-1 digests only (the TCG 1.2 format of older firmware, or a crypto-agile log with a SHA-1 bank alone) as evidence. SHA-1 is broken for collisions, so the default refuses such a log with EVENTLOG_SHA1_ONLY; a policy that sets this judges the log in its "bank", which must then be sha1. Not a check: it may stand beside acceptAll.',
      }),
    ),
    secureBoot: Type.Optional(
      Type.Object(
        {
          enabled: Type.Optional(
            Type.Boolean({ description: 'The required SecureBoot value. true: off or unmeasured is SECURE_BOOT_DISABLED; false: on is SECURE_BOOT_STATE_INVALID.' }),
          ),
          pk: Type.Optional(fingerprints('Every PK entry must be one of these (SECURE_BOOT_KEY_NOT_ALLOWED).')),
          kek: Type.Optional(fingerprints('Every KEK entry must be one of these.')),
          db: Type.Optional(fingerprints('Every db entry must be one of these.')),
          dbxRequired: Type.Optional(fingerprints('Entries dbx must hold (revoked image hashes or certificates); DBX_ENTRY_MISSING otherwise.')),
          authorities: Type.Optional(
            fingerprints(
              "Every authority that verified a boot application (db entries, shim's vendor certificate, MOK entries) must be one of these (SECURE_BOOT_AUTHORITY_NOT_ALLOWED).",
            ),
          ),
        },
        {
          additionalProperties: false,
          description:
            'Secure Boot as PCR 7 shows it (EV_EFI_VARIABLE_DRIVER_CONFIG SecureBoot/PK/KEK/db/dbx and EV_EFI_VARIABLE_AUTHORITY events whose digest is over their data).',
        },
      ),
    ),
    stages: Type.Optional(
      Type.Object(
        {
          firmware: Type.Optional(
            digests(
              'Every PCR 0 measurement except the separator (S-CRTM version and contents, firmware volumes, POST code) and boot applications PCR 4 measures before its separator.',
            ),
          ),
          shim: Type.Optional(digests('The first EV_EFI_BOOT_SERVICES_APPLICATION after the PCR 4 separator (its Authenticode digest).')),
          grub: Type.Optional(digests('The second boot application after the PCR 4 separator.')),
          grubFiles: Type.Optional(
            digests(
              "Every other PCR 9 measurement: grub.cfg, modules, fonts, the EFI stub's load options. When kernel, initrd or grubFiles is set, every PCR 9 measurement must be in kernel + initrd + grubFiles.",
            ),
          ),
          kernel: Type.Optional(
            digests('Every later boot application in PCR 4 (Authenticode digest), and kernel files GRUB measures into PCR 9 (plain file hash).'),
          ),
          initrd: Type.Optional(digests("Initrds GRUB (PCR 9 file) or the kernel's EFI stub (PCR 9 EV_EVENT_TAG) measure; one must be present.")),
        },
        {
          additionalProperties: false,
          description: 'Allowed digests per boot stage (BOOT_COMPONENT_NOT_ALLOWED / BOOT_COMPONENT_MISSING). A stage that is absent is not checked.',
        },
      ),
    ),
    kernelCmdline: Type.Optional(
      Type.Object(
        {
          pattern: Type.String({
            maxLength: MAX_CMDLINE_PATTERN,
            description:
              "An ECMAScript regular expression (u flag) that must match the whole command line, including GRUB's leading BOOT_IMAGE=<kernel path>. It must compile.",
          }),
        },
        {
          additionalProperties: false,
          description: 'GRUB\'s "kernel_cmdline: " strings in PCR 8 (digest over the string). Each must match; none measured is KERNEL_CMDLINE_NOT_ALLOWED.',
        },
      ),
    ),
  },
  { additionalProperties: false, title: 'One measured-boot policy' },
);

/** Several named policies in one document. */
export const MeasuredBootPolicyBundleSchema = Type.Object(
  {
    $schema: Type.Optional(Type.String({ maxLength: 1024 })),
    policies: Type.Array(MeasuredBootPolicySchema, { minItems: 1, maxItems: MAX_POLICIES, description: 'Names must be unique.' }),
  },
  {
    additionalProperties: false,
    description: 'Several named policies in one document (for example one per hardware model); bulwarkctl picks one with --name.',
  },
);

/** A measured-boot policy document: one policy, or a bundle of named policies. */
export const MeasuredBootPolicyDocumentSchema = Type.Union([MeasuredBootPolicySchema, MeasuredBootPolicyBundleSchema], {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  $id: 'https://bulwark.invalid/schemas/measured-boot-policy.json',
  title: 'Bulwark measured-boot policy',
  description:
    'What a boot must look like, judged on the events of a TCG PC Client event log that replayed against a verified quote. Generated from the schema in lib/eventlog/policy.ts, which the validator uses; checked after it: digest lengths follow "bank", patterns compile, bundle names are unique. Only the checks a policy sets are made; a policy that sets none is refused unless it says "acceptAll": true. Each check needs its PCR proven by the quote in the policy\'s bank, else EVENTLOG_PCR_NOT_QUOTED: secureBoot PCR 7, stages.firmware PCR 0, stages.shim/grub/kernel PCR 4, stages.kernel/initrd/grubFiles PCR 9, kernelCmdline PCR 8.',
});

/** One policy as the schema admits it, before the checks that follow it. */
export type MeasuredBootPolicyJson = Static<typeof MeasuredBootPolicySchema>;

const POLICY = defineDocument(MeasuredBootPolicySchema, WHAT, CODE);
const BUNDLE = defineDocument(MeasuredBootPolicyBundleSchema, WHAT, CODE);

// ---------------------------------------------------------------------------------------------
// What the schema cannot say

/** A failed check after the schema, in the schema layer's form (JSON pointer in details.path). */
function invalid(path: string, message: string, source?: string): BulwarkError {
  const from = source === undefined ? '' : ` (${source})`;
  return new BulwarkError(CODE, `${WHAT}${from} is invalid at ${path === '' ? '/' : path}: ${message}`, { path, ...(source === undefined ? {} : { source }) });
}

/** Lower-cased digests, each of `octets` octets (the schema checked they are hex). */
function digestSet(list: readonly string[], path: string, octets: number, source: string | undefined): Set<string> {
  list.forEach((d, i) => {
    if (d.length !== octets * 2) throw invalid(`${path}/${i}`, `must be ${octets * 2} hex digits`, source);
  });
  return new Set(list.map((d) => d.toLowerCase()));
}

/** Compiles a command line pattern anchored at both ends. */
export function compileCmdlinePattern(pattern: string, path = '/kernelCmdline/pattern', source?: string): RegExp {
  try {
    return new RegExp(`^(?:${pattern})$`, 'u');
  } catch (err) {
    throw invalid(path, `is not a valid regular expression: ${err instanceof Error ? err.message : String(err)}`, source);
  }
}

/** The policy from its validated JSON at `path` (a JSON pointer): the checks that follow the schema. */
function policyFromJson(o: MeasuredBootPolicyJson, path: string, source: string | undefined): MeasuredBootPolicy {
  const { name, description } = o;
  const bankName: HashAlgName = o.bank ?? 'sha256';
  const bank = HASH_ALGS_BY_NAME.get(bankName)?.alg ?? TPM_ALG.SHA256;
  const digestSize = HASH_ALGS.get(bank)?.size ?? 32;
  const acceptAll = o.acceptAll ?? false;
  const allowSha1OnlyLog = o.allowSha1OnlyLog ?? false;
  const checks: string[] = [];

  let secureBoot: SecureBootRequirement | undefined;
  const sb = o.secureBoot;
  if (sb !== undefined) {
    const sp = `${path}/secureBoot`;
    const set = (key: 'pk' | 'kek' | 'db' | 'authorities'): ReadonlySet<string> | undefined => {
      const list = sb[key];
      if (list === undefined) return undefined;
      checks.push(`secureBoot.${key}`);
      return digestSet(list, `${sp}/${key}`, 32, source);
    };
    if (sb.enabled !== undefined) checks.push('secureBoot.enabled');
    const dbxRequired = sb.dbxRequired === undefined ? undefined : [...digestSet(sb.dbxRequired, `${sp}/dbxRequired`, 32, source)];
    if (dbxRequired !== undefined) checks.push('secureBoot.dbxRequired');
    secureBoot = { enabled: sb.enabled, pk: set('pk'), kek: set('kek'), db: set('db'), dbxRequired, authorities: set('authorities') };
  }

  const stages: Partial<Record<BootStage, ReadonlySet<string>>> = {};
  const st = o.stages;
  if (st !== undefined) {
    for (const stage of BOOT_STAGES) {
      const list = st[stage];
      if (list === undefined) continue;
      stages[stage] = digestSet(list, `${path}/stages/${stage}`, digestSize, source);
      checks.push(`stages.${stage}`);
    }
  }

  let kernelCmdline: { pattern: string; regex: RegExp } | undefined;
  if (o.kernelCmdline !== undefined) {
    const { pattern } = o.kernelCmdline;
    kernelCmdline = { pattern, regex: compileCmdlinePattern(pattern, `${path}/kernelCmdline/pattern`, source) };
    checks.push('kernelCmdline');
  }

  const warnings: string[] = [];
  if (acceptAll) {
    if (checks.length > 0) throw invalid(`${path}/acceptAll`, `cannot be combined with checks (${checks.join(', ')})`, source);
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
  if (allowSha1OnlyLog) warnings.push(`policy "${name}" accepts event logs with SHA-1 digests only ("allowSha1OnlyLog": true); SHA-1 is broken for collisions`);
  return { name, description, bank, acceptAll, allowSha1OnlyLog, secureBoot, stages, kernelCmdline, warnings };
}

/**
 * Validates one policy object (already parsed JSON, e.g. from the policy store): the schema,
 * then the checks that follow it. MEASURED_BOOT_POLICY_INVALID (JSON pointer in details.path)
 * or MEASURED_BOOT_POLICY_CHECKS_NOTHING on bad input.
 */
export function validateMeasuredBootPolicy(value: unknown, source?: string): MeasuredBootPolicy {
  return policyFromJson(POLICY.parse(value, source), '', source);
}

/**
 * Parses a measured-boot policy document: one policy object, or `{ "policies": [ ... ] }`
 * with unique names, as JSON or as YAML (the same schema; strict YAML as lib/schema reads
 * it: no tags, no merge keys, unique string keys, aliases capped). Untrusted text in;
 * MEASURED_BOOT_POLICY_INVALID (with the JSON pointer) or MEASURED_BOOT_POLICY_CHECKS_NOTHING
 * out on bad input.
 */
export function parseMeasuredBootPolicies(text: string, source?: string, format: DocumentFormat = 'json'): MeasuredBootPolicy[] {
  if (text.length > MAX_POLICY_DOCUMENT_SIZE) throw invalid('', `the document is larger than ${MAX_POLICY_DOCUMENT_SIZE} characters`, source);
  const value = parseDocumentText(text, format, WHAT, CODE, source, MAX_POLICY_DOCUMENT_SIZE);
  // A bundle is told apart by its "policies" key; anything else must be one policy.
  if (typeof value === 'object' && value !== null && !Array.isArray(value) && Object.prototype.hasOwnProperty.call(value, 'policies')) {
    const bundle = BUNDLE.parse(value, source);
    const out = bundle.policies.map((p, i) => policyFromJson(p, `/policies/${i}`, source));
    const names = new Set<string>();
    out.forEach((p, i) => {
      if (names.has(p.name)) throw invalid(`/policies/${i}/name`, `"${p.name}" is used twice`, source);
      names.add(p.name);
    });
    return out;
  }
  return [validateMeasuredBootPolicy(value, source)];
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
  const bank = HASH_ALGS.get(policy.bank)?.name ?? 'sha256';
  const sb = policy.secureBoot;
  const doc = {
    $schema: './schema.json',
    name: policy.name,
    description: policy.description,
    bank,
    acceptAll: policy.acceptAll ? true : undefined,
    allowSha1OnlyLog: policy.allowSha1OnlyLog ? true : undefined,
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
