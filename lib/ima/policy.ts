/**
 * IMA runtime policies: what may run on a host. Pure.
 *
 * A policy allows, per path, one or more digests; excludes paths by regular expression;
 * names the digests of keys that may be loaded onto kernel keyrings (ima-buf entries of
 * func=KEY_CHECK) and of other ima-buf critical data (kernel_version, selinux-policy-hash,
 * ...); and lists the public keys ima-sig signatures must verify against.
 *
 * Two JSON forms are read and written:
 * - Bulwark's own (`kind: "bulwark.ima-runtime-policy"`), with "<algorithm>:<hex>" digests,
 *   PEM keys and a release number and generation time;
 * - Keylime's runtime policy (keylime/ima/ima.py RUNTIME_POLICY_SCHEMA, version 1):
 *   {meta: {version, generator, timestamp?}, release, digests: {path: [hex]}, excludes: [regex],
 *   keyrings: {name: [hex]}, ima: {ignored_keyrings, log_hash_alg, dm_policy: null},
 *   "ima-buf": {name: [hex]}, "verification-keys": "" or the JSON of an ImaKeyring
 *   ({pubkeys: [base64 DER SubjectPublicKeyInfo], keyids: [int]}, keylime/ima/file_signatures.py)}.
 *   It is imported unchanged and exported back. Keylime digests carry no algorithm; it is
 *   inferred from their length. dm_policy (device-mapper rules) is not supported: a policy
 *   with one is refused rather than half-applied.
 *
 * Every JSON input is validated by the schema layer against the TypeBox schemas below (the
 * source of policies/runtime/schema.json), then by the checks JSON Schema cannot express;
 * a failure is IMA_POLICY_INVALID with the JSON pointer in details.path.
 *
 * Evaluation follows Keylime (keylime/ima/ima.py _validate_ima_ng/_sig/_buf) with these
 * deliberate differences, all stricter:
 * - a violation entry is always a finding (IMA_VIOLATION): its path is not covered by the
 *   PCR, so no exclude may hide it;
 * - an ima-sig signature made with a key the policy lists must verify; if it does not, the
 *   entry is refused (IMA_SIGNATURE_INVALID) even when its digest is listed. A signature by a
 *   key the policy does not list falls back to the digest list, as in Keylime;
 * - an ima-buf entry's digest must be the hash of its buffer;
 * - an ima-modsig entry's appended signature (PKCS#7 over d-modsig) by a listed key allows
 *   it; a malformed one, or one over another digest or algorithm, is IMA_SIGNATURE_INVALID;
 * - an fs-verity digest (ima-ngv2/ima-sigv2 "verity:") is never matched against the digest
 *   list (its bytes hash the fsverity_descriptor, not the content): only an
 *   IMA_VERITY_DIGSIG signature by a listed key allows it.
 * Excludes are matched like Keylime's re.match: anchored at the start of the path only.
 */
import { createHash, createPublicKey, X509Certificate, type KeyObject } from 'node:crypto';
import { Type, type TString } from '@sinclair/typebox';
import { toHex } from '../bytes.js';
import { BulwarkError } from '../errors.js';
import { defineDocument, literalUnion, parseJsonText } from '../schema/index.js';
import { HASH_ALG_NAMES, isHashAlgName } from '../tpm/index.js';
import { finding, type Finding } from '../verdict.js';
import { AllowedPairIndex } from './pair-index.js';
import { computeImaKeyId, verifyImaSignature } from './signature.js';
import { verifyImaModsig } from './modsig.js';
import { imaReplayKind } from './replay.js';
import { IMA_HASH_ALGOS, imaHashSize, isImaHashAlgorithmName, type ImaEntry, type ImaHashAlgorithmName, type ImaReplayKind, type ImaTemplateHashAlgorithm, type RecordedImaEntries, type SelfReplayedImaEntries, type VerifiedImaEntries } from './types.js';

/** The `kind` of Bulwark's policy JSON. */
export const RUNTIME_POLICY_KIND = 'bulwark.ima-runtime-policy';
export const RUNTIME_POLICY_VERSION = 1;
/** The Keylime runtime policy format version supported (RUNTIME_POLICY_CURRENT_VERSION). */
export const KEYLIME_POLICY_VERSION = 1;

/** Caps on policy contents, checked before anything is built. */
export const RUNTIME_POLICY_LIMITS = {
  /** A policy document's JSON text (a whole distribution's files are a few hundred MB at most; V8 strings stop near 512 MiB). */
  documentBytes: 512 * 1024 * 1024,
  paths: 5_000_000,
  digestsPerPath: 256,
  /** PATH_MAX. */
  pathBytes: 4096,
  excludes: 10_000,
  excludeLength: 4096,
  keys: 1024,
  names: 100_000,
} as const;

/** An allowed digest. The algorithm is informative: entries match on the digest bytes, as in Keylime. */
export interface PolicyDigest {
  readonly algorithm: string;
  readonly value: Uint8Array;
}

/** A public key ima-sig signatures may be made with. */
export interface RuntimePolicyKey {
  readonly keyId: number;
  readonly key: KeyObject;
}

