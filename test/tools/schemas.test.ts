/**
 * Every published schema.json is exactly what its validator schema generates (byte for byte),
 * so the file a reader or an editor uses is the schema Bulwark validates with.
 */
import t from 'tap';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PUBLISHED_SCHEMAS, REPO_ROOT, schemaText } from './schemas.js';

for (const { file, schema } of PUBLISHED_SCHEMAS) {
  t.test(`${file} is generated from its validator`, async (t) => {
    const committed = await readFile(join(REPO_ROOT, file), 'utf8');
    t.equal(committed, schemaText(schema), `${file} is out of date: run node dist/test/tools/write-schemas.js`);
  });
}
