/**
 * Evidence sources add what a round carries beyond the quote: the UEFI event log, the IMA
 * measurement list, the host baseline reports. The agent asks each source after the quote
 * was taken (so a log is never behind the quote), and hands every source the controller's
 * reply so it sends only what the controller does not hold yet. A source that measures
 * into a PCR itself (the baseline reports) does that in `prepare`, before the quote, so
 * the quote covers what it will send.
 */
import type { EvidenceMsg, EvidenceReplyMsg } from '../proto/index.js';

/** The evidence fields a source may fill. */
export type SourceFields = Partial<
  Pick<EvidenceMsg, 'eventLogSha256' | 'eventLog' | 'imaFormat' | 'imaFromEntry' | 'imaFromOffset' | 'imaEntries' | 'imaMore' | 'baselineFrom' | 'baselineReports' | 'baselineSha256' | 'systemdLog' | 'baselineKeysPinned' | 'baselineKeysetSerial'>
>;

/** What a source learns about the round it prepares. */
export interface RoundContext {
  readonly nodeId: string;
}

export interface EvidenceSource {
  readonly name: string;
  /** Runs before the quote of every round (reads state, extends a PCR); must not throw: a failure is the source's to report. */
  prepare?(round: RoundContext): Promise<void>;
  /** Reads this source's part of a round (after the quote). */
  collect(): Promise<SourceFields>;
  /** The controller's reply to the round that carried `sent`. */
  acknowledge(reply: EvidenceReplyMsg, sent: SourceFields): void;
  /** Forgets what the controller acknowledged (after an enrollment the controller holds nothing). */
  reset?(): void;
  /** Starts watching; `trigger` asks the agent for a round now (e.g. the IMA log grew). */
  start?(trigger: () => void): void;
  stop?(): void | Promise<void>;
}
