/**
 * Nomad's event stream: the NDJSON captured from a real Nomad (test/fixtures/nomad/
 * event-stream-node.ndjson) decodes to the same frames however it is cut into chunks (every
 * offset of its head, many chunk sizes, inside UTF-8 sequences), and broken streams and frames
 * give BulwarkErrors.
 */
import t from 'tap';
import { NdjsonLineSplitter, parseEventFrame, parseEventLine, type NomadEventFrame } from '../../../lib/nomad/events.js';
import { expected, nomadFixtureBytes, rec, strings } from './fixtures.js';

const enc = new TextEncoder();

function decodeChunks(chunks: readonly Uint8Array[], maxLineBytes?: number): NomadEventFrame[] {
  const s = new NdjsonLineSplitter(maxLineBytes);
  const lines: string[] = [];
  for (const c of chunks) lines.push(...s.push(c));
  lines.push(...s.end());
  return lines.map(parseEventLine);
}

function chunked(bytes: Uint8Array, size: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < bytes.length; i += size) out.push(bytes.subarray(i, i + size));
  return out;
}

const stream = await nomadFixtureBytes('event-stream-node.ndjson');
const whole = decodeChunks([stream]);

t.test('the captured stream decodes to what the capture did', async (tt) => {
  const want = await expected('event-stream-node');
  const heartbeats = whole.filter((f) => f.kind === 'heartbeat').length;
  tt.ok(heartbeats >= Number(want['heartbeatsAtLeast']), `${heartbeats} heartbeats`);
  const events = whole.flatMap((f) => (f.kind === 'events' ? f.events : []));
  const types = new Set(events.map((e) => e.type));
  for (const ty of strings(want['typesInclude'], 'typesInclude')) tt.ok(types.has(ty), `has ${ty} events`);
  tt.ok(events.every((e) => e.topic === 'Node' && e.node !== null && e.node.id === e.key), 'every event is a Node event whose key is the node id');
  const indexes = whole.flatMap((f) => (f.kind === 'events' ? [f.index] : []));
  tt.same(indexes, [...indexes].sort((a, b) => a - b), 'frames come in Raft index order');
  const fresh = rec(want['newClient'], 'newClient');
  const mine = events.filter((e) => e.node?.name === fresh['name']);
  tt.equal(mine[0]?.type, 'NodeRegistration', 'a new client first appears as NodeRegistration');
  tt.equal(mine[0]?.node?.status, fresh['firstStatus'], 'while initializing');
  for (const st of strings(fresh['laterStatuses'], 'laterStatuses')) tt.ok(mine.some((e) => e.node?.status === st), `then ${st}`);
  tt.equal(mine[0]?.node?.eligibility, 'eligible', 'Nomad makes a new node eligible by default');
  const meta = rec(want['metaSeen'], 'metaSeen');
  tt.ok(events.some((e) => e.node !== null && e.node.name === meta['node'] && e.node.meta['bulwark_trusted'] === meta['bulwark_trusted']), 'dynamic meta shows in the node payload');
  tt.ok(events.some((e) => e.node !== null && e.node.drain && e.node.drainStrategy !== null), 'a draining node carries its drain strategy');
});

t.test('any chunking gives the same frames', async (tt) => {
  for (const size of [1, 2, 3, 5, 7, 64, 1000, 4093, 65536]) {
    tt.same(decodeChunks(chunked(stream, size)), whole, `chunks of ${size} bytes`);
  }
  // Split the head (heartbeat and two frames) into two pieces at every offset.
  let end = 0;
  for (let n = 0; n < 3; n++) end = stream.indexOf(0x0a, end) + 1;
  const head = stream.subarray(0, end);
  const headFrames = decodeChunks([head]);
  tt.equal(headFrames.length, 3);
  let same = 0;
  for (let cut = 0; cut <= head.length; cut++) {
    if (JSON.stringify(decodeChunks([head.subarray(0, cut), head.subarray(cut)])) === JSON.stringify(headFrames)) same++;
  }
  tt.equal(same, head.length + 1, `all ${head.length + 1} two-piece splits of the head agree`);
});