/** A validated runtime policy. Trusted as far as its source (a signed policy file) is. */
export interface RuntimePolicy {
  /** Policy version, raised with every rollout (Keylime's "release"). */
  readonly release: number;
  /** When it was generated (ISO 8601 from Bulwark; Keylime's meta.timestamp as is), when known. */
  readonly generatedAt: string | null;
  /** What made it ("bulwarkctl policy runtime create --rootfs ..."), when known. */
  readonly generator: string | null;
  readonly digests: ReadonlyMap<string, readonly PolicyDigest[]>;
  readonly excludes: readonly string[];
  readonly keyrings: ReadonlyMap<string, readonly PolicyDigest[]>;
  /** Keyrings whose key measurements are accepted unchecked ("*": all). */
  readonly ignoredKeyrings: readonly string[];
  readonly imaBuf: ReadonlyMap<string, readonly PolicyDigest[]>;
  readonly verificationKeys: readonly RuntimePolicyKey[];
  /** Algorithm of the list's template hash column (Keylime ima.log_hash_alg); 'sha1' for the classic files. */
  readonly logHashAlgorithm: ImaTemplateHashAlgorithm;
  /** Keylime meta.generator, kept for a faithful export. */
  readonly keylimeGenerator: number;
}

// ---------------------------------------------------------------------------------------------
// Schemas (the source of policies/runtime/schema.json) and what is checked after them

const WHAT = 'runtime policy';
const CODE = 'IMA_POLICY_INVALID';

/** A JSON pointer from segments (RFC 6901: "~" as "~0", "/" as "~1"), as the schema layer writes them. */
function pointer(...segments: readonly (string | number)[]): string {
  return segments.map((x) => `/${String(x).replace(/~/g, '~0').replace(/\//g, '~1')}`).join('');
}

/** A failed check after the schema, in the schema layer's form (JSON pointer in details.path). */
function invalid(path: string, why: string): BulwarkError {
  return new BulwarkError(CODE, `${WHAT} is invalid at ${path === '' ? '/' : path}: ${why}`, { path });
}

function nonNegativeInt(v: number, path: string): number {
  if (!Number.isSafeInteger(v) || v < 0) throw invalid(path, 'not a non-negative integer');
  return v;
}

/** A path or name: non-empty, no NUL, at most PATH_MAX bytes, and no U+FFFD (so a name IMA logged as invalid UTF-8 can never equal one). */
function policyName(name: string, path: string | (() => string)): string {
  const where = (): string => (typeof path === 'string' ? path : path());
  if (name.length === 0) throw invalid(where(), 'empty name');
  if (name.includes('\u0000') || name.includes('\ufffd')) throw invalid(where(), 'name contains NUL or U+FFFD');
  // A UTF-16 code unit is at most 3 UTF-8 bytes: only long names need counting.
  if (name.length * 3 > RUNTIME_POLICY_LIMITS.pathBytes && Buffer.byteLength(name, 'utf8') > RUNTIME_POLICY_LIMITS.pathBytes) {
    throw invalid(where(), `name longer than ${RUNTIME_POLICY_LIMITS.pathBytes} bytes`);
  }
  return name;
}

/** Algorithm inferred from a Keylime hex digest's length, preferring the common ones. */
const ALGO_BY_SIZE: ReadonlyMap<number, ImaHashAlgorithmName> = (() => {
  const m = new Map<number, ImaHashAlgorithmName>();
  for (const name of [...HASH_ALG_NAMES, 'sha224'] as const) {
    const size = imaHashSize(name);
    if (size !== undefined && !m.has(size)) m.set(size, name);
  }
  for (const a of IMA_HASH_ALGOS) if (!m.has(a.size)) m.set(a.size, a.name);
  return m;
})();

/** A JSON pointer made only when an error needs it (policies hold millions of paths). */
type LazyPath = () => string;

function keylimeDigest(hex: string, path: LazyPath): PolicyDigest {
  // The schema checked ^[0-9a-f]{40,128}$ (Keylime's pattern); the length must also make whole bytes.
  const algorithm = hex.length % 2 === 0 ? ALGO_BY_SIZE.get(hex.length / 2) : undefined;
  if (algorithm === undefined) throw invalid(path(), `no hash algorithm makes ${hex.length / 2}-byte digests`);
  return { algorithm, value: new Uint8Array(Buffer.from(hex, 'hex')) };
}

function bulwarkDigest(text: string, path: LazyPath): PolicyDigest {
  // The schema checked "<algorithm>:<lowercase hex>".
  const colon = text.indexOf(':');
  const algorithm = text.slice(0, colon);
  const hex = text.slice(colon + 1);
  const size = isImaHashAlgorithmName(algorithm) ? imaHashSize(algorithm) : undefined;
  if (size === undefined || !isImaHashAlgorithmName(algorithm)) throw invalid(path(), `unknown hash algorithm ${algorithm}`);
  if (hex.length !== 2 * size) throw invalid(path(), `a ${algorithm} digest has ${2 * size} hex digits`);
  return { algorithm, value: new Uint8Array(Buffer.from(hex, 'hex')) };
}

function digestMap(v: Readonly<Record<string, readonly string[]>>, path: string, parse: (x: string, p: LazyPath) => PolicyDigest): Map<string, PolicyDigest[]> {
  const out = new Map<string, PolicyDigest[]>();
  for (const name of Object.keys(v)) {
    const list = v[name] ?? [];
    const at = (): string => `${path}${pointer(name)}`;
    policyName(name, at);
    const digests: PolicyDigest[] = [];
    for (let i = 0; i < list.length; i++) digests.push(parse(list[i] ?? '', () => `${at()}/${i}`));
    out.set(name, digests);
  }
  return out;
}

