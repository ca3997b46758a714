/**
 * systemd's userspace measurement log (/run/log/systemd/tpm2-measure.log) as evidence, on
 * hosts booted with systemd-stub: what systemd extended into PCRs 11 and 15 after the
 * firmware log stopped. It is small (a few KiB), so it is sent whole every round, read
 * after the quote like the firmware log. The controller replays it with systemd-stub's
 * firmware-log events against the quoted PCRs 11, 12, 13 and 15.
 *
 * The baseline PCR must be one nothing else extends: on a UKI boot systemd-stub measures
 * system extensions into PCR 13 (Bulwark's default baseline PCR) and systemd measures into
 * 11 and 15. When either log extends the baseline PCR, collect throws CONFIG_INVALID and the
 * agent sends no evidence until baselinePcr is changed (README, "Why PCR 13").
 */
import { BulwarkError } from '../lib/index.js';
import { extendedPcrs, parseEventLog, parseSystemdLog } from '../lib/eventlog/index.js';
import { WIRE_LIMITS } from '../proto/index.js';
import { readCapped } from './event-log-source.js';
import type { EvidenceSource, SourceFields } from './evidence-source.js';

export interface SystemdLogSourceOptions {
  readonly path: string;
  /** The firmware log, checked once for events in the baseline PCR; null: not checked. */
  readonly firmwareLogPath: string | null;
  /** The PCR the baseline source extends; null when the agent runs without baseline reports. */
  readonly baselinePcr: number | null;
}

function isNotFound(err: unknown): boolean {
  return err instanceof BulwarkError && err.cause instanceof Error && 'code' in err.cause && err.cause.code === 'ENOENT';
}

export class SystemdLogSource implements EvidenceSource {
  readonly name = 'systemd-log';
  private readonly opts: SystemdLogSourceOptions;
  /** The firmware log does not change within a boot: checked once per process. */
  private firmwareChecked = false;

  constructor(opts: SystemdLogSourceOptions) {
    this.opts = opts;
  }

  private overlap(pcrs: ReadonlySet<number>, what: string): void {
    const pcr = this.opts.baselinePcr;
    if (pcr !== null && pcrs.has(pcr)) {
      throw new BulwarkError(
        'CONFIG_INVALID',
        `${what} extends PCR ${pcr}, the baseline PCR: baseline reports cannot replay there; set baselinePcr to a PCR this boot leaves alone (README, "Why PCR 13")`,
        { key: 'baselinePcr', pcr },
      );
    }
  }

  async collect(): Promise<SourceFields> {
    if (!this.firmwareChecked && this.opts.firmwareLogPath !== null && this.opts.baselinePcr !== null) {
      let bytes: Uint8Array | null = null;
      try {
        bytes = await readCapped(this.opts.firmwareLogPath, WIRE_LIMITS.eventLog, 'event log');
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
      // A log that does not parse is the controller's to judge; only a readable one is checked here.
      let pcrs: Set<number> | undefined;
      try {
        pcrs = bytes === null ? undefined : extendedPcrs(parseEventLog(bytes));
      } catch (err) {
        if (!(err instanceof BulwarkError)) throw err;
      }
      if (pcrs !== undefined) this.overlap(pcrs, 'the firmware event log (systemd-stub)');
      this.firmwareChecked = true;
    }
    let log: Uint8Array;
    try {
      log = await readCapped(this.opts.path, WIRE_LIMITS.systemdLog, 'systemd measurement log');
    } catch (err) {
      if (isNotFound(err)) return {};
      throw err;
    }
    if (this.opts.baselinePcr !== null) {
      // A log being appended to may end mid-record; the next round reads it whole. Only a complete log is checked.
      let pcrs: Set<number> | undefined;
      try {
        pcrs = new Set(parseSystemdLog(log).records.map((r) => r.pcr));
      } catch (err) {
        if (!(err instanceof BulwarkError)) throw err;
      }
      if (pcrs !== undefined) this.overlap(pcrs, 'systemd\'s measurement log');
    }
    return { systemdLog: log };
  }

  acknowledge(): void {
    // Sent whole every round: nothing to remember.
  }
}
