/**
 * The baseline source inside the real attestation loop (a test fleet: nats-server, the
 * controller, swtpm): every round prepares the baseline report (extends the baseline PCR)
 * before the TPM quotes. The TPM is the node's real
 * swtpm adapter behind a wrapper that only records the order of calls.
 */
import t from 'tap';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Agent } from '../../agent/agent.js';
import { parseAgentConfig } from '../../agent/config.js';
import { evidenceSources } from '../../agent/sources.js';
import type { Tpm } from '../../agent/tpm.js';
import { BaselineSource } from '../../agent/baseline/index.js';
import { silentLogger } from '../../daemon/index.js';
import { decodeReport, replayReportChain } from '../../lib/baseline/index.js';
import { TPM_ALG } from '../../lib/tpm/types.js';
import { testFacts, TestFleet } from '../helpers/fleet.js';
import { NetnsHost } from '../helpers/netns.js';
import { writeSelinuxTree } from '../helpers/selinux-tree.js';
import { makeTempDir, removeDir } from '../helpers/swtpm.js';
import { waitUntil } from '../helpers/wait.js';

const root = await makeTempDir('baseline-agent-loop');
const fleet = await TestFleet.create({ root });
await fleet.startController();
const host = await NetnsHost.create({});
const agents: Agent[] = [];
t.teardown(async () => {
  for (const a of agents) await a.stop().catch(() => undefined);
  await host.close();
  await fleet.stop();
  await removeDir(root);
});

t.test('each round extends the baseline PCR before the quote; the PCR replays from the reports', async (t) => {
  const node = await fleet.addNode('baseline-1');
  const tree = join(root, 'selinux');
  await writeSelinuxTree(tree);
  const config = parseAgentConfig([{ ...node.config, baseline: true, selinuxRoot: tree, nftCommand: host.nftCommand, baselinePcr: 13 }], {});
  const calls: string[] = [];
  const real = node.tpm;
  const tpm: Tpm = {
    ensureKeys: (o) => real.ensureKeys(o),
    activateCredential: (b, k) => real.activateCredential(b, k),
    quote: async (n, s, h) => {
      calls.push('quote');
      return real.quote(n, s, h);
    },
    extendPcr: async (p, d) => {
      calls.push(`extend ${p}`);
      return real.extendPcr(p, d);
    },
    readPcrs: (s) => real.readPcrs(s),
    getPersistentHandles: () => real.getPersistentHandles(),
    close: () => real.close(),
  };
  const sources = evidenceSources(config, { tpm, log: silentLogger() });
  const source = sources.find((s): s is BaselineSource => s instanceof BaselineSource);
  if (source === undefined) throw new Error('no baseline source');
  const agent = new Agent({ config, tpm, collectFacts: async () => testFacts(node.nodeId), sources, log: silentLogger() });
  agents.push(agent);
  const rounds: number[] = [];
  agent.onRound = (r) => rounds.push(r.round);
  await agent.start();
  await waitUntil('a round done', async () => rounds.length > 0, 60_000);
  const firstQuote = calls.indexOf('quote');
  t.ok(firstQuote > 0 && calls.slice(0, firstQuote).includes('extend 13'), `the first report was extended before the first quote (${calls.slice(0, firstQuote + 1).join(', ')})`);

  // A ruleset change: the next round extends a new report before its quote.
  const before = calls.length;
  await host.nft('table inet probe { }\n');
  await agent.attestNow();
  const later = calls.slice(before);
  t.same(later.slice(0, 2), ['extend 13', 'quote'], 'extend, then quote');
  const pcr = (await real.readPcrs('sha256:13')).get(TPM_ALG.SHA256)?.get(13) ?? new Uint8Array();
  t.ok(replayReportChain(new Uint8Array(32), source.reports, pcr).ok, 'PCR 13 replays from the reports');
  t.equal(source.reports.length, 2, 'two reports this boot');
  t.equal((await readFile(config.bootIdPath, 'utf8')).trim(), decodeReport(source.reports[0] ?? new Uint8Array()).bootId, 'for this boot');
});
