/** daemon/: process plumbing shared by bulwark-agent and bulwark-controller. */
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
