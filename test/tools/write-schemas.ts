/**
 * Writes every published JSON Schema from the validator schema it documents:
 * `npx tsc -p . && node dist/test/tools/write-schemas.js`. Run it after changing a schema
 * in lib/; test/tools/schemas.test.ts fails until the files are rewritten.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { PUBLISHED_SCHEMAS, REPO_ROOT, schemaText } from './schemas.js';

for (const { file, schema } of PUBLISHED_SCHEMAS) {
  const path = join(REPO_ROOT, file);
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, schemaText(schema));
  process.stdout.write(`wrote ${file}\n`);
}