/** Each exclude must compile on its own, so joining them cannot change any one's meaning. */
function excludeList(list: readonly string[], path: string): string[] {
  if (list.length > RUNTIME_POLICY_LIMITS.excludes) throw invalid(path, `more than ${RUNTIME_POLICY_LIMITS.excludes} items`);
  list.forEach((re, i) => {
    if (re.length === 0 || re.length > RUNTIME_POLICY_LIMITS.excludeLength) throw invalid(`${path}/${i}`, `empty or longer than ${RUNTIME_POLICY_LIMITS.excludeLength}`);
    try {
      new RegExp(re);
    } catch (err) {
      throw invalid(`${path}/${i}`, `not a regular expression: ${err instanceof Error ? err.message : String(err)}`);
    }
  });
  return [...list];
}

function publicKeyFromDer(der: Uint8Array, path: string): KeyObject {
  try {
    return createPublicKey({ key: Buffer.from(der), format: 'der', type: 'spki' });
  } catch {
    throw invalid(path, 'not a DER SubjectPublicKeyInfo');
  }
}

/** A PEM public key or certificate. */
function keyFromPem(pem: string, path: string): KeyObject {
  if (pem.includes('BEGIN CERTIFICATE')) {
    try {
      return new X509Certificate(pem).publicKey;
    } catch {
      throw invalid(path, 'not a PEM certificate');
    }
  }
  let key: KeyObject;
  try {
    key = createPublicKey({ key: pem, format: 'pem' });
  } catch {
    throw invalid(path, 'not a PEM public key');
  }
  if (key.type !== 'public') throw invalid(path, 'not a public key');
  return key;
}

function checkKey(key: KeyObject, path: string): void {
  if (key.asymmetricKeyType !== 'rsa' && key.asymmetricKeyType !== 'ec') throw invalid(path, `unsupported key type ${key.asymmetricKeyType ?? 'unknown'}`);
}

/** Keylime's RUNTIME_POLICY_GENERATOR values: Unknown 0 .. LegacyAllowList 3. */
const KEYLIME_GENERATOR_MAX = 3;

const uint = (options: { maximum?: number; description?: string } = {}) => Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER, ...options });
const digestLists = (item: TString, maxProperties: number, description: string) =>
  Type.Record(Type.String(), Type.Array(item, { minItems: 1, maxItems: RUNTIME_POLICY_LIMITS.digestsPerPath }), { maxProperties, description });
const excludes = Type.Array(Type.String({ minLength: 1, maxLength: RUNTIME_POLICY_LIMITS.excludeLength }), {
  maxItems: RUNTIME_POLICY_LIMITS.excludes,
  description: 'Regular expressions (ECMAScript, each must compile on its own) matched at the start of a path, like Keylime\'s re.match.',
});
const BULWARK_DIGEST = Type.String({ pattern: '^[a-z0-9-]{2,16}:[0-9a-f]+$', description: '"<kernel hash algorithm>:<lowercase hex>".' });
const KEYLIME_DIGEST = Type.String({ pattern: '^[0-9a-f]{40,128}$', description: 'Lowercase hex; the algorithm is inferred from the length.' });

/** Bulwark's own runtime policy JSON. */
export const RuntimePolicySchema = Type.Object(
  {
    $schema: Type.Optional(Type.String({ maxLength: 1024, description: 'Where an editor finds this schema (policies/runtime/schema.json); not read.' })),
    kind: Type.Literal(RUNTIME_POLICY_KIND),
    version: Type.Literal(RUNTIME_POLICY_VERSION),
    release: uint({ description: 'Raised with every rollout.' }),
    // Imported Keylime timestamps are Python's str(datetime), so any short text is kept as is.
    generatedAt: Type.Optional(Type.Union([Type.String({ maxLength: 64 }), Type.Null()])),
    generator: Type.Optional(Type.Union([Type.String(), Type.Null()])),
    logHashAlgorithm: literalUnion(HASH_ALG_NAMES, { description: 'Algorithm of the list\'s template hash column.' }),
    digests: digestLists(BULWARK_DIGEST, RUNTIME_POLICY_LIMITS.paths, 'Allowed digests per absolute path.'),
    excludes,
    keyrings: digestLists(BULWARK_DIGEST, RUNTIME_POLICY_LIMITS.names, 'Allowed digests of keys per keyring (ima-buf entries of func=KEY_CHECK).'),
    ignoredKeyrings: Type.Array(Type.String(), { maxItems: RUNTIME_POLICY_LIMITS.names, description: 'Keyrings whose key measurements are accepted unchecked ("*": all).' }),
    imaBuf: digestLists(BULWARK_DIGEST, RUNTIME_POLICY_LIMITS.names, 'Allowed digests of other ima-buf critical data, per name.'),
    verificationKeys: Type.Array(
      Type.Object(
        {
          keyId: Type.Union([Type.Integer({ minimum: 0, maximum: 0xffffffff }), Type.String({ pattern: '^[0-9a-f]{8}$' })], { description: '32-bit key id (8 hex digits).' }),
          publicKey: Type.String({ description: 'PEM public key or certificate (RSA or EC).' }),
        },
        { additionalProperties: false },
      ),
      { maxItems: RUNTIME_POLICY_LIMITS.keys, description: 'Keys ima-sig signatures must verify against.' },
    ),
    keylimeGenerator: Type.Optional(uint({ maximum: KEYLIME_GENERATOR_MAX })),
  },
  { additionalProperties: false, title: 'Bulwark IMA runtime policy' },
);