t.test('UTF-8 cut inside a character, CRLF, blank lines, an unterminated last line', async (tt) => {
  const line = '{"Index":5,"Events":[{"Topic":"Job","Type":"JobRegistered","Key":"café-😀","Index":5,"Payload":{}}]}';
  const bytes = enc.encode(`\r\n${line}\r\n\n{}`);
  const want = decodeChunks([bytes]);
  tt.equal(want.length, 2);
  const first = want[0];
  tt.equal(first?.kind === 'events' ? first.events[0]?.key : undefined, 'café-😀');
  tt.equal(first?.kind === 'events' ? first.events[0]?.node : undefined, null, 'a non-Node topic has no node');
  tt.same(want[1], { kind: 'heartbeat' }, 'the unterminated last line is kept');
  for (let cut = 0; cut <= bytes.length; cut++) tt.same(decodeChunks([bytes.subarray(0, cut), bytes.subarray(cut)]), want);
});

t.test('broken streams', async (tt) => {
  tt.throws(() => new NdjsonLineSplitter().push(new Uint8Array([0x7b, 0xff, 0x7d, 0x0a])), { code: 'NOMAD_RESPONSE_MALFORMED' }, 'invalid UTF-8');
  const s = new NdjsonLineSplitter();
  s.push(new Uint8Array([0xc3]));
  tt.throws(() => s.end(), { code: 'NOMAD_RESPONSE_MALFORMED' }, 'ends inside a UTF-8 sequence');
  const capped = new NdjsonLineSplitter(1024);
  tt.throws(() => {
    for (let i = 0; i < 100; i++) capped.push(enc.encode('x'.repeat(100)));
  }, { code: 'NOMAD_RESPONSE_MALFORMED' }, 'a line over the cap, never an unbounded buffer');
  tt.throws(() => parseEventLine('{"Index":1,"Events":[{"Topic":'), { code: 'NOMAD_RESPONSE_MALFORMED' }, 'a cut frame');
});

t.test('frames', async (tt) => {
  tt.same(parseEventFrame({}), { kind: 'heartbeat' });
  tt.same(parseEventFrame({ Index: 3, Events: null }), { kind: 'events', index: 3, events: [] });
  tt.throws(() => parseEventFrame({ Error: 'permission denied' }), { code: 'NOMAD_FAILED' }, 'an error frame');
  const bad: [string, unknown][] = [
    ['not an object', []],
    ['no index', { Events: [] }],
    ['negative index', { Index: -1, Events: [] }],
    ['events not a list', { Index: 1, Events: {} }],
    ['event without topic', { Index: 1, Events: [{ Type: 'x', Key: 'k', Index: 1 }] }],
    ['Node event without a node', { Index: 1, Events: [{ Topic: 'Node', Type: 'NodeRegistration', Key: 'k', Index: 1, Payload: {} }] }],
    ['Node event with a malformed node', { Index: 1, Events: [{ Topic: 'Node', Type: 'NodeRegistration', Key: 'k', Index: 1, Payload: { Node: { ID: 'k' } } }] }],
  ];
  for (const [what, v] of bad) tt.throws(() => parseEventFrame(v), { code: 'NOMAD_RESPONSE_MALFORMED' }, what);
});

t.test('errors name the JSON pointer in the whole frame', async (tt) => {
  const node = { ID: 'n1', Name: 'client-1', Status: 'ready', SchedulingEligibility: 'eligible', Drain: false, CreateIndex: 1, ModifyIndex: 2 };
  const frame = (n: unknown): unknown => ({ Index: 9, Events: [{ Topic: 'Job', Type: 'JobRegistered', Key: 'j', Index: 9, Payload: {} }, { Topic: 'Node', Type: 'NodeRegistration', Key: 'n1', Index: 9, Payload: { Node: n } }] });
  const ok = parseEventFrame(frame(node));
  tt.equal(ok.kind === 'events' ? ok.events[1]?.node?.id : undefined, 'n1', 'a Node event carries its node; other topics pass');
  tt.throws(() => parseEventFrame(frame({ ...node, SchedulingEligibility: 'maybe' })), { code: 'NOMAD_RESPONSE_MALFORMED', details: { path: '/Events/1/Payload/Node/SchedulingEligibility' } });
  tt.throws(() => parseEventFrame(frame({ ...node, Drain: true })), { code: 'NOMAD_RESPONSE_MALFORMED', details: { path: '/Events/1/Payload/Node/Drain' } }, 'Drain without a strategy');
  tt.throws(() => parseEventFrame({ Index: 1, Events: [{ Topic: 'Node', Type: 'x', Key: 'k', Index: -1 }] }), { code: 'NOMAD_RESPONSE_MALFORMED', details: { path: '/Events/0/Index' } });
});
