/**
 * The measured-boot policy format: the schema validator and the checks after it (errors carry
 * the JSON pointer), the refusal of policies that check nothing, named policies, the JSON
 * round trip, and the example in policies/measured-boot/ (test/tools/schemas.test.ts keeps
 * schema.json generated from the validator's schema).
 */
import t from 'tap';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { BulwarkError } from '../../../lib/errors.js';
import { BOOT_STAGES, formatMeasuredBootPolicy, MeasuredBootPolicyDocumentSchema, parseMeasuredBootPolicies, selectMeasuredBootPolicy } from '../../../lib/eventlog/index.js';
import { buildBootLog } from '../../helpers/eventlog-builder.js';
import { policyDocument } from './eventlog-helpers.js';

const built = buildBootLog();
const H = 'ab'.repeat(32);

function failure(text: string): { code: string; path: unknown; message: string } {
  try {
    parseMeasuredBootPolicies(text);
    return { code: 'no error', path: undefined, message: '' };
  } catch (err) {
    if (!(err instanceof BulwarkError)) return { code: `not a BulwarkError: ${String(err)}`, path: undefined, message: '' };
    return { code: err.code, path: err.details['path'], message: err.message };
  }
}

const policiesDir = fileURLToPath(new URL('../../../../policies/measured-boot/', import.meta.url));

t.test('a full policy parses', async (t) => {
  const [p] = parseMeasuredBootPolicies(policyDocument(built));
  if (p === undefined) return t.fail();
  t.equal(p.name, 'debian12-test');
  t.equal(p.bank, 0x000b);
  t.equal(p.acceptAll, false);
  t.equal(p.secureBoot?.enabled, true);
  t.same(p.stages.shim, new Set([built.sha256.shim]));
  t.ok(p.kernelCmdline?.regex.test(built.kernelCmdline));
  t.notOk(p.kernelCmdline?.regex.test(`${built.kernelCmdline} init=/bin/sh`), 'anchored at both ends');
  t.same(p.warnings, []);
});

t.test('bad documents: MEASURED_BOOT_POLICY_INVALID with the JSON path', async (t) => {
  const cases: [string, string, string][] = [
    ['[]', '', 'an array'],
    ['{"bank":"sha256","acceptAll":true}', '/name', 'no name'],
    ['{"name":"has space","acceptAll":true}', '/name', 'a bad name'],
    ['{"name":"p","acceptAll":"yes"}', '/acceptAll', 'acceptAll not a boolean'],
    ['{"name":"p","bank":"md5","acceptAll":true}', '/bank', 'an unknown bank'],
    ['{"name":"p","stage":{}}', '/stage', 'an unknown key (a typo of stages)'],
    [`{"name":"p","stages":{"kernel":["${H}","zz"]}}`, '/stages/kernel/1', 'a digest that is not hex'],
    [`{"name":"p","stages":{"kernel":["${'ab'.repeat(20)}"]}}`, '/stages/kernel/0', 'a sha1-sized digest in a sha256 policy'],
    [`{"name":"p","bank":"sha1","stages":{"kernel":["${H}"]}}`, '/stages/kernel/0', 'a sha256-sized digest in a sha1 policy'],
    ['{"name":"p","stages":{"kernal":[]}}', '/stages/kernal', 'an unknown stage'],
    ['{"name":"p","stages":{"kernel":"abc"}}', '/stages/kernel', 'a stage that is not a list'],
    ['{"name":"p","secureBoot":{"enabled":1}}', '/secureBoot/enabled', 'enabled not a boolean'],
    ['{"name":"p","secureBoot":{"db":[1]}}', '/secureBoot/db/0', 'a fingerprint that is a number'],
    ['{"name":"p","kernelCmdline":{}}', '/kernelCmdline/pattern', 'a command line without pattern'],
    ['{"name":"p","kernelCmdline":{"pattern":"(unclosed"}}', '/kernelCmdline/pattern', 'a pattern that does not compile'],
    [`{"name":"p","acceptAll":true,"stages":{"shim":["${H}"]}}`, '/acceptAll', 'acceptAll with checks'],
    ['{"policies":[]}', '/policies', 'an empty bundle'],
    ['{"policies":[{"name":"a","acceptAll":true},{"name":"a","acceptAll":true}]}', '/policies/1/name', 'a name used twice'],
    ['{"policies":[{"name":"a","acceptAll":true},{"name":"b","secureBoot":{"pk":["x"]}}]}', '/policies/1/secureBoot/pk/0', 'a path inside a bundle'],
    [`{"policies":[{"name":"a","acceptAll":true},{"name":"b","bank":"sha1","stages":{"shim":["${H}"]}}]}`, '/policies/1/stages/shim/0', 'a digest length inside a bundle'],
  ];
  for (const [text, path, what] of cases) {
    const f = failure(text);
    t.equal(f.code, 'MEASURED_BOOT_POLICY_INVALID', `${what}: code`);
    t.equal(f.path, path, `${what}: path ${path === '' ? '(the document)' : path}`);
    t.ok(f.message.startsWith(`measured-boot policy is invalid at ${path === '' ? '/' : path}: `), `${what}: the message names the path (${f.message})`);
  }
  const notJson = failure('{"name":');
  t.same([notJson.code, notJson.path], ['MEASURED_BOOT_POLICY_INVALID', ''], 'not JSON: code and path');
  t.match(notJson.message, /^measured-boot policy is not JSON: /, 'not JSON: the message says so');
  t.match(failure('{"name":"p","bank":"md5","acceptAll":true}').message, /one of "sha1", "sha256", "sha384", "sha512"/, 'an unknown bank: the message lists the banks');
  t.equal(failure('x'.repeat(5 * 1024 * 1024)).code, 'MEASURED_BOOT_POLICY_INVALID', 'a document over the size cap');
});

