/**
 * Host facts: what an agent reports about its machine (inventory, not evidence — nothing
 * here is attested by the TPM). The shape mirrors `HostFacts` in
 * proto/bulwark/v1/common.proto. The controller receives facts from agents, so
 * `validateHostFacts` is a schema check at a trust boundary (HostFactsSchema through the
 * schema layer, after a plain-data copy): exact keys, types, caps.
 */
import { createHash } from 'node:crypto';
import { Type, type Static } from '@sinclair/typebox';
import { BulwarkError } from '../errors.js';
import { canonicalJson, defineDocument } from '../schema/index.js';

/** Caps on host facts, shared by the collector (which truncates) and the schema (which refuses). */
export const FACTS_LIMITS = {
  /** RFC 1123: a host name is at most 253 characters; one more than that is refused. */
  hostname: 255,
  /** Any other text field. */
  string: 256,
  disks: 256,
  interfaces: 256,
  addressesPerInterface: 64,
  cpuCores: 1 << 20,
} as const;

/** C0 and C1 control characters and DEL: nothing a fact needs, and terminal escapes in bulwarkctl output. */
const CONTROL_CHARS_GLOBAL = /[\u0000-\u001f\u007f-\u009f]/g;
/** A UTF-16 surrogate without its partner: not encodable as UTF-8 (protobuf strings). */
const LONE_SURROGATE_GLOBAL = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/**
 * Fact text: no control character (C0, DEL, C1) and no lone surrogate, as UTF-16 code units
 * (the pattern is compiled without the u flag): every unit is printable and not a surrogate,
 * or a high surrogate followed by a low one.
 */
const FACT_TEXT_PATTERN = '^(?:[^\\u0000-\\u001f\\u007f-\\u009f\\ud800-\\udfff]|[\\ud800-\\udbff][\\udc00-\\udfff])*$';

const text = (maxLength: number = FACTS_LIMITS.string) => Type.String({ maxLength, pattern: FACT_TEXT_PATTERN });
const count = (maximum: number) => Type.Integer({ minimum: 0, maximum });

/** One block device of the host. */
export const HostDiskSchema = Type.Object(
  {
    /** Device path ("/dev/nvme0n1"). */
    device: text(),
    /** Medium as systeminformation names it ("HDD", "SSD", "NVMe"), or empty. */
    type: text(),
    sizeBytes: count(Number.MAX_SAFE_INTEGER),
    serial: text(),
  },
  { additionalProperties: false },
);
export type HostDisk = Static<typeof HostDiskSchema>;

/** One non-loopback network interface of the host. */
export const HostNetworkInterfaceSchema = Type.Object(
  {
    name: text(),
    mac: text(),
    /** IPv4 and IPv6 addresses, without prefix length. */
    addresses: Type.Array(text(), { maxItems: FACTS_LIMITS.addressesPerInterface }),
  },
  { additionalProperties: false },
);
export type HostNetworkInterface = Static<typeof HostNetworkInterfaceSchema>;

/**
 * What an agent reports about its host (HostFacts in proto/bulwark/v1/common.proto); unknown
 * values are empty strings or 0. Self-reported, unattested.
 */
export const HostFactsSchema = Type.Object(
  {
    hostname: text(FACTS_LIMITS.hostname),
    osDistro: text(),
    osRelease: text(),
    kernel: text(),
    arch: text(),
    /** CPU manufacturer and brand ("AMD EPYC 7302"). */
    cpu: text(),
    /** Logical CPU cores. */
    cpuCores: count(FACTS_LIMITS.cpuCores),
    memoryBytes: count(Number.MAX_SAFE_INTEGER),
    disks: Type.Array(HostDiskSchema, { maxItems: FACTS_LIMITS.disks }),
    interfaces: Type.Array(HostNetworkInterfaceSchema, { maxItems: FACTS_LIMITS.interfaces }),
    /** /etc/machine-id (32 hex digits), or empty. */
    machineId: text(),
    systemManufacturer: text(),
    systemModel: text(),
    systemSerial: text(),
    systemUuid: text(),
    boardManufacturer: text(),
    boardModel: text(),
    boardSerial: text(),
  },
  { additionalProperties: false },
);

/** What an agent reports about its host; unknown values are empty strings or 0. Self-reported, unattested. */
export type HostFacts = Static<typeof HostFactsSchema>;

const HOST_FACTS = defineDocument(HostFactsSchema, 'host facts object', 'EVIDENCE_MALFORMED');

