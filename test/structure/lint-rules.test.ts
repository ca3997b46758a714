/**
 * Bulwark's own lint rules (tools/eslint/rules.js) on small sources: each reports what
 * it should and nothing else.
 */
import { ESLint } from 'eslint';
import { fileURLToPath } from 'node:url';
import t from 'tap';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const eslint = new ESLint({ cwd: root });

async function ruleIds(code: string, file: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: `${root}${file}` });
  return (result?.messages ?? []).map((m) => m.ruleId ?? m.message);
}

t.test('imports across folders go through index.ts', async (t) => {
  t.same(await ruleIds("export { Store } from '../state/store.js';\n", 'controller/verifier/x.ts'), ['bulwark/import-through-index']);
  t.same(await ruleIds("export { Store } from '../state/index.js';\n", 'controller/verifier/x.ts'), []);
  t.same(await ruleIds("export { Verifier } from './verifier.js';\n", 'controller/verifier/x.ts'), [], 'own folder');
  t.same(await ruleIds("export { BulwarkError } from '../errors.js';\n", 'lib/eventlog/x.ts'), [], 'a leaf of an enclosing folder');
  t.same(await ruleIds("export { BulwarkError } from '../../lib/errors.js';\n", 'controller/verifier/x.ts'), ['bulwark/import-through-index']);
  t.same(await ruleIds("export const load = () => import('../api/grpc-server.js');\n", 'controller/verifier/x.ts'), ['bulwark/import-through-index'], 'dynamic imports too');
});

t.test('lib/ is pure', async (t) => {
  t.same(await ruleIds("export { readFile } from 'node:fs';\n", 'lib/x.ts'), ['bulwark/lib-purity']);
  t.same(await ruleIds("export { connect } from 'nats';\n", 'lib/tpm/x.ts'), ['bulwark/lib-purity']);
  t.same(await ruleIds("export { Store } from '../controller/index.js';\n", 'lib/x.ts'), ['bulwark/lib-purity']);
  t.same(await ruleIds("export { createHash } from 'node:crypto';\n", 'lib/x.ts'), []);
  t.same(await ruleIds("export { Type } from '@sinclair/typebox';\n", 'lib/schema/x.ts'), []);
});

t.test('the style rules hold in source', async (t) => {
  t.same(await ruleIds('export default 1;\n', 'agent/x.ts'), ['no-restricted-syntax']);
  t.same(await ruleIds("export * from './y.js';\n", 'agent/x.ts'), ['no-restricted-syntax']);
  t.same(await ruleIds('export const f = (x: unknown): number => x as number;\n', 'agent/x.ts'), ['@typescript-eslint/consistent-type-assertions']);
  t.same(await ruleIds('export const f = (x: any): number => x;\n', 'agent/x.ts'), ['@typescript-eslint/no-explicit-any']);
  t.same(await ruleIds('export const f = (x: number | undefined): number => x!;\n', 'agent/x.ts'), ['@typescript-eslint/no-non-null-assertion']);
  t.same(await ruleIds("export const k = ['a'] as const;\n", 'agent/x.ts'), [], 'as const is not an assertion on data');
});
