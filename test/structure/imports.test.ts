/**
 * The source tree's shape: no import cycles (type-only imports count: they still tie two
 * modules' designs together), and documents are parsed only through the schema layer.
 */
import { readdir, readFile } from 'node:fs/promises';
import { dirname, join, normalize, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const SOURCE_ROOTS = ['lib', 'agent', 'controller', 'cli', 'daemon', 'proto'];
const SPECIFIER = /(?:\bfrom|\bimport)\s*\(?\s*['"](\.{1,2}\/[^'"]+)\.js['"]/g;

async function sourceFiles(dir: string): Promise<string[]> {
  let entries;
  try {
    entries = await readdir(join(root, dir), { withFileTypes: true });
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const e of entries) {
    const rel = join(dir, e.name);
    if (e.isDirectory()) {
      if (e.name !== 'gen') out.push(...(await sourceFiles(rel)));
    } else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) out.push(rel);
  }
  return out;
}

const files = (await Promise.all(SOURCE_ROOTS.map(sourceFiles))).flat().sort();
const texts = new Map<string, string>();
for (const f of files) texts.set(f, await readFile(join(root, f), 'utf8'));

t.ok(files.length > 50, `${files.length} source files`);

t.test('no import cycles', async (t) => {
  const graph = new Map<string, string[]>();
  for (const [f, text] of texts) {
    graph.set(f, [...text.matchAll(SPECIFIER)].map((m) => normalize(join(dirname(f), `${m[1] ?? ''}.ts`))));
  }
  const cycles: string[] = [];
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (n: string): void => {
    state.set(n, 'open');
    stack.push(n);
    for (const m of graph.get(n) ?? []) {
      if (state.get(m) === 'open') cycles.push([...stack.slice(stack.indexOf(m)), m].join(' -> '));
      else if (state.get(m) === undefined && graph.has(m)) visit(m);
    }
    stack.pop();
    state.set(n, 'done');
  };
  for (const f of files) if (state.get(f) === undefined) visit(f);
  t.same(cycles, [], 'import cycles');
});

t.test('JSON documents are parsed only by the schema layer', async (t) => {
  const parsers = files.filter((f) => !f.startsWith(join('lib', 'schema')) && /\bJSON\.parse\(/.test(texts.get(f) ?? ''));
  t.same(parsers, [], 'JSON.parse outside lib/schema');
  const reflective = files.filter((f) => /\bReflect\.get\(/.test(texts.get(f) ?? ''));
  t.same(reflective.map((f) => relative('.', f)), [], 'Reflect.get in source');
});
