/**
 * Nomad's event stream (`GET /v1/event/stream`): newline-delimited JSON, one frame per line,
 * either `{"Index": N, "Events": [...]}` or the heartbeat `{}` Nomad writes every ten seconds.
 * The splitter takes bytes as they arrive (chunks may cut a line, or a UTF-8 sequence, anywhere)
 * and the frame parser checks every field it hands out. Pure: no I/O.
 */
import { Type } from '@sinclair/typebox';
import { BulwarkError } from '../errors.js';
import { NODE, nodeFromJson, type NomadNode } from './nodes.js';
import { nomadDocument, NomadIndex, nullableList, OptionalString, parseAt, parseJsonText } from './shape.js';

/** The longest line accepted; a Node event with a big node is a few tens of KiB. */
export const MAX_EVENT_LINE_BYTES = 8 * 1024 * 1024;

/**
 * Splits a byte stream into complete lines. Bytes after the last newline are kept for the
 * next chunk; a line longer than the cap is an error, never an unbounded buffer.
 */
export class NdjsonLineSplitter {
  private readonly decoder = new TextDecoder('utf-8', { fatal: true });
  private pending = '';
  private readonly maxLineBytes: number;

  constructor(maxLineBytes = MAX_EVENT_LINE_BYTES) {
    this.maxLineBytes = maxLineBytes;
  }

  /** Feeds a chunk; returns the lines it completed (without the newline, CR trimmed, blank lines dropped). */
  push(chunk: Uint8Array): string[] {
    let text: string;
    try {
      text = this.decoder.decode(chunk, { stream: true });
    } catch (err) {
      throw new BulwarkError('NOMAD_RESPONSE_MALFORMED', 'the event stream is not UTF-8', {}, { cause: err });
    }
    const out: string[] = [];
    let start = 0;
    // Only the new text is searched: a long line arriving in many chunks costs linear time.
    for (let nl = text.indexOf('\n'); nl !== -1; nl = text.indexOf('\n', start)) {
      const line = this.pending + text.slice(start, nl);
      this.pending = '';
      start = nl + 1;
      const trimmed = line.endsWith('\r') ? line.slice(0, -1) : line;
      if (trimmed.trim() !== '') out.push(trimmed);
    }
    this.pending += text.slice(start);
    // A UTF-16 code unit is at most 3 UTF-8 bytes: a cheap bound before an exact count.
    if (this.pending.length * 3 > this.maxLineBytes && new TextEncoder().encode(this.pending).length > this.maxLineBytes) {
      throw new BulwarkError('NOMAD_RESPONSE_MALFORMED', `an event stream line exceeds ${this.maxLineBytes} bytes`, { maxLineBytes: this.maxLineBytes });
    }
    return out;
  }

  /** Ends the stream: a non-empty unterminated last line is returned, as Nomad may close without a newline. */
  end(): string[] {
    let rest: string;
    try {
      rest = this.pending + this.decoder.decode();
    } catch (err) {
      throw new BulwarkError('NOMAD_RESPONSE_MALFORMED', 'the event stream ends inside a UTF-8 sequence', {}, { cause: err });
    }
    this.pending = '';
    return rest.trim() === '' ? [] : [rest];
  }
}

/** One event. `node` is set for the Node topic (its payload), null for other topics. */
export interface NomadEvent {
  readonly topic: string;
  /** For Node: NodeRegistration, NodeDeregistration, NodeEligibility, NodeDrain, NodeStreamEvent. */
  readonly type: string;
  readonly key: string;
  readonly index: number;
  readonly node: NomadNode | null;
}

/** A decoded line of the stream. */
export type NomadEventFrame =
  | { readonly kind: 'heartbeat' }
  | { readonly kind: 'events'; readonly index: number; readonly events: readonly NomadEvent[] };

/** Parses one line of the event stream. */
export function parseEventLine(line: string): NomadEventFrame {
  return parseEventFrame(parseJsonText(line, 'the event stream'));
}

/** An event frame: the fields Bulwark reads (a Node event's payload is checked on its own). */
const FRAME = nomadDocument(
  Type.Object({
    Index: NomadIndex,
    Events: Type.Optional(
      nullableList(
        Type.Object({
          Topic: Type.String(),
          Type: Type.String(),
          Key: OptionalString,
          Index: NomadIndex,
          Payload: Type.Optional(Type.Unknown()),
        }),
      ),
    ),
  }),
  'event stream frame',
);

const NODE_PAYLOAD = nomadDocument(Type.Object({ Node: Type.Unknown() }), 'Node event payload');

/** Parses one decoded frame: a heartbeat `{}` or a batch of events at one Raft index. */
export function parseEventFrame(v: unknown): NomadEventFrame {
  if (typeof v === 'object' && v !== null && !Array.isArray(v)) {
    if (Object.keys(v).length === 0) return { kind: 'heartbeat' };
    const err: unknown = 'Error' in v ? v.Error : undefined;
    if (err !== undefined && err !== null) {
      const message = typeof err === 'string' ? err : JSON.stringify(err);
      throw new BulwarkError('NOMAD_FAILED', `the event stream reported an error: ${message.slice(0, 300)}`);
    }
  }
  const frame = FRAME.parse(v);
  const events = (frame.Events ?? []).map((e, i): NomadEvent => {
    let node: NomadNode | null = null;
    if (e.Topic === 'Node') {
      const path = `/Events/${i}/Payload`;
      const payload = parseAt(NODE_PAYLOAD, e.Payload, path);
      node = nodeFromJson(parseAt(NODE, payload.Node, `${path}/Node`), `${path}/Node`);
    }
    return { topic: e.Topic, type: e.Type, key: e.Key ?? '', index: e.Index, node };
  });
  return { kind: 'events', index: frame.Index, events };
}
