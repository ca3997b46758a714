/**
 * Controller configuration, layered: defaults → /etc/bulwark/controller.json (or
 * --config / BULWARK_CONTROLLER_CONFIG) → environment. Parsing is pure; loading reads the file.
 */
import { readFile } from 'node:fs/promises';
import { BulwarkError } from '../../lib/index.js';
import { isLogLevel, LOG_LEVELS, type LogLevel } from '../../daemon/index.js';

export interface ControllerConfig {
  readonly dataDir: string;
  /** null: start an embedded `nats-server -js` in dataDir. */
  readonly natsUrl: string | null;
  /** Embedded server port (0: a free one). */
  readonly natsPort: number;
  /** The NATS URL given to agents at enrollment (default: the one the controller uses). */
  readonly natsAdvertiseUrl: string | null;
  /** gRPC listen address host:port. */
  readonly grpcListen: string;
  /** Directory of PEM EK CA certificates (roots and intermediates). */
  readonly ekCaDir: string;
  /** sha256 hex of EK TPMT_PUBLIC bytes accepted without a certificate. */
  readonly ekAllowList: readonly string[];
  readonly pcrSelection: string;
  /** How often agents push evidence. */
  readonly intervalMs: number;
  /** How often the controller pulls evidence from each node (a fresh challenge). */
  readonly pullIntervalMs: number;
  readonly staleAfterMs: number;
  readonly nonceTtlMs: number;
  readonly enrollTtlMs: number;
  /** Name of this replica in leases. */
  readonly replicaId: string;
  /** Nomad HTTP API (e.g. http://127.0.0.1:4646); null: no placement gate. */
  readonly nomadAddr: string | null;
  /** Nomad ACL token; null: NOMAD_TOKEN from the environment. Never logged. */
  readonly nomadToken: string | null;
  /** Drain untrusted nodes (their allocations move to trusted ones), not only make them ineligible. */
  readonly nomadDrain: boolean;
  readonly nomadDrainDeadlineMs: number;
  /** A trusted verdict older than this does not keep a node eligible (0: staleAfterMs). */
  readonly nomadFreshnessMs: number;
  readonly nomadReconcileIntervalMs: number;
  /** Bulwark node id → Nomad node name, where they differ. */
  readonly nomadNodeMap: Readonly<Record<string, string>>;
  /** The application catalogue: one NAME.nomad.hcl per app. */
  readonly appsDir: string;
  /** Least severe level logged: trace, debug, info, warn, error or fatal. */
  readonly logLevel: LogLevel;
}

export const CONTROLLER_DEFAULTS: ControllerConfig = {
  dataDir: '/var/lib/bulwark-controller',
  natsUrl: null,
  natsPort: 4222,
  natsAdvertiseUrl: null,
  grpcListen: '127.0.0.1:7443',
  ekCaDir: '/etc/bulwark/ek-ca',
  ekAllowList: [],
  // 0-7 firmware and Secure Boot, 8-9 GRUB, kernel, initrd and command line, 10 IMA, 14 shim's MOK lists.
  pcrSelection: 'sha256:0,1,2,3,4,5,6,7,8,9,10,14',
  intervalMs: 30_000,
  pullIntervalMs: 60_000,
  staleAfterMs: 120_000,
  nonceTtlMs: 30_000,
  enrollTtlMs: 120_000,
  replicaId: '',
  nomadAddr: null,
  nomadToken: null,
  nomadDrain: true,
  nomadDrainDeadlineMs: 5 * 60_000,
  nomadFreshnessMs: 0,
  nomadReconcileIntervalMs: 5000,
  nomadNodeMap: {},
  appsDir: '/usr/share/bulwark/apps',
  logLevel: 'info',
};

const ENV: Readonly<Record<string, keyof ControllerConfig>> = {
  BULWARK_DATA_DIR: 'dataDir',
  BULWARK_NATS_URL: 'natsUrl',
  BULWARK_NATS_PORT: 'natsPort',
  BULWARK_NATS_ADVERTISE_URL: 'natsAdvertiseUrl',
  BULWARK_GRPC_LISTEN: 'grpcListen',
  BULWARK_EK_CA_DIR: 'ekCaDir',
  BULWARK_PCR_SELECTION: 'pcrSelection',
  BULWARK_INTERVAL_MS: 'intervalMs',
  BULWARK_PULL_INTERVAL_MS: 'pullIntervalMs',
  BULWARK_STALE_AFTER_MS: 'staleAfterMs',
  BULWARK_NONCE_TTL_MS: 'nonceTtlMs',
  BULWARK_REPLICA_ID: 'replicaId',
  BULWARK_NOMAD_ADDR: 'nomadAddr',
  BULWARK_APPS_DIR: 'appsDir',
  NOMAD_TOKEN: 'nomadToken',
  BULWARK_LOG_LEVEL: 'logLevel',
};

const NUMBER_KEYS: ReadonlySet<keyof ControllerConfig> = new Set([
  'natsPort',
  'intervalMs',
  'pullIntervalMs',
  'staleAfterMs',
  'nonceTtlMs',
  'enrollTtlMs',
  'nomadDrainDeadlineMs',
  'nomadFreshnessMs',
  'nomadReconcileIntervalMs',
]);
const NULLABLE_KEYS: ReadonlySet<keyof ControllerConfig> = new Set(['natsUrl', 'natsAdvertiseUrl', 'nomadAddr', 'nomadToken']);

function invalid(key: string, why: string): never {
  throw new BulwarkError('CONFIG_INVALID', `controller config ${key}: ${why}`, { key });
}

