/**
 * bulwark-agent configuration, layered like rust-keylime's: built-in defaults, then the
 * JSON file (/etc/bulwark/agent.json, or --config / BULWARK_AGENT_CONFIG), then
 * environment variables. `parseAgentConfig` is pure (values in, config out) so every rule
 * is unit-tested; `loadAgentConfig` only adds reading the file.
 */
import { readFile } from 'node:fs/promises';
import { isAbsolute } from 'node:path';
import { BulwarkError } from '../lib/index.js';
import { formatPcrSelectionSpec, parsePcrSelectionSpec } from '../lib/tpm/index.js';
import { isLogLevel, LOG_LEVELS, type LogLevel } from '../daemon/index.js';
import type { TpmKeyAlgorithm } from './tpm.js';

/** The agent's settings after layering and validation. */
export interface AgentConfig {
  /** TPM2TOOLS_TCTI for tpm2-tools ("device:/dev/tpmrm0", "swtpm:host=127.0.0.1,port=2321"). */
  readonly tcti: string;
  /** gRPC address of the controller, host:port. */
  readonly controller: string;
  /** NATS server URL, or null to talk to the controller over gRPC only. */
  readonly natsUrl: string | null;
  /** Absolute path of the agent's state directory. */
  readonly dataDir: string;
  /** Milliseconds between timer-driven attestation rounds. */
  readonly intervalMs: number;
  /** Node id; null lets the agent derive one. */
  readonly nodeId: string | null;
  readonly ekType: TpmKeyAlgorithm;
  readonly akAlg: TpmKeyAlgorithm;
  /** Persistent handle of the AK. */
  readonly akHandle: number;
  /** PCRs to quote, tpm2-tools selection syntax. */
  readonly pcrSelection: string;
  /** Time limit of one tpm2-tools command. */
  readonly toolTimeoutMs: number;
  /** Linux boot id: changes at every boot (a TPM reset without a new one is a hidden reboot). */
  readonly bootIdPath: string;
  /** The UEFI event log (securityfs); null when the host has none to send. */
  readonly eventLogPath: string | null;
  /** The IMA measurement list (securityfs); null when the host runs without IMA. */
  readonly imaLogPath: string | null;
  /** Format of imaLogPath: the ascii or the binary securityfs file. */
  readonly imaFormat: 'ascii' | 'binary';
  /** The local Nomad client's node name (or ID) when it differs from nodeId; null: the same. */
  readonly nomadNode: string | null;
  /** Least severe level logged: trace, debug, info, warn, error or fatal. */
  readonly logLevel: LogLevel;
}

/** Built-in defaults, the first layer. */
export const AGENT_CONFIG_DEFAULTS: AgentConfig = {
  // The kernel's resource manager; the agent also works without one (swtpm, /dev/tpm0).
  tcti: 'device:/dev/tpmrm0',
  controller: '127.0.0.1:7443',
  natsUrl: null,
  dataDir: '/var/lib/bulwark-agent',
  intervalMs: 60_000,
  nodeId: null,
  ekType: 'rsa',
  akAlg: 'rsa',
  akHandle: 0x81010002,
  pcrSelection: 'sha256:0,1,2,3,4,5,6,7,8,9,10,14',
  // A hardware TPM can take tens of seconds to generate an RSA key (tpm2_createek/createak).
  toolTimeoutMs: 60_000,
  bootIdPath: '/proc/sys/kernel/random/boot_id',
  eventLogPath: '/sys/kernel/security/tpm0/binary_bios_measurements',
  imaLogPath: '/sys/kernel/security/ima/ascii_runtime_measurements',
  imaFormat: 'ascii',
  nomadNode: null,
  logLevel: 'info',
};

/** Where the file layer is read unless --config or BULWARK_AGENT_CONFIG says otherwise. */
export const DEFAULT_AGENT_CONFIG_PATH = '/etc/bulwark/agent.json';

