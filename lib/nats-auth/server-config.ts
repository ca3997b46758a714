/**
 * Renders a nats-server config (2.9 syntax) from the permission model: TLS for every client,
 * JetStream with a store dir and limits, and one named application account holding every
 * user — the controller (nkey or user/password) and one nkey user per node.
 *
 * Shape rules, and why:
 * - No `authorization` block and no `no_auth_user`: users live only in the application
 *   account. nats-server up to 2.9.22 (Debian 12 ships 2.9.10) lets clients in without
 *   authentication when `authorization`/`accounts` hold only `$SYS` (GHSA-fr2g-9hjm-wr23);
 *   with a non-system account holding the users, a client without credentials is refused.
 * - Every string is written quoted and comes from a checked alphabet, so no value can close
 *   its string, start a variable (`$`) or an include.
 * - Nodes are written sorted by id, so the same fleet always renders the same bytes.
 */
import { BulwarkError } from '../index.js';
import { controllerPermissions, nodePermissions, type NatsPermissions, type SubjectPermissions } from './permissions.js';
import { parseNatsNodeId, type NatsNodeId } from './node-id.js';
import { checkNkeyUserPublicKey } from './nkeys.js';

/** TLS for client connections; nats-server then refuses clients that do not start TLS. */
export interface NatsTlsSpec {
  /** Absolute paths to PEM files. */
  readonly certFile: string;
  readonly keyFile: string;
  /** CA that client certificates must chain to when `verify` is set. */
  readonly caFile: string;
  /** Require a client certificate (mutual TLS) in addition to the user's credentials. */
  readonly verify?: boolean;
  /** TLS handshake timeout in seconds. */
  readonly timeoutSeconds?: number;
}

/** How the controller authenticates. */
export type ControllerNatsAuth =
  /** An nkey user: the public key (`U…`); the seed stays with the controller. */
  | { readonly kind: 'nkey'; readonly publicKey: string }
  /**
   * A user and password read from a secret file. The password is written in clear into the
   * 0600 config (node:crypto has no bcrypt); prefer nkeys.
   */
  | { readonly kind: 'password'; readonly user: string; readonly password: string };

/** One node's NATS identity: its id and the public half of its nkey. */
export interface NodeNatsIdentity {
  readonly nodeId: NatsNodeId;
  readonly publicKey: string;
}

/** Server-wide limits. */
export interface NatsServerLimits {
  /** Largest message; must hold the largest evidence message (event log + IMA chunk + quote). */
  readonly maxPayloadBytes: number;
  /** Client connections at once, controllers and nodes together. */
  readonly maxConnections: number;
  /** Longest protocol line (subject + reply + sizes). */
  readonly maxControlLineBytes: number;
  /** Bytes buffered for one slow client before it is disconnected. */
  readonly maxPendingBytes: number;
}

/** JetStream limits of the application account. */
export interface NatsAccountLimits {
  readonly maxMemoryBytes: number;
  readonly maxFileBytes: number;
  readonly maxStreams: number;
  readonly maxConsumers: number;
}

/** Everything a config is rendered from. */
export interface NatsServerConfigSpec {
  readonly host: string;
  readonly port: number;
  /** Optional server name (letters, digits, `_`, `-`). */
  readonly serverName?: string;
  readonly tls: NatsTlsSpec;
  /** JetStream store directory (absolute). */
  readonly storeDir: string;
  /** The account holding every user; never `$SYS`. */
  readonly accountName?: string;
  readonly limits?: Partial<NatsServerLimits>;
  readonly accountLimits?: Partial<NatsAccountLimits>;
  readonly controller: ControllerNatsAuth;
  readonly nodes: readonly NodeNatsIdentity[];
}

const MIB = 1024 * 1024;

/**
 * Defaults, and why:
 * - maxPayloadBytes 2 MiB: one evidence message may carry an event log (768 KiB), an IMA
 *   chunk (768 KiB) and baseline reports (448 KiB) besides the quote and facts;
 *   nats-server's own default (1 MiB) is below that.
 * - maxConnections 4096: a controller replica holds one or two connections, a node one.
 * - maxControlLineBytes 4096 and maxPendingBytes 64 MiB: nats-server's own defaults, written
 *   out so they are visible.
 * - Account: 256 MiB memory, 8 GiB file, 32 streams (Bulwark creates about ten: KV buckets
 *   and the audit stream), 1024 consumers (watchers and `watch`/history readers).
 * - Server JetStream totals equal the account's: the one account gets all of it.
 * - TLS handshake timeout 2 s; `verify` off (nodes authenticate with nkeys).
 */
