/**
 * An event log as a TCG Canonical Event Log in its JSON encoding (TCG Canonical Event Log
 * Format 1.0, "CEL-JSON"), so tools that read CEL (systemd's tpm2-measure.log readers,
 * Keylime, tpm2-tools) can see what Bulwark judged. One record per event, in log order:
 *
 *   { "recnum": n, "pcr": p,
 *     "digests": [ { "hashAlg": "sha256", "digest": "<hex>" }, ... ],
 *     "content_type": "pcclient_std",
 *     "content": { "event_type": <UINT32>, "event_data": "<base64>" } }
 *
 * recnum counts from 0; digests keep the log's bank order, algorithms named as in the TPM
 * algorithm registry in lower case (sha1, sha256, sha384, sha512, sm3_256; an unknown one as
 * its hex TPM_ALG_ID); event_type is the PC Client event type (TCG_PCR_EVENT2.EventType)
 * and event_data its octets, as the CEL content type "pcclient_std" (TPMS_EVENT_PCCLIENT_STD)
 * carries them. The Spec ID header is not a CEL record (CEL has no header event); EV_NO_ACTION
 * events are exported like any other, with the digests as logged. A replayed log exports
 * the events it holds (those of proven PCRs, quirk-injected ones included).
 *
 * The encoder writes what it is given; it proves nothing. Its output is a JSON array, one
 * record per line.
 */
import { toHex } from '../bytes.js';
import type { LoggedEvent, SpecIdAlgorithm } from './parse.js';

/** TPM_ALG_ID → CEL hashAlg name (TPM 2.0 Library, Part 2, 6.3). */
const CEL_HASH_ALG_NAMES: ReadonlyMap<number, string> = new Map([
  [0x0004, 'sha1'],
  [0x000b, 'sha256'],
  [0x000c, 'sha384'],
  [0x000d, 'sha512'],
  [0x0012, 'sm3_256'],
]);

/** The CEL content type of PC Client firmware events (TPMS_EVENT_PCCLIENT_STD). */
export const CEL_CONTENT_TYPE_PCCLIENT_STD = 'pcclient_std';

export interface CelDigest {
  readonly hashAlg: string;
  readonly digest: string;
}

/** One CEL-JSON record of a PC Client event. */
export interface CelPcClientRecord {
  readonly recnum: number;
  readonly pcr: number;
  readonly digests: readonly CelDigest[];
  readonly content_type: typeof CEL_CONTENT_TYPE_PCCLIENT_STD;
  readonly content: { readonly event_type: number; readonly event_data: string };
}

/** The CEL hashAlg name of a TPM_ALG_ID. */
export function celHashAlgName(hashAlg: number): string {
  return CEL_HASH_ALG_NAMES.get(hashAlg) ?? `0x${hashAlg.toString(16).padStart(4, '0')}`;
}

/** What the encoder needs of a log: a parsed EventLog and a replayed one both have it. */
export interface CelExportable {
  readonly algorithms: readonly SpecIdAlgorithm[];
  readonly events: readonly LoggedEvent[];
}

/** The CEL records of a log's events, in log order. Trust: as the log given. */
export function celRecords(log: CelExportable): CelPcClientRecord[] {
  const order = new Map(log.algorithms.map((a, i) => [a.algorithmId, i]));
  return log.events.map((e, recnum) => ({
    recnum,
    pcr: e.pcrIndex,
    digests: [...e.digests]
      .sort((a, b) => (order.get(a.hashAlg) ?? 0) - (order.get(b.hashAlg) ?? 0))
      .map((d) => ({ hashAlg: celHashAlgName(d.hashAlg), digest: toHex(d.digest) })),
    content_type: CEL_CONTENT_TYPE_PCCLIENT_STD,
    content: { event_type: e.eventType, event_data: Buffer.from(e.data.buffer, e.data.byteOffset, e.data.byteLength).toString('base64') },
  }));
}

/** The log as CEL-JSON text: a JSON array, one record per line, with a final newline. */
export function encodeCelJson(log: CelExportable): string {
  const records = celRecords(log);
  if (records.length === 0) return '[]\n';
  return `[\n${records.map((r) => JSON.stringify(r)).join(',\n')}\n]\n`;
}
