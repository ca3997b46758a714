/**
 * `npm run build` runs this after tsc: node dist/daemon/write-build-info.js writes
 * dist/build-info.json for the package in the current directory (daemon/build-info.ts).
 */
import { resolve } from 'node:path';
import { collectBuildInfo, writeBuildInfo } from './build-info.js';

const root = process.cwd();
const info = await collectBuildInfo(root, process.env);
const path = await writeBuildInfo(resolve(root, 'dist'), info);
process.stdout.write(`${path}: ${info.packageVersion} commit ${info.commit}\n`);
