/** Baseline reports and their TPM-bound chain. (Contract; implemented here.) */
import type { BaselineReport } from './types.js';

/** The bytes of a report as extended and shipped (canonical JSON). */
export function encodeReport(report: BaselineReport): Uint8Array {
  void report;
  throw new Error('not implemented');
}

/** Parses shipped report bytes; a BulwarkError (BASELINE_REPORT_INVALID) for anything malformed. */
export function decodeReport(bytes: Uint8Array): BaselineReport {
  void bytes;
  throw new Error('not implemented');
}

/** The PCR value after extending `report` (sha256 bank): sha256(pcr || sha256(report)). */
export function extendReport(pcr: Uint8Array, report: Uint8Array): Uint8Array {
  void pcr;
  void report;
  throw new Error('not implemented');
}
