/**
 * Baseline documents: the SELinux and nftables state a host must keep (policies/baselines/).
 *
 * The TypeBox schema below is the format: the validator is the schema layer's (lib/schema)
 * over it, and policies/baselines/schema.json is generated from it (`node
 * dist/test/tools/write-schemas.js`; a test fails when it is out of date). A document that
 * does not validate is BASELINE_INVALID with the JSON pointer of the first problem in
 * `details.path`. What JSON Schema cannot say is checked after it, with the same code and
 * path: `toPort` not below `port`, CIDR sources that parse (no host bits set), a forward
 * exemption naming an interface, foreign tables named once and never Bulwark's own table,
 * no module both required and forbidden.
 */
import { Type } from '@sinclair/typebox';
import { BulwarkError } from '../errors.js';
import { defineDocument, literalUnion } from '../schema/index.js';
import type { Baseline, NftablesBaseline, SelinuxBaseline } from './types.js';

const WHAT = 'baseline';
const CODE = 'BASELINE_INVALID';

/** Caps on a baseline's lists (a baseline document crosses the wire in 64 KiB). */
export const BASELINE_LIMITS = {
  inbound: 1024,
  sourcesPerService: 256,
  exemptions: 256,
  foreignTables: 256,
  /** A SELinux policy has a few hundred booleans and modules; 4096 is the reader's cap too. */
  booleans: 4096,
  modules: 4096,
} as const;

/** Names as the schema admits them (and the SELinux tree parser checks). */
export const BASELINE_NAME_PATTERNS = {
  /** A baseline's name. */
  baseline: '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$',
  /** SELINUXTYPE: a directory under /etc/selinux ("default", "targeted", "mls", "minimum"). */
  policyType: '^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$',
  /** A SELinux boolean (a policy identifier, a file under /sys/fs/selinux/booleans). */
  boolean: '^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$',
  /** A policy module (a directory under .../active/modules/<priority>/). */
  module: '^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$',
  /** An nftables table name as nft's scanner reads an unquoted identifier (NFT_NAME_MAXLEN is 256). */
  table: '^[A-Za-z_.][A-Za-z0-9/_.-]{0,127}$',
  /** The same, optionally ending in "*" (a prefix). */
  foreignTable: '^[A-Za-z_.][A-Za-z0-9/_.-]{0,127}\\*?$',
  /** An interface name (IFNAMSIZ 16: 15 characters), optionally ending in "*" as nft's wildcard. */
  interface: '^[A-Za-z0-9_.:@-]{1,15}\\*?$',
} as const;

const port = (description: string) => Type.Integer({ minimum: 1, maximum: 65535, description });

const AllowedServiceSchema = Type.Object(
  {
    protocol: literalUnion(['tcp', 'udp'], { description: 'The transport protocol.' }),
    port: port('The port (the first of a range when toPort is set).'),
    toPort: Type.Optional(port('The last port of an inclusive range; not below port.')),
    sources: Type.Optional(
      Type.Array(Type.String({ maxLength: 49, description: 'An IPv4 or IPv6 address or CIDR prefix ("192.0.2.0/24", "2001:db8::/32"), no host bits set.' }), {
        minItems: 1,
        maxItems: BASELINE_LIMITS.sourcesPerService,
        description: 'Only new connections from these sources may reach the service; absent: from anywhere.',
      }),
    ),
    comment: Type.Optional(Type.String({ maxLength: 200, description: 'What the service is, for people and for the rule comment.' })),
  },
  { additionalProperties: false, description: 'An inbound service new connections from other hosts may reach.' },
);

const ForwardExemptionSchema = Type.Object(
  {
    iifname: Type.Optional(Type.String({ pattern: BASELINE_NAME_PATTERNS.interface, description: 'Input interface ("nomad", "cni-podman0", "veth*").' })),
    oifname: Type.Optional(Type.String({ pattern: BASELINE_NAME_PATTERNS.interface, description: 'Output interface.' })),
    comment: Type.String({ minLength: 1, maxLength: 200, description: 'Why the exemption exists.' }),
  },
  { additionalProperties: false, description: 'Forwarded traffic let through despite the forward drop policy; names at least one interface.' },
);

const ForeignTableSchema = Type.Object(
  {
    family: literalUnion(['ip', 'ip6', 'inet', 'arp', 'bridge', 'netdev'], { description: 'The nftables family of the table.' }),
    name: Type.String({ pattern: BASELINE_NAME_PATTERNS.foreignTable, description: 'The table name; a trailing "*" matches every table starting with the rest.' }),
    owner: Type.String({ minLength: 1, maxLength: 200, description: 'The tool that owns the table.' }),
  },
  { additionalProperties: false, description: 'A table another tool owns: reported, never enforced; its changes are not drift (the exposure it causes still counts).' },
);

