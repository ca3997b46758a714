/**
 * The Nomad answer parsers on answers captured from a real Nomad (test/fixtures/nomad/), and on
 * truncated and mutated copies of them: every one gives the captured values, and every broken
 * one a BulwarkError, never a TypeError.
 */
import t from 'tap';
import { readdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { BulwarkError } from '../../../lib/errors.js';
import {
  parseAllocationList,
  parseJob,
  parseJobDeregisterResponse,
  parseJobRegisterResponse,
  parseJobValidateResponse,
} from '../../../lib/nomad/jobs.js';
import { parseNode, parseNodeList, parseNodeMetaResponse, parseNodeUpdateResponse } from '../../../lib/nomad/nodes.js';
import { parseJsonText } from '../../../lib/nomad/shape.js';
import { expected, nomadFixturePath, nomadFixtureText, rec, strings } from './fixtures.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

async function load(name: string): Promise<unknown> {
  return parseJsonText(await nomadFixtureText(`${name}.json`), name);
}

t.test('GET /v1/nodes', async (tt) => {
  const nodes = parseNodeList(await load('nodes-list'));
  const want = await expected('nodes-list');
  tt.equal(nodes.length, want['count']);
  for (const w of Array.isArray(want['nodes']) ? want['nodes'] : []) {
    const e = rec(w, 'node');
    const n = nodes.find((x) => x.name === e['name']);
    tt.ok(n !== undefined, `${String(e['name'])} listed`);
    tt.match(n, { id: e['id'], status: e['status'], eligibility: e['eligibility'], drain: e['drain'] });
  }
});

t.test('GET /v1/node/:id in its states', async (tt) => {
  for (const name of ['node-ready', 'node-static-meta', 'node-draining', 'node-drained']) {
    const node = parseNode(await load(name));
    const want = await expected(name);
    tt.equal(node.id, want['id'], `${name}: id`);
    for (const k of ['name', 'status', 'eligibility', 'drain'] as const) {
      if (k in want) tt.equal(node[k], want[k], `${name}: ${k}`);
    }
    if ('drainStrategy' in want) tt.equal(node.drainStrategy, want['drainStrategy'], `${name}: no drain strategy`);
    if ('deadlineNs' in want) tt.equal(node.drainStrategy?.deadlineNs, want['deadlineNs'], `${name}: drain deadline`);
    if ('metaHas' in want) tt.match(node.meta, rec(want['metaHas'], 'metaHas'), `${name}: meta`);
    if ('metaLacks' in want) for (const k of strings(want['metaLacks'], 'metaLacks')) tt.notOk(k in node.meta, `${name}: no ${k}`);
  }
});

t.test('/v1/client/metadata answers', async (tt) => {
  for (const name of ['meta-apply-response', 'meta-read-response']) {
    const meta = parseNodeMetaResponse(await load(name));
    const want = await expected(name);
    tt.match(meta.meta, rec(want['metaHas'], 'metaHas'), `${name}: merged meta`);
    tt.same(meta.dynamic, want['dynamic'], `${name}: dynamic meta`);
    for (const k of strings(want['staticLacks'], 'staticLacks')) tt.notOk(k in meta.static, `${name}: ${k} is not static`);
  }
});

t.test('eligibility and drain answers', async (tt) => {
  for (const name of ['eligibility-response', 'drain-response']) {
    const r = parseNodeUpdateResponse(await load(name));
    tt.same(r.evalIds, [], `${name}: no evaluation (Nomad writes null)`);
    tt.ok(r.index > 0, `${name}: a Raft index`);
  }
  // Cancelling the drain with MarkEligible makes the node eligible: Nomad evaluates the jobs again.
  const cancel = parseNodeUpdateResponse(await load('cancel-drain-response'));
  tt.equal(cancel.evalIds.length, 1, 'cancel-drain-response: one evaluation');
  tt.match(cancel.evalIds[0], UUID);
});

t.test('job answers: parse, validate, register, allocations, deregister', async (tt) => {
  const job = parseJob(await load('job-parse-nextcloud-raw'));
  const want = await expected('job-parse-nextcloud-raw');
  tt.match(job, { id: want['id'], name: want['name'], type: want['type'] });
  tt.same(job.taskGroups, want['taskGroups']);
  const ok = parseJobValidateResponse(await load('validate-ok'));
  tt.same({ errors: ok.errors, error: ok.error, driverConfigValidated: ok.driverConfigValidated }, await expected('validate-ok'));
  const bad = parseJobValidateResponse(await load('validate-errors'));
  const wantBad = await expected('validate-errors');
  tt.equal(bad.errors.length, wantBad['errorCount']);
  tt.ok(bad.errors[0]?.includes(String(wantBad['errorIncludes'])), 'the validation error names the problem');
  tt.match(parseJobRegisterResponse(await load('job-register-response')).evalId, UUID);
  tt.match(parseJobDeregisterResponse(await load('job-deregister-response')).evalId, UUID);
  const allocs = parseAllocationList(await load('job-allocations'));
  const wantAllocs = await expected('job-allocations');
  tt.equal(allocs.length, wantAllocs['count']);
  for (const a of allocs) tt.match(a, { jobId: wantAllocs['jobId'], taskGroup: wantAllocs['taskGroup'], clientStatus: wantAllocs['clientStatus'], desiredStatus: wantAllocs['desiredStatus'] });
  const onNode = parseAllocationList(await load('node-allocations'));
  tt.ok(onNode.length >= 1 && onNode.every((a) => a.nodeName === 'client-1'), 'node allocations are on that node');
});

/** Every captured JSON answer with the parser that reads it. */
const PARSERS: Record<string, (v: unknown) => unknown> = {
  'nodes-list': parseNodeList,
  'node-ready': (v) => parseNode(v),
  'node-static-meta': (v) => parseNode(v),
  'node-draining': (v) => parseNode(v),
  'node-drained': (v) => parseNode(v),
  'meta-apply-response': parseNodeMetaResponse,
  'meta-read-response': parseNodeMetaResponse,
  'eligibility-response': parseNodeUpdateResponse,
  'drain-response': parseNodeUpdateResponse,
  'cancel-drain-response': parseNodeUpdateResponse,
  'job-parse-nextcloud-raw': (v) => parseJob(v),
  'validate-ok': parseJobValidateResponse,
  'validate-errors': parseJobValidateResponse,
  'job-register-response': parseJobRegisterResponse,
  'job-deregister-response': parseJobDeregisterResponse,
  'job-allocations': parseAllocationList,
  'node-allocations': parseAllocationList,
};

t.test('every captured answer has a parser and parses', async (tt) => {
  const files = (await readdir(dirname(nomadFixturePath('x')))).filter((f) => f.endsWith('.json') && !f.endsWith('.expected.json'));
  for (const f of files) {
    const name = f.replace(/\.json$/, '');
    const parse = PARSERS[name];
    tt.ok(parse !== undefined, `${name} has a parser`);
    if (parse !== undefined) {
      const v = await load(name);
      tt.doesNotThrow(() => parse(v), `${name} parses`);
    }
  }
});

function isNomadError(err: unknown): boolean {
  return err instanceof BulwarkError && (err.code === 'NOMAD_RESPONSE_MALFORMED' || err.code === 'NOMAD_FAILED');
}

t.test('truncated answers are NOMAD_RESPONSE_MALFORMED', async (tt) => {
  for (const [name, parse] of Object.entries(PARSERS)) {
    const text = await nomadFixtureText(`${name}.json`);
    let bad = 0;
    const step = Math.max(1, Math.floor(text.length / 40));
    for (let cut = 0; cut < text.length - 1; cut += step) {
      try {
        parse(parseJsonText(text.slice(0, cut), name));
      } catch (err) {
        if (isNomadError(err)) bad++;
        else tt.fail(`${name} cut at ${cut}: ${String(err)}`);
        continue;
      }
      tt.fail(`${name} cut at ${cut} parsed`);
    }
    tt.ok(bad > 0, `${name}: ${bad} truncations refused`);
  }
});

/** Replaces every value of one field, at any depth, by a value of the wrong type. */
function mutate(v: unknown, field: string, to: unknown): unknown {
  if (Array.isArray(v)) return v.map((x: unknown) => mutate(x, field, to));
  if (typeof v === 'object' && v !== null) {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, k === field ? to : mutate(x, field, to)]));
  }
  return v;
}

