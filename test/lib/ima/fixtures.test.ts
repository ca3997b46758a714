/**
 * Every fixture in test/fixtures/ima/ (NAME.log|NAME.bin + NAME.json, see its README) is a
 * test: the parse (or the error and its position), PCR 10 per bank and rule, the replay
 * verdict, the findings under its policy, and evmctl's own verdict on the binary ones.
 */
import t from 'tap';
import { execa } from 'execa';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { toHex } from '../../../lib/bytes.js';
import {
  computeImaPcr10,
  evaluateImaEntriesOffline,
  initialImaReplayState,
  loadRuntimePolicy,
  parseImaAscii,
  parseImaBinary,
  replayImaEntriesOffline,
  type ImaBankRule,
} from '../../../lib/ima/index.js';
import { TPM_ALG } from '../../../lib/tpm/types.js';
import { evmctlPcrFile } from '../../helpers/ima-builder.js';
import { throwsCode } from './ima-test-logs.js';

const DIR = fileURLToPath(new URL('../../../../test/fixtures/ima/', import.meta.url));

function obj(v: unknown, what: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error(`${what} is not an object`);
  return Object.fromEntries(Object.entries(v));
}

function text(o: Record<string, unknown>, k: string): string {
  const v = o[k];
  if (typeof v !== 'string') throw new Error(`fixture field ${k} is not a string`);
  return v;
}

function pairs(v: unknown): [string, string][] {
  if (!Array.isArray(v)) throw new Error('findings is not an array');
  return v.map((p) => {
    if (!Array.isArray(p) || typeof p[0] !== 'string' || typeof p[1] !== 'string') throw new Error('a finding is not [code, path]');
    return [p[0], p[1]];
  });
}

const names = (await readdir(DIR)).filter((f) => f.endsWith('.json')).sort();

t.ok(names.length >= 8, `${names.length} fixtures`);

for (const name of names) {
  t.test(name.replace(/\.json$/, ''), async (t) => {
    const j = obj(JSON.parse(await readFile(join(DIR, name), 'utf8')), name);
    const file = text(j, 'file');
    const bytes = await readFile(join(DIR, file));
    const format = text(j, 'format');
    const templateHashAlgorithm = text(j, 'templateHashAlgorithm') === 'sha256' ? 'sha256' : 'sha1';
    const parse = format === 'ascii' ? parseImaAscii : parseImaBinary;
    const pcr10 = obj(j['pcr10'], 'pcr10');
    const padded = obj(j['pcr10Sha1Padded'], 'pcr10Sha1Padded');

    if (j['error'] !== undefined) {
      const e = obj(j['error'], 'error');
      const err = throwsCode(t, () => parse(bytes, { templateHashAlgorithm }), text(e, 'code'), 'the parse fails');
      t.equal(err?.details['entry'], e['entry'], 'at the entry');
      t.equal(err?.details['offset'], e['offset'], 'at the byte offset');
      return;
    }
    const parsed = parse(bytes, { templateHashAlgorithm });
    t.equal(parsed.entries.length, j['entries']);
    if (j['paths'] !== undefined) t.same(parsed.entries.map((e) => e.path), j['paths']);

    const banks = [TPM_ALG.SHA1, TPM_ALG.SHA256];
    const value = (rule: ImaBankRule, alg: number): string => toHex(computeImaPcr10(initialImaReplayState(banks), parsed.entries, { bankRule: rule }).pcr10.get(alg) ?? new Uint8Array(0));
    if (text(j, 'replay') === 'ok') {
      t.equal(value('per-bank', TPM_ALG.SHA256), text(pcr10, 'sha256'), 'SHA-256 bank, per-bank rule');
      t.equal(value('per-bank', TPM_ALG.SHA1), text(pcr10, 'sha1'), 'SHA-1 bank');
      t.equal(value('sha1-padded', TPM_ALG.SHA256), text(padded, 'sha256'), 'SHA-256 bank, pre-5.1 padded rule');
    }
    const reference = new Map([[TPM_ALG.SHA256, new Map([[10, new Uint8Array(Buffer.from(text(pcr10, 'sha256'), 'hex'))]])]]);
    const r = replayImaEntriesOffline(initialImaReplayState(), parsed.entries, reference);
    t.same(r.ok ? 'ok' : r.findings.map((f) => f.code).join(','), text(j, 'replay'), 'replay verdict');

    if (j['policy'] !== undefined && r.ok) {
      const policy = loadRuntimePolicy(await readFile(join(DIR, text(j, 'policy')), 'utf8'));
      const evaluation = evaluateImaEntriesOffline(policy, r.replayed);
      t.equal(evaluation.replay, 'self-replayed', 'a replay against the fixture\'s own PCR 10 is not quote-verified');
      const findings = evaluation.findings.map((f): [string, string] => [f.code, String(f.details?.['path'])]);
      t.same(findings, pairs(j['findings'] ?? []), 'findings under the policy');
    }

    if (j['evmctl'] === 'ok') {
      const tmp = await mkdtemp(join(tmpdir(), 'bulwark-ima-fixture-'));
      t.teardown(() => rm(tmp, { recursive: true, force: true }));
      await writeFile(join(tmp, 'pcrs'), evmctlPcrFile(Buffer.from(text(pcr10, 'sha256'), 'hex')));
      const args = ['ima_measurement', '--ignore-violations', '--pcrs', `sha256,${join(tmp, 'pcrs')}`, join(DIR, file)];
      const certFile = join(DIR, file.replace(/\.bin$/, '.cert.pem'));
      const cert = await readFile(certFile).then(
        (pem) => new X509Certificate(pem),
        () => undefined,
      );
      if (cert !== undefined) {
        await writeFile(join(tmp, 'cert.der'), cert.raw);
        args.splice(1, 0, '--verify-sig', '--key', join(tmp, 'cert.der'));
      }
      const res = await execa('evmctl', args, { reject: false, timeout: 20_000 });
      t.equal(res.exitCode, 0, `evmctl ima_measurement replays it: ${res.stdout}`);
      if (cert !== undefined) {
        const failed = [...`${res.stdout}\n${res.stderr}`.matchAll(/^(\/\S+): verification failed/gm)].map((m) => m[1]);
        const ours = pairs(j['findings'] ?? []).filter(([code]) => code === 'IMA_SIGNATURE_INVALID').map(([, path]) => path);
        t.same(failed, ours, 'evmctl --verify-sig refuses the same signatures');
      }
    }
  });
}