/** The nftables part of a baseline. */
export const NftablesBaselineSchema = Type.Object(
  {
    table: Type.String({ pattern: BASELINE_NAME_PATTERNS.table, description: "Bulwark's own table (family inet), the only one enforcement rewrites." }),
    inbound: Type.Array(AllowedServiceSchema, {
      maxItems: BASELINE_LIMITS.inbound,
      description: 'The services new inbound connections from other hosts may reach; every other port reachable is NFT_BASELINE_DRIFT.',
    }),
    loopback: Type.Boolean({ description: 'Accept everything on the loopback interface.' }),
    established: Type.Boolean({ description: 'Accept packets of established and related connections (conntrack).' }),
    icmp: literalUnion(['essential', 'all', 'none'], {
      description: 'ICMP accepted inbound: "essential" (IPv6 neighbour discovery, packet too big, time exceeded, parameter problem, echo), "all" or "none".',
    }),
    forward: Type.Object(
      {
        policy: literalUnion(['drop', 'accept'], { description: 'The policy of the forward hook.' }),
        exemptions: Type.Array(ForwardExemptionSchema, { maxItems: BASELINE_LIMITS.exemptions, description: 'Forwarded traffic let through despite a drop policy.' }),
      },
      { additionalProperties: false, description: 'Forwarded traffic (containers, bridges).' },
    ),
    foreignTables: Type.Array(ForeignTableSchema, { maxItems: BASELINE_LIMITS.foreignTables, description: 'Tables other tools own; each (family, name) once.' }),
  },
  { additionalProperties: false, description: "What Bulwark's own table enforces, as a model; judged on the host's whole ruleset." },
);

/** The SELinux part of a baseline. */
export const SelinuxBaselineSchema = Type.Object(
  {
    mode: literalUnion(['enforcing', 'permissive'], {
      description: 'The required mode, now (selinuxfs enforce) and at next boot (SELINUX= in /etc/selinux/config); else SELINUX_NOT_ENFORCING.',
    }),
    policyType: Type.String({ pattern: BASELINE_NAME_PATTERNS.policyType, description: 'SELINUXTYPE (Debian: "default", Fedora: "targeted").' }),
    policyHash: Type.Optional(
      Type.String({ pattern: '^[0-9a-f]{64}$', description: 'sha256 (lower-case hex) of the loaded policy (/sys/fs/selinux/policy), when pinned.' }),
    ),
    booleans: Type.Record(Type.String({ pattern: BASELINE_NAME_PATTERNS.boolean }), Type.Boolean(), {
      maxProperties: BASELINE_LIMITS.booleans,
      additionalProperties: false,
      description: 'Booleans pinned to a value (their current value is judged); booleans not named are not checked.',
    }),
    requiredModules: Type.Array(Type.String({ pattern: BASELINE_NAME_PATTERNS.module }), {
      maxItems: BASELINE_LIMITS.modules,
      uniqueItems: true,
      description: 'Policy modules that must be installed and enabled.',
    }),
    forbiddenModules: Type.Array(Type.String({ pattern: BASELINE_NAME_PATTERNS.module }), {
      maxItems: BASELINE_LIMITS.modules,
      uniqueItems: true,
      description: 'Policy modules that must not be installed (or must be disabled).',
    }),
  },
  { additionalProperties: false, description: 'SELinux as the host must run it; judged on what the agent reads and on what the kernel measures into IMA.' },
);

/** A baseline document (the source of policies/baselines/schema.json). */
export const BaselineDocumentSchema = Type.Object(
  {
    $schema: Type.Optional(Type.String({ maxLength: 1024 })),
    version: Type.Literal(1, { description: 'The format version.' }),
    name: Type.String({ pattern: BASELINE_NAME_PATTERNS.baseline, description: 'Names the baseline in reports and verdicts.' }),
    mode: literalUnion(['report', 'enforce'], { description: '"report": judge only; "enforce": the agent also corrects drift (only in its own nftables table, and setenforce/setsebool).' }),
    selinux: Type.Union([SelinuxBaselineSchema, Type.Null()], { description: 'The SELinux part; null: SELinux is not judged.' }),
    nftables: Type.Union([NftablesBaselineSchema, Type.Null()], { description: 'The nftables part; null: the ruleset is not judged.' }),
  },
  {
    additionalProperties: false,
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    $id: 'https://bulwark.invalid/schemas/baseline.json',
    title: 'Bulwark host baseline',
    description:
      'The SELinux and nftables state a host must keep, judged on every baseline report the agent extends into the baseline PCR. Generated from the schema in lib/baseline/document.ts, which the validator uses; checked after it: toPort is not below port, sources are CIDR prefixes without host bits, an exemption names an interface, foreign tables are unique and not Bulwark\'s own table, no module is both required and forbidden.',
  },
);

