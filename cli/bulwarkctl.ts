#!/usr/bin/env node
/** bulwarkctl entry point: see cli/ctl.ts for the command tree and exit codes. */
import { runCtl } from './ctl.js';

// gRPC over TLS to an IP address (127.0.0.1:7443) sends that address as SNI, which Node
// reports once as DEP0123 (RFC 6066 names hosts only); the certificate is still checked
// against the IP address SAN. Only that warning is dropped; every other one is printed.
process.removeAllListeners('warning');
process.on('warning', (w) => {
  if (!('code' in w) || w.code !== 'DEP0123') process.stderr.write(`${w.name}: ${w.message}\n`);
});

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
