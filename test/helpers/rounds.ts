/**
 * Hand-made attestation rounds for tests: ask for a nonce, quote with any TPM, tamper with
 * the result, and send it as some node's evidence over the real NATS subjects.
 */
import { readFile } from 'node:fs/promises';
import type { NatsConnection } from 'nats';
import type { QuoteOutput, Tpm } from '../../agent/tpm.js';
import { NODE_SUBJECTS, parseNatsNodeId } from '../../lib/nats-auth/index.js';
import { EMPTY_REPLY_STATE, NO_LOGS, wire, type ChallengeMsg, type EvidenceMsg, type EvidenceReplyMsg } from '../../proto/wire.js';

export async function requestChallenge(nc: NatsConnection, nodeId: string): Promise<ChallengeMsg> {
  const msg = await nc.request(NODE_SUBJECTS.nonce(parseNatsNodeId(nodeId)), wire.nonceRequest.encode({ nodeId }), { timeout: 5000 });
  const refused = msg.headers?.get('Bulwark-Error');
  if (refused !== undefined && refused !== '') throw new Error(`nonce refused: ${refused}`);
  return wire.challenge.decode(msg.data);
}

export async function sendEvidence(nc: NatsConnection, ev: EvidenceMsg): Promise<EvidenceReplyMsg> {
  return sendRawEvidence(nc, wire.evidence.encode(ev));
}

/** The node whose subject raw evidence is sent on: the one it names, or `malformed` when it does not decode. */
function subjectNodeOf(bytes: Uint8Array): string {
  try {
    return wire.evidence.decode(bytes).nodeId;
  } catch {
    return 'malformed';
  }
}

/** Sends evidence bytes on a node's evidence subject (by default the node the bytes name). */
export async function sendRawEvidence(nc: NatsConnection, bytes: Uint8Array, subjectNode: string = subjectNodeOf(bytes)): Promise<EvidenceReplyMsg> {
  const msg = await nc.request(NODE_SUBJECTS.evidence(parseNatsNodeId(subjectNode)), bytes, { timeout: 5000 });
  const refused = msg.headers?.get('Bulwark-Error');
  if (refused !== undefined && refused !== '') {
    return { verdict: 'refused', findings: [{ code: refused, message: msg.headers?.get('Bulwark-Message') ?? '', details: {} }], ...EMPTY_REPLY_STATE };
  }
  return wire.evidenceReply.decode(msg.data);
}

export interface ManualRound {
  readonly nodeId: string;
  /** TPM (and AK handle) that makes the quote: the node's own, or an impostor's. */
  readonly tpm: Tpm;
  readonly akHandle: number;
  readonly bootIdPath: string;
  /** Quote this selection instead of the challenge's. */
  readonly selection?: string;
  /** Change the quote before sending it. */
  readonly tamper?: (q: QuoteOutput) => QuoteOutput;
  /** Wait this long between getting the nonce and quoting. */
  readonly delayMs?: number;
  /** Event log / IMA fields to send with the quote. */
  readonly logs?: Partial<Pick<EvidenceMsg, 'eventLogSha256' | 'eventLog' | 'imaFormat' | 'imaFromEntry' | 'imaFromOffset' | 'imaEntries'>>;
}

/** One round by hand; returns the controller's reply and the evidence that was sent. */
export async function manualRound(nc: NatsConnection, r: ManualRound): Promise<{ reply: EvidenceReplyMsg; evidence: EvidenceMsg }> {
  const ch = await requestChallenge(nc, r.nodeId);
  if (r.delayMs !== undefined) await new Promise((res) => setTimeout(res, r.delayMs));
  let quote = await r.tpm.quote(ch.nonce, r.selection ?? ch.pcrSelection, r.akHandle);
  if (r.tamper !== undefined) quote = r.tamper(quote);
  const evidence: EvidenceMsg = {
    nodeId: r.nodeId,
    nonce: ch.nonce,
    attest: quote.attest,
    signature: quote.signature,
    pcrs: quote.pcrs,
    bootId: (await readFile(r.bootIdPath, 'utf8')).trim(),
    facts: null,
    factsDigest: '',
    round: 0,
    ...NO_LOGS,
    ...r.logs,
  };
  return { reply: await sendEvidence(nc, evidence), evidence };
}

/** Index of `needle` in `haystack`, or -1. */
export function indexOfBytes(haystack: Uint8Array, needle: Uint8Array): number {
  outer: for (let i = 0; i + needle.length <= haystack.length; i++) {
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}
