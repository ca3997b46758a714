/**
 * lib/schema parseYamlText and measured-boot policies written as YAML: a YAML policy is the
 * same policy as its JSON twin; hostile YAML (tags, duplicate keys, merge keys, non-string
 * keys, alias bombs, several documents, deep nesting, huge texts, random bytes) is a
 * BulwarkError with the caller's code, never a crash or a hang.
 */
import t from 'tap';
import { BulwarkError } from '../../../lib/errors.js';
import { MAX_POLICY_DOCUMENT_SIZE, formatMeasuredBootPolicy, parseMeasuredBootPolicies } from '../../../lib/eventlog/index.js';
import { canonicalJson, documentFormatOf, parseDocumentText, parseYamlText } from '../../../lib/schema/index.js';
import { prng } from '../hostile.js';

const CODE = 'MEASURED_BOOT_POLICY_INVALID';
const yaml = (text: string): unknown => parseYamlText(text, 'test document', CODE);

const POLICY_YAML = `# a measured-boot policy, as YAML
name: debian-fleet
bank: sha256
secureBoot:
  enabled: true
stages:
  shim: &shim
    - ${'ab'.repeat(32)}
  grub: *shim   # an alias: the same list
kernelCmdline:
  pattern: 'BOOT_IMAGE=\\S+ root=UUID=[0-9a-f-]+ ro quiet'
`;

const POLICY_JSON = JSON.stringify({
  name: 'debian-fleet',
  bank: 'sha256',
  secureBoot: { enabled: true },
  stages: { shim: ['ab'.repeat(32)], grub: ['ab'.repeat(32)] },
  kernelCmdline: { pattern: 'BOOT_IMAGE=\\S+ root=UUID=[0-9a-f-]+ ro quiet' },
});

t.test('a YAML policy is its JSON twin', async (t) => {
  const [fromYaml] = parseMeasuredBootPolicies(POLICY_YAML, 'p.yaml', 'yaml');
  const [fromJson] = parseMeasuredBootPolicies(POLICY_JSON, 'p.json');
  if (fromYaml === undefined || fromJson === undefined) return t.fail('no policy');
  t.equal(formatMeasuredBootPolicy(fromYaml), formatMeasuredBootPolicy(fromJson), 'the same policy');
  t.equal(canonicalJson(yaml(POLICY_YAML)), canonicalJson(JSON.parse(POLICY_JSON)), 'the same canonical JSON, so the same signed payload');
  const reformatted = `{name: debian-fleet, bank: sha256, secureBoot: {enabled: true}, stages: {shim: ["${'ab'.repeat(32)}"], grub: ["${'ab'.repeat(32)}"]}, kernelCmdline: {pattern: "BOOT_IMAGE=\\\\S+ root=UUID=[0-9a-f-]+ ro quiet"}}`;
  t.equal(canonicalJson(yaml(reformatted)), canonicalJson(yaml(POLICY_YAML)), 'flow style, other order: the same canonical JSON');
  t.equal(documentFormatOf('a/b.YML'), 'yaml');
  t.equal(documentFormatOf('a/b.yaml'), 'yaml');
  t.equal(documentFormatOf('a/b.json'), 'json');
  t.same(parseDocumentText('{"a": 1}', 'json', 'x', CODE), { a: 1 });
  // The schema still applies, with the JSON pointer of the problem.
  t.throws(() => parseMeasuredBootPolicies('name: x\nbank: md5\nacceptAll: true\n', 'p.yaml', 'yaml'), { code: CODE, details: { path: '/bank' } });
  t.throws(() => parseMeasuredBootPolicies('name: x\n', 'p.yaml', 'yaml'), { code: 'MEASURED_BOOT_POLICY_CHECKS_NOTHING' });
  t.throws(() => parseMeasuredBootPolicies(POLICY_YAML, 'p.yaml'), { code: CODE }, 'YAML read as JSON is refused');
});