/**
 * Keylime's runtime policy, as keylime/ima/ima.py RUNTIME_POLICY_SCHEMA admits it: extra
 * fields are allowed where Keylime allows them (meta, the keyring JSON); `rules` must be
 * empty and `ima.dm_policy` null (what Bulwark cannot honour is refused, not half-applied).
 */
export const KeylimeRuntimePolicySchema = Type.Object(
  {
    meta: Type.Object(
      {
        version: Type.Literal(KEYLIME_POLICY_VERSION),
        generator: Type.Optional(uint({ maximum: KEYLIME_GENERATOR_MAX })),
        timestamp: Type.Optional(Type.String({ maxLength: 64 })),
      },
      { additionalProperties: true },
    ),
    release: uint(),
    digests: digestLists(KEYLIME_DIGEST, RUNTIME_POLICY_LIMITS.paths, 'Allowed digests per absolute path.'),
    excludes,
    keyrings: digestLists(KEYLIME_DIGEST, RUNTIME_POLICY_LIMITS.names, 'Allowed digests of keys per keyring.'),
    ima: Type.Object(
      {
        ignored_keyrings: Type.Array(Type.String(), { maxItems: RUNTIME_POLICY_LIMITS.names }),
        log_hash_alg: literalUnion(HASH_ALG_NAMES),
        dm_policy: Type.Optional(Type.Null({ description: 'Device-mapper policies are not supported.' })),
      },
      { additionalProperties: false },
    ),
    'ima-buf': digestLists(KEYLIME_DIGEST, RUNTIME_POLICY_LIMITS.names, 'Allowed digests of ima-buf critical data, per name.'),
    'verification-keys': Type.String({ description: '"" or the JSON of a Keylime ImaKeyring {pubkeys: [base64 DER], keyids: [int]}, possibly JSON-encoded twice.' }),
    rules: Type.Optional(Type.Literal('', { description: 'Keylime policy rules are not supported.' })),
  },
  { additionalProperties: false, title: 'Keylime runtime policy (version 1)' },
);

/** A runtime policy file: Bulwark's form (it has `kind`) or Keylime's. */
export const RuntimePolicyDocumentSchema = Type.Union([RuntimePolicySchema, KeylimeRuntimePolicySchema], {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  $id: 'https://bulwark.invalid/schemas/ima-runtime-policy.json',
  title: 'Bulwark IMA runtime policy',
  description:
    'What may run on a host: allowed digests per path, excludes, keyring and ima-buf digests, ima-sig verification keys. Bulwark\'s own form (kind "bulwark.ima-runtime-policy") or a Keylime runtime policy imported as is. Generated from the schemas in lib/ima/policy.ts, which the validator uses; checked after them: digest lengths follow their algorithm, names are non-empty without NUL or U+FFFD and at most 4096 bytes, excludes compile, keys are RSA or EC public keys.',
});

/** The keyring JSON inside Keylime's "verification-keys" (keylime/ima/file_signatures.py ImaKeyring.to_json). */
const KeylimeKeyringSchema = Type.Object(
  {
    pubkeys: Type.Array(Type.String({ pattern: '^[A-Za-z0-9+/]+={0,2}$' }), { maxItems: RUNTIME_POLICY_LIMITS.keys }),
    keyids: Type.Optional(Type.Array(Type.Union([Type.Integer({ minimum: 0, maximum: 0xffffffff }), Type.Null()]))),
  },
  { additionalProperties: true },
);

const BULWARK_POLICY = defineDocument(RuntimePolicySchema, WHAT, CODE);
const KEYLIME_POLICY = defineDocument(KeylimeRuntimePolicySchema, WHAT, CODE);
const KEYLIME_KEYRING = defineDocument(KeylimeKeyringSchema, 'keyring', CODE);

/** Runs a parse of a document nested in a string field at `path`, its error paths rebased onto `path`. */
function nested<T>(path: string, parse: () => T): T {
  try {
    return parse();
  } catch (err) {
    if (!(err instanceof BulwarkError)) throw err;
    const inner = typeof err.details['path'] === 'string' ? err.details['path'] : '';
    throw new BulwarkError(CODE, `${WHAT} is invalid at ${path}${inner}: ${err.message}`, { path: `${path}${inner}` }, { cause: err });
  }
}

function keyIdFrom(v: number | string): number {
  return typeof v === 'number' ? v : Number.parseInt(v, 16);
}

// ---------------------------------------------------------------------------------------------
// Bulwark's JSON form

/** The JSON Bulwark writes for a runtime policy. */
export interface RuntimePolicyJson {
  readonly kind: typeof RUNTIME_POLICY_KIND;
  readonly version: typeof RUNTIME_POLICY_VERSION;
  readonly release: number;
  readonly generatedAt: string | null;
  readonly generator: string | null;
  readonly logHashAlgorithm: ImaTemplateHashAlgorithm;
  readonly digests: Readonly<Record<string, readonly string[]>>;
  readonly excludes: readonly string[];
  readonly keyrings: Readonly<Record<string, readonly string[]>>;
  readonly ignoredKeyrings: readonly string[];
  readonly imaBuf: Readonly<Record<string, readonly string[]>>;
  readonly verificationKeys: readonly { readonly keyId: string; readonly publicKey: string }[];
  readonly keylimeGenerator: number;
}

