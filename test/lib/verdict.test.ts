/**
 * Every finding code is one the code can produce and a test expects: a code added to
 * FINDING_CODES without a test that names it (or one nothing produces any more) fails here.
 */
import t from 'tap';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FINDING_CODES } from '../../lib/verdict.js';
import { repoRoot } from './tpm/quote-helpers.js';

async function sources(dir: string, suffix: (name: string) => boolean): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile() && suffix(e.name)) out.push(await readFile(join(e.parentPath, e.name), 'utf8'));
  }
  return out;
}

t.test('each finding code is produced by the source and expected by a test', async (t) => {
  const root = repoRoot();
  const tests = await sources(join(root, 'test'), (n) => n.endsWith('.test.ts'));
  const code: string[] = [];
  for (const dir of ['lib', 'controller', 'agent']) code.push(...(await sources(join(root, dir), (n) => n.endsWith('.ts') && n !== 'verdict.ts')));
  for (const name of Object.keys(FINDING_CODES)) {
    t.ok(
      code.some((s) => s.includes(`'${name}'`)),
      `${name} is produced somewhere`,
    );
    t.ok(
      tests.some((s) => s.includes(name)),
      `${name} is named by a test`,
    );
  }
});