export const NATS_SERVER_DEFAULTS = {
  accountName: 'BULWARK',
  limits: { maxPayloadBytes: 2 * MIB, maxConnections: 4096, maxControlLineBytes: 4096, maxPendingBytes: 64 * MIB },
  accountLimits: { maxMemoryBytes: 256 * MIB, maxFileBytes: 8 * 1024 * MIB, maxStreams: 32, maxConsumers: 1024 },
  tlsTimeoutSeconds: 2,
} as const satisfies {
  accountName: string;
  limits: NatsServerLimits;
  accountLimits: NatsAccountLimits;
  tlsTimeoutSeconds: number;
};

const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;
const HOST_PATTERN = /^[A-Za-z0-9.:-]{1,253}$/;
/** Printable ASCII without space, quotes (" '), backslash or `$`. */
const PASSWORD_PATTERN = /^[\x21\x23\x25\x26\x28-\x5b\x5d-\x7e]{16,256}$/;

function invalid(message: string, details: Readonly<Record<string, string | number>> = {}): BulwarkError {
  return new BulwarkError('NATS_AUTH_CONFIG_INVALID', message, details);
}

function checkPath(what: string, path: string): string {
  // Absolute, printable, and nothing that could end a quoted config string.
  if (!path.startsWith('/') || path.length > 4096 || /["\\$\u0000-\u001f\u007f]/.test(path)) {
    throw invalid(`${what} must be an absolute path without quotes, backslashes, '$' or control characters`, { field: what });
  }
  return path;
}

function checkCount(what: string, value: number, min: number): number {
  if (!Number.isSafeInteger(value) || value < min) throw invalid(`${what} must be an integer of at least ${min}`, { field: what });
  return value;
}

/** Checks a password for the config: 16-256 printable characters, none of space, quotes, backslash, `$`. */
export function checkNatsPassword(value: string): string {
  if (!PASSWORD_PATTERN.test(value)) {
    throw new BulwarkError('NATS_AUTH_CREDENTIAL_INVALID', 'a NATS password must be 16-256 printable characters without space, quotes, backslash or $', {
      length: value.length,
    });
  }
  return value;
}

function q(value: string): string {
  // Every value reaching here is from a checked alphabet; JSON quoting is also valid NATS config quoting.
  return JSON.stringify(value);
}

function list(values: readonly string[]): string {
  return `[${values.map(q).join(', ')}]`;
}

function renderDirection(name: string, p: SubjectPermissions): string {
  const parts = [`allow: ${list(p.allow)}`];
  if (p.deny.length > 0) parts.push(`deny: ${list(p.deny)}`);
  return `${name}: { ${parts.join(', ')} }`;
}

function renderPermissions(p: NatsPermissions, indent: string): string {
  const lines = [renderDirection('publish', p.publish), renderDirection('subscribe', p.subscribe)];
  if (p.allowResponses !== null) {
    lines.push(`allow_responses: { max: ${checkCount('allowResponses.max', p.allowResponses.max, 1)}, expires: "${checkCount('allowResponses.expiresMs', p.allowResponses.expiresMs, 1)}ms" }`);
  }
  return `permissions: {\n${lines.map((l) => `${indent}  ${l}`).join('\n')}\n${indent}}`;
}

/** The limits a spec resolves to, defaults filled in. */
export function resolveNatsLimits(spec: Pick<NatsServerConfigSpec, 'limits' | 'accountLimits'>): { limits: NatsServerLimits; accountLimits: NatsAccountLimits } {
  const l = { ...NATS_SERVER_DEFAULTS.limits, ...spec.limits };
  const a = { ...NATS_SERVER_DEFAULTS.accountLimits, ...spec.accountLimits };
  return {
    limits: {
      maxPayloadBytes: checkCount('limits.maxPayloadBytes', l.maxPayloadBytes, 1024),
      maxConnections: checkCount('limits.maxConnections', l.maxConnections, 1),
      maxControlLineBytes: checkCount('limits.maxControlLineBytes', l.maxControlLineBytes, 512),
      maxPendingBytes: checkCount('limits.maxPendingBytes', l.maxPendingBytes, l.maxPayloadBytes),
    },
    accountLimits: {
      // At least 1 MiB each: 0 would mean "no limit" or "auto" to nats-server at server level.
      maxMemoryBytes: checkCount('accountLimits.maxMemoryBytes', a.maxMemoryBytes, MIB),
      maxFileBytes: checkCount('accountLimits.maxFileBytes', a.maxFileBytes, MIB),
      maxStreams: checkCount('accountLimits.maxStreams', a.maxStreams, 1),
      maxConsumers: checkCount('accountLimits.maxConsumers', a.maxConsumers, 1),
    },
  };
}

/**
 * Renders the nats-server config text for a spec (trusted input from the controller; every
 * field is still checked, since node ids and keys came from enrollments). Throws
 * NATS_AUTH_CONFIG_INVALID or NATS_AUTH_CREDENTIAL_INVALID.
 */
export function renderNatsServerConfig(spec: NatsServerConfigSpec): string {
  if (!HOST_PATTERN.test(spec.host)) throw invalid('host must be an IP address or host name', { field: 'host' });
  if (!Number.isSafeInteger(spec.port) || spec.port < 1 || spec.port > 65535) throw invalid('port must be 1-65535', { field: 'port' });
  if (spec.serverName !== undefined && !NAME_PATTERN.test(spec.serverName)) throw invalid('serverName must be 1-64 characters of [A-Za-z0-9_-]', { field: 'serverName' });
  const account = spec.accountName ?? NATS_SERVER_DEFAULTS.accountName;
  if (!NAME_PATTERN.test(account)) throw invalid('accountName must be 1-64 characters of [A-Za-z0-9_-] (never $SYS)', { field: 'accountName' });
  const { limits, accountLimits } = resolveNatsLimits(spec);
  const tlsTimeout = checkCount('tls.timeoutSeconds', spec.tls.timeoutSeconds ?? NATS_SERVER_DEFAULTS.tlsTimeoutSeconds, 1);

  const users: string[] = [];
  const seenKeys = new Set<string>();
  const controllerUser =
    spec.controller.kind === 'nkey'
      ? `nkey: ${q(checkNkeyUserPublicKey(spec.controller.publicKey))}`
      : `user: ${q(checkUserName(spec.controller.user))}, password: ${q(checkNatsPassword(spec.controller.password))}`;
  if (spec.controller.kind === 'nkey') seenKeys.add(spec.controller.publicKey);
  users.push(`      # controller\n      { ${controllerUser},\n        ${renderPermissions(controllerPermissions(), '        ')} }`);

  const seenNodes = new Set<string>();
  const nodes = [...spec.nodes].sort((a, b) => (a.nodeId < b.nodeId ? -1 : a.nodeId > b.nodeId ? 1 : 0));
  for (const node of nodes) {
    // The brand says the id was checked; the check is repeated because a config is a trust boundary.
    parseNatsNodeId(node.nodeId);
    if (seenNodes.has(node.nodeId)) throw invalid(`node ${node.nodeId} is listed twice`, { node: node.nodeId });
    seenNodes.add(node.nodeId);
    const key = checkNkeyUserPublicKey(node.publicKey);
    if (seenKeys.has(key)) throw invalid(`node ${node.nodeId} uses an nkey that another user already has`, { node: node.nodeId });
    seenKeys.add(key);
    users.push(`      # node ${node.nodeId}\n      { nkey: ${q(key)},\n        ${renderPermissions(nodePermissions(node.nodeId), '        ')} }`);
  }

  const out = [
    '# nats-server config rendered by Bulwark; rewritten on every identity change (do not edit).',
    '# All users are in one application account; there is deliberately no authorization block.',
    ...(spec.serverName === undefined ? [] : [`server_name: ${q(spec.serverName)}`]),
    `host: ${q(spec.host)}`,
    `port: ${spec.port}`,
    `max_payload: ${limits.maxPayloadBytes}`,
    `max_connections: ${limits.maxConnections}`,
    `max_control_line: ${limits.maxControlLineBytes}`,
    `max_pending: ${limits.maxPendingBytes}`,
    'tls: {',
    `  cert_file: ${q(checkPath('tls.certFile', spec.tls.certFile))}`,
    `  key_file: ${q(checkPath('tls.keyFile', spec.tls.keyFile))}`,
    `  ca_file: ${q(checkPath('tls.caFile', spec.tls.caFile))}`,
    `  verify: ${spec.tls.verify === true ? 'true' : 'false'}`,
    `  timeout: ${tlsTimeout}`,
    '}',
    'jetstream: {',
    `  store_dir: ${q(checkPath('storeDir', spec.storeDir))}`,
    `  max_memory_store: ${accountLimits.maxMemoryBytes}`,
    `  max_file_store: ${accountLimits.maxFileBytes}`,
    '}',
    'accounts: {',
    `  ${q(account)}: {`,
    '    jetstream: {',
    `      max_mem: ${accountLimits.maxMemoryBytes}`,
    `      max_file: ${accountLimits.maxFileBytes}`,
    `      max_streams: ${accountLimits.maxStreams}`,
    `      max_consumers: ${accountLimits.maxConsumers}`,
    '    }',
    '    users: [',
    users.join('\n'),
    '    ]',
    '  }',
    '}',
    '',
  ];
  return out.join('\n');
}

function checkUserName(value: string): string {
  if (!NAME_PATTERN.test(value)) throw new BulwarkError('NATS_AUTH_CREDENTIAL_INVALID', 'a NATS user name must be 1-64 characters of [A-Za-z0-9_-]');
  return value;
}
