/**
 * bulwark-controller configuration: one schema (with the defaults) and one table of
 * environment variables, layered by daemon/ like the agent's: defaults, then the JSON
 * file (/etc/bulwark/controller.json, or --config / BULWARK_CONTROLLER_CONFIG), then the
 * drop-ins beside it (controller.d/*.json, in lexical order), then the variables.
 * Parsing is pure; loading reads the files.
 */
import { Type, type Static } from '@sinclair/typebox';
import { configError, configSources, defineConfig, layerConfig, LOG_LEVELS, readConfigLayers, redactConfig, REDACTED, type ConfigLayer, type ConfigSources } from '../../daemon/index.js';
import { literalUnion } from '../../lib/schema/index.js';
import { formatPcrSelectionSpec, parsePcrSelectionSpec, TPM_ALG } from '../../lib/tpm/index.js';

const TEXT = '^[^\\x00-\\x1f\\x7f]*$';
const Text = (fallback: string, pattern = TEXT) => Type.String({ maxLength: 4096, pattern, default: fallback });
const NullableText = (options: { writeOnly?: true } = {}) => Type.Union([Type.String({ maxLength: 4096, pattern: TEXT }), Type.Null()], { default: null, ...options });
/** Marks a key secret (JSON Schema `writeOnly`): `--check-config` shows only that it is set. */
const SECRET = { writeOnly: true } as const;
const Ms = (fallback: number) => Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER, default: fallback });