const DOCUMENT = defineDocument(BaselineDocumentSchema, WHAT, CODE);

// ---------------------------------------------------------------------------------------------
// What the schema cannot say

function invalid(path: string, message: string, source?: string): BulwarkError {
  const from = source === undefined ? '' : ` (${source})`;
  return new BulwarkError(CODE, `${WHAT}${from} is invalid at ${path === '' ? '/' : path}: ${message}`, { path, ...(source === undefined ? {} : { source }) });
}

/** An IPv4 address as 4 octets, or null. */
function ipv4(text: string): number[] | null {
  const parts = text.split('.');
  if (parts.length !== 4) return null;
  const out: number[] = [];
  for (const p of parts) {
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p)) return null;
    const n = Number(p);
    if (n > 255) return null;
    out.push(n);
  }
  return out;
}

/** An IPv6 address (RFC 4291 2.2 text forms, with an embedded IPv4 tail) as 16 octets, or null. */
function ipv6(text: string): number[] | null {
  const halves = text.split('::');
  if (halves.length > 2) return null;
  const groups = (s: string): number[] | null => {
    if (s === '') return [];
    const out: number[] = [];
    const words = s.split(':');
    for (let i = 0; i < words.length; i++) {
      const w = words[i] ?? '';
      if (i === words.length - 1 && w.includes('.')) {
        const v4 = ipv4(w);
        if (v4 === null) return null;
        out.push(((v4[0] ?? 0) << 8) | (v4[1] ?? 0), ((v4[2] ?? 0) << 8) | (v4[3] ?? 0));
      } else {
        if (!/^[0-9A-Fa-f]{1,4}$/.test(w)) return null;
        out.push(parseInt(w, 16));
      }
    }
    return out;
  };
  const head = groups(halves[0] ?? '');
  const tail = halves.length === 2 ? groups(halves[1] ?? '') : [];
  if (head === null || tail === null) return null;
  let words: number[];
  if (halves.length === 2) {
    if (head.length + tail.length > 7) return null;
    words = [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
  } else {
    if (head.length !== 8) return null;
    words = head;
  }
  return words.flatMap((w) => [w >> 8, w & 0xff]);
}

/** Why `text` is not an address or CIDR prefix without host bits, or null when it is one. */
export function cidrProblem(text: string): string | null {
  const slash = text.indexOf('/');
  const address = slash < 0 ? text : text.slice(0, slash);
  const octets = address.includes(':') ? ipv6(address) : ipv4(address);
  if (octets === null) return 'not an IPv4 or IPv6 address';
  const bits = octets.length * 8;
  if (slash < 0) return null;
  const lengthText = text.slice(slash + 1);
  if (!/^(0|[1-9][0-9]{0,2})$/.test(lengthText) || Number(lengthText) > bits) return `prefix length not in 0-${bits}`;
  const length = Number(lengthText);
  for (let bit = length; bit < bits; bit++) {
    if (((octets[bit >> 3] ?? 0) >> (7 - (bit & 7))) & 1) return `host bits set after /${length}`;
  }
  return null;
}

function checkNftables(n: NftablesBaseline, source: string | undefined): void {
  n.inbound.forEach((s, i) => {
    if (s.toPort !== undefined && s.toPort < s.port) throw invalid(`/nftables/inbound/${i}/toPort`, `${s.toPort} is below port ${s.port}`, source);
    (s.sources ?? []).forEach((c, j) => {
      const problem = cidrProblem(c);
      if (problem !== null) throw invalid(`/nftables/inbound/${i}/sources/${j}`, `${JSON.stringify(c)}: ${problem}`, source);
    });
  });
  n.forward.exemptions.forEach((e, i) => {
    if (e.iifname === undefined && e.oifname === undefined) throw invalid(`/nftables/forward/exemptions/${i}`, 'names neither iifname nor oifname', source);
  });
  const seen = new Set<string>();
  n.foreignTables.forEach((f, i) => {
    const key = `${f.family} ${f.name}`;
    if (seen.has(key)) throw invalid(`/nftables/foreignTables/${i}`, `table ${key} listed twice`, source);
    seen.add(key);
    const prefix = f.name.endsWith('*') ? f.name.slice(0, -1) : null;
    const own = f.family === 'inet' && (prefix === null ? f.name === n.table : n.table.startsWith(prefix));
    if (own) throw invalid(`/nftables/foreignTables/${i}`, `covers Bulwark's own table inet ${n.table}`, source);
  });
}

function checkSelinux(s: SelinuxBaseline, source: string | undefined): void {
  const required = new Set(s.requiredModules);
  s.forbiddenModules.forEach((m, i) => {
    if (required.has(m)) throw invalid(`/selinux/forbiddenModules/${i}`, `module ${m} is also required`, source);
  });
}

/** Checks a baseline document; a BulwarkError (BASELINE_INVALID) naming the JSON path of what is wrong. Trusted as far as its source is (a signed bundle). */
export function validateBaseline(document: unknown, source?: string): Baseline {
  const o = DOCUMENT.parse(document, source);
  if (o.nftables !== null) checkNftables(o.nftables, source);
  if (o.selinux !== null) checkSelinux(o.selinux, source);
  // Without "$schema": the value is the baseline itself.
  return { version: o.version, name: o.name, mode: o.mode, selinux: o.selinux, nftables: o.nftables };
}

/** Parses a baseline document's JSON text (or UTF-8 bytes) and checks it. */
export function parseBaselineJson(text: string | Uint8Array, source?: string): Baseline {
  return validateBaseline(DOCUMENT.parseJson(text, source), source);
}

/**
 * The baseline a fleet gets unless it assigns another: report only; SELinux enforcing with
 * Debian's policy type; inbound only ssh (tcp 22) and https (tcp 443), loopback, replies,
 * essential ICMP; forwarding dropped. The foreign tables are those the tools a Bulwark node
 * runs beside it create, with where each name comes from:
 * - `ip filter`, `ip nat`, `ip6 filter`, `ip6 nat`: iptables-nft (Debian's iptables since
 *   10), which Nomad's bridge networking (its NOMAD-ADMIN chain, and the CNI bridge,
 *   firewall and portmap plugins' CNI-FORWARD, CNI-HOSTPORT-DNAT chains) and Podman's
 *   iptables drivers (CNI, netavark before its nftables driver) write through;
 * - `inet cni_hostport`: the CNI portmap plugin's nftables backend
 *   (containernetworking/plugins plugins/meta/portmap/portmap_nftables.go, tableName);
 * - `inet cni_plugins_masquerade`: the CNI bridge plugin's ipMasq nftables backend
 *   (containernetworking/plugins pkg/ip/ipmasq_nftables_linux.go, ipMasqTableName);
 * - `inet netavark`: Podman's netavark with firewall_driver nftables (netavark 1.12+);
 * - `inet f2b-table`: fail2ban's nftables action (config/action.d/nftables.conf:
 *   table = f2b-table, table_family = inet).
 */
export const DEFAULT_BASELINE: Baseline = {
  version: 1,
  name: 'default',
  mode: 'report',
  selinux: {
    mode: 'enforcing',
    policyType: 'default',
    booleans: {},
    requiredModules: [],
    forbiddenModules: [],
  },
  nftables: {
    table: 'bulwark',
    inbound: [
      { protocol: 'tcp', port: 22, comment: 'ssh' },
      { protocol: 'tcp', port: 443, comment: 'https' },
    ],
    loopback: true,
    established: true,
    icmp: 'essential',
    forward: { policy: 'drop', exemptions: [] },
    foreignTables: [
      { family: 'ip', name: 'filter', owner: 'iptables-nft (Nomad bridge networking and CNI plugins, Podman iptables drivers)' },
      { family: 'ip', name: 'nat', owner: 'iptables-nft (Nomad bridge networking and CNI plugins, Podman iptables drivers)' },
      { family: 'ip6', name: 'filter', owner: 'ip6tables-nft (Nomad bridge networking and CNI plugins, Podman iptables drivers)' },
      { family: 'ip6', name: 'nat', owner: 'ip6tables-nft (Nomad bridge networking and CNI plugins, Podman iptables drivers)' },
      { family: 'inet', name: 'cni_hostport', owner: 'CNI portmap plugin (nftables backend)' },
      { family: 'inet', name: 'cni_plugins_masquerade', owner: 'CNI bridge plugin ipMasq (nftables backend)' },
      { family: 'inet', name: 'netavark', owner: 'Podman netavark (nftables firewall driver)' },
      { family: 'inet', name: 'f2b-table', owner: 'fail2ban (nftables action)' },
    ],
  },
};
