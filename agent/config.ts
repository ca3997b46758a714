/**
 * bulwark-agent configuration: one schema (with the defaults) and one table of
 * environment variables, layered by daemon/ like the controller's: defaults, then the
 * JSON file (/etc/bulwark/agent.json, or --config / BULWARK_AGENT_CONFIG), then the
 * drop-ins beside it (agent.d/*.json, in lexical order), then BULWARK_* variables.
 * `parseAgentConfig` is pure (values in, config out) so every rule is unit-tested;
 * `loadAgentConfig` only adds reading the files.
 */
import { Type, type Static } from '@sinclair/typebox';
import { configError, configSources, defineConfig, layerConfig, parseMetricsAddress, readConfigLayers, redactConfig, REDACTED, type ConfigLayer, type ConfigSources } from '../daemon/index.js';
import { IMA_FORMATS } from '../lib/attestation/index.js';
import { literalUnion } from '../lib/schema/index.js';
import { LOG_LEVELS } from '../daemon/index.js';
import { formatPcrSelectionSpec, parsePcrSelectionSpec } from '../lib/tpm/index.js';

/** Printable text: no control characters. */
const TEXT = '^[^\\x00-\\x1f\\x7f]+$';
const Text = (options: { default?: string; pattern?: string } = {}) => Type.String({ minLength: 1, maxLength: 1024, pattern: TEXT, ...options });
/** An absolute path. */
const ABSOLUTE = '^/[^\\x00-\\x1f\\x7f]*$';
/** host:port, with an IPv6 host in brackets (the port range is checked after the schema). */
const HOST_PORT = '^(\\[[0-9A-Fa-f:.]+\\]|[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?):[0-9]{1,5}$';
/** Same alphabet as node ids on the wire (they become NATS subject tokens and KV keys). */
const NODE_ID = '^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$';
const KeyAlgorithm = (fallback: 'rsa' | 'ecc') => literalUnion(['rsa', 'ecc'], { default: fallback });

