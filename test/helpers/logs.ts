/**
 * A real daemon logger (pino, with its levels and redaction) whose records a test reads
 * back as values instead of stdout lines.
 */
import { createLogger, type Logger, type LogLevel } from '../../daemon/index.js';

/** One record as written: its level label, its message and every other field. */
export interface LogRecord {
  readonly level: string;
  readonly msg: string;
  readonly fields: Readonly<Record<string, unknown>>;
}

/** A logger at `level` that hands each record, parsed back from its JSON line, to `onRecord`. */
export function recordingLogger(onRecord: (record: LogRecord) => void, level: LogLevel = 'trace'): Logger {
  return createLogger({
    name: 'bulwark-test',
    level,
    destination: {
      write(line: string): void {
        const v: unknown = JSON.parse(line);
        if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error(`a log record is not a JSON object: ${line}`);
        const fields: Record<string, unknown> = Object.fromEntries(Object.entries(v));
        const { level: l, msg } = fields;
        onRecord({ level: String(l), msg: String(msg), fields });
      },
    },
  });
}