/** Validates Bulwark's policy JSON (already parsed). Throws IMA_POLICY_INVALID with the JSON pointer. */
export function parseRuntimePolicy(value: unknown): RuntimePolicy {
  const doc = BULWARK_POLICY.parse(value);
  const verificationKeys = doc.verificationKeys.map((k, i): RuntimePolicyKey => {
    const p = `/verificationKeys/${i}/publicKey`;
    const key = keyFromPem(k.publicKey, p);
    checkKey(key, p);
    return { keyId: keyIdFrom(k.keyId), key };
  });
  return {
    release: doc.release,
    generatedAt: doc.generatedAt ?? null,
    generator: doc.generator ?? null,
    logHashAlgorithm: doc.logHashAlgorithm,
    digests: digestMap(doc.digests, '/digests', bulwarkDigest),
    excludes: excludeList(doc.excludes, '/excludes'),
    keyrings: digestMap(doc.keyrings, '/keyrings', bulwarkDigest),
    ignoredKeyrings: doc.ignoredKeyrings,
    imaBuf: digestMap(doc.imaBuf, '/imaBuf', bulwarkDigest),
    verificationKeys,
    keylimeGenerator: doc.keylimeGenerator ?? 0,
  };
}

function digestStrings(map: ReadonlyMap<string, readonly PolicyDigest[]>, withAlgorithm: boolean): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const [name, list] of map) out[name] = list.map((d) => (withAlgorithm ? `${d.algorithm}:${toHex(d.value)}` : toHex(d.value)));
  return out;
}

function keyIdHex(keyId: number): string {
  return keyId.toString(16).padStart(8, '0');
}

/** Bulwark's JSON form of a policy (for JSON.stringify). */
export function formatRuntimePolicy(policy: RuntimePolicy): RuntimePolicyJson {
  return {
    kind: RUNTIME_POLICY_KIND,
    version: RUNTIME_POLICY_VERSION,
    release: policy.release,
    generatedAt: policy.generatedAt,
    generator: policy.generator,
    logHashAlgorithm: policy.logHashAlgorithm,
    digests: digestStrings(policy.digests, true),
    excludes: [...policy.excludes],
    keyrings: digestStrings(policy.keyrings, true),
    ignoredKeyrings: [...policy.ignoredKeyrings],
    imaBuf: digestStrings(policy.imaBuf, true),
    verificationKeys: policy.verificationKeys.map((k) => ({ keyId: keyIdHex(k.keyId), publicKey: k.key.export({ format: 'pem', type: 'spki' }).toString() })),
    keylimeGenerator: policy.keylimeGenerator,
  };
}

// ---------------------------------------------------------------------------------------------
// Keylime's JSON form

/** Keylime's runtime policy JSON (keylime/ima/types.py RuntimePolicyType). */
export interface KeylimeRuntimePolicy {
  readonly meta: { readonly version: number; readonly generator: number; readonly timestamp?: string };
  readonly release: number;
  readonly digests: Readonly<Record<string, readonly string[]>>;
  readonly excludes: readonly string[];
  readonly keyrings: Readonly<Record<string, readonly string[]>>;
  readonly ima: { readonly ignored_keyrings: readonly string[]; readonly log_hash_alg: ImaTemplateHashAlgorithm; readonly dm_policy: null };
  readonly 'ima-buf': Readonly<Record<string, readonly string[]>>;
  readonly 'verification-keys': string;
}


/**
 * The keys of Keylime's "verification-keys": "" for none, else the JSON of an ImaKeyring,
 * possibly JSON-encoded once more (ImaKeyring.from_string accepts both).
 */
function keylimeVerificationKeys(text: string, path: string): RuntimePolicyKey[] {
  if (text === '') return [];
  const keyring = nested(path, () => {
    const value = parseJsonText(text, 'keyring', CODE);
    return KEYLIME_KEYRING.parse(typeof value === 'string' ? parseJsonText(value, 'keyring', CODE) : value);
  });
  const keyids = keyring.keyids ?? [];
  if (keyids.length > keyring.pubkeys.length) throw invalid(`${path}/keyids`, 'more key ids than keys');
  return keyring.pubkeys.map((b64, i) => {
    const p = `${path}/pubkeys/${i}`;
    const key = publicKeyFromDer(Buffer.from(b64, 'base64'), p);
    checkKey(key, p);
    const id = keyids[i];
    return { keyId: id === undefined || id === null ? computeImaKeyId(key) : id, key };
  });
}

/**
 * Imports a Keylime runtime policy (already parsed) as is: validated against Keylime's
 * RUNTIME_POLICY_SCHEMA (KeylimeRuntimePolicySchema). Throws IMA_POLICY_INVALID with the
 * JSON pointer, also for what Bulwark cannot honour (dm_policy, rules).
 */
export function importKeylimeRuntimePolicy(value: unknown): RuntimePolicy {
  const doc = KEYLIME_POLICY.parse(value);
  return {
    release: doc.release,
    generatedAt: doc.meta.timestamp ?? null,
    generator: null,
    logHashAlgorithm: doc.ima.log_hash_alg,
    digests: digestMap(doc.digests, '/digests', keylimeDigest),
    excludes: excludeList(doc.excludes, '/excludes'),
    keyrings: digestMap(doc.keyrings, '/keyrings', keylimeDigest),
    ignoredKeyrings: doc.ima.ignored_keyrings,
    imaBuf: digestMap(doc['ima-buf'], '/ima-buf', keylimeDigest),
    verificationKeys: keylimeVerificationKeys(doc['verification-keys'], '/verification-keys'),
    keylimeGenerator: doc.meta.generator ?? 0,
  };
}