/** The controller's settings: every key, its type and its default. Unknown keys are refused. */
export const ControllerConfigSchema = Type.Object(
  {
    dataDir: Text('/var/lib/bulwark-controller'),
    /** null: start an embedded `nats-server -js` in dataDir. */
    natsUrl: NullableText(),
    /** Embedded server port (0: a free one). */
    natsPort: Type.Integer({ minimum: 0, maximum: 65535, default: 4222 }),
    /** The NATS URL given to agents at enrollment (default: the one the controller uses). */
    natsAdvertiseUrl: NullableText(),
    /**
     * An external NATS (natsUrl set): the CA its certificate must chain to (required; TLS
     * only), and exactly one identity: an nkey seed file, a user with a password file, or a
     * creds file. Optionally a TLS client certificate and key. Secret files must be 0600.
     * The embedded server makes all of these itself under dataDir.
     */
    natsCaFile: NullableText(),
    natsNkeySeedFile: NullableText(SECRET),
    natsUser: NullableText(),
    natsPasswordFile: NullableText(SECRET),
    natsCredsFile: NullableText(SECRET),
    natsCertFile: NullableText(),
    natsKeyFile: NullableText(SECRET),
    /** gRPC listen address host:port. */
    grpcListen: Text('127.0.0.1:7443', '^[^:\\x00-\\x1f\\x7f]+:[0-9]+$'),
    /** DNS names the gRPC server certificate carries (the names agents and bulwarkctl dial). */
    tlsDnsNames: Type.Array(Type.String({ minLength: 1, maxLength: 253 }), { maxItems: 64, default: ['localhost'] }),
    /** IP addresses the gRPC server certificate carries. */
    tlsIpAddresses: Type.Array(Type.String({ minLength: 2, maxLength: 45 }), { maxItems: 64, default: ['127.0.0.1', '::1'] }),
    /** Directory of PEM EK CA certificates (roots and intermediates). */
    ekCaDir: Text('/etc/bulwark/ek-ca'),
    /** sha256 hex of EK TPMT_PUBLIC bytes accepted without a certificate. */
    ekAllowList: Type.Array(Type.String({ pattern: '^[0-9a-f]{64}$' }), { maxItems: 100_000, default: [] }),
    /** PCRs every quote must cover: 0-7 firmware and Secure Boot, 8-9 GRUB, kernel, initrd and command line, 10 IMA, 14 shim's MOK lists. */
    pcrSelection: Text('sha256:0,1,2,3,4,5,6,7,8,9,10,14'),
    /**
     * The PCR (sha256 bank) the agents extend every baseline report into; added to the
     * challenge's selection when pcrSelection lacks it. 13: not used by firmware, shim,
     * GRUB, systemd-stub or systemd (TCG PC Client PFP, UAPI "Linux TPM PCR Registry"), and
     * reset only by a reboot.
     */
    baselinePcr: Type.Integer({ minimum: 0, maximum: 23, default: 13 }),
    /** A node without a baseline assigned (node, group or default) is untrusted (POLICY_MISSING); false: a note only. */
    requireBaseline: Type.Boolean({ default: true }),
    /**
     * Policies (measured-boot, runtime, baseline) and app specs must be DSSE envelopes
     * verified against the kind's trusted key set (`bulwarkctl keys init`); a kind without a
     * set refuses pushes (KEYSET_MISSING). false: unsigned documents, as before signing existed.
     */
    requireSignedPolicies: Type.Boolean({ default: true }),
    /** How often agents push evidence. */
    intervalMs: Ms(30_000),
    /** How often the controller pulls evidence from each node (a fresh challenge). */
    pullIntervalMs: Ms(60_000),
    /** A node without evidence for this long is stale (so untrusted); longer than intervalMs. */
    staleAfterMs: Ms(120_000),
    nonceTtlMs: Ms(30_000),
    enrollTtlMs: Ms(120_000),
    /** How long node certificates (gRPC, for Placement.IsTrusted and renewal) are valid; agents renew at half of it. */
    nodeCertificateValidityMs: Type.Integer({ minimum: 2000, maximum: 366 * 24 * 60 * 60 * 1000, default: 24 * 60 * 60 * 1000 }),
    /** Name of this replica in leases ("": hostname and pid). */
    replicaId: Text(''),
    /** Nomad HTTP API (e.g. http://127.0.0.1:4646); null: no placement gate. */
    nomadAddr: NullableText(),
    /** Nomad ACL token; null: none. Never logged. */
    nomadToken: NullableText(SECRET),
    /** Drain untrusted nodes (their allocations move to trusted ones), not only make them ineligible. */
    nomadDrain: Type.Boolean({ default: true }),
    nomadDrainDeadlineMs: Ms(5 * 60_000),
    /** A trusted verdict older than this does not keep a node eligible (0: staleAfterMs). */
    nomadFreshnessMs: Ms(0),
    nomadReconcileIntervalMs: Ms(5000),
    /**
     * The key the controller signs attestations (attestation-bound artifact signatures) with:
     * a PEM private key file (ECDSA P-256/P-384, Ed25519, RSA, mode 0600) or a pkcs11: URI
     * (RFC 7512; module and PIN from the URI or the environment); null: an ECDSA P-256 key
     * generated in dataDir at first start (statement-signing-key.pem, 0600).
     */
    statementSigningKey: NullableText(SECRET),
    /** How long an attestation is valid: the host must sign within it. */
    attestationValidityMs: Type.Integer({ minimum: 1000, maximum: 60 * 60_000, default: 5 * 60_000 }),
    /** A trusted verdict whose last verified quote is older than this gets no attestation (0: staleAfterMs). */
    attestationFreshnessMs: Ms(0),
    /** Bulwark node id → Nomad node name, where they differ (drop-ins add to it key by key). */
    nomadNodeMap: Type.Record(Type.String({ maxLength: 128 }), Type.String({ maxLength: 256 }), { default: {} }),
    /** The application catalogue: one NAME.nomad.hcl per app. */
    appsDir: Text('/usr/share/bulwark/apps'),
    /**
     * `approve` (default): a TPM the controller has never seen waits for an admin
     * (`bulwarkctl enrollments approve`) before it can enroll, because an EK CA vouches for
     * every TPM its maker shipped, not for this fleet's machines. `open`: any EK whose
     * certificate chains to ekCaDir (or is allow-listed) enrolls.
     */
    enrollment: literalUnion(['open', 'approve'], { default: 'approve' }),
    /** Most enrollments pending between Enroll and ActivateCredential, and most held for approval (each); expired ones make room. */
    maxPendingEnrollments: Type.Integer({ minimum: 1, maximum: 1_000_000, default: 1000 }),
    /** Most unused, unexpired nonces per node (per replica); issuing another evicts the oldest. */
    maxOutstandingNonces: Type.Integer({ minimum: 1, maximum: 1000, default: 8 }),
    /** Nonce requests per node: a token bucket of this many per second ... */
    nonceRequestRate: Type.Number({ minimum: 0.01, maximum: 100_000, default: 10 }),
    /** ... holding at most this many (a burst). */
    nonceRequestBurst: Type.Integer({ minimum: 1, maximum: 100_000, default: 30 }),
    /** Enroll calls per peer address (and per node id): a token bucket of this many per second ... */
    enrollRate: Type.Number({ minimum: 0.001, maximum: 100_000, default: 0.5 }),
    /** ... holding at most this many (a burst). */
    enrollBurst: Type.Integer({ minimum: 1, maximum: 100_000, default: 10 }),
    /**
     * The key that signs audit checkpoints: a PEM private key file (ECDSA P-256/P-384 or
     * Ed25519), or a pkcs11: URI (RFC 7512) of a key on an HSM. null: an ECDSA P-256 key the
     * controller creates in dataDir (audit-checkpoint-key.pem, 0600) on first start.
     * Replicas sharing one audit stream need the same key.
     */
    auditSigningKey: NullableText(SECRET),
    /** The audit log's name in its checkpoints (origin `bulwark.<name>/audit`); "": the host name. Replicas share one. */
    auditLogName: Text('', '^[A-Za-z0-9._-]{0,128}$'),
    /** Sign an audit checkpoint at least this often while the log grows ... */
    auditCheckpointIntervalMs: Type.Integer({ minimum: 100, maximum: Number.MAX_SAFE_INTEGER, default: 60_000 }),
    /** ... and as soon as this many records were appended since the last one. */
    auditCheckpointRecords: Type.Integer({ minimum: 1, maximum: 1_000_000, default: 1000 }),
    /** Least severe level logged: trace, debug, info, warn, error or fatal. */
    logLevel: literalUnion(LOG_LEVELS, { default: 'info' }),
  },
  { additionalProperties: false },
);