/** Bounds of the copy made before the schema looks: deeper or wider than any valid facts object. */
const COPY_LIMITS = { depth: 4, keys: 64, items: Math.max(FACTS_LIMITS.disks, FACTS_LIMITS.interfaces, FACTS_LIMITS.addressesPerInterface) } as const;

function fail(path: string, why: string): BulwarkError {
  return new BulwarkError('EVIDENCE_MALFORMED', `host facts object is invalid at ${path === '' ? '/' : path}: ${why}`, { path });
}

/**
 * A fresh copy of plain data (from JSON or a protobuf decoder), read once: objects must have
 * Object.prototype or a null prototype, string keys and data properties only; arrays must
 * have no holes. Getters, proxies and exotic objects never reach the schema, and what the
 * schema checks is what is returned.
 */
function plainCopy(value: unknown, path: string, depth: number): unknown {
  if (typeof value !== 'object' || value === null) return value;
  if (depth > COPY_LIMITS.depth) throw fail(path, 'nests too deep');
  if (Array.isArray(value)) {
    if (value.length > COPY_LIMITS.items) throw fail(path, `has more than ${COPY_LIMITS.items} items`);
    const out: unknown[] = [];
    for (let i = 0; i < value.length; i++) {
      if (!Object.prototype.hasOwnProperty.call(value, i)) throw fail(`${path}/${i}`, 'is a hole');
      out.push(plainCopy(value[i], `${path}/${i}`, depth + 1));
    }
    return out;
  }
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) throw fail(path, 'is not a plain object');
  const own = Reflect.ownKeys(value);
  if (own.length > COPY_LIMITS.keys) throw fail(path, `has ${own.length} properties`);
  const out: Record<string, unknown> = {};
  for (const key of own) {
    if (typeof key !== 'string') throw fail(path, 'has a symbol property');
    const at = `${path}/${key.replace(/~/g, '~0').replace(/\//g, '~1')}`;
    const desc = Object.getOwnPropertyDescriptor(value, key);
    if (desc === undefined || !('value' in desc)) throw fail(at, 'is not a data property');
    // defineProperty keeps a "__proto__" key an own property (the schema then refuses it) instead of setting the prototype.
    Object.defineProperty(out, key, { value: plainCopy(desc.value, at, depth + 1), enumerable: true, writable: true, configurable: true });
  }
  return out;
}

/**
 * Checks untrusted host facts (from an agent, over the wire or from JSON) and returns a
 * fresh copy holding exactly the known fields: every key present, no other key
 * (`__proto__`, `constructor` included), plain objects with data properties only,
 * strings capped (FACTS_LIMITS) and free of control characters and lone surrogates,
 * counts non-negative safe integers, lists capped. Throws EVIDENCE_MALFORMED with the JSON
 * pointer of the field in details.path.
 */
export function validateHostFacts(value: unknown): HostFacts {
  let copy: unknown;
  try {
    copy = plainCopy(value, '', 0);
  } catch (err) {
    if (err instanceof BulwarkError) throw err;
    // A Proxy or exotic object whose traps throw: still a typed error, never a TypeError.
    throw new BulwarkError('EVIDENCE_MALFORMED', 'host facts cannot be read', {}, { cause: err });
  }
  return HOST_FACTS.parse(copy);
}

/**
 * Makes collected text fit the schema: control characters become spaces, lone surrogates
 * U+FFFD, surrounding space is trimmed and the result cut to `cap` characters (without
 * splitting a surrogate pair). Non-strings become ''. For the collector, not for input checks.
 */
export function sanitizeFactText(value: unknown, cap: number = FACTS_LIMITS.string): string {
  if (typeof value !== 'string') return '';
  let s = value.replace(CONTROL_CHARS_GLOBAL, ' ').replace(LONE_SURROGATE_GLOBAL, '\uFFFD').trim();
  if (s.length > cap) {
    s = s.slice(0, cap);
    // A high surrogate at the end lost its partner to the cut.
    if (/[\uD800-\uDBFF]$/.test(s)) s = s.slice(0, -1);
  }
  return s;
}

/**
 * SHA-256 (lower-case hex) of the canonical JSON of the facts (sorted keys, list order
 * kept), so an agent sends facts only when they change. Validates first: only a
 * well-formed facts object has a digest. Equal digest means equal facts, nothing more.
 */
export function factsDigest(facts: HostFacts): string {
  return createHash('sha256').update(canonicalJson(validateHostFacts(facts)), 'utf8').digest('hex');
}
