/**
 * Bulwark's own table as `nft -f` text. The file declares the table, deletes it and
 * declares it again with its chains: `nft -f` runs a file as one transaction, and
 * declaring a table that exists is a no-op, so the delete never fails and the host is
 * never without the table in between (nft(8), "RULESET": atomic replacement).
 */
import { BulwarkError } from '../../errors.js';
import type { AllowedService, ForwardExemption, NftablesBaseline } from '../types.js';

const CODE = 'BASELINE_NFT_UNRENDERABLE';

/** nft identifiers: a letter, then letters, digits, `_`, `.`, `-`; at most 64 characters here. */
const IDENTIFIER = /^[A-Za-z][A-Za-z0-9_.-]{0,63}$/;
/** Interface names (IFNAMSIZ 16 with the NUL), with nft's trailing `*` wildcard. */
const INTERFACE = /^[A-Za-z0-9_.:@-]{1,15}\*?$/;
const IPV4_CIDR = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?:\/(\d{1,2}))?$/;
const IPV6_CIDR = /^[0-9A-Fa-f:.]{2,45}(?:\/(\d{1,3}))?$/;

/** ICMP types "essential" accepts: errors needed for path MTU discovery and diagnosis, and echo. */
export const ESSENTIAL_ICMP = ['destination-unreachable', 'time-exceeded', 'parameter-problem', 'echo-request'] as const;
/** ICMPv6 types "essential" accepts: errors (RFC 4890 4.3.1), echo, and neighbour and router discovery (RFC 4861). */
export const ESSENTIAL_ICMPV6 = [
  'destination-unreachable',
  'packet-too-big',
  'time-exceeded',
  'parameter-problem',
  'echo-request',
  'nd-router-solicit',
  'nd-router-advert',
  'nd-neighbor-solicit',
  'nd-neighbor-advert',
] as const;

function refuse(message: string, details: Record<string, string | number> = {}): never {
  throw new BulwarkError(CODE, message, details);
}

function quoted(text: string, what: string): string {
  // nft strings cannot hold a double quote; comments are capped at 128 bytes (NFTNL_UDATA_COMMENT_MAXLEN).
  if (!/^[\x20-\x7e]{0,128}$/.test(text) || text.includes('"')) refuse(`${what} ${JSON.stringify(text.slice(0, 40))} cannot be written as an nft string`);
  return `"${text}"`;
}

function comment(text: string | undefined): string {
  return text === undefined || text === '' ? '' : ` comment ${quoted(text, 'comment')}`;
}

function port(n: number): number {
  if (!Number.isInteger(n) || n < 0 || n > 65535) refuse(`port ${n} is not a port`, { port: n });
  return n;
}

function source(cidr: string): 'ip' | 'ip6' {
  const v4 = IPV4_CIDR.exec(cidr);
  if (v4 !== null) {
    const octets = v4.slice(1, 5).map(Number);
    const len = v4[5] === undefined ? 32 : Number(v4[5]);
    if (octets.some((o) => o > 255) || len > 32) refuse(`source ${cidr} is not an IPv4 address or prefix`);
    return 'ip';
  }
  const v6 = IPV6_CIDR.exec(cidr);
  if (v6 !== null && cidr.includes(':') && (v6[1] === undefined || Number(v6[1]) <= 128)) return 'ip6';
  return refuse(`source ${JSON.stringify(cidr.slice(0, 60))} is not an IPv4 or IPv6 address or prefix`);
}

function serviceRules(s: AllowedService): string[] {
  if (s.protocol !== 'tcp' && s.protocol !== 'udp') refuse(`protocol ${String(s.protocol)} is not tcp or udp`);
  const from = port(s.port);
  const to = s.toPort === undefined ? from : port(s.toPort);
  if (to < from) refuse(`port range ${from}-${to} ends before it starts`, { port: from, toPort: to });
  const match = `${s.protocol} dport ${from === to ? from : `${from}-${to}`}`;
  const note = comment(s.comment);
  if (s.sources === undefined) return [`${match} accept${note}`];
  if (s.sources.length === 0) refuse(`service ${match} lists an empty set of sources`);
  const out: string[] = [];
  for (const family of ['ip', 'ip6'] as const) {
    const mine = s.sources.filter((c) => source(c) === family);
    if (mine.length > 0) out.push(`${family} saddr { ${mine.join(', ')} } ${match} accept${note}`);
  }
  return out;
}

function exemptionRule(e: ForwardExemption): string {
  const parts: string[] = [];
  for (const key of ['iifname', 'oifname'] as const) {
    const name = e[key];
    if (name === undefined) continue;
    if (!INTERFACE.test(name)) refuse(`${key} ${JSON.stringify(name.slice(0, 20))} is not an interface name`);
    parts.push(`${key} ${quoted(name, key)}`);
  }
  if (parts.length === 0) refuse('a forward exemption names neither iifname nor oifname');
  return `${parts.join(' ')} accept${comment(e.comment)}`;
}

/** The `nft -f` transaction that replaces Bulwark's own table with the baseline's, atomically. Refuses (BASELINE_NFT_UNRENDERABLE) what nft text cannot carry. */
export function renderBulwarkTable(baseline: NftablesBaseline): string {
  if (!IDENTIFIER.test(baseline.table)) refuse(`table name ${JSON.stringify(baseline.table.slice(0, 40))} is not an nft identifier`);
  const name = baseline.table;
  const input: string[] = [];
  if (baseline.loopback) input.push('iif "lo" accept comment "loopback"');
  if (baseline.established) input.push('ct state established,related accept comment "replies and related"');
  input.push('ct state invalid drop');
  if (baseline.icmp === 'essential') {
    input.push(`icmp type { ${ESSENTIAL_ICMP.join(', ')} } accept comment "essential icmp"`);
    input.push(`icmpv6 type { ${ESSENTIAL_ICMPV6.join(', ')} } accept comment "essential icmpv6"`);
  } else if (baseline.icmp === 'all') input.push('meta l4proto { icmp, ipv6-icmp } accept comment "all icmp"');
  for (const s of baseline.inbound) input.push(...serviceRules(s));
  const forward = baseline.forward.exemptions.map(exemptionRule);
  const policy = baseline.forward.policy === 'drop' ? 'drop' : 'accept';
  const chain = (chainName: string, hook: string, chainPolicy: string, rules: readonly string[]): string[] => [
    `\tchain ${chainName} {`,
    `\t\ttype filter hook ${hook} priority filter - 10; policy ${chainPolicy};`,
    ...rules.map((r) => `\t\t${r}`),
    '\t}',
  ];
  return [
    `# Bulwark baseline table: replaced as a whole by one nft -f transaction.`,
    `table inet ${name}`,
    `delete table inet ${name}`,
    `table inet ${name} {`,
    ...chain('input', 'input', 'drop', input),
    ...chain('forward', 'forward', policy, forward),
    '}',
    '',
  ].join('\n');
}