/** Keylime's JSON form of a policy (for JSON.stringify); imports back to an equal policy. */
export function exportKeylimeRuntimePolicy(policy: RuntimePolicy): KeylimeRuntimePolicy {
  const keys = policy.verificationKeys;
  return {
    meta: {
      version: KEYLIME_POLICY_VERSION,
      generator: policy.keylimeGenerator,
      ...(policy.generatedAt === null ? {} : { timestamp: policy.generatedAt }),
    },
    release: policy.release,
    digests: digestStrings(policy.digests, false),
    excludes: [...policy.excludes],
    keyrings: digestStrings(policy.keyrings, false),
    ima: { ignored_keyrings: [...policy.ignoredKeyrings], log_hash_alg: policy.logHashAlgorithm, dm_policy: null },
    'ima-buf': digestStrings(policy.imaBuf, false),
    'verification-keys':
      keys.length === 0
        ? ''
        : JSON.stringify({
            pubkeys: keys.map((k) => k.key.export({ format: 'der', type: 'spki' }).toString('base64')),
            keyids: keys.map((k) => k.keyId),
          }),
  };
}

/**
 * Reads policy JSON text in either form: Bulwark's (it has `kind`) or Keylime's.
 * Throws IMA_POLICY_INVALID (also for text that is not JSON).
 */
export function loadRuntimePolicy(text: string, source?: string): RuntimePolicy {
  const value = parseJsonText(text, WHAT, CODE, source, RUNTIME_POLICY_LIMITS.documentBytes);
  return typeof value === 'object' && value !== null && Object.prototype.hasOwnProperty.call(value, 'kind') ? parseRuntimePolicy(value) : importKeylimeRuntimePolicy(value);
}

// ---------------------------------------------------------------------------------------------
// Building (the generator's pure half)

/** A file the generator hashed, as IMA would measure it. */
export interface MeasuredFile {
  /** Absolute path as the host sees it ("/usr/bin/ls"). */
  readonly path: string;
  readonly digest: PolicyDigest;
}

export interface BuildRuntimePolicyOptions {
  readonly generatedAt: string;
  readonly generator: string;
  /** Default: the base's release + 1, or 1. */
  readonly release?: number;
  /** A previous policy to roll forward: its digests stay allowed next to the new ones (an update in progress), its keys and rules are kept. */
  readonly base?: RuntimePolicy;
  readonly excludes?: readonly string[];
  readonly logHashAlgorithm?: ImaTemplateHashAlgorithm;
}

function sameDigest(a: PolicyDigest, b: PolicyDigest): boolean {
  return a.value.length === b.value.length && Buffer.compare(a.value, b.value) === 0;
}

/** Builds a policy from measured files (several digests per path allowed). Throws IMA_POLICY_INVALID on a bad path or exclude. */
export function buildRuntimePolicy(files: Iterable<MeasuredFile>, options: BuildRuntimePolicyOptions): RuntimePolicy {
  const base = options.base;
  const digests = new Map<string, PolicyDigest[]>();
  if (base !== undefined) for (const [p, list] of base.digests) digests.set(p, [...list]);
  for (const f of files) {
    policyName(f.path, () => `/digests${pointer(f.path)}`);
    const list = digests.get(f.path);
    if (list === undefined) digests.set(f.path, [f.digest]);
    else if (!list.some((d) => sameDigest(d, f.digest))) {
      if (list.length >= RUNTIME_POLICY_LIMITS.digestsPerPath) throw invalid(`/digests${pointer(f.path)}`, 'too many digests');
      list.push(f.digest);
    }
  }
  const excludes = [...new Set([...(base?.excludes ?? []), ...(options.excludes ?? [])])];
  excludeList(excludes, '/excludes');
  const release = options.release ?? (base === undefined ? 1 : base.release + 1);
  nonNegativeInt(release, '/release');
  return {
    release,
    generatedAt: options.generatedAt,
    generator: options.generator,
    digests: new Map([...digests].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))),
    excludes,
    keyrings: base?.keyrings ?? new Map(),
    ignoredKeyrings: base?.ignoredKeyrings ?? [],
    imaBuf: base?.imaBuf ?? new Map(),
    verificationKeys: base?.verificationKeys ?? [],
    logHashAlgorithm: options.logHashAlgorithm ?? base?.logHashAlgorithm ?? 'sha1',
    keylimeGenerator: base?.keylimeGenerator ?? 0,
  };
}

// ---------------------------------------------------------------------------------------------
// Evaluation

/** What evaluation needs, worked out once per policy object. */
interface Compiled {
  readonly exclude: RegExp | null;
  readonly keys: ReadonlyMap<number, KeyObject>;
  readonly ignoredKeyrings: ReadonlySet<string>;
  readonly ignoreAllKeyrings: boolean;
  /** The allowed (path, digest) pairs as bytes, compared exactly as logged. */
  readonly pairs: AllowedPairIndex;
}

const compiledCache = new WeakMap<RuntimePolicy, Compiled>();