/** The agent's settings: every key, its type and its default. Unknown keys are refused. */
export const AgentConfigSchema = Type.Object(
  {
    /** TPM2TOOLS_TCTI for tpm2-tools ("device:/dev/tpmrm0", "swtpm:host=127.0.0.1,port=2321"); the kernel's resource manager by default. */
    tcti: Text({ default: 'device:/dev/tpmrm0' }),
    /** gRPC address of the controller, host:port. */
    controller: Text({ default: '127.0.0.1:7443', pattern: HOST_PORT }),
    /** The controller's CA certificate (PEM file), pinned: the controller must present a certificate it issued. */
    controllerCa: Text({ default: '/etc/bulwark/controller-ca.pem', pattern: ABSOLUTE }),
    /** NATS server URL, or null to use the one the controller gives at enrollment. */
    natsUrl: Type.Union([Text({ pattern: '^(nats|tls|ws|wss)://[^\\x00-\\x20\\x7f]+$' }), Type.Null()], { default: null }),
    /**
     * PEM file of the CA the NATS server's certificate must chain to (the controller's CA
     * for its embedded server). Pinned from here, never taken from the controller's answer.
     */
    natsCaFile: Text({ default: '/etc/bulwark/nats-ca.pem', pattern: ABSOLUTE }),
    /** Absolute path of the agent's state directory. */
    dataDir: Text({ default: '/var/lib/bulwark-agent', pattern: ABSOLUTE }),
    /** Milliseconds between timer-driven attestation rounds. */
    intervalMs: Type.Integer({ minimum: 100, maximum: 24 * 3600 * 1000, default: 60_000 }),
    /** Node id; null lets the agent derive one (the hostname). */
    nodeId: Type.Union([Type.String({ pattern: NODE_ID }), Type.Null()], { default: null }),
    ekType: KeyAlgorithm('rsa'),
    akAlg: KeyAlgorithm('rsa'),
    /** Persistent handle of the AK, in the owner range; a number or 0x-hex text as tpm2-tools writes it. */
    akHandle: Type.Union([Type.Integer({ minimum: 0x81000000, maximum: 0x817fffff }), Type.String({ pattern: '^0x[0-9a-fA-F]{8}$' })], { default: 0x81010002 }),
    /** PCRs to quote, tpm2-tools selection syntax (normalized after the schema). */
    pcrSelection: Text({ default: 'sha256:0,1,2,3,4,5,6,7,8,9,10,14' }),
    /** Time limit of one tpm2-tools command; a hardware TPM can take tens of seconds to make an RSA key. */
    toolTimeoutMs: Type.Integer({ minimum: 100, maximum: 600_000, default: 60_000 }),
    /** Linux boot id: changes at every boot (a TPM reset without a new one is a hidden reboot). */
    bootIdPath: Text({ default: '/proc/sys/kernel/random/boot_id', pattern: ABSOLUTE }),
    /** The UEFI event log (securityfs); null when the host has none to send. */
    eventLogPath: Type.Union([Text({ pattern: ABSOLUTE }), Type.Null()], { default: '/sys/kernel/security/tpm0/binary_bios_measurements' }),
    /**
     * systemd's userspace measurement log (PCRs 11 and 15 after ExitBootServices), sent on
     * hosts booted with systemd-stub; a missing file is no log. null: never sent.
     */
    systemdLogPath: Type.Union([Text({ pattern: ABSOLUTE }), Type.Null()], { default: '/run/log/systemd/tpm2-measure.log' }),
    /** The IMA measurement list (securityfs); null when the host runs without IMA. */
    imaLogPath: Type.Union([Text({ pattern: ABSOLUTE }), Type.Null()], { default: '/sys/kernel/security/ima/ascii_runtime_measurements' }),
    /** Format of imaLogPath: the ascii or the binary securityfs file. */
    imaFormat: literalUnion(IMA_FORMATS, { default: 'ascii' }),
    /** The local Nomad client's node name (or ID) when it differs from nodeId; null: the same. */
    nomadNode: Type.Union([Type.String({ minLength: 1, maxLength: 128, pattern: TEXT }), Type.Null()], { default: null }),
    /** Host baseline reports (SELinux and nftables state, agent/baseline) in every round; false: none are read or sent. */
    baseline: Type.Boolean({ default: true }),
    /** Root under which the SELinux state is read (sys/fs/selinux, etc/selinux, var/lib/selinux); "/" on a host, a recorded tree in tests. */
    selinuxRoot: Text({ default: '/', pattern: ABSOLUTE }),
    /** The nft command as an argument prefix (no shell): ["nft"], or ["ip", "netns", "exec", "NS", "nft"] for a namespace. */
    nftCommand: Type.Array(Text(), { minItems: 1, maxItems: 16, default: ['nft'] }),
    /**
     * The PCR every baseline report's sha256 is extended into (sha256 bank). 13 by default:
     * not resettable without a reboot (16 and 23 are resettable at locality 0, 17-22 need
     * DRTM localities), not extended by firmware (0-7), GRUB (8, 9), IMA (10) or shim (14);
     * systemd-stub extends 11-13 and systemd 15 on UKI boots only, and of those 13 (system
     * extensions handed to the stub) is the one Debian hosts booted by shim and GRUB never
     * use. Change it on a host that does.
     */
    baselinePcr: Type.Integer({ minimum: 0, maximum: 23, default: 13 }),
    /**
     * PEM file of the public keys baselines must be signed by (the controller's baseline key
     * set; one or more "PUBLIC KEY" blocks): the agent verifies every baseline envelope itself
     * and refuses one that does not verify. null: baselines cannot be verified here, so they
     * are reported against but never enforced.
     */
    baselineKeys: Type.Union([Text({ pattern: ABSOLUTE }), Type.Null()], { default: null }),
    /** How many distinct baselineKeys must have signed a baseline. */
    baselineKeyThreshold: Type.Integer({ minimum: 1, maximum: 16, default: 1 }),
    /**
     * The pinned root of the baseline key set: a key set envelope file (what `bulwarkctl keys
     * init baseline` installed, or a later set the operator trusts). The controller sends the
     * rotations after it; the agent accepts each only when a threshold of the set before it
     * and of itself signed it and its serial is higher (kept in dataDir/baseline-keysets.json).
     * Replaces baselineKeys (set one of the two); baselineKeys alone is taken as a set of
     * serial 0 and receives the rotations signed by a threshold of its keys the same way.
     */
    baselineKeySet: Type.Union([Text({ pattern: ABSOLUTE }), Type.Null()], { default: null }),
    /** The host key `bulwark-agent sign` signs artifacts with: a PEM private key file, or a pkcs11: URI (RFC 7512); null: none. */
    signingKey: Type.Union([Text({ pattern: '^(/|pkcs11:)[^\\x00-\\x1f\\x7f]*$' }), Type.Null()], { default: null, writeOnly: true }),
    /**
     * The controller's statement key (PEM public key, as `bulwarkctl statement-key -o FILE`
     * writes it): `bulwark-agent sign` verifies the controller's attestation with it before
     * using it, and refuses to sign without it. null: the agent cannot sign artifacts.
     */
    statementKey: Type.Union([Text({ pattern: ABSOLUTE }), Type.Null()], { default: null }),
    /** Least severe level logged: trace, debug, info, warn, error or fatal. */
    logLevel: literalUnion(LOG_LEVELS, { default: 'info' }),
    /**
     * Where the agent serves Prometheus metrics (GET /metrics, plain HTTP): a local
     * HOST:PORT such as 127.0.0.1:9465, or unix:/ABSOLUTE/PATH (a socket the agent creates).
     * null (the default): not served. Bound exactly as given.
     */
    metricsListen: Type.Union([Type.String({ maxLength: 300, pattern: `^(unix:/[^\\x00-\\x1f\\x7f]{1,106}|${HOST_PORT.slice(1, -1)})$` }), Type.Null()], { default: null }),
  },
  { additionalProperties: false },
);

