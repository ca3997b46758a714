/**
 * Host facts: what an agent reports about its machine (inventory, not evidence — nothing
 * here is attested by the TPM). The shape mirrors `HostFacts` in
 * proto/bulwark/v1/common.proto. The controller receives facts from agents, so
 * `validateHostFacts` is a schema check at a trust boundary: exact keys, types, caps.
 */
import { createHash } from 'node:crypto';
import { BulwarkError } from './errors.js';

/** One block device of the host. */
export interface HostDisk {
  /** Device path ("/dev/nvme0n1"). */
  readonly device: string;
  /** Medium as systeminformation names it ("HDD", "SSD", "NVMe"), or empty. */
  readonly type: string;
  readonly sizeBytes: number;
  readonly serial: string;
}

/** One non-loopback network interface of the host. */
export interface HostNetworkInterface {
  readonly name: string;
  readonly mac: string;
  /** IPv4 and IPv6 addresses, without prefix length. */
  readonly addresses: readonly string[];
}

/** What an agent reports about its host; unknown values are empty strings or 0. Self-reported, unattested. */
export interface HostFacts {
  readonly hostname: string;
  readonly osDistro: string;
  readonly osRelease: string;
  readonly kernel: string;
  readonly arch: string;
  /** CPU manufacturer and brand ("AMD EPYC 7302"). */
  readonly cpu: string;
  /** Logical CPU cores. */
  readonly cpuCores: number;
  readonly memoryBytes: number;
  readonly disks: readonly HostDisk[];
  readonly interfaces: readonly HostNetworkInterface[];
  /** /etc/machine-id (32 hex digits), or empty. */
  readonly machineId: string;
  readonly systemManufacturer: string;
  readonly systemModel: string;
  readonly systemSerial: string;
  readonly systemUuid: string;
  readonly boardManufacturer: string;
  readonly boardModel: string;
  readonly boardSerial: string;
}

/** Caps on host facts, shared by the collector (which truncates) and the validator (which refuses). */
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

const STRING_KEYS = [
  'hostname',
  'osDistro',
  'osRelease',
  'kernel',
  'arch',
  'cpu',
  'machineId',
  'systemManufacturer',
  'systemModel',
  'systemSerial',
  'systemUuid',
  'boardManufacturer',
  'boardModel',
  'boardSerial',
] as const;
const FACT_KEYS: readonly string[] = [...STRING_KEYS, 'cpuCores', 'memoryBytes', 'disks', 'interfaces'];
const DISK_KEYS: readonly string[] = ['device', 'type', 'sizeBytes', 'serial'];
const INTERFACE_KEYS: readonly string[] = ['name', 'mac', 'addresses'];

/** C0 and C1 control characters and DEL: nothing a fact needs, and terminal escapes in bulwarkctl output. */
const CONTROL_CHARS = /[\u0000-\u001f\u007f-\u009f]/;
const CONTROL_CHARS_GLOBAL = /[\u0000-\u001f\u007f-\u009f]/g;
/** A UTF-16 surrogate without its partner: not encodable as UTF-8 (protobuf strings). */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const LONE_SURROGATE_GLOBAL = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

function fail(path: string, why: string): BulwarkError {
  return new BulwarkError('EVIDENCE_MALFORMED', `host facts: ${path} ${why}`, { field: path });
}

/** A plain data object (from JSON or a protobuf decoder): Object.prototype or null prototype, nothing else. */
function plainObject(value: unknown, path: string): object {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw fail(path, 'is not an object');
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) throw fail(path, 'is not a plain object');
  return value;
}

/**
 * The own data properties of `obj`, which must be exactly `keys`: a missing, unknown
 * (`__proto__`, `constructor`, ...) or accessor property is refused.
 */
function exactFields(obj: object, keys: readonly string[], path: string): Map<string, unknown> {
  const own = Reflect.ownKeys(obj);
  if (own.length > keys.length * 2) throw fail(path, `has ${own.length} properties`);
  const out = new Map<string, unknown>();
  for (const key of own) {
    if (typeof key !== 'string' || !keys.includes(key)) throw fail(path, `has an unknown property ${JSON.stringify(String(key)).slice(0, 40)}`);
    const desc = Object.getOwnPropertyDescriptor(obj, key);
    if (desc === undefined || !('value' in desc)) throw fail(`${path}.${key}`, 'is not a data property');
    out.set(key, desc.value);
  }
  for (const key of keys) if (!out.has(key)) throw fail(`${path}.${key}`, 'is missing');
  return out;
}

function checkString(value: unknown, path: string, cap: number): string {
  if (typeof value !== 'string') throw fail(path, 'is not a string');
  if (value.length > cap) throw fail(path, `is longer than ${cap} characters`);
  if (CONTROL_CHARS.test(value)) throw fail(path, 'contains a control character');
  if (LONE_SURROGATE.test(value)) throw fail(path, 'is not valid Unicode');
  return value;
}

