/** canonicalJson: the one canonical form that report chains, ruleset digests and facts digests hash. */
import t from 'tap';
import { canonicalJson } from '../../../lib/schema/index.js';

t.equal(canonicalJson({ b: 1, a: [true, null, 'x'], c: { z: 2, y: undefined } }), '{"a":[true,null,"x"],"b":1,"c":{"z":2}}', 'keys sorted at every level, undefined members left out');
t.equal(canonicalJson([undefined, 1]), '[null,1]', 'an undefined array item is null');
t.equal(canonicalJson({ é: 1, z: 2, Z: 3 }), '{"Z":3,"z":2,"é":1}', 'UTF-16 code unit order');
t.equal(canonicalJson(JSON.parse('{"b":{"d":1,"c":2},"a":0}')), canonicalJson({ a: 0, b: { c: 2, d: 1 } }), 'the same value however it was built');
t.throws(() => canonicalJson({ n: Number.NaN }, { what: 'a report', code: 'BASELINE_REPORT_INVALID' }), { code: 'BASELINE_REPORT_INVALID', message: /a report holds a number/ });
t.throws(() => canonicalJson({ f: () => 1 }), { code: 'USAGE' });
let deep: unknown = 1;
for (let i = 0; i < 10; i++) deep = [deep];
t.equal(canonicalJson(deep, { maxDepth: 11 }), `${'['.repeat(10)}1${']'.repeat(10)}`, 'within the depth cap');
t.throws(() => canonicalJson(deep, { maxDepth: 10 }), { message: /deeper than 10 levels/ });
