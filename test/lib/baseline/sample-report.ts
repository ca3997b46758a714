/** A baseline report for tests: a Debian host, enforcing, ssh open, nothing changed. */
import { nftDigest, parseNftRuleset, type BaselineReport } from '../../../lib/baseline/index.js';

/** The digest of an empty ruleset, as the agent computes it. */
const EMPTY_DIGEST = nftDigest(parseNftRuleset({ value: { nftables: [] } }));

export function sampleReport(seq: number, overrides: Partial<BaselineReport> = {}): BaselineReport {
  return {
    version: 1,
    node: 'node-1',
    bootId: '3f1c2d9e-6a47-4b8e-9d0a-1b2c3d4e5f60',
    seq,
    time: '2026-12-02T01:00:00.000Z',
    baseline: { name: 'default', sha256: 'c'.repeat(64) },
    selinux: {
      state: { present: true, mode: 'enforcing', configMode: 'enforcing', policyType: 'default', policyVersion: 33, policyHash: null, booleans: { user_ping: true }, modules: ['base'] },
    },
    nftables: { ruleset: { nftables: [] }, digest: EMPTY_DIGEST, exposure: { tcp: [{ from: 22, to: 22 }], udp: [], otherProtocols: false, conditional: [], forwardOpen: false } },
    changes: [],
    enforcement: [],
    ...overrides,
  };
}