function checkCount(value: unknown, path: string, max: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0 || value > max) throw fail(path, `is not an integer in 0..${max}`);
  return value;
}

function checkList(value: unknown, path: string, cap: number): readonly unknown[] {
  if (!Array.isArray(value)) throw fail(path, 'is not a list');
  if (value.length > cap) throw fail(path, `has more than ${cap} items`);
  const out: unknown[] = [];
  for (let i = 0; i < value.length; i++) {
    if (!Object.prototype.hasOwnProperty.call(value, i)) throw fail(`${path}[${i}]`, 'is a hole');
    out.push(value[i]);
  }
  return out;
}

function validateDisk(value: unknown, path: string): HostDisk {
  const f = exactFields(plainObject(value, path), DISK_KEYS, path);
  return {
    device: checkString(f.get('device'), `${path}.device`, FACTS_LIMITS.string),
    type: checkString(f.get('type'), `${path}.type`, FACTS_LIMITS.string),
    sizeBytes: checkCount(f.get('sizeBytes'), `${path}.sizeBytes`, Number.MAX_SAFE_INTEGER),
    serial: checkString(f.get('serial'), `${path}.serial`, FACTS_LIMITS.string),
  };
}

function validateInterface(value: unknown, path: string): HostNetworkInterface {
  const f = exactFields(plainObject(value, path), INTERFACE_KEYS, path);
  return {
    name: checkString(f.get('name'), `${path}.name`, FACTS_LIMITS.string),
    mac: checkString(f.get('mac'), `${path}.mac`, FACTS_LIMITS.string),
    addresses: checkList(f.get('addresses'), `${path}.addresses`, FACTS_LIMITS.addressesPerInterface).map((a, i) =>
      checkString(a, `${path}.addresses[${i}]`, FACTS_LIMITS.string),
    ),
  };
}

function validateUnchecked(value: unknown): HostFacts {
  const f = exactFields(plainObject(value, 'facts'), FACT_KEYS, 'facts');
  const text = (key: (typeof STRING_KEYS)[number]): string => checkString(f.get(key), key, key === 'hostname' ? FACTS_LIMITS.hostname : FACTS_LIMITS.string);
  return {
    hostname: text('hostname'),
    osDistro: text('osDistro'),
    osRelease: text('osRelease'),
    kernel: text('kernel'),
    arch: text('arch'),
    cpu: text('cpu'),
    cpuCores: checkCount(f.get('cpuCores'), 'cpuCores', FACTS_LIMITS.cpuCores),
    memoryBytes: checkCount(f.get('memoryBytes'), 'memoryBytes', Number.MAX_SAFE_INTEGER),
    disks: checkList(f.get('disks'), 'disks', FACTS_LIMITS.disks).map((d, i) => validateDisk(d, `disks[${i}]`)),
    interfaces: checkList(f.get('interfaces'), 'interfaces', FACTS_LIMITS.interfaces).map((d, i) => validateInterface(d, `interfaces[${i}]`)),
    machineId: text('machineId'),
    systemManufacturer: text('systemManufacturer'),
    systemModel: text('systemModel'),
    systemSerial: text('systemSerial'),
    systemUuid: text('systemUuid'),
    boardManufacturer: text('boardManufacturer'),
    boardModel: text('boardModel'),
    boardSerial: text('boardSerial'),
  };
}

/**
 * Checks untrusted host facts (from an agent, over the wire or from JSON) and returns a
 * fresh copy holding exactly the known fields: every key present, no other key
 * (`__proto__`, `constructor` included), plain objects with data properties only,
 * strings capped (FACTS_LIMITS) and free of control characters and lone surrogates,
 * counts non-negative safe integers, lists capped. Throws EVIDENCE_MALFORMED naming the field.
 */
export function validateHostFacts(value: unknown): HostFacts {
  try {
    return validateUnchecked(value);
  } catch (err) {
    if (err instanceof BulwarkError) throw err;
    // A Proxy or exotic object whose traps throw: still a typed error, never a TypeError.
    throw new BulwarkError('EVIDENCE_MALFORMED', 'host facts cannot be read', {}, { cause: err });
  }
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

/** JSON with object keys sorted (UTF-16 code unit order) at every level, no whitespace. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (typeof value === 'object' && value !== null) {
    const entries = Object.entries(value).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/**
 * SHA-256 (lower-case hex) of the canonical JSON of the facts (sorted keys, list order
 * kept), so an agent sends facts only when they change. Validates first: only a
 * well-formed facts object has a digest. Equal digest means equal facts, nothing more.
 */
export function factsDigest(facts: HostFacts): string {
  return createHash('sha256').update(canonicalJson(validateHostFacts(facts)), 'utf8').digest('hex');
}