function compile(policy: RuntimePolicy): Compiled {
  const cached = compiledCache.get(policy);
  if (cached !== undefined) return cached;
  const exclude = policy.excludes.length === 0 ? null : new RegExp(`^(?:${policy.excludes.map((e) => `(?:${e})`).join('|')})`);
  const pairs: (readonly [string, Uint8Array])[] = [];
  for (const [path, list] of policy.digests) for (const d of list) pairs.push([path, d.value]);
  const compiled: Compiled = {
    exclude,
    keys: new Map(policy.verificationKeys.map((k) => [k.keyId, k.key])),
    ignoredKeyrings: new Set(policy.ignoredKeyrings),
    ignoreAllKeyrings: policy.ignoredKeyrings.includes('*'),
    pairs: new AllowedPairIndex(pairs),
  };
  compiledCache.set(policy, compiled);
  return compiled;
}

function listed(list: readonly PolicyDigest[] | undefined, digest: Uint8Array): boolean {
  if (list === undefined) return false;
  const n = digest.length;
  outer: for (let i = 0; i < list.length; i++) {
    const v = list[i]?.value;
    if (v === undefined || v.length !== n) continue;
    for (let j = 0; j < n; j++) if (v[j] !== digest[j]) continue outer;
    return true;
  }
  return false;
}

function digestText(e: ImaEntry): string {
  return `${e.digestAlgorithm}:${toHex(e.digest)}`;
}

/** Whether an ima-buf payload is a key (DER certificate or public key), as Keylime's get_pubkey decides. */
function isKeyPayload(buf: Uint8Array): boolean {
  try {
    new X509Certificate(Buffer.from(buf));
    return true;
  } catch {
    // not a certificate
  }
  try {
    createPublicKey({ key: Buffer.from(buf), format: 'der', type: 'spki' });
    return true;
  } catch {
    return false;
  }
}

const NODE_HASHES: ReadonlySet<string> = new Set(['md5', 'sha1', 'sha224', 'sha256', 'sha384', 'sha512', 'sm3', 'sha3-256', 'sha3-384', 'sha3-512']);

function evaluateBuffer(c: Compiled, policy: RuntimePolicy, e: ImaEntry, buffer: Uint8Array): Finding | undefined {
  const details = { entry: e.index, offset: e.offset, path: e.path, digest: digestText(e), template: e.template };
  // The kernel's d-ng of an ima-buf entry is the hash of its buf field (ima_main.c process_buffer_measurement).
  if (NODE_HASHES.has(e.digestAlgorithm)) {
    const h = createHash(e.digestAlgorithm).update(buffer).digest();
    if (!listed([{ algorithm: e.digestAlgorithm, value: h }], e.digest)) {
      return finding('IMA_BUF_UNEXPECTED', `ima-buf ${e.path}: the digest is not the hash of the buffer`, { ...details, rule: 'digest-mismatch' });
    }
  }
  if (isKeyPayload(buffer)) {
    if (c.ignoreAllKeyrings || c.ignoredKeyrings.has(e.path)) return undefined;
    if (listed(policy.keyrings.get(e.path), e.digest)) return undefined;
    if (c.exclude?.test(e.path) === true) return undefined;
    return finding('IMA_BUF_UNEXPECTED', `a key the policy does not allow was loaded onto keyring ${e.path}`, { ...details, rule: 'keyrings' });
  }
  if (listed(policy.imaBuf.get(e.path), e.digest)) return undefined;
  if (c.exclude?.test(e.path) === true) return undefined;
  return finding('IMA_BUF_UNEXPECTED', `ima-buf ${e.path} with a digest the policy does not expect`, {
    ...details,
    rule: policy.imaBuf.has(e.path) ? 'digest-not-listed' : 'name-not-listed',
  });
}

function evaluateFile(c: Compiled, policy: RuntimePolicy, e: ImaEntry): Finding | undefined {
  const check = e.signature !== null && c.keys.size > 0 ? verifyImaSignature(e.signature, e.digestAlgorithm, e.digest, c.keys, e.digestType) : null;
  if (check?.ok === true) return undefined;
  if (check !== null && !check.ok && check.reason !== 'unknown-key') {
    if (c.exclude?.test(e.path) === true) return undefined;
    return finding('IMA_SIGNATURE_INVALID', `the signature of ${e.path} does not verify (${check.reason})`, {
      entry: e.index,
      offset: e.offset,
      path: e.path,
      digest: digestText(e),
      reason: check.reason,
      keyId: check.keyId === undefined ? undefined : keyIdHex(check.keyId),
    });
  }
  // An appended signature (ima-modsig) by a trusted key allows the module as security.ima would;
  // one that is malformed, or whose digest or algorithm is not d-modsig's, is refused.
  if (e.modsig !== null && c.keys.size > 0) {
    const m = verifyImaModsig(e.modsig.signature, e.modsig.digestAlgorithm, e.modsig.digest, c.keys);
    if (m.ok) return undefined;
    if (m.reason !== 'unknown-key') {
      if (c.exclude?.test(e.path) === true) return undefined;
      return finding('IMA_SIGNATURE_INVALID', `the appended signature of ${e.path} does not verify (${m.reason})`, {
        entry: e.index,
        offset: e.offset,
        path: e.path,
        digest: digestText(e),
        reason: `modsig-${m.reason}`,
      });
    }
  }
  // The digest list holds hashes of file contents; an fs-verity digest (d-ngv2 "verity:") is a
  // hash of another thing and is never compared with them: only a signature allows it.
  const verity = e.digestType === 'verity';
  if (!verity && c.pairs.has(e)) return undefined;
  const list = policy.digests.get(e.path);
  if (c.exclude?.test(e.path) === true) return undefined;
  if (check !== null && !check.ok) {
    // Signed, but by a key the policy does not trust, and its digest is not listed either:
    // the binary ran on the strength of an untrusted signature.
    return finding('IMA_SIGNATURE_INVALID', `${e.path} is signed by key ${check.keyId === undefined ? '?' : keyIdHex(check.keyId)}, which the runtime policy does not trust, and its digest is not listed`, {
      entry: e.index,
      offset: e.offset,
      path: e.path,
      digest: digestText(e),
      reason: 'untrusted-key',
      keyId: check.keyId === undefined ? undefined : keyIdHex(check.keyId),
    });
  }
  const why = verity
    ? `${e.path} has an fs-verity digest and no signature by a key the runtime policy trusts`
    : list === undefined
      ? `${e.path} is not in the runtime policy`
      : `${e.path} has a digest the runtime policy does not allow`;
  return finding('IMA_DIGEST_NOT_ALLOWED', why, {
    entry: e.index,
    offset: e.offset,
    path: e.path,
    digest: digestText(e),
    template: e.template,
    reason: verity ? 'verity-digest-unsigned' : list === undefined ? 'path-not-listed' : 'digest-not-listed',
  });
}