/** Environment variables that override a key (the last layer). */
export const AGENT_CONFIG_ENV: Readonly<Partial<Record<keyof AgentConfig, string>>> = {
  tcti: 'BULWARK_TCTI',
  controller: 'BULWARK_CONTROLLER',
  natsUrl: 'BULWARK_NATS_URL',
  dataDir: 'BULWARK_DATA_DIR',
  intervalMs: 'BULWARK_INTERVAL_MS',
  nodeId: 'BULWARK_NODE_ID',
  ekType: 'BULWARK_EK_TYPE',
  akHandle: 'BULWARK_AK_HANDLE',
  eventLogPath: 'BULWARK_EVENT_LOG',
  imaLogPath: 'BULWARK_IMA_LOG',
  nomadNode: 'BULWARK_NOMAD_NODE',
  logLevel: 'BULWARK_LOG_LEVEL',
};

/** Largest config file read. */
const MAX_CONFIG_FILE_BYTES = 1024 * 1024;
const MAX_TEXT = 1024;
const KEYS: readonly (keyof AgentConfig)[] = [
  'tcti',
  'controller',
  'natsUrl',
  'dataDir',
  'intervalMs',
  'nodeId',
  'ekType',
  'akAlg',
  'akHandle',
  'pcrSelection',
  'toolTimeoutMs',
  'bootIdPath',
  'eventLogPath',
  'imaLogPath',
  'imaFormat',
  'nomadNode',
  'logLevel',
];
/** Same alphabet as node ids on the wire (they become NATS subject tokens and KV keys). */
const NODE_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

function isKey(key: string): key is keyof AgentConfig {
  return KEYS.some((k) => k === key);
}

function invalid(key: string, source: string, why: string, cause?: unknown): BulwarkError {
  return new BulwarkError('CONFIG_INVALID', `config ${key} (${source}) ${why}`, { key, source }, cause === undefined ? undefined : { cause });
}

/** A value from a file (any JSON type) or from the environment (always a string). */
type Raw = { readonly value: unknown; readonly fromEnv: boolean };

function text(key: string, source: string, raw: Raw): string {
  if (typeof raw.value !== 'string') throw invalid(key, source, 'is not a string');
  if (raw.value.length === 0 || raw.value.length > MAX_TEXT) throw invalid(key, source, `must be 1-${MAX_TEXT} characters`);
  if (/[\u0000-\u001f\u007f]/.test(raw.value)) throw invalid(key, source, 'contains a control character');
  return raw.value;
}

function integer(key: string, source: string, raw: Raw, min: number, max: number): number {
  let n: number;
  if (raw.fromEnv || typeof raw.value === 'string') {
    const s = String(raw.value).trim();
    if (/^[0-9]+$/.test(s)) n = Number(s);
    else if (/^0x[0-9a-fA-F]+$/.test(s)) n = Number.parseInt(s.slice(2), 16);
    else throw invalid(key, source, `is not an integer: ${JSON.stringify(s.slice(0, 40))}`);
  } else if (typeof raw.value === 'number') {
    n = raw.value;
  } else {
    throw invalid(key, source, 'is not a number');
  }
  if (!Number.isSafeInteger(n) || n < min || n > max) throw invalid(key, source, `must be an integer in ${min}..${max}`);
  return n;
}

function keyAlgorithm(key: string, source: string, raw: Raw): TpmKeyAlgorithm {
  if (raw.value === 'rsa' || raw.value === 'ecc') return raw.value;
  throw invalid(key, source, 'must be "rsa" or "ecc"');
}

/** host:port, with an IPv6 host in brackets. */
function hostPort(key: string, source: string, raw: Raw): string {
  const s = text(key, source, raw);
  const m = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?):([0-9]{1,5})$/.exec(s);
  const port = m?.[3] === undefined ? 0 : Number(m[3]);
  if (m === null || port < 1 || port > 65535) throw invalid(key, source, `must be host:port, not ${JSON.stringify(s.slice(0, 80))}`);
  return s;
}

