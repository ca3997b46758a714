/**
 * Real nft 1.0.6 in network namespaces (root): the rendered table is accepted by `nft -c`,
 * applied and read back it evaluates to the baseline's ports, and for generated rulesets
 * the evaluated exposure agrees with real TCP connections from a second namespace over a
 * veth pair.
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import { effectiveExposure, judgeNftables, parseNftRuleset, renderBulwarkTable, type NftablesBaseline } from '../../../lib/baseline/index.js';
import { prng, SEED } from '../hostile.js';
import { waitFor } from '../../helpers/wait.js';
import { createNetns, DEFAULT_BASELINE, withNetns, type Netns } from './nft-netns.js';
import { CNI_BASELINE, SADDR_BASELINE } from './nft-record.js';

const r = (from: number, to = from): { from: number; to: number } => ({ from, to });

const BASELINES: Array<[string, NftablesBaseline]> = [
  ['default', DEFAULT_BASELINE],
  ['sources', SADDR_BASELINE],
  ['exemptions', CNI_BASELINE],
  ['icmp all, udp range, forward accept', { ...DEFAULT_BASELINE, icmp: 'all', inbound: [{ protocol: 'udp', port: 60000, toPort: 60100, comment: 'mosh' }], forward: { policy: 'accept', exemptions: [] } }],
  ['no icmp, no loopback, no established', { ...DEFAULT_BASELINE, icmp: 'none', loopback: false, established: false }],
];

t.test('nft -c accepts every rendered table, applying it twice works, and it reads back as the baseline', async (t) => {
  await withNetns(async (ns) => {
    for (const [label, baseline] of BASELINES) {
      const text = renderBulwarkTable(baseline);
      t.doesNotThrow(() => ns.nft(text, true), `nft -c: ${label}`);
      ns.nft(text);
      ns.nft(text);
      const ruleset = parseNftRuleset(ns.listJson());
      t.same(judgeNftables(baseline, ruleset), [], `no drift right after applying: ${label}`);
    }
    ns.run(['nft', 'flush', 'ruleset']);
    ns.nft(renderBulwarkTable(DEFAULT_BASELINE));
    const e = effectiveExposure(parseNftRuleset(ns.listJson()));
    t.same(e, { tcp: [r(22), r(443)], udp: [], otherProtocols: false, conditional: [], forwardOpen: false }, 'exactly 22/tcp and 443/tcp');
  });
});

t.test('a table another table name leaves alone, and a bad name is refused before nft sees it', async (t) => {
  await withNetns(async (ns) => {
    ns.nft('table inet other {\n chain input { type filter hook input priority 0; policy accept; }\n}\n');
    ns.nft(renderBulwarkTable({ ...DEFAULT_BASELINE, table: 'bulwark2' }));
    const tables = parseNftRuleset(ns.listJson()).tables.map((x) => x.name);
    t.same(tables, ['bulwark2', 'other']);
  });
  t.throws(() => renderBulwarkTable({ ...DEFAULT_BASELINE, table: 'x; flush ruleset' }), { code: 'BASELINE_NFT_UNRENDERABLE' });
  t.throws(() => renderBulwarkTable({ ...DEFAULT_BASELINE, inbound: [{ protocol: 'tcp', port: 22, comment: 'a" accept' }] }), { code: 'BASELINE_NFT_UNRENDERABLE' });
  t.throws(() => renderBulwarkTable({ ...DEFAULT_BASELINE, inbound: [{ protocol: 'tcp', port: 22, sources: ['10.0.0.0/33'] }] }), { code: 'BASELINE_NFT_UNRENDERABLE' });
  t.throws(() => renderBulwarkTable({ ...DEFAULT_BASELINE, inbound: [{ protocol: 'tcp', port: 70000 }] }), { code: 'BASELINE_NFT_UNRENDERABLE' });
  t.throws(() => renderBulwarkTable({ ...DEFAULT_BASELINE, forward: { policy: 'drop', exemptions: [{ iifname: 'eth0"; drop', comment: 'x' }] } }), { code: 'BASELINE_NFT_UNRENDERABLE' });
});

/** A random small ruleset (inet tables only, so IPv4 and IPv6 agree) over the given ports. */
function randomRuleset(rnd: () => number, ports: readonly number[]): string {
  const pick = <T>(xs: readonly T[]): T => {
    const x = xs[Math.floor(rnd() * xs.length)];
    if (x === undefined) throw new Error('empty choice');
    return x;
  };
  const verdict = (inSub: boolean): string => pick(inSub ? ['accept', 'drop', 'reject', 'return'] : ['accept', 'drop', 'reject', 'accept']);
  const rule = (inSub: boolean, canJump: boolean): string => {
    const p = pick(ports);
    const q = pick(ports);
    switch (Math.floor(rnd() * 8)) {
      case 0:
        return `tcp dport { ${p}, ${q} } ${verdict(inSub)}`;
      case 1:
        return `tcp dport ${Math.min(p, q)}-${Math.max(p, q)} ${verdict(inSub)}`;
      case 2:
        return `meta l4proto tcp th dport ${p} ${verdict(inSub)}`;
      case 3:
        return `tcp dport != ${p} ${verdict(inSub)}`;
      case 4:
        return inSub || !canJump ? `udp dport ${p} accept` : `meta l4proto { tcp, udp } jump sub`;
      case 5:
        return `ct state established,related accept`;
      case 6:
        return `iif "lo" accept`;
      default:
        return `tcp dport ${p} ${verdict(inSub)}`;
    }
  };
  const rules = (n: number, inSub: boolean, canJump = true): string => Array.from({ length: n }, () => `\t\t${rule(inSub, canJump)}`).join('\n');
  const tables = [
    `table inet t1 {\n\tchain input {\n\t\ttype filter hook input priority ${pick(['filter', 'filter - 5', '-200'])}; policy ${pick(['accept', 'drop'])};\n${rules(1 + Math.floor(rnd() * 4), false)}\n\t}\n\tchain sub {\n${rules(Math.floor(rnd() * 3), true)}\n\t}\n}`,
  ];
  if (rnd() < 0.5) tables.push(`table inet t2 {\n\tchain input {\n\t\ttype filter hook input priority 10; policy ${pick(['accept', 'accept', 'drop'])};\n${rules(1 + Math.floor(rnd() * 3), false, false)}\n\t}\n}`);
  return `${tables.join('\n')}\n`;
}