export interface EvaluateImaOptions {
  /** Findings reported at most; the rest are counted in one IMA_FINDINGS_CAPPED. Default 1000. */
  readonly maxFindings?: number;
}

/**
 * Judges the quote-verified entries of a live node against a runtime policy; [] when every
 * entry is allowed. Findings: IMA_DIGEST_NOT_ALLOWED (path or digest not listed and not
 * excluded), IMA_SIGNATURE_INVALID, IMA_BUF_UNEXPECTED, IMA_VIOLATION, and
 * IMA_FINDINGS_CAPPED past `maxFindings`; each names the entry, its path and its digest.
 * Trust: `entries` replayed against a verified quote (replayImaEntries); `policy` is trusted.
 */
export function evaluateImaEntries(policy: RuntimePolicy, entries: VerifiedImaEntries, options: EvaluateImaOptions = {}): Finding[] {
  return evaluateEntries(policy, entries, options);
}

/**
 * evaluateImaEntries over the measurements a verifier recorded for a boot (a policy change
 * judges again what already ran). Trust: `entries` from the verifier's own state, of
 * segments its stored replay state says a quote proved; `policy` is trusted.
 */
export function evaluateRecordedImaEntries(policy: RuntimePolicy, entries: RecordedImaEntries, options: EvaluateImaOptions = {}): Finding[] {
  return evaluateEntries(policy, entries, options);
}

/**
 * What the policy would refuse among entries no quote proved (a list that does not replay):
 * for the analyst only, never a verdict on its own. Trust: none; the findings say what the
 * entries claim, which the TPM did not confirm.
 */
export function evaluateUnverifiedImaEntries(policy: RuntimePolicy, entries: readonly ImaEntry[], options: EvaluateImaOptions = {}): Finding[] {
  return evaluateEntries(policy, entries, options);
}

/** What evaluateImaEntriesOffline judged, and how far those entries were proven. */
export interface OfflineImaEvaluation {
  /** 'quoted' when the entries replayed against a verified quote; 'self-replayed' when only against a reference no quote proved. */
  readonly replay: ImaReplayKind;
  readonly findings: Finding[];
}

/**
 * evaluateImaEntries for offline forensics (`bulwarkctl ima check`): also accepts entries
 * replayed against a reference no quote proved (the log's own PCR 10, an operator's value),
 * and says in `replay` which kind it judged. Never the verdict on a live node.
 */
export function evaluateImaEntriesOffline(
  policy: RuntimePolicy,
  entries: SelfReplayedImaEntries | VerifiedImaEntries,
  options: EvaluateImaOptions = {},
): OfflineImaEvaluation {
  return { replay: imaReplayKind(entries), findings: evaluateEntries(policy, entries, options) };
}

function evaluateEntries(policy: RuntimePolicy, entries: readonly ImaEntry[], options: EvaluateImaOptions): Finding[] {
  const c = compile(policy);
  const max = options.maxFindings ?? 1000;
  const findings: Finding[] = [];
  let omitted = 0;
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i];
    if (e === undefined) continue;
    let f: Finding | undefined;
    if (e.violation) {
      f = finding('IMA_VIOLATION', `IMA recorded a violation for ${e.path} (path not covered by the PCR)`, {
        entry: e.index,
        offset: e.offset,
        path: e.path,
        template: e.template,
      });
    } else if (e.buffer !== null) f = evaluateBuffer(c, policy, e, e.buffer);
    else f = evaluateFile(c, policy, e);
    if (f === undefined) continue;
    if (findings.length < max) findings.push(f);
    else omitted++;
  }
  if (omitted > 0) findings.push(finding('IMA_FINDINGS_CAPPED', `${omitted} more IMA findings were left out`, { omitted }));
  return findings;
}

/** Checks that a template hash algorithm name is one the parsers accept (for CLI flags). */
export function isTemplateHashAlgorithm(name: string): name is ImaTemplateHashAlgorithm {
  return isHashAlgName(name);
}