/** One value, checked for its key. A null is accepted only where the config allows null. */
function checkValue(key: keyof AgentConfig, source: string, raw: Raw): AgentConfig[keyof AgentConfig] {
  switch (key) {
    case 'tcti':
      return text(key, source, raw);
    case 'controller':
      return hostPort(key, source, raw);
    case 'natsUrl': {
      if (raw.value === null) return null;
      const s = text(key, source, raw);
      let url: URL;
      try {
        url = new URL(s);
      } catch (err) {
        throw invalid(key, source, 'is not a URL', err);
      }
      if (!['nats:', 'tls:', 'ws:', 'wss:'].includes(url.protocol)) throw invalid(key, source, 'must be a nats://, tls://, ws:// or wss:// URL');
      return s;
    }
    case 'dataDir': {
      const s = text(key, source, raw);
      if (!isAbsolute(s)) throw invalid(key, source, 'must be an absolute path');
      return s;
    }
    case 'intervalMs':
      return integer(key, source, raw, 100, 24 * 3600 * 1000);
    case 'nodeId': {
      if (raw.value === null) return null;
      const s = text(key, source, raw);
      if (!NODE_ID.test(s)) throw invalid(key, source, 'must be 1-128 characters of [A-Za-z0-9._-], starting with a letter or digit');
      return s;
    }
    case 'ekType':
    case 'akAlg':
      return keyAlgorithm(key, source, raw);
    case 'akHandle': {
      // Owner persistent range (TPM_HT_PERSISTENT, 0x81000000-0x817fffff).
      const n = integer(key, source, raw, 0x81000000, 0x817fffff);
      if (n === 0x81010001 || n === 0x81010016) throw invalid(key, source, 'is an EK handle');
      return n;
    }
    case 'pcrSelection': {
      const s = text(key, source, raw);
      try {
        return formatPcrSelectionSpec(parsePcrSelectionSpec(s));
      } catch (err) {
        throw invalid(key, source, `is not a PCR selection: ${err instanceof Error ? err.message : String(err)}`, err);
      }
    }
    case 'toolTimeoutMs':
      return integer(key, source, raw, 100, 600_000);
    case 'bootIdPath':
      return absolutePath(key, source, raw);
    case 'eventLogPath':
    case 'imaLogPath':
      return raw.value === null || (raw.fromEnv && raw.value === 'none') ? null : absolutePath(key, source, raw);
    case 'imaFormat':
      if (raw.value === 'ascii' || raw.value === 'binary') return raw.value;
      throw invalid(key, source, 'must be "ascii" or "binary"');
    case 'nomadNode': {
      if (raw.value === null) return null;
      const s = text(key, source, raw);
      if (s.length > 128) throw invalid(key, source, 'must be at most 128 characters');
      return s;
    }
    case 'logLevel':
      if (isLogLevel(raw.value)) return raw.value;
      throw invalid(key, source, `must be one of ${LOG_LEVELS.join(', ')}`);
  }
}

function absolutePath(key: string, source: string, raw: Raw): string {
  const s = text(key, source, raw);
  if (!isAbsolute(s)) throw invalid(key, source, 'must be an absolute path');
  return s;
}

/**
 * Layers configuration: AGENT_CONFIG_DEFAULTS, then each of `layers` in order (parsed
 * JSON objects; later wins; an unknown key, e.g. a typo, is refused), then the
 * BULWARK_* variables of `env` (an empty variable counts as unset). Every value is
 * checked; the first bad one throws CONFIG_INVALID with `details.key` (the JSON key)
 * and `details.source` ("layer N" or the variable's name). Pure: no I/O.
 */