t.test('answers with a field of the wrong type are NOMAD_RESPONSE_MALFORMED', async (tt) => {
  const cases: [string, string, unknown][] = [
    ['nodes-list', 'SchedulingEligibility', 'maybe'],
    ['nodes-list', 'ID', null],
    ['nodes-list', 'Drain', 'yes'],
    ['nodes-list', 'ModifyIndex', -1],
    ['node-ready', 'Meta', ['bulwark_trusted']],
    ['node-ready', 'Status', 7],
    ['node-draining', 'Deadline', '30s'],
    ['node-draining', 'DrainStrategy', null],
    ['meta-apply-response', 'Dynamic', 'x'],
    ['meta-read-response', 'Meta', { bulwark_trusted: true }],
    ['eligibility-response', 'EvalIDs', [1]],
    ['job-parse-nextcloud-raw', 'TaskGroups', {}],
    ['job-parse-nextcloud-raw', 'Driver', null],
    ['job-parse-nextcloud-raw', 'Constraints', 'none'],
    ['validate-ok', 'ValidationErrors', 'none'],
    ['validate-ok', 'DriverConfigValidated', 'yes'],
    ['job-allocations', 'ClientStatus', 1],
    ['job-allocations', 'CreateTime', 'now'],
  ];
  for (const [name, field, to] of cases) {
    const parse = PARSERS[name];
    if (parse === undefined) throw new Error(name);
    const v = mutate(await load(name), field, to);
    tt.throws(() => parse(v), { name: 'BulwarkError', code: 'NOMAD_RESPONSE_MALFORMED' }, `${name} with ${field}=${JSON.stringify(to)}`);
  }
  const LISTS = new Set(['nodes-list', 'job-allocations', 'node-allocations']);
  for (const [name, parse] of Object.entries(PARSERS)) {
    // Lists refuse objects; objects refuse lists. Nomad writes null for an empty list.
    const wrongs: unknown[] = LISTS.has(name) ? [42, 'text', true, {}, [42]] : [42, 'text', true, null, [], [{}]];
    for (const wrong of wrongs) {
      tt.throws(() => parse(wrong), { name: 'BulwarkError', code: 'NOMAD_RESPONSE_MALFORMED' }, `${name} refuses ${JSON.stringify(wrong)}`);
    }
  }
});
