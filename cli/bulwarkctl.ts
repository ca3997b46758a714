#!/usr/bin/env node
/** bulwarkctl entry point: see cli/ctl.ts for the command tree and exit codes. */
import { runCtl } from './ctl.js';

const abort = new AbortController();
process.once('SIGINT', () => abort.abort());
process.once('SIGTERM', () => abort.abort());

runCtl(process.argv.slice(2), {
  out: (t) => process.stdout.write(t),
  err: (t) => process.stderr.write(t),
  env: process.env,
  signal: abort.signal,
}).then((code) => {
  process.exitCode = code;
  // gRPC keeps handles briefly after close; do not wait for them.
  setImmediate(() => process.exit(code));
});