export type ControllerConfig = Static<typeof ControllerConfigSchema>;

/** Environment variables that override a key (the last layer): variable → key and how its text converts. */
export const CONTROLLER_CONFIG_ENV = {
  BULWARK_DATA_DIR: { key: 'dataDir', type: 'string' },
  BULWARK_NATS_URL: { key: 'natsUrl', type: 'string' },
  BULWARK_NATS_PORT: { key: 'natsPort', type: 'integer' },
  BULWARK_NATS_ADVERTISE_URL: { key: 'natsAdvertiseUrl', type: 'string' },
  BULWARK_NATS_CA_FILE: { key: 'natsCaFile', type: 'string' },
  BULWARK_NATS_NKEY_SEED_FILE: { key: 'natsNkeySeedFile', type: 'string' },
  BULWARK_NATS_USER: { key: 'natsUser', type: 'string' },
  BULWARK_NATS_PASSWORD_FILE: { key: 'natsPasswordFile', type: 'string' },
  BULWARK_NATS_CREDS_FILE: { key: 'natsCredsFile', type: 'string' },
  BULWARK_NATS_CERT_FILE: { key: 'natsCertFile', type: 'string' },
  BULWARK_NATS_KEY_FILE: { key: 'natsKeyFile', type: 'string' },
  BULWARK_GRPC_LISTEN: { key: 'grpcListen', type: 'string' },
  BULWARK_EK_CA_DIR: { key: 'ekCaDir', type: 'string' },
  BULWARK_PCR_SELECTION: { key: 'pcrSelection', type: 'string' },
  BULWARK_BASELINE_PCR: { key: 'baselinePcr', type: 'integer' },
  BULWARK_REQUIRE_BASELINE: { key: 'requireBaseline', type: 'boolean' },
  BULWARK_REQUIRE_SIGNED_POLICIES: { key: 'requireSignedPolicies', type: 'boolean' },
  BULWARK_INTERVAL_MS: { key: 'intervalMs', type: 'integer' },
  BULWARK_PULL_INTERVAL_MS: { key: 'pullIntervalMs', type: 'integer' },
  BULWARK_STALE_AFTER_MS: { key: 'staleAfterMs', type: 'integer' },
  BULWARK_NONCE_TTL_MS: { key: 'nonceTtlMs', type: 'integer' },
  BULWARK_REPLICA_ID: { key: 'replicaId', type: 'string' },
  BULWARK_NOMAD_ADDR: { key: 'nomadAddr', type: 'string' },
  BULWARK_APPS_DIR: { key: 'appsDir', type: 'string' },
  BULWARK_AUDIT_SIGNING_KEY: { key: 'auditSigningKey', type: 'string' },
  BULWARK_LOG_LEVEL: { key: 'logLevel', type: 'string' },
  BULWARK_ENROLLMENT: { key: 'enrollment', type: 'string' },
  NOMAD_TOKEN: { key: 'nomadToken', type: 'string' },
} as const;

const CONTROLLER_CONFIG = defineConfig('controller config', ControllerConfigSchema, CONTROLLER_CONFIG_ENV);

/** Where the file layer is read unless --config or BULWARK_CONTROLLER_CONFIG says otherwise (drop-ins: /etc/bulwark/controller.d/). */
export const DEFAULT_CONTROLLER_CONFIG_PATH = '/etc/bulwark/controller.json';

