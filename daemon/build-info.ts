/**
 * What a build is: the package version and the git commit it was built from, written by
 * `npm run build` into dist/build-info.json (daemon/write-build-info.ts) so an installed
 * package, which has no .git, still knows its commit. `--version` of all three binaries
 * prints it with the Node version running it.
 */
import { execa } from 'execa';
import { readFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Type, type Static } from '@sinclair/typebox';
import { defineDocument } from '../lib/schema/index.js';

/** dist/build-info.json: the version from package.json and the commit (40 hex digits, or "unknown"). */
export const BuildInfoSchema = Type.Object(
  {
    version: Type.Literal(1),
    packageVersion: Type.String({ minLength: 1, maxLength: 64, pattern: '^[0-9A-Za-z.+~-]+$' }),
    commit: Type.String({ pattern: '^([0-9a-f]{40}|[0-9a-f]{64}|unknown)$' }),
  },
  { additionalProperties: false },
);

export type BuildInfo = Static<typeof BuildInfoSchema>;

const BUILD_INFO = defineDocument(BuildInfoSchema, 'build info', 'CONFIG_INVALID');
const PACKAGE_JSON = defineDocument(Type.Object({ version: BuildInfoSchema.properties.packageVersion }), 'package.json', 'CONFIG_INVALID');

/** The file's name inside dist/. */
export const BUILD_INFO_FILE = 'build-info.json';

/** dist/ as seen from this module (dist/daemon/build-info.js). */
const DIST = new URL('../', import.meta.url);

/**
 * Collects the build info of the package at `root`: the version from its package.json; the
 * commit from `git rev-parse HEAD` run there when git and a repository are present, else
 * from `env.BULWARK_COMMIT` (a packager building from a tarball), else "unknown".
 */
export async function collectBuildInfo(root: string, env: Readonly<Record<string, string | undefined>>): Promise<BuildInfo> {
  const pkg = PACKAGE_JSON.parseJson(await readFile(join(root, 'package.json')), join(root, 'package.json'));
  const git = await execa('git', ['rev-parse', 'HEAD'], { cwd: root, reject: false, timeout: 10_000 });
  const fromGit = git.exitCode === 0 ? git.stdout.trim() : '';
  const fromEnv = (env['BULWARK_COMMIT'] ?? '').trim().toLowerCase();
  const commit = /^[0-9a-f]{40}$/.test(fromGit) ? fromGit : /^([0-9a-f]{40}|[0-9a-f]{64})$/.test(fromEnv) ? fromEnv : 'unknown';
  return BUILD_INFO.parse({ version: 1, packageVersion: pkg.version, commit });
}

/** Writes `info` as `dir`/build-info.json. */
export async function writeBuildInfo(dir: string, info: BuildInfo): Promise<string> {
  const path = join(dir, BUILD_INFO_FILE);
  await writeFile(path, `${JSON.stringify(info)}\n`);
  return path;
}

/**
 * This build's info: dist/build-info.json, or (a tree compiled with tsc alone, without
 * `npm run build`) the version from package.json beside dist/ with commit "unknown". A
 * damaged build-info.json is a CONFIG_INVALID error. (A small file read once: synchronous,
 * so constructors can use it too.)
 */
function readBuildInfoSync(dist: URL): BuildInfo {
  let text: Uint8Array;
  try {
    text = readFileSync(new URL(BUILD_INFO_FILE, dist));
  } catch {
    const pkg = PACKAGE_JSON.parseJson(readFileSync(new URL('../package.json', dist)), 'package.json');
    return { version: 1, packageVersion: pkg.version, commit: 'unknown' };
  }
  return BUILD_INFO.parseJson(text, BUILD_INFO_FILE);
}

/** This build's info (readBuildInfoSync), for `--version` and the daemons' start. */
export async function readBuildInfo(dist: URL = DIST): Promise<BuildInfo> {
  return readBuildInfoSync(dist);
}

/** The same for a label (the metrics' info gauge): "unknown" for what cannot be read, since a label must not stop a daemon. */
export function buildInfoSync(dist: URL = DIST): BuildInfo {
  try {
    return readBuildInfoSync(dist);
  } catch {
    return { version: 1, packageVersion: 'unknown', commit: 'unknown' };
  }
}

/** The one line `--version` prints: "NAME VERSION commit COMMIT node vX.Y.Z". */
export function versionLine(name: string, info: BuildInfo, nodeVersion: string = process.version): string {
  return `${name} ${info.packageVersion} commit ${info.commit} node ${nodeVersion}\n`;
}
