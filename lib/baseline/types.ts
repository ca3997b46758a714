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
