/**
 * The shapes shared by the baseline pieces: what the nftables evaluator finds a host
 * exposes, what the SELinux reader finds, and one baseline report. The baseline document
 * itself (policies/baselines/schema.json) is in document.ts.
 */

/** A transport protocol whose ports a baseline allows. */
export type Protocol = 'tcp' | 'udp';

/** An inclusive port range (a single port has from === to). */
export interface PortRange {
  readonly from: number;
  readonly to: number;
}

/**
 * Ports a new inbound connection from another host (not loopback, conntrack state new)
 * can reach, evaluated with nftables' semantics over every base chain on the input hook.
 * `conditional` lists ports reachable only when a condition the evaluator does not decide
 * holds (a source address, an interface name): they count as reachable.
 */
export interface Exposure {
  readonly tcp: readonly PortRange[];
  readonly udp: readonly PortRange[];
  /** True when some protocol other than tcp/udp/icmp is accepted wholesale (a rule accepting every packet). */
  readonly otherProtocols: boolean;
  readonly conditional: readonly { readonly protocol: Protocol; readonly ports: PortRange; readonly condition: string }[];
  /** Forward hook: true when forwarded new connections are accepted by default (no drop policy on every forward path). */
  readonly forwardOpen: boolean;
}

/** SELinux as read from a host (selinuxfs and /etc/selinux), or as the kernel measured it. */
export interface SelinuxState {
  /** False when selinuxfs is not mounted (SELinux disabled in the kernel). */
  readonly present: boolean;
  readonly mode: 'enforcing' | 'permissive' | 'disabled';
  /** SELINUX= in /etc/selinux/config (the mode at next boot). */
  readonly configMode: 'enforcing' | 'permissive' | 'disabled' | null;
  /** SELINUXTYPE= in /etc/selinux/config. */
  readonly policyType: string | null;
  readonly policyVersion: number | null;
  /** sha256 hex of the loaded policy (/sys/fs/selinux/policy), when readable. */
  readonly policyHash: string | null;
  /** Current value of each boolean (booleans/<name>: "current pending"). */
  readonly booleans: Readonly<Record<string, boolean>>;
  /** Names of the installed policy modules. */
  readonly modules: readonly string[];
}

/** An inbound service a baseline allows: a port (or range to `toPort`), optionally only from some sources (CIDR). */
export interface AllowedService {
  readonly protocol: Protocol;
  readonly port: number;
  readonly toPort?: number;
  readonly sources?: readonly string[];
  readonly comment?: string;
}

/** Forwarded traffic a baseline lets through despite the forward drop policy (Nomad/Podman bridges). */
export interface ForwardExemption {
  readonly iifname?: string;
  readonly oifname?: string;
  readonly comment: string;
}

/** A table another tool owns: reported, never enforced, its changes are not drift. `name` may end in "*" (a prefix). */
export interface ForeignTable {
  readonly family: 'ip' | 'ip6' | 'inet' | 'arp' | 'bridge' | 'netdev';
  readonly name: string;
  readonly owner: string;
}

/** The nftables part of a baseline: a typed model of what Bulwark's own table enforces. */
export interface NftablesBaseline {
  /** Bulwark's own table (family inet). */
  readonly table: string;
  readonly inbound: readonly AllowedService[];
  readonly loopback: boolean;
  readonly established: boolean;
  /** ICMP accepted inbound: "essential" (IPv6 neighbour discovery, PMTU, echo), "all" or "none". */
  readonly icmp: 'essential' | 'all' | 'none';
  readonly forward: { readonly policy: 'drop' | 'accept'; readonly exemptions: readonly ForwardExemption[] };
  readonly foreignTables: readonly ForeignTable[];
}

/** The SELinux part of a baseline. */
export interface SelinuxBaseline {
  readonly mode: 'enforcing' | 'permissive';
  /** SELINUXTYPE (Debian: "default", Fedora: "targeted"). */
  readonly policyType: string;
  /** sha256 hex of the loaded policy, when pinned. */
  readonly policyHash?: string;
  readonly booleans: Readonly<Record<string, boolean>>;
  readonly requiredModules: readonly string[];
  readonly forbiddenModules: readonly string[];
}

/** A baseline document (policies/baselines/schema.json). */
export interface Baseline {
  readonly version: 1;
  readonly name: string;
  /** "report": judge only; "enforce": the agent also corrects drift. */
  readonly mode: 'report' | 'enforce';
  readonly selinux: SelinuxBaseline | null;
  readonly nftables: NftablesBaseline | null;
}

/** One action the agent took to correct drift. */
export interface EnforcementAction {
  readonly target: 'nftables' | 'selinux';
  /** What was done ("replaced table inet bulwark", "setenforce 1", "setsebool httpd_can_network_connect off"). */
  readonly action: string;
  /** What it changed (the drift it corrected). */
  readonly changed: string;
  readonly ok: boolean;
  readonly error?: string;
}

/** A part of the report the agent could not read: the controller judges it BASELINE_REPORT_INVALID. */
export interface ReportError {
  readonly error: { readonly code: string; readonly message: string };
}

/**
 * One baseline report: the host's state when it changed (or at the first round of a
 * boot). Its sha256 is extended into the baseline PCR, so the chain of reports of one
 * boot replays to the quoted PCR value.
 */
export interface BaselineReport {
  readonly version: 1;
  readonly node: string;
  readonly bootId: string;
  /** Position in this boot's chain, from 0. */
  readonly seq: number;
  readonly time: string;
  /** The baseline the agent held (name and sha256 of its document), or null before it got one. */
  readonly baseline: { readonly name: string; readonly sha256: string } | null;
  readonly selinux: { readonly state: SelinuxState } | ReportError;
  /** `ruleset`: the normalised `nft -j list ruleset` document (see nft/normalise). */
  readonly nftables: { readonly ruleset: unknown; readonly digest: string; readonly exposure: Exposure } | ReportError;
  /** What changed since the previous report of the chain (empty for the first). */
  readonly changes: readonly string[];
  readonly enforcement: readonly EnforcementAction[];
}
