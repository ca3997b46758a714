/** controller/config/: the public surface of this folder. */
export {
  CONTROLLER_CONFIG_ENV,
  checkControllerConfig,
  type CheckedControllerConfig,
  CONTROLLER_DEFAULTS,
  ControllerConfigSchema,
  DEFAULT_CONTROLLER_CONFIG_PATH,
  loadControllerConfig,
  parseControllerConfig,
  quoteSelection,
  type ControllerConfig,
} from './config.js';