/** The agent's settings after layering and validation (AK handle as a number, PCR selection normalized). */
export type AgentConfig = Omit<Static<typeof AgentConfigSchema>, 'akHandle'> & { readonly akHandle: number };

/** Environment variables that override a key (the last layer): variable → key and how its text converts. */
export const AGENT_CONFIG_ENV = {
  BULWARK_TCTI: { key: 'tcti', type: 'string' },
  BULWARK_CONTROLLER: { key: 'controller', type: 'string' },
  BULWARK_CONTROLLER_CA: { key: 'controllerCa', type: 'string' },
  BULWARK_NATS_URL: { key: 'natsUrl', type: 'string' },
  BULWARK_NATS_CA_FILE: { key: 'natsCaFile', type: 'string' },
  BULWARK_DATA_DIR: { key: 'dataDir', type: 'string' },
  BULWARK_INTERVAL_MS: { key: 'intervalMs', type: 'integer' },
  BULWARK_NODE_ID: { key: 'nodeId', type: 'string' },
  BULWARK_EK_TYPE: { key: 'ekType', type: 'string' },
  BULWARK_AK_HANDLE: { key: 'akHandle', type: 'integer' },
  BULWARK_EVENT_LOG: { key: 'eventLogPath', type: 'path-or-none' },
  BULWARK_IMA_LOG: { key: 'imaLogPath', type: 'path-or-none' },
  BULWARK_SYSTEMD_LOG: { key: 'systemdLogPath', type: 'path-or-none' },
  BULWARK_NOMAD_NODE: { key: 'nomadNode', type: 'string' },
  BULWARK_LOG_LEVEL: { key: 'logLevel', type: 'string' },
  BULWARK_METRICS_LISTEN: { key: 'metricsListen', type: 'string' },
  BULWARK_SELINUX_ROOT: { key: 'selinuxRoot', type: 'string' },
  BULWARK_BASELINE_PCR: { key: 'baselinePcr', type: 'integer' },
  BULWARK_SIGNING_KEY: { key: 'signingKey', type: 'string' },
  BULWARK_BASELINE_KEYS: { key: 'baselineKeys', type: 'path-or-none' },
  BULWARK_BASELINE_KEY_THRESHOLD: { key: 'baselineKeyThreshold', type: 'integer' },
  BULWARK_BASELINE_KEY_SET: { key: 'baselineKeySet', type: 'path-or-none' },
  BULWARK_STATEMENT_KEY: { key: 'statementKey', type: 'path-or-none' },
} as const;

const AGENT_CONFIG = defineConfig('agent config', AgentConfigSchema, AGENT_CONFIG_ENV);

/** Where the file layer is read unless --config or BULWARK_AGENT_CONFIG says otherwise (drop-ins: /etc/bulwark/agent.d/). */
export const DEFAULT_AGENT_CONFIG_PATH = '/etc/bulwark/agent.json';

/** EK handles (TCG EK Credential Profile): an AK there would overwrite the EK. */
const EK_HANDLES: readonly number[] = [0x81010001, 0x81010016];

/** PCRs the boot chain extends (firmware, GRUB, IMA, shim) and PCRs software at locality 0 can reset (16 debug, 23 application). */
const BOOT_CHAIN_PCRS: readonly number[] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 14];
const RESETTABLE_PCRS: readonly number[] = [16, 23];

