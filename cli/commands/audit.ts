/**
 * `audit checkpoint`, `audit export --from N [--to M] -o BUNDLE` (over the controller's
 * gRPC API, in pages of 2,000 records joined into one bundle) and `audit verify BUNDLE --key PUB.pem` (offline): the audit log's signed
 * checkpoints and exports of records with their inclusion and consistency proofs. `verify`
 * exits 0 when every record verifies, 1 naming the first one that does not (or a checkpoint
 * not signed by the key, or not consistent with the earlier one), 3 for a malformed bundle.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import type { Command } from 'commander';
import { BulwarkError, EXIT_CODES } from '../../lib/index.js';
import { defineAction, jsonOption, nonNegativeInteger, positiveInteger, type CtlContext } from '../command.js';
import { withController } from '../controller-client.js';
import type { ControllerClient } from '../../proto/index.js';
import { TOPICS } from '../help.js';
import { printJson, readInput, readTextInput, writeOutput } from '../io.js';

async function loadPublicKey(path: string): Promise<KeyObject> {
  const pem = await readInput(path, 'checkpoint public key');
  try {
    const key = createPublicKey(Buffer.from(pem));
    return key;
  } catch (err) {
    throw new BulwarkError('KEY_INVALID', `${path} is not a PEM public key`, {}, { cause: err });
  }
}

/** Records one export request may carry (the controller's AUDIT_EXPORT_MAX_RECORDS). */
const EXPORT_PAGE = 2000;
/** Times a paged export starts again when a checkpoint was signed between its pages. */
const EXPORT_ATTEMPTS = 5;

/**
 * An export of any length: one request up to EXPORT_PAGE records, else pages of EXPORT_PAGE
 * joined into one bundle. Every page must prove its records in the same signed checkpoint
 * (the controller proves in its latest): when one was signed between two pages, the export
 * starts again (AUDIT_EXPORT_UNSTABLE after EXPORT_ATTEMPTS tries).
 */
async function exportPaged(c: ControllerClient, from: number, to: number | null, previous: number | null): Promise<string> {
  const merkle = await import('../../lib/merkle/index.js');
  for (let attempt = 0; attempt < EXPORT_ATTEMPTS; attempt++) {
    let end = to;
    if (end === null) {
      const cp = await c.auditCheckpoint();
      // None signed yet: the single request says so.
      if (cp.checkpoint === '') return c.exportAudit(from, to, previous);
      end = merkle.parseCheckpointText(merkle.parseSignedNote(cp.checkpoint).text).size;
    }
    if (end - from <= EXPORT_PAGE) return c.exportAudit(from, end, previous);
    const pages = [];
    for (let start = from; start < end; start += EXPORT_PAGE) {
      pages.push(merkle.parseAuditBundle(await c.exportAudit(start, Math.min(start + EXPORT_PAGE, end), start === from ? previous : null), `export page from ${start}`));
    }
    const [first, ...rest] = pages;
    if (first === undefined || rest.some((p) => p.checkpoint !== first.checkpoint)) continue;
    return JSON.stringify({
      ...first,
      records: pages.flatMap((p) => p.records),
      inclusionProofs: pages.flatMap((p) => p.inclusionProofs),
    });
  }
  throw new BulwarkError('AUDIT_EXPORT_UNSTABLE', `a checkpoint was signed between the pages of each of ${EXPORT_ATTEMPTS} tries: export again, or give --to`);
}

/** Adds the `audit` group to the program. */
export function addAuditCommands(program: Command, ctx: CtlContext): void {
  const audit = program.command('audit').helpGroup(TOPICS.fleet).description("the audit log's signed checkpoints, exports and their offline verification");

  const checkpoint = audit
    .command('checkpoint')
    .description('the latest signed checkpoint and the key that signs them (exit 1 when the controller refuses to sign: the log was rewritten)');
  defineAction(jsonOption(checkpoint), ctx, async (call) => {
    const cp = await withController(ctx, (c) => c.auditCheckpoint());
    const error = cp.errorCode === '' ? null : { code: cp.errorCode, message: cp.errorMessage };
    if (call.json) {
      printJson(call.io, { checkpoint: cp.checkpoint === '' ? null : cp.checkpoint, publicKeyPem: cp.publicKeyPem, treeSize: cp.treeSize, error });
    } else {
      call.io.out(cp.checkpoint === '' ? 'no checkpoint signed yet\n' : cp.checkpoint);
      call.io.out(`\nrecords in the controller's tree: ${cp.treeSize}\nsigned by:\n${cp.publicKeyPem}`);
      if (error !== null) call.io.err(`${error.code}: ${error.message}\n`);
    }
    return error === null ? EXIT_CODES.ok : EXIT_CODES.finding;
  });

  const exportCmd = audit
    .command('export')
    .requiredOption('--from <N>', 'first record (log index, from 0)', nonNegativeInteger)
    .option('--to <M>', 'one past the last record (default: the latest checkpoint size)', positiveInteger)
    .option('--previous <SIZE>', 'add the consistency proof from the signed checkpoint of this size', nonNegativeInteger)
    .requiredOption('-o, --output <BUNDLE>', 'where to write the bundle (JSON)')
    .description('records with inclusion proofs in the latest signed checkpoint (admin)');
  defineAction(exportCmd, ctx, async (call) => {
    const from = call.number('--from') ?? 0;
    const bundle = await withController(ctx, (c) => exportPaged(c, from, call.number('--to') ?? null, call.number('--previous') ?? null));
    await writeOutput(call.io, call.required('--output'), `${bundle}\n`);
    return EXIT_CODES.ok;
  });

  const verify = audit
    .command('verify')
    .argument('<BUNDLE>', 'an audit bundle written by audit export')
    .requiredOption('--key <PUB.pem>', 'the checkpoint signing public key (PEM) you trust')
    .option('--origin <O>', 'the log origin the checkpoint must name (bulwark.<name>/audit)')
    .description('offline: the checkpoint signature, the consistency with the earlier checkpoint, every record included');
  defineAction(jsonOption(verify), ctx, async (call) => {
    const merkle = await import('../../lib/merkle/index.js');
    const key = await loadPublicKey(call.required('--key'));
    const bundle = merkle.parseAuditBundle(await readTextInput(call.arg(0), 'audit bundle'), call.arg(0));
    // The key name is the log's; the key ID binds the key. Every name the notes carry is tried.
    const names = new Set<string>();
    for (const note of [bundle.checkpoint, ...(bundle.previous === undefined ? [] : [bundle.previous.checkpoint])]) {
      for (const s of merkle.parseSignedNote(note).signatures) names.add(s.name);
    }
    const verifiers = [...names].map((name) => merkle.noteVerifierFromKey(name, key));
    const verdict = merkle.verifyBundle(bundle, verifiers, call.string('--origin'));
    const { origin, size } = verdict.checkpoint;
    if (verdict.ok) {
      if (call.json) printJson(call.io, { verified: true, origin, size, firstIndex: bundle.firstIndex, records: verdict.records, previousSize: bundle.previous === undefined ? null : merkle.parseCheckpointText(merkle.parseSignedNote(bundle.previous.checkpoint).text).size });
      else call.io.out(`verified: records ${bundle.firstIndex}..${bundle.firstIndex + verdict.records - 1} are in ${origin} at size ${size}\n`);
      return EXIT_CODES.ok;
    }
    if (call.json) printJson(call.io, { verified: false, origin, size, index: verdict.index, reason: verdict.reason });
    else call.io.out(`record ${verdict.index} does not verify: ${verdict.reason}\n`);
    return EXIT_CODES.finding;
  });
}