/** Layers parsed sources, then checks what relates keys to each other. */
function finish(layers: readonly ConfigLayer[], env: Readonly<Record<string, string | undefined>>): ControllerConfig {
  const { value, origin } = layerConfig(CONTROLLER_CONFIG, layers, env);
  for (const key of ['intervalMs', 'pullIntervalMs'] as const) {
    if (value[key] < 100) throw configError(key, origin(key), `/${key}`, 'must be at least 100 ms');
  }
  try {
    quoteSelection(value);
  } catch (err) {
    throw configError('pcrSelection', origin('pcrSelection'), '/pcrSelection', `is not a PCR selection: ${err instanceof Error ? err.message : String(err)}`, err);
  }
  if (value.staleAfterMs <= value.intervalMs) throw configError('staleAfterMs', origin('staleAfterMs'), '/staleAfterMs', `must be longer than intervalMs (${value.intervalMs})`);
  if (value.natsUrl !== null) {
    // No plaintext and no anonymous access: an external NATS needs a pinned CA and one identity.
    if (value.natsCaFile === null) throw configError('natsCaFile', origin('natsUrl'), '/natsCaFile', 'is required with natsUrl (NATS is used over TLS only)');
    const identities = [value.natsNkeySeedFile !== null, value.natsUser !== null || value.natsPasswordFile !== null, value.natsCredsFile !== null].filter(Boolean).length;
    if (identities !== 1) {
      throw configError('natsNkeySeedFile', origin('natsUrl'), '/natsNkeySeedFile', 'exactly one of natsNkeySeedFile, natsUser with natsPasswordFile, or natsCredsFile is required with natsUrl');
    }
    if ((value.natsUser === null) !== (value.natsPasswordFile === null)) {
      throw configError('natsPasswordFile', origin('natsUser'), '/natsPasswordFile', 'natsUser and natsPasswordFile go together');
    }
    if ((value.natsCertFile === null) !== (value.natsKeyFile === null)) {
      throw configError('natsKeyFile', origin('natsCertFile'), '/natsKeyFile', 'natsCertFile and natsKeyFile go together');
    }
  }
  return value;
}

/**
 * The PCR selection every challenge asks for: pcrSelection with the baseline PCR added to
 * its sha256 bank (or a sha256 bank of it alone) when not already there. Registrar and
 * verifier use this, never pcrSelection itself.
 */
export function quoteSelection(config: Pick<ControllerConfig, 'pcrSelection' | 'baselinePcr'>): string {
  const selection = parsePcrSelectionSpec(config.pcrSelection);
  const sha256 = selection.find((s) => s.hashAlg === TPM_ALG.SHA256);
  if (sha256?.pcrs.includes(config.baselinePcr) === true) return formatPcrSelectionSpec(selection);
  const withBaseline =
    sha256 === undefined
      ? [...selection, { hashAlg: TPM_ALG.SHA256, pcrs: [config.baselinePcr] }]
      : selection.map((s) => (s === sha256 ? { hashAlg: s.hashAlg, pcrs: [...s.pcrs, config.baselinePcr].sort((a, b) => a - b) } : s));
  return formatPcrSelectionSpec(withBaseline);
}

/**
 * Merges `layers` (parsed JSON objects, partial documents) and the variables of `env`
 * over the defaults, checking every value: CONFIG_INVALID with `details.key`,
 * `details.path` and `details.source`. Pure: no I/O.
 */
export function parseControllerConfig(layers: readonly unknown[], env: Readonly<Record<string, string | undefined>>): ControllerConfig {
  return finish(
    layers.map((value, i) => ({ source: `layer ${i}`, value, file: false })),
    env,
  );
}

/** Built-in defaults, the first layer. */
export const CONTROLLER_DEFAULTS: ControllerConfig = parseControllerConfig([], {});

/**
 * Reads the config file (`path` from --config, else BULWARK_CONTROLLER_CONFIG, else
 * /etc/bulwark/controller.json; a missing default file means defaults), then the drop-ins
 * beside it (controller.d/*.json, lexical order), then applies `env`.
 */
export async function loadControllerConfig(path: string | undefined, env: Readonly<Record<string, string | undefined>> = process.env): Promise<ControllerConfig> {
  return (await checkControllerConfig(path, env)).config;
}

/** A configuration as `--check-config` shows it: the value, the same with secrets redacted, and where it came from. */
export interface CheckedControllerConfig {
  readonly config: ControllerConfig;
  /** `config` with every key the schema marks secret (writeOnly) shown as "[redacted]" when set. */
  readonly redacted: Record<string, unknown>;
  readonly sources: ConfigSources;
}

/** Loads like loadControllerConfig and also says what `--check-config` prints. */
export async function checkControllerConfig(path: string | undefined, env: Readonly<Record<string, string | undefined>> = process.env): Promise<CheckedControllerConfig> {
  const fromEnv = env['BULWARK_CONTROLLER_CONFIG'];
  const explicit = path ?? (fromEnv === undefined || fromEnv === '' ? undefined : fromEnv);
  const layers = await readConfigLayers(explicit, DEFAULT_CONTROLLER_CONFIG_PATH, 'controller config');
  const config = finish(layers, env);
  return { config, redacted: redactConfig(ControllerConfigSchema, config, REDACTED), sources: configSources(CONTROLLER_CONFIG, layers, env) };
}
