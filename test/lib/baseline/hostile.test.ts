/**
 * Hostile bytes against every baseline parser: mutations of a real encoded report, of the
 * default baseline document, of each file of a recorded SELinux tree and of the kernel's
 * selinux-state buffer either parse or give a BulwarkError with a known code — never
 * another exception or a hang. A report that decodes is judged too.
 */
import t from 'tap';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readSelinuxTree } from '../../../daemon/index.js';
import { DEFAULT_BASELINE, decodeReport, encodeReport, judgeBaseline, kernelSelinuxFromImaBuf, parseBaselineJson, parseSelinuxTree } from '../../../lib/baseline/index.js';
import { mutations, newStats, prng, probe, report, SEED } from '../hostile.js';
import { sampleReport } from './sample-report.js';

const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));

t.test('decodeReport and judgeBaseline on mutated reports', async (t) => {
  const stats = newStats();
  const seed = encodeReport(sampleReport(0));
  for (const [label, bytes] of mutations(seed, prng(SEED), { flipSamples: 400, randomCount: 200 })) {
    probe(stats, 'decodeReport', label, bytes, () => {
      const r = decodeReport(bytes);
      judgeBaseline({ baseline: DEFAULT_BASELINE, reports: [r], kernel: { enforcing: true, policyHash: null } });
    });
  }
  report(t, stats, 500);
});

t.test('parseBaselineJson on a mutated default.json', async (t) => {
  const stats = newStats();
  const seed = new Uint8Array(await readFile(join(ROOT, 'policies/baselines/default.json')));
  for (const [label, bytes] of mutations(seed, prng(SEED + 1), { flipSamples: 400, randomCount: 200 })) probe(stats, 'parseBaselineJson', label, bytes, () => parseBaselineJson(bytes));
  report(t, stats, 500);
});

t.test('parseSelinuxTree with each file of a recorded tree mutated', async (t) => {
  const stats = newStats();
  const tree = await readSelinuxTree(join(ROOT, 'test/fixtures/selinux/debian12-permissive/root'));
  const rnd = prng(SEED + 2);
  for (const [path, value] of tree) {
    if (value === null) continue;
    for (const [label, bytes] of mutations(value, rnd, { flipSamples: 40, randomCount: 20 })) {
      const m = new Map(tree);
      m.set(path, bytes);
      probe(stats, 'parseSelinuxTree', `${path}: ${label}`, bytes, () => parseSelinuxTree(m));
    }
  }
  report(t, stats, 300);
});

t.test('kernelSelinuxFromImaBuf on mutated selinux-state buffers', async (t) => {
  const stats = newStats();
  const seed = new TextEncoder().encode('initialized=1;enforcing=1;checkreqprot=0;network_peer_controls=1;open_perms=1;');
  for (const [label, bytes] of mutations(seed, prng(SEED + 3), { flipSamples: 200, randomCount: 100 })) {
    probe(stats, 'kernelSelinuxFromImaBuf', label, bytes, () => kernelSelinuxFromImaBuf([{ name: 'selinux-state', data: bytes }]));
  }
  report(t, stats, 200);
});
