/**
 * injectTrustConstraint on the job form Nomad's /v1/jobs/parse returns (a captured answer,
 * test/fixtures/nomad/job-parse-nextcloud-raw.json) and on hand-made variants: the constraint
 * lands on every task group, and specs that try to set, weaken or shadow it are refused.
 */
import t from 'tap';
import { hasTrustConstraint, injectTrustConstraint, TRUST_CONSTRAINT } from '../../../lib/nomad/trust-constraint.js';
import { parseJob } from '../../../lib/nomad/jobs.js';
import { isJsonObject, parseJsonText, toJsonObject, type JsonObject } from '../../../lib/nomad/shape.js';
import { nomadFixtureText } from './fixtures.js';

const captured = toJsonObject(parseJsonText(await nomadFixtureText('job-parse-nextcloud-raw.json'), 'fixture'), 'job');

function groups(job: JsonObject): JsonObject[] {
  const g = job['TaskGroups'];
  return Array.isArray(g) ? g.filter(isJsonObject) : [];
}

function withGroup(job: JsonObject, change: (g: JsonObject) => JsonObject): JsonObject {
  return { ...job, TaskGroups: groups(job).map(change) };
}

function twoGroups(job: JsonObject): JsonObject {
  const g = groups(job)[0] ?? {};
  return { ...job, TaskGroups: [g, { ...g, Name: 'second', Constraints: [{ LTarget: '${attr.kernel.name}', RTarget: 'linux', Operand: '=' }] }] };
}

t.test('the constraint is appended to every task group, other constraints kept', async (tt) => {
  const job = twoGroups(captured);
  const out = injectTrustConstraint(job);
  tt.ok(hasTrustConstraint(out));
  tt.notOk(hasTrustConstraint(job), 'the input is unchanged');
  const [a, b] = groups(out);
  tt.same(a?.['Constraints'], [TRUST_CONSTRAINT]);
  tt.same(b?.['Constraints'], [{ LTarget: '${attr.kernel.name}', RTarget: 'linux', Operand: '=' }, TRUST_CONSTRAINT]);
  tt.same(TRUST_CONSTRAINT, { LTarget: '${meta.bulwark_trusted}', RTarget: 'true', Operand: '=' });
  tt.equal(parseJob(out).id, 'nextcloud', 'still a job');
  tt.same({ ...out, TaskGroups: null }, { ...job, TaskGroups: null }, 'nothing else changed');
});

t.test('specs that mention bulwark_trusted anywhere are refused', async (tt) => {
  const c = (l: string, r: string, op: string): JsonObject => ({ LTarget: l, RTarget: r, Operand: op });
  const task = (job: JsonObject, change: (t: JsonObject) => JsonObject): JsonObject =>
    withGroup(job, (g) => ({ ...g, Tasks: (Array.isArray(g['Tasks']) ? g['Tasks'] : []).filter(isJsonObject).map(change) }));
  const cases: [string, JsonObject][] = [
    ['group constraint !=', withGroup(captured, (g) => ({ ...g, Constraints: [c('${meta.bulwark_trusted}', 'true', '!=')] }))],
    ['group constraint duplicating the rule', withGroup(captured, (g) => ({ ...g, Constraints: [TRUST_CONSTRAINT] }))],
    ['job constraint is_set', { ...captured, Constraints: [c('${meta.bulwark_trusted}', '', 'is_set')] }],
    ['job constraint with spacing', { ...captured, Constraints: [c('${ meta.bulwark_trusted }', 'false', '=')] }],
    ['constraint on the right side', withGroup(captured, (g) => ({ ...g, Constraints: [c('false', '${meta.bulwark_trusted}', '=')] }))],
    ['regexp', withGroup(captured, (g) => ({ ...g, Constraints: [c('${meta.BULWARK_TRUSTED}', '.*', 'regexp')] }))],
    ['group affinity', withGroup(captured, (g) => ({ ...g, Affinities: [{ ...c('${meta.bulwark_trusted}', 'false', '='), Weight: 100 }] }))],
    ['job affinity', { ...captured, Affinities: [{ ...c('${meta.bulwark_trusted}', 'false', '='), Weight: 50 }] }],
    ['job spread', { ...captured, Spreads: [{ Attribute: '${meta.bulwark_trusted}', Weight: 100, SpreadTarget: null }] }],
    ['group spread', withGroup(captured, (g) => ({ ...g, Spreads: [{ Attribute: '${meta.bulwark_trusted}', Weight: 100, SpreadTarget: null }] }))],
    ['task constraint', task(captured, (x) => ({ ...x, Constraints: [c('${meta.bulwark_trusted}', 'false', '=')] }))],
    ['task affinity', task(captured, (x) => ({ ...x, Affinities: [{ ...c('${meta.bulwark_trusted}', 'false', '='), Weight: 10 }] }))],
  ];
  for (const [what, job] of cases) tt.throws(() => injectTrustConstraint(job), { name: 'BulwarkError', code: 'APP_SPEC_OVERRIDES_TRUST' }, what);
});

t.test('specs that could shadow the injected constraint, or are not jobs, are invalid', async (tt) => {
  const cases: [string, JsonObject][] = [
    // Go's encoding/json reads "constraints" as Constraints: it could replace the injected list.
    ['lower-case constraints key', withGroup(captured, (g) => ({ ...g, constraints: [] }))],
    ['upper-case taskgroups key', { ...captured, TASKGROUPS: [] }],
    ['lower-case tasks key', withGroup(captured, (g) => ({ ...g, tasks: [] }))],
    ['odd-case constraint field', withGroup(captured, (g) => ({ ...g, Constraints: [{ ltarget: '${meta.bulwark_trusted}', RTarget: 'true', Operand: '!=' }] }))],
    ['no task groups', { ...captured, TaskGroups: [] }],
    ['task groups not a list', { ...captured, TaskGroups: {} }],
    ['constraints not a list', withGroup(captured, (g) => ({ ...g, Constraints: 'none' }))],
    ['no ID', { ...captured, ID: '' }],
  ];
  for (const [what, job] of cases) tt.throws(() => injectTrustConstraint(job), { name: 'BulwarkError', code: 'APP_SPEC_INVALID' }, what);
});