t.test('a policy that checks nothing is refused unless it says acceptAll', async (t) => {
  for (const text of ['{"name":"empty"}', '{"name":"empty","secureBoot":{},"stages":{}}']) {
    const f = failure(text);
    t.equal(f.code, 'MEASURED_BOOT_POLICY_CHECKS_NOTHING', text);
    t.match(f.message, /"acceptAll": true/, 'the message says how to accept every boot on purpose');
  }
  const [p] = parseMeasuredBootPolicies('{"name":"lab","acceptAll":true}');
  t.equal(p?.acceptAll, true);
  t.match(p?.warnings.join(' ') ?? '', /accepts every boot/);
  const [empty] = parseMeasuredBootPolicies('{"name":"nothing-allowed","stages":{"shim":[]}}');
  t.same(empty?.stages.shim, new Set(), 'an empty list is a check: nothing is allowed');
  const [warn] = parseMeasuredBootPolicies(`{"name":"k","stages":{"kernel":["${H}"]}}`);
  t.match(warn?.warnings.join(' ') ?? '', /grubFiles/, 'kernel without grubFiles warns that GRUB files will be refused');
});

t.test('named policies', async (t) => {
  const doc = JSON.stringify({ policies: [JSON.parse(policyDocument(built)), { name: 'lab', acceptAll: true }] });
  const list = parseMeasuredBootPolicies(doc);
  t.same(
    list.map((p) => p.name),
    ['debian12-test', 'lab'],
  );
  t.equal(selectMeasuredBootPolicy(list, 'lab').acceptAll, true);
  t.throws(() => selectMeasuredBootPolicy(list), { code: 'USAGE' }, 'two policies and no name');
  t.throws(() => selectMeasuredBootPolicy(list, 'nope'), { code: 'USAGE' });
});

t.test('format → parse round trip', async (t) => {
  const [p] = parseMeasuredBootPolicies(policyDocument(built));
  if (p === undefined) return t.fail();
  const text = formatMeasuredBootPolicy(p);
  const [back] = parseMeasuredBootPolicies(text);
  t.equal(formatMeasuredBootPolicy(back ?? p), text);
  t.same(back?.stages, p.stages);
  t.same(back?.secureBoot?.dbxRequired, [...(p.secureBoot?.dbxRequired ?? [])].sort());
});

t.test('policies/measured-boot: the schema is the validator\'s, the example is valid', async (t) => {
  const schema: unknown = JSON.parse(await readFile(`${policiesDir}schema.json`, 'utf8'));
  t.same(schema, JSON.parse(JSON.stringify(MeasuredBootPolicyDocumentSchema)), 'schema.json is the validator\'s schema');
  const props = (v: unknown, ...path: string[]): string[] => {
    let cur: unknown = v;
    for (const key of path) cur = typeof cur === 'object' && cur !== null ? Object.entries(cur).find(([k]) => k === key)?.[1] : undefined;
    return typeof cur === 'object' && cur !== null ? Object.keys(cur).sort() : [];
  };
  t.same(props(schema, 'anyOf', '0', 'properties'), ['$schema', 'acceptAll', 'allowSha1OnlyLog', 'bank', 'description', 'kernelCmdline', 'name', 'secureBoot', 'stages'].sort());
  t.same(props(schema, 'anyOf', '0', 'properties', 'stages', 'properties'), [...BOOT_STAGES].sort());
  t.same(props(schema, 'anyOf', '0', 'properties', 'secureBoot', 'properties'), ['authorities', 'db', 'dbxRequired', 'enabled', 'kek', 'pk']);
  const example = parseMeasuredBootPolicies(await readFile(`${policiesDir}example.json`, 'utf8'));
  t.ok(example.length >= 1, 'the example parses');
  for (const p of example) t.ok(p.acceptAll || p.secureBoot !== undefined || Object.keys(p.stages).length > 0, `${p.name} checks something`);
});