export function parseAgentConfig(layers: readonly unknown[], env: Readonly<Record<string, string | undefined>>): AgentConfig {
  const merged: Record<keyof AgentConfig, AgentConfig[keyof AgentConfig]> = { ...AGENT_CONFIG_DEFAULTS };
  layers.forEach((layer, i) => {
    const source = `layer ${i}`;
    if (typeof layer !== 'object' || layer === null || Array.isArray(layer)) {
      throw new BulwarkError('CONFIG_INVALID', `config ${source} is not a JSON object`, { source });
    }
    for (const key of Object.keys(layer)) {
      if (!isKey(key)) throw invalid(key, source, 'is not a known setting');
      const value: unknown = Reflect.get(layer, key);
      merged[key] = checkValue(key, source, { value, fromEnv: false });
    }
  });
  for (const key of KEYS) {
    const name = AGENT_CONFIG_ENV[key];
    if (name === undefined) continue;
    const value = env[name];
    if (value === undefined || value === '') continue;
    merged[key] = checkValue(key, name, { value, fromEnv: true });
  }
  const pick = <K extends keyof AgentConfig>(key: K, ok: (v: unknown) => v is AgentConfig[K]): AgentConfig[K] => {
    const v = merged[key];
    if (!ok(v)) throw new BulwarkError('INTERNAL', `config ${key} lost its type while layering`, { key });
    return v;
  };
  const isString = (v: unknown): v is string => typeof v === 'string';
  const isNumber = (v: unknown): v is number => typeof v === 'number';
  const isStringOrNull = (v: unknown): v is string | null => v === null || typeof v === 'string';
  const isAlg = (v: unknown): v is TpmKeyAlgorithm => v === 'rsa' || v === 'ecc';
  return {
    tcti: pick('tcti', isString),
    controller: pick('controller', isString),
    natsUrl: pick('natsUrl', isStringOrNull),
    dataDir: pick('dataDir', isString),
    intervalMs: pick('intervalMs', isNumber),
    nodeId: pick('nodeId', isStringOrNull),
    ekType: pick('ekType', isAlg),
    akAlg: pick('akAlg', isAlg),
    akHandle: pick('akHandle', isNumber),
    pcrSelection: pick('pcrSelection', isString),
    toolTimeoutMs: pick('toolTimeoutMs', isNumber),
    bootIdPath: pick('bootIdPath', isString),
    eventLogPath: pick('eventLogPath', isStringOrNull),
    imaLogPath: pick('imaLogPath', isStringOrNull),
    imaFormat: pick('imaFormat', (v: unknown): v is 'ascii' | 'binary' => v === 'ascii' || v === 'binary'),
    nomadNode: pick('nomadNode', isStringOrNull),
    logLevel: pick('logLevel', isLogLevel),
  };
}

/**
 * Reads the agent's configuration: the file at `argvConfigPath` (from --config), else
 * BULWARK_AGENT_CONFIG, else /etc/bulwark/agent.json, then `env` on top. A missing default
 * file means defaults; a missing file that was named explicitly, unreadable or invalid
 * JSON, or a bad value throws CONFIG_INVALID naming the file.
 */
export async function loadAgentConfig(argvConfigPath?: string, env: Readonly<Record<string, string | undefined>> = process.env): Promise<AgentConfig> {
  const fromEnv = env['BULWARK_AGENT_CONFIG'];
  const explicit = argvConfigPath ?? (fromEnv === undefined || fromEnv === '' ? undefined : fromEnv);
  const path = explicit ?? DEFAULT_AGENT_CONFIG_PATH;
  let layers: unknown[] = [];
  let data: Buffer | null = null;
  try {
    data = await readFile(path);
  } catch (err) {
    const code = err instanceof Error && 'code' in err ? err.code : undefined;
    if (!(code === 'ENOENT' && explicit === undefined)) {
      throw new BulwarkError('CONFIG_INVALID', `cannot read config file ${path}: ${err instanceof Error ? err.message : String(err)}`, { path }, { cause: err });
    }
  }
  if (data !== null) {
    if (data.length > MAX_CONFIG_FILE_BYTES) throw new BulwarkError('CONFIG_INVALID', `config file ${path} is larger than ${MAX_CONFIG_FILE_BYTES} bytes`, { path });
    let parsed: unknown;
    try {
      parsed = JSON.parse(data.toString('utf8'));
    } catch (err) {
      throw new BulwarkError('CONFIG_INVALID', `config file ${path} is not JSON: ${err instanceof Error ? err.message : String(err)}`, { path }, { cause: err });
    }
    layers = [parsed];
  }
  try {
    return parseAgentConfig(layers, env);
  } catch (err) {
    const source = err instanceof BulwarkError ? err.details['source'] : undefined;
    if (err instanceof BulwarkError && err.code === 'CONFIG_INVALID' && typeof source === 'string' && source.startsWith('layer')) {
      throw new BulwarkError('CONFIG_INVALID', `${path}: ${err.message}`, { ...err.details, path }, { cause: err });
    }
    throw err;
  }
}
