/** controller/config/: the public surface of this folder. */
export { CONTROLLER_DEFAULTS, loadControllerConfig, parseControllerConfig, type ControllerConfig } from './config.js';