t.test('strict YAML: what is refused', async (t) => {
  const refused: Array<[string, string, RegExp]> = [
    ['a: !!js/function "return 1"\n', 'a language tag', /tag/i],
    ['a: !custom x\n', 'a custom tag', /tag/i],
    ['a: !!binary aGk=\n', 'a core binary tag', /tag/],
    ['a: !!str 1\n', 'even a standard tag', /tag/],
    ['a: 1\na: 2\n', 'a duplicate key', /unique|duplicate/i],
    ['? [a, b]\n: 1\n', 'a collection as key', /key must be a string/],
    ['1: x\n', 'a number as key', /key must be a string/],
    ['null: x\n', 'null as key', /key must be a string/],
    ['a: 1\n---\nb: 2\n', 'two documents', /document/i],
    ['a: .inf\n', 'an infinite number', /number/],
    ['a: [1, 2\n', 'unclosed flow sequence', /YAML/],
    ['a: *nowhere\n', 'an unknown alias', /YAML|alias/i],
    ['\t- a\n', 'a tab as indentation', /YAML/],
  ];
  for (const [text, what, message] of refused) t.throws(() => yaml(text), { code: CODE, message }, what);
  // `<<` is an ordinary key (YAML 1.2 core, no merge): the schema then refuses it as an unknown property.
  t.same(yaml('base: &b {x: 1}\nother:\n  <<: *b\n'), { base: { x: 1 }, other: { '<<': { x: 1 } } });
  t.throws(() => parseMeasuredBootPolicies('name: x\nacceptAll: true\n<<: {bank: sha1}\n', 'p.yaml', 'yaml'), { code: CODE }, 'a merge key in a policy');
  t.same(yaml('__proto__: {polluted: true}\n'), JSON.parse('{"__proto__": {"polluted": true}}'), '__proto__ is data');
  t.equal(Object.prototype.hasOwnProperty.call({}, 'polluted'), false, 'the prototype is untouched');
  t.equal(yaml(''), null, 'an empty document is null (and then no policy)');
  t.throws(() => parseMeasuredBootPolicies('', 'p.yaml', 'yaml'), { code: CODE });
  t.throws(() => parseYamlText(new Uint8Array([0x61, 0x3a, 0x20, 0xff]), 'x', CODE), { code: CODE, message: /UTF-8/ });
});

t.test('alias bombs, deep nesting and size: capped, quickly', async (t) => {
  // "Billion laughs": ten levels of nine aliases each.
  let bomb = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n';
  let prev = 'a';
  for (const n of 'bcdefghij') {
    bomb += `${n}: &${n} [${Array(9).fill(`*${prev}`).join(',')}]\n`;
    prev = n;
  }
  t.throws(() => yaml(bomb), { code: CODE, message: /alias|resource/i }, 'billion laughs');
  // Few aliases of a large node: the expansion is capped like the text.
  const big = `x: &x [${Array.from({ length: 20_000 }, () => '"' + 'y'.repeat(100) + '"').join(',')}]\ny: [${Array(90).fill('*x').join(',')}]\n`;
  t.ok(big.length < MAX_POLICY_DOCUMENT_SIZE);
  t.throws(() => parseMeasuredBootPolicies(big, 'big.yaml', 'yaml'), { code: CODE, message: /expand/ }, 'aliases of a 2 MB list');
  t.throws(() => yaml(`${'['.repeat(100_000)}${']'.repeat(100_000)}`), { code: CODE }, 'deep flow nesting');
  t.throws(() => yaml(`${Array.from({ length: 200 }, (_, i) => `${' '.repeat(i)}a:`).join('\n')} 1\n`), { code: CODE, message: /deeper|nest/ }, 'deep block nesting');
  t.throws(() => parseMeasuredBootPolicies(`name: x\n#${'x'.repeat(MAX_POLICY_DOCUMENT_SIZE)}\n`, 'p.yaml', 'yaml'), { code: CODE, message: /larger/ }, 'a huge text');
});

t.test('random and mutated YAML: a BulwarkError or a value, never anything else', async (t) => {
  const rnd = prng(0x9a41);
  const int = (n: number): number => Math.floor(rnd() * n);
  const alphabet = 'ab: -[]{}&*!|>\'"#%@`,?\n\t \\<<0x1.e';
  const failures: string[] = [];
  let parsed = 0;
  const probe = (text: string): void => {
    try {
      parseMeasuredBootPolicies(text, 'fuzz.yaml', 'yaml');
      parsed++;
    } catch (err) {
      if (!(err instanceof BulwarkError)) failures.push(`${JSON.stringify(text.slice(0, 200))}: ${String(err)}`);
    }
  };
  for (let i = 0; i < 3000; i++) probe(Array.from({ length: int(200) }, () => alphabet[int(alphabet.length)] ?? '').join(''));
  for (let i = 0; i < 2000; i++) {
    const chars = [...POLICY_YAML];
    for (let j = 1 + int(5); j > 0; j--) chars[int(chars.length)] = alphabet[int(alphabet.length)] ?? '';
    probe(chars.join(''));
  }
  t.same(failures.slice(0, 5), [], 'only BulwarkErrors');
  t.ok(parsed > 0, `some mutated policies still parse (${parsed})`);
});
