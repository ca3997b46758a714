/** daemon/: process plumbing shared by bulwark-agent, bulwark-controller and bulwarkctl: logging, config layering, retries, NATS credentials, PKCS #11 keys. */
export {
  createLogger,
  errorFields,
  isLogLevel,
  LOG_LEVELS,
  REDACT_PATHS,
  REDACTED,
  REDACTED_KEYS,
  silentLogger,
  type LogDestination,
  type LogFields,
  type Logger,
  type LoggerOptions,
  type LogLevel,
  type LogMethod,
} from './logger.js';
export { NATS_RECONNECT_BACKOFF, NatsReconnect, sleep } from './retry.js';
export {
  MAX_CONFIG_FILE_BYTES,
  configError,
  configSources,
  defineConfig,
  isSecretProperty,
  redactConfig,
  secretKeys,
  type ConfigSources,
  dropInDirOf,
  layerConfig,
  mergeConfig,
  readConfigLayers,
  type ConfigLayer,
  type ConfigSpec,
  type EnvOverride,
  type EnvTable,
  type EnvValueType,
  type LayeredConfig,
} from './config-layers.js';
export { readSecretFile, writeSecretFile } from './secret-files.js';
export {
  createNatsPassword,
  issueNkeySeedFile,
  natsClientAuthOptions,
  readNatsPasswordFile,
  readNkeySeedFile,
  writeNatsPasswordFile,
  type NatsClientAuthOptions,
  type NatsClientCredentials,
} from './nats-credentials.js';
export {
  Hsm,
  HSM_KEY_TYPES,
  HSM_SIGNATURE_SCHEMES,
  openPkcs11Signer,
  type HsmKeyInfo,
  type HsmKeyType,
  type HsmOptions,
  type HsmSignatureScheme,
  type Pkcs11Signer,
} from './pkcs11.js';
export { readSelinuxTree } from './selinux-tree.js';
export { BUILD_INFO_FILE, BuildInfoSchema, collectBuildInfo, readBuildInfo, versionLine, writeBuildInfo, type BuildInfo } from './build-info.js';
