/** controller/config/: the public surface of this folder. */
export {
  CONTROLLER_CONFIG_ENV,
  CONTROLLER_DEFAULTS,
  ControllerConfigSchema,
  DEFAULT_CONTROLLER_CONFIG_PATH,
  loadControllerConfig,
  parseControllerConfig,
  type ControllerConfig,
} from './config.js';