/** Layers parsed sources, then checks what a schema cannot say (PCR selection syntax, EK handles). */
function finish(layers: readonly ConfigLayer[], env: Readonly<Record<string, string | undefined>>): AgentConfig {
  const { value, origin } = layerConfig(AGENT_CONFIG, layers, env);
  const akHandle = typeof value.akHandle === 'number' ? value.akHandle : Number.parseInt(value.akHandle.slice(2), 16);
  if (akHandle < 0x81000000 || akHandle > 0x817fffff) throw configError('akHandle', origin('akHandle'), '/akHandle', 'must be in the owner persistent range 0x81000000-0x817fffff');
  if (EK_HANDLES.includes(akHandle)) throw configError('akHandle', origin('akHandle'), '/akHandle', 'is an EK handle');
  if (value.metricsListen !== null) {
    try {
      parseMetricsAddress(value.metricsListen);
    } catch (err) {
      throw configError('metricsListen', origin('metricsListen'), '/metricsListen', err instanceof Error ? err.message : String(err), err);
    }
  }
  let pcrSelection: string;
  try {
    pcrSelection = formatPcrSelectionSpec(parsePcrSelectionSpec(value.pcrSelection));
  } catch (err) {
    throw configError('pcrSelection', origin('pcrSelection'), '/pcrSelection', `is not a PCR selection: ${err instanceof Error ? err.message : String(err)}`, err);
  }
  // A boot-chain PCR (firmware 0-7, GRUB 8-9, IMA 10, shim 14) would break the boot's replay; 16 and 23 reset without a reboot.
  if (BOOT_CHAIN_PCRS.includes(value.baselinePcr) || RESETTABLE_PCRS.includes(value.baselinePcr)) {
    throw configError('baselinePcr', origin('baselinePcr'), '/baselinePcr', `PCR ${value.baselinePcr} is extended by the boot chain or resettable without a reboot: choose 11-13, 15 or 17-22`);
  }
  const controllerPort = Number(/:([0-9]+)$/.exec(value.controller)?.[1] ?? '0');
  if (controllerPort < 1 || controllerPort > 65535) throw configError('controller', origin('controller'), '/controller', 'must be host:port with a port in 1-65535');
  if (value.natsUrl !== null) {
    try {
      new URL(value.natsUrl);
    } catch (err) {
      throw configError('natsUrl', origin('natsUrl'), '/natsUrl', 'is not a URL', err);
    }
  }
  return { ...value, akHandle, pcrSelection };
}

/**
 * Layers configuration: the schema's defaults, then each of `layers` in order (parsed
 * JSON objects, partial documents; later wins; an unknown key, e.g. a typo, is refused),
 * then the BULWARK_* variables of `env` (an empty variable counts as unset). The first
 * bad value throws CONFIG_INVALID with `details.key` (the JSON key), `details.path` (the
 * JSON pointer) and `details.source` ("layer N" or the variable's name). Pure: no I/O.
 */
export function parseAgentConfig(layers: readonly unknown[], env: Readonly<Record<string, string | undefined>>): AgentConfig {
  return finish(
    layers.map((value, i) => ({ source: `layer ${i}`, value, file: false })),
    env,
  );
}

/** Built-in defaults, the first layer. */
export const AGENT_CONFIG_DEFAULTS: AgentConfig = parseAgentConfig([], {});

/**
 * Reads the agent's configuration: the file at `argvConfigPath` (from --config), else
 * BULWARK_AGENT_CONFIG, else /etc/bulwark/agent.json; then every *.json in the drop-in
 * directory beside it (agent.d/) in lexical order; then `env`. A missing default file
 * (or drop-in directory) means none; a missing file that was named explicitly, an
 * unreadable or invalid file or drop-in, or a bad value throws CONFIG_INVALID naming the
 * file (or variable) and the JSON path.
 */
export async function loadAgentConfig(argvConfigPath?: string, env: Readonly<Record<string, string | undefined>> = process.env): Promise<AgentConfig> {
  return (await checkAgentConfig(argvConfigPath, env)).config;
}

/** A configuration as `--check-config` shows it: the value, the same with secrets redacted, and where it came from. */
export interface CheckedAgentConfig {
  readonly config: AgentConfig;
  /** `config` with every key the schema marks secret (writeOnly) shown as "[redacted]" when set. */
  readonly redacted: Record<string, unknown>;
  readonly sources: ConfigSources;
}

/** Loads like loadAgentConfig and also says what `--check-config` prints. */
export async function checkAgentConfig(argvConfigPath?: string, env: Readonly<Record<string, string | undefined>> = process.env): Promise<CheckedAgentConfig> {
  const fromEnv = env['BULWARK_AGENT_CONFIG'];
  const explicit = argvConfigPath ?? (fromEnv === undefined || fromEnv === '' ? undefined : fromEnv);
  const layers = await readConfigLayers(explicit, DEFAULT_AGENT_CONFIG_PATH, 'agent config');
  const config = finish(layers, env);
  return { config, redacted: redactConfig(AgentConfigSchema, config, REDACTED), sources: configSources(AGENT_CONFIG, layers, env) };
}
