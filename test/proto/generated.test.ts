/**
 * proto/gen/ is what `npm run proto` (proto/generate.sh) makes from the .proto files today:
 * regenerating into a scratch folder gives the same files, byte for byte. Skipped, with
 * the reason, only where protoc is not installed (packaging/dev-setup.sh installs it).
 */
import t from 'tap';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const COMMITTED = join(ROOT, 'proto', 'gen');

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => relative(dir, join(e.parentPath, e.name)))
    .sort();
}

const protoc = spawnSync('protoc', ['--version'], { encoding: 'utf8' });
const missing = protoc.error !== undefined || protoc.status !== 0;
const skip = missing ? 'regenerating proto/gen/ needs protoc, which is not installed (apt-get install protobuf-compiler, or npm run setup)' : false;

t.test(`proto/gen/ is up to date${missing ? '' : ` (${protoc.stdout.trim()})`}`, { skip }, async (t) => {
  const scratch = mkdtempSync(join(tmpdir(), 'bulwark-proto-'));
  t.teardown(() => rmSync(scratch, { recursive: true, force: true }));
  const out = join(scratch, 'gen');
  execFileSync('bash', [join(ROOT, 'proto', 'generate.sh'), out], { stdio: ['ignore', 'ignore', 'pipe'] });
  const committed = filesUnder(COMMITTED);
  t.same(filesUnder(out), committed, 'the same files');
  t.ok(committed.length >= 7, `${committed.length} generated files`);
  for (const file of committed) {
    t.ok(readFileSync(join(out, file)).equals(readFileSync(join(COMMITTED, file))), `${file} is byte-identical (else run npm run proto)`);
  }
});