function isKey(k: string): k is keyof ControllerConfig {
  return Object.prototype.hasOwnProperty.call(CONTROLLER_DEFAULTS, k);
}

/** Merges layers (parsed JSON objects) and env over the defaults, checking every value. */
export function parseControllerConfig(layers: readonly unknown[], env: Readonly<Record<string, string | undefined>>): ControllerConfig {
  const out: Record<string, unknown> = { ...CONTROLLER_DEFAULTS };
  for (const layer of layers) {
    if (typeof layer !== 'object' || layer === null || Array.isArray(layer)) invalid('(file)', 'not a JSON object');
    for (const [k, v] of Object.entries(layer)) {
      if (!isKey(k)) invalid(k, 'unknown key');
      out[k] = v;
    }
  }
  for (const [name, key] of Object.entries(ENV)) {
    const v = env[name];
    if (v === undefined || v === '') continue;
    out[key] = NUMBER_KEYS.has(key) ? Number(v) : v;
  }
  for (const key of Object.keys(CONTROLLER_DEFAULTS)) {
    if (!isKey(key)) continue;
    const v = out[key];
    if (NUMBER_KEYS.has(key)) {
      if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) invalid(key, 'must be a non-negative integer');
    } else if (key === 'nomadDrain') {
      if (typeof v !== 'boolean') invalid(key, 'must be true or false');
    } else if (key === 'nomadNodeMap') {
      if (typeof v !== 'object' || v === null || Array.isArray(v) || !Object.values(v).every((x) => typeof x === 'string')) invalid(key, 'must map node ids to Nomad node names');
    } else if (key === 'ekAllowList') {
      if (!Array.isArray(v) || !v.every((x) => typeof x === 'string' && /^[0-9a-f]{64}$/.test(x))) invalid(key, 'must be a list of sha256 hex strings');
    } else if (key === 'logLevel') {
      if (!isLogLevel(v)) invalid(key, `must be one of ${LOG_LEVELS.join(', ')}`);
    } else if (NULLABLE_KEYS.has(key)) {
      if (v !== null && typeof v !== 'string') invalid(key, 'must be a string or null');
    } else if (typeof v !== 'string') {
      invalid(key, 'must be a string');
    }
  }
  if (!/^[^:]+:\d+$/.test(String(out['grpcListen']))) invalid('grpcListen', 'must be host:port');
  const ms = (k: keyof ControllerConfig): number => Number(out[k]);
  if (ms('intervalMs') < 100 || ms('pullIntervalMs') < 100) invalid('intervalMs', 'intervals must be at least 100 ms');
  if (ms('staleAfterMs') <= ms('intervalMs')) invalid('staleAfterMs', 'must be longer than intervalMs');
  return {
    dataDir: String(out['dataDir']),
    natsUrl: out['natsUrl'] === null ? null : String(out['natsUrl']),
    natsPort: ms('natsPort'),
    natsAdvertiseUrl: out['natsAdvertiseUrl'] === null ? null : String(out['natsAdvertiseUrl']),
    grpcListen: String(out['grpcListen']),
    ekCaDir: String(out['ekCaDir']),
    ekAllowList: Array.isArray(out['ekAllowList']) ? out['ekAllowList'].map(String) : [],
    pcrSelection: String(out['pcrSelection']),
    intervalMs: ms('intervalMs'),
    pullIntervalMs: ms('pullIntervalMs'),
    staleAfterMs: ms('staleAfterMs'),
    nonceTtlMs: ms('nonceTtlMs'),
    enrollTtlMs: ms('enrollTtlMs'),
    replicaId: String(out['replicaId']),
    nomadAddr: out['nomadAddr'] === null ? null : String(out['nomadAddr']),
    nomadToken: out['nomadToken'] === null ? null : String(out['nomadToken']),
    nomadDrain: out['nomadDrain'] === true,
    nomadDrainDeadlineMs: ms('nomadDrainDeadlineMs'),
    nomadFreshnessMs: ms('nomadFreshnessMs'),
    nomadReconcileIntervalMs: ms('nomadReconcileIntervalMs'),
    nomadNodeMap: stringMap(out['nomadNodeMap']),
    appsDir: String(out['appsDir']),
    logLevel: isLogLevel(out['logLevel']) ? out['logLevel'] : CONTROLLER_DEFAULTS.logLevel,
  };
}

function stringMap(v: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (typeof v === 'object' && v !== null) for (const [k, x] of Object.entries(v)) if (typeof x === 'string') out[k] = x;
  return out;
}

/** Reads the config file (a missing default file means defaults) and applies env. */
export async function loadControllerConfig(path: string | undefined, env: Readonly<Record<string, string | undefined>> = process.env): Promise<ControllerConfig> {
  const file = path ?? env['BULWARK_CONTROLLER_CONFIG'] ?? '/etc/bulwark/controller.json';
  let layers: unknown[] = [];
  try {
    const text = await readFile(file, 'utf8');
    try {
      layers = [JSON.parse(text)];
    } catch (err) {
      throw new BulwarkError('CONFIG_INVALID', `${file} is not valid JSON`, {}, { cause: err });
    }
  } catch (err) {
    if (err instanceof BulwarkError) throw err;
    const missing = typeof err === 'object' && err !== null && Reflect.get(err, 'code') === 'ENOENT';
    if (!missing || path !== undefined) throw new BulwarkError('CONFIG_INVALID', `cannot read ${file}`, {}, { cause: err });
  }
  return parseControllerConfig(layers, env);
}
