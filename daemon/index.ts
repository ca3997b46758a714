/** daemon/: process plumbing shared by bulwark-agent and bulwark-controller. */
export {
  MAX_CONFIG_FILE_BYTES,
  configError,
  defineConfig,
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