const LISTENER = `
const net = require('node:net');
const ports = JSON.parse(process.env.PORTS);
let up = 0;
for (const p of ports) net.createServer((s) => s.destroy()).listen(p, '0.0.0.0', () => { if (++up === ports.length) console.log('ready'); });
`;
const CLIENT = `
const net = require('node:net');
const ports = JSON.parse(process.env.PORTS);
Promise.all(ports.map((port) => new Promise((done) => {
  const s = net.connect({ host: process.env.HOST, port });
  const timer = setTimeout(() => { s.destroy(); done(false); }, Number(process.env.TIMEOUT_MS));
  s.on('connect', () => { clearTimeout(timer); s.destroy(); done(true); });
  s.on('error', () => { clearTimeout(timer); done(false); });
}))).then((r) => console.log(JSON.stringify(r)));
`;

/** A TCP connection attempt to each port: true when it connected. A dropped SYN shows as no answer within the connect timeout. */
function connects(client: Netns, host: string, ports: readonly number[]): boolean[] {
  const out = client.run(['env', `PORTS=${JSON.stringify(ports)}`, `HOST=${host}`, 'TIMEOUT_MS=1000', 'node', '-e', CLIENT]);
  const parsed: unknown = JSON.parse(out);
  if (!Array.isArray(parsed) || !parsed.every((x) => typeof x === 'boolean')) throw new Error(`client printed ${out}`);
  return parsed;
}

t.test('property: evaluated exposure agrees with real TCP connections for generated rulesets', async (t) => {
  const rnd = prng(SEED);
  const ports = [22, 443, 8080, 20000 + Math.floor(rnd() * 30000)];
  const server = createNetns('bwsrv');
  let client: Netns | undefined;
  let listener: ReturnType<typeof spawn> | undefined;
  try {
    client = createNetns('bwcli');
    const [a, b] = [`vc${server.name.slice(-6)}`, `vs${server.name.slice(-6)}`];
    client.run(['ip', 'link', 'add', a, 'type', 'veth', 'peer', 'name', b, 'netns', server.name]);
    client.run(['ip', 'addr', 'add', '10.203.0.1/30', 'dev', a]);
    client.run(['ip', 'link', 'set', a, 'up']);
    server.run(['ip', 'addr', 'add', '10.203.0.2/30', 'dev', b]);
    server.run(['ip', 'link', 'set', b, 'up']);
    server.run(['ip', 'link', 'set', 'lo', 'up']);
    const proc = spawn('ip', ['netns', 'exec', server.name, 'node', '-e', LISTENER], { env: { ...process.env, PORTS: JSON.stringify(ports) }, stdio: ['ignore', 'pipe', 'inherit'] });
    listener = proc;
    let out = '';
    proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
    await waitFor('the listener in the server namespace', () => (out.includes('ready') ? true : undefined), 20_000);
    let open = 0;
    let closed = 0;
    const rulesets = [renderBulwarkTable(DEFAULT_BASELINE), ...Array.from({ length: 8 }, () => randomRuleset(rnd, ports))];
    for (const text of rulesets) {
      server.run(['nft', 'flush', 'ruleset']);
      server.nft(text);
      const exposure = effectiveExposure(parseNftRuleset(server.listJson()));
      t.same(exposure.conditional, [], 'generated rulesets have no undecided conditions');
      const expected = ports.map((p) => exposure.tcp.some((x) => x.from <= p && p <= x.to));
      const actual = connects(client, '10.203.0.2', ports);
      t.same(actual, expected, `ports ${ports.join(', ')} with\n${text}`);
      open += actual.filter((x) => x).length;
      closed += actual.filter((x) => !x).length;
    }
    t.ok(open > 0 && closed > 0, `both outcomes were exercised (${open} connected, ${closed} not)`);
  } finally {
    if (listener?.pid !== undefined) process.kill(listener.pid);
    client?.delete();
    server.delete();
  }
});
