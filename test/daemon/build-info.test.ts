/**
 * `--version` of all three binaries: one line with the package version, the commit and the
 * Node version. The commit comes from dist/build-info.json, written by `npm run build`
 * (daemon/write-build-info.js) from `git rev-parse HEAD`, else BULWARK_COMMIT, else
 * "unknown", so an installed package without .git still knows it.
 */
import t from 'tap';
import { execa } from 'execa';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { collectBuildInfo, readBuildInfo, versionLine, writeBuildInfo } from '../../daemon/build-info.js';

const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const DIST = join(REPO, 'dist');
const pkg: unknown = JSON.parse(await readFile(join(REPO, 'package.json'), 'utf8'));
const packageVersion = typeof pkg === 'object' && pkg !== null && 'version' in pkg && typeof pkg.version === 'string' ? pkg.version : '';
const head = (await execa('git', ['rev-parse', 'HEAD'], { cwd: REPO })).stdout.trim();
const COMMIT = 'ab'.repeat(20);

const tmp = await mkdtemp(join(tmpdir(), 'bulwark-build-info-'));
t.teardown(() => rm(tmp, { recursive: true, force: true }));

t.test('the commit: git, else BULWARK_COMMIT, else unknown', async (t) => {
  t.same(await collectBuildInfo(REPO, { BULWARK_COMMIT: COMMIT }), { version: 1, packageVersion, commit: head }, 'git rev-parse HEAD in a checkout');
  // An unpacked source tarball: no .git anywhere above it.
  const tarball = join(tmp, 'tarball');
  await mkdir(tarball);
  await writeFile(join(tarball, 'package.json'), JSON.stringify({ name: 'bulwark', version: '9.8.7' }));
  t.equal((await collectBuildInfo(tarball, { BULWARK_COMMIT: COMMIT.toUpperCase() })).commit, COMMIT, 'BULWARK_COMMIT without git');
  t.same(await collectBuildInfo(tarball, {}), { version: 1, packageVersion: '9.8.7', commit: 'unknown' }, 'neither');
  t.equal((await collectBuildInfo(tarball, { BULWARK_COMMIT: 'main; rm -rf /' })).commit, 'unknown', 'a BULWARK_COMMIT that is no commit id is not taken');
});

t.test('readBuildInfo: the written file, else package.json and unknown', async (t) => {
  const dist = join(tmp, 'pkg', 'dist');
  await mkdir(dist, { recursive: true });
  await writeFile(join(tmp, 'pkg', 'package.json'), JSON.stringify({ version: '1.2.3' }));
  const url = pathToFileURL(`${dist}/`);
  t.same(await readBuildInfo(url), { version: 1, packageVersion: '1.2.3', commit: 'unknown' }, 'compiled by tsc alone');
  await writeBuildInfo(dist, { version: 1, packageVersion: '1.2.4', commit: COMMIT });
  t.same(await readBuildInfo(url), { version: 1, packageVersion: '1.2.4', commit: COMMIT });
  await writeFile(join(dist, 'build-info.json'), '{"version":1,"packageVersion":"1.2.4","commit":"HEAD"}');
  await t.rejects(readBuildInfo(url), { code: 'CONFIG_INVALID', details: { path: '/commit' } }, 'a damaged file is a coded error');
  t.equal(versionLine('bulwark-agent', { version: 1, packageVersion: '1.2.4', commit: COMMIT }, 'v20.1.0'), `bulwark-agent 1.2.4 commit ${COMMIT} node v20.1.0\n`);
});

t.test('--version of the three binaries after the build step', async (t) => {
  // What `npm run build` runs after tsc (it writes dist/build-info.json).
  const written = await execa(process.execPath, [join(DIST, 'daemon', 'write-build-info.js')], { cwd: REPO });
  t.match(written.stdout, `commit ${head}`);
  for (const [name, main] of [['bulwark-controller', 'controller/main.js'], ['bulwark-agent', 'agent/main.js'], ['bulwarkctl', 'cli/bulwarkctl.js']] as const) {
    const r = await execa(process.execPath, [join(DIST, main), '--version'], { reject: false });
    t.equal(r.exitCode, 0, name);
    t.equal(r.stdout, `${name} ${packageVersion} commit ${head} node ${process.version}`, `${name}: one line`);
  }
});
