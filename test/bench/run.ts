/**
 * `npm run bench`: every benchmark in one run, each figure next to the baseline measured
 * in the same run. Prints; asserts nothing.
 */
import { benchAuditLog } from './audit-log-bench.js';
import { benchBaselineEnforce } from './baseline-enforce-bench.js';
import { benchBaseline } from './baseline-bench.js';
import { benchBaselineLatency } from './baseline-latency-bench.js';
import { benchControlPlane } from './control-plane-bench.js';
import { benchDsse } from './dsse-bench.js';
import { benchEnroll } from './enroll-bench.js';
import { benchEventLog } from './eventlog-bench.js';
import { benchHsm } from './hsm-bench.js';
import { benchIma, benchImaEcdsa } from './ima-bench.js';
import { benchImaLatency } from './ima-latency-bench.js';
import { benchImaBacklog } from './ima-backlog-bench.js';
import { benchMerkle } from './merkle-bench.js';
import { benchNomad } from './nomad-bench.js';
import { benchQuote } from './quote-bench.js';
import { benchFootprint } from './footprint-bench.js';
import { printResults, type BenchResult } from './result.js';

const suites: ReadonlyArray<readonly [string, () => Promise<BenchResult[]>]> = [
  ['quote verification (per core)', benchQuote],
  ['enrollment against swtpm', () => benchEnroll()],
  ['event log parse + replay (per core), against tpm2_eventlog', benchEventLog],
  ['IMA entries parsed, replayed and policy-checked (per core), against the hashing limit', benchIma],
  ['IMA detection latency: unknown binary measured -> node untrusted', () => benchImaLatency()],
  ['evidence rounds through the controller NATS path: TLS + nkey against plain', () => benchControlPlane()],
  ['audit log Merkle tree: append 10,000 records, prove and verify one (per core)', benchMerkle],
  ['audit log through the controller: publish + tree append against publish alone; checkpoint signing', () => benchAuditLog()],
  ['DSSE envelope verification (per core), against raw crypto.verify', benchDsse],
  ['nftables exposure + drift judgement of a 500-rule ruleset (per core), against JSON.parse of the same text', benchBaseline],
  ['Nomad gate: verdict untrusted -> node ineligible / last allocation stopped (real Nomad)', benchNomad],
  ['host baseline, enforce mode: rule accepting 8080 added -> agent corrected inet bulwark (nft monitor, swtpm)', () => benchBaselineEnforce()],
  ['signatures through SoftHSM2 (PKCS#11) against crypto.sign with the same key type', benchHsm],
  ['host baseline through the controller: rule accepting 8080 added in a namespace -> node untrusted (report mode) / rule gone (enforce mode)', () => benchBaselineLatency()],
  ['IMA with ECDSA signatures (per core), against raw @noble/curves verification of the same signatures', benchImaEcdsa],
  ['footprint: controller idle RSS; agent RSS and CPU per round (installed package when present, else the dev tree)', benchFootprint],
  ['IMA backlog of 50 MB verified over rounds through the appraiser and KV, against one in-memory replay', benchImaBacklog],
];

for (const [title, run] of suites) {
  process.stdout.write(`\n## ${title}\n`);
  printResults(await run());
}
