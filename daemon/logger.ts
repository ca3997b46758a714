/**
 * The one structured logger of both daemons, on pino: JSON lines on stdout (journald keeps
 * them as they are), `level` as a label and `time` in ISO 8601, levels trace..fatal, child
 * loggers that carry a node id and finding codes, and redaction of secrets before a record
 * is written.
 */
import { pino } from 'pino';

/** Levels from most to least verbose. */
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'] as const;
/** One of LOG_LEVELS: the least severe level a logger writes. */
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Narrows untrusted input (config file, environment) to a LogLevel. */
export function isLogLevel(value: unknown): value is LogLevel {
  return LOG_LEVELS.some((l) => l === value);
}

/** Structured fields of one record (or the bindings of a child logger). */
export type LogFields = Readonly<Record<string, unknown>>;

/** Writes one record at a level. */
export type LogMethod = (fields: LogFields, msg: string) => void;

/** What the daemons log through: pino's Logger fits it, and so does silentLogger(). */
export interface Logger {
  trace: LogMethod;
  debug: LogMethod;
  info: LogMethod;
  warn: LogMethod;
  error: LogMethod;
  fatal: LogMethod;
  /** A logger whose every record also carries `bindings` (e.g. `{ node }`). */
  child(bindings: LogFields): Logger;
}

/** Where records go: one JSON line per write call (stdout unless a test captures them). */
export interface LogDestination {
  write(line: string): void;
}

/** How createLogger builds a daemon's logger. */
export interface LoggerOptions {
  /** The daemon's name (`bulwark-agent`, `bulwark-controller`), in every record. */
  readonly name: string;
  readonly level: LogLevel;
  /** Defaults to stdout, written synchronously so the last record before exit is not lost. */
  readonly destination?: LogDestination;
}

/** Field names whose values are secrets: never written, at the top level or one level down. */
export const REDACTED_KEYS = ['token', 'nomadToken', 'authorization', 'pin', 'userPin', 'soPin', 'password', 'key', 'privateKey', 'secret'] as const;

/** The pino redact paths for REDACTED_KEYS, and HTTP authorization headers. */
export const REDACT_PATHS: readonly string[] = [
  ...REDACTED_KEYS.flatMap((k) => [k, `*.${k}`]),
  'headers.authorization',
  '*.headers.authorization',
  'headers["x-nomad-token"]',
  '*.headers["x-nomad-token"]',
];

/** What a redacted value is replaced with. */
export const REDACTED = '[redacted]';

/** A logger writing JSON lines, one per record, at `level` and above. */
export function createLogger(opts: LoggerOptions): Logger {
  const destination = opts.destination ?? pino.destination({ dest: 1, sync: true });
  return pino(
    {
      level: opts.level,
      base: { name: opts.name },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: [...REDACT_PATHS], censor: REDACTED },
    },
    destination,
  );
}

const discard: LogMethod = () => undefined;

/** A logger that writes nothing (tests, and callers that were given none). */
export function silentLogger(): Logger {
  const log: Logger = { trace: discard, debug: discard, info: discard, warn: discard, error: discard, fatal: discard, child: () => log };
  return log;
}

/** The message and code of any thrown value, as log fields. */
export function errorFields(err: unknown): { readonly error: string; readonly code?: string } {
  const error = err instanceof Error ? err.message : String(err);
  const code: unknown = typeof err === 'object' && err !== null && 'code' in err ? err.code : undefined;
  return typeof code === 'string' ? { error, code } : { error };
}
