/**
 * A real Nomad for integration tests: the binary built from the Go module proxy by
 * test/tools/build-nomad.sh (cached per machine, outside the repository), and a cluster of
 * one server and N clients as child processes on loopback, each with its own data dir,
 * ports and node name, raw_exec enabled, no Consul, no Vault, fast heartbeats, and every
 * fingerprinter that would reach outside the machine (cloud metadata, update check) off.
 */
import { execa, type ResultPromise } from 'execa';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from './swtpm.js';
import type { Test } from 'tap';

const here = dirname(fileURLToPath(import.meta.url));

/** Finds test/tools/build-nomad.sh from dist/test/helpers (compiled) or test/helpers (source). */
function buildScriptPath(): string | null {
  let dir = here;
  for (let i = 0; i < 6; i++) {
    const candidate = join(dir, 'test', 'tools', 'build-nomad.sh');
    if (existsSync(candidate)) return candidate;
    dir = dirname(dir);
  }
  return null;
}

let binaryPromise: Promise<string | null> | null = null;
let failureReason: string | null = null;
let buildMs: number | null = null;

/** Why the last ensureNomadBinary() returned null (null when it did not). */
export function nomadUnavailableReason(): string | null {
  return failureReason;
}

/** Wall time of the ensureNomadBinary() call in this process (a cache hit takes milliseconds). */
export function nomadBuildMs(): number | null {
  return buildMs;
}

/**
 * The path of a Nomad binary, built on demand by test/tools/build-nomad.sh (once per
 * machine; BULWARK_NOMAD_BINARY names a ready one). Null, with nomadUnavailableReason(),
 * when it cannot be built here (no Go toolchain, no module proxy) so tests can skip with
 * a visible reason. A cold build takes minutes: callers raise their test timeout first.
 */
export async function ensureNomadBinary(): Promise<string | null> {
  binaryPromise ??= (async () => {
    const given = process.env['BULWARK_NOMAD_BINARY'];
    if (given !== undefined && given !== '') {
      if (existsSync(given)) return given;
      failureReason = `BULWARK_NOMAD_BINARY=${given} does not exist`;
      return null;
    }
    const script = buildScriptPath();
    if (script === null) {
      failureReason = 'test/tools/build-nomad.sh not found';
      return null;
    }
    const started = performance.now();
    const r = await execa('bash', [script], { reject: false, stdout: 'pipe', stderr: 'pipe', timeout: 40 * 60_000 });
    buildMs = performance.now() - started;
    const path = String(r.stdout).trim().split('\n').pop() ?? '';
    if (r.exitCode === 0 && path !== '' && existsSync(path)) return path;
    const lines = String(r.stderr).trim().split('\n');
    failureReason = `build-nomad.sh exited ${String(r.exitCode)}: ${lines.slice(-4).join(' | ')}`;
    return null;
  })();
  return binaryPromise;
}

/** One Nomad agent process (server or client) with its ports and data dir. */
/** One Nomad agent's identity, ports and data dir (test code). */
export interface NomadAgentSpec {
  readonly name: string;
  readonly dir: string;
  readonly httpPort: number;
  readonly rpcPort: number;
  readonly serfPort: number;
  readonly role: 'server' | 'client';
  readonly meta: Readonly<Record<string, string>>;
}

/** A running Nomad agent owned by the test. */
export class NomadAgentProcess {
  readonly spec: NomadAgentSpec;
  private child: ResultPromise | null;

  constructor(spec: NomadAgentSpec, child: ResultPromise) {
    this.spec = spec;
    this.child = child;
  }

  get running(): boolean {
    return this.child !== null && this.child.exitCode === null;
  }

  /** Exited without stop() being called. */
  get crashed(): boolean {
    return this.child !== null && this.child.exitCode !== null;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** The last lines of the agent's log (for failure messages). */
  async logTail(lines = 30): Promise<string> {
    try {
      return (await readFile(join(this.spec.dir, 'agent.log'), 'utf8')).trim().split('\n').slice(-lines).join('\n');
    } catch {
      return '';
    }
  }

  /**
   * Stops the agent (SIGKILL simulates a crash). A client's logmon/executor processes and
   * its tasks outlive it by design (a restarted client reattaches); like a host going away,
   * they are killed too.
   */
  async stop(signal: NodeJS.Signals = 'SIGTERM', graceMs = 5000): Promise<void> {
    const child = this.child;
    if (child === null) return;
    this.child = null;
    if (child.exitCode !== null) return;
    const pid = child.pid;
    const tree = pid === undefined ? [] : await descendants(pid);
    child.kill(signal);
    const done = await Promise.race([child.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), graceMs).unref())]);
    if (!done) {
      child.kill('SIGKILL');
      await child;
    }
    killAll(tree);
  }

  /** Replaces the (stopped) child with a new process on the same ports and data dir. */
  attach(child: ResultPromise): void {
    this.child = child;
  }
}

/** How many clients, their names and static meta, and whether ACLs are on (test code). */
export interface NomadClusterOptions {
  /** Directory for every agent's config and data; removed by stop(). */
  readonly root: string;
  /** Clients started with the server (named client-1..N unless `clientNames` is given). */
  readonly clients?: number;
  readonly clientNames?: readonly string[];
  /** Static client.meta for each client, by name. */
  readonly clientMeta?: (name: string) => Readonly<Record<string, string>>;
  /** A binary to use instead of ensureNomadBinary(). */
  readonly binary?: string;
  /** Enable ACLs and bootstrap them; the management token is `managementToken`. */
  readonly acl?: boolean;
}

/** Timings measured while starting the cluster. */
export interface NomadClusterTimings {
  /** From the first spawn to the server electing itself leader. */
  readonly serverReadyMs: number;
  /** From the first spawn to every initial client being `ready` in /v1/nodes. */
  readonly clusterReadyMs: number;
}

function hclString(s: string): string {
  return JSON.stringify(s);
}

function hclMap(m: Readonly<Record<string, string>>): string {
  return Object.entries(m)
    .map(([k, v]) => `    ${hclString(k)} = ${hclString(v)}`)
    .join('\n');
}

// Shared by server and clients: loopback only, no phone-home, no Consul integration.
function commonConfig(spec: NomadAgentSpec): string {
  return `name = ${hclString(spec.name)}
data_dir = ${hclString(join(spec.dir, 'data'))}
bind_addr = "127.0.0.1"
log_level = "INFO"
disable_update_check = true
leave_on_interrupt = true
ports {
  http = ${spec.httpPort}
  rpc  = ${spec.rpcPort}
  serf = ${spec.serfPort}
}
advertise {
  http = "127.0.0.1:${spec.httpPort}"
  rpc  = "127.0.0.1:${spec.rpcPort}"
  serf = "127.0.0.1:${spec.serfPort}"
}
consul {
  auto_advertise   = false
  server_auto_join = false
  client_auto_join = false
}
`;
}

function aclConfig(acl: boolean): string {
  return acl ? 'acl {\n  enabled = true\n}\n' : '';
}

function serverConfig(spec: NomadAgentSpec, acl: boolean): string {
  return `${commonConfig(spec)}${aclConfig(acl)}
server {
  enabled          = true
  bootstrap_expect = 1
  # Fast failure detection for tests: a silent client is down within a few seconds.
  min_heartbeat_ttl         = "2s"
  heartbeat_grace           = "5s"
  max_heartbeats_per_second = 500
  failover_heartbeat_ttl    = "30s"
}
client {
  enabled = false
}
`;
}

function clientConfig(spec: NomadAgentSpec, serverRpc: number, acl: boolean): string {
  return `${commonConfig(spec)}${aclConfig(acl)}
server {
  enabled = false
}
client {
  enabled           = true
  servers           = ["127.0.0.1:${serverRpc}"]
  network_interface = "lo"
  cgroup_parent     = ${hclString(`bulwark-nomad-${spec.name}.slice`)}
  gc_interval       = "10s"
  meta {
${hclMap(spec.meta)}
  }
  options = {
    "driver.allowlist"      = "raw_exec"
    # Cloud fingerprinters probe 169.254.169.254; consul/vault ones poll local agents.
    "fingerprint.denylist"  = "env_aws,env_gce,env_azure,env_digitalocean,consul,vault"
  }
}
plugin "raw_exec" {
  config {
    enabled = true
  }
}
`;
}

/** Parent pid of every process, from /proc/PID/stat (field 4, after the parenthesised comm). */
async function parentMap(): Promise<Map<number, number>> {
  const out = new Map<number, number>();
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = await readFile(`/proc/${name}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(Number(name), Number(fields[1]));
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

/** Every descendant of `pid` (Nomad's logmon and executor processes, and the tasks they run). */
async function descendants(pid: number): Promise<number[]> {
  const parents = await parentMap();
  const out: number[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    const p = queue.shift();
    for (const [child, parent] of parents) {
      if (parent === p && !out.includes(child)) {
        out.push(child);
        queue.push(child);
      }
    }
  }
  return out;
}

/** Processes started for this cluster that outlived their agent: their command line or cwd names the root. */
async function processesUnder(root: string): Promise<number[]> {
  const out: number[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    try {
      const cmdline = (await readFile(`/proc/${name}/cmdline`, 'utf8')).replaceAll('\0', ' ');
      const cwd = await readlink(`/proc/${name}/cwd`).catch(() => '');
      if (cmdline.includes(root) || cwd === root || cwd.startsWith(`${root}/`)) out.push(Number(name));
    } catch {
      // exited meanwhile, or not ours to read
    }
  }
  return out;
}

function killAll(pids: readonly number[]): void {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

/** Unmounts what Nomad mounted for task dirs (secrets/private tmpfs) under `root`, deepest first. */
async function unmountUnder(root: string): Promise<void> {
  let mounts: string;
  try {
    mounts = await readFile('/proc/self/mounts', 'utf8');
  } catch {
    return;
  }
  const points = mounts
    .split('\n')
    .map((l) => l.split(' ')[1] ?? '')
    .filter((p) => p.startsWith(`${root}/`))
    .sort((a, b) => b.length - a.length);
  for (const p of points) await execa('umount', ['-l', p], { reject: false });
}

async function delay(ms: number): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
}

/** A Nomad server with clients, all child processes of the test on 127.0.0.1. */
export class NomadCluster {
  readonly root: string;
  readonly binary: string;
  readonly server: NomadAgentProcess;
  readonly clients = new Map<string, NomadAgentProcess>();
  readonly timings: NomadClusterTimings;
  readonly acl: boolean;
  /** The bootstrap (management) token when ACLs are on. */
  managementToken: string | null = null;
  private readonly clientMeta: (name: string) => Readonly<Record<string, string>>;

  private constructor(
    root: string,
    binary: string,
    server: NomadAgentProcess,
    clientMeta: (name: string) => Readonly<Record<string, string>>,
    timings: NomadClusterTimings,
    acl: boolean,
  ) {
    this.acl = acl;
    this.root = root;
    this.binary = binary;
    this.server = server;
    this.clientMeta = clientMeta;
    this.timings = timings;
  }

  /** The server's HTTP API address. */
  get address(): string {
    return `http://127.0.0.1:${this.server.spec.httpPort}`;
  }

  /**
   * Starts the server and the clients and waits until the leader is elected and every client
   * is `ready`. Throws (after stopping what it started) when Nomad does not come up.
   */
  static async start(opts: NomadClusterOptions): Promise<NomadCluster> {
    const binary = opts.binary ?? (await ensureNomadBinary());
    if (binary === null) throw new Error(`no Nomad binary: ${nomadUnavailableReason() ?? 'unknown reason'}`);
    const names = opts.clientNames ?? Array.from({ length: opts.clients ?? 3 }, (_, i) => `client-${i + 1}`);
    const clientMeta = opts.clientMeta ?? (() => ({}));
    await mkdir(opts.root, { recursive: true });
    const started = performance.now();
    const serverSpec = await NomadCluster.spec(opts.root, 'server', 'server', {});
    const acl = opts.acl ?? false;
    const server = new NomadAgentProcess(serverSpec, (await NomadCluster.spawn(binary, serverSpec, serverConfig(serverSpec, acl))).child);
    const placeholder: NomadClusterTimings = { serverReadyMs: 0, clusterReadyMs: 0 };
    const cluster = new NomadCluster(opts.root, binary, server, clientMeta, placeholder, acl);
    try {
      await cluster.waitForLeader(30_000);
      if (acl) await cluster.bootstrapAcl();
      const serverReadyMs = performance.now() - started;
      for (const name of names) await cluster.addClient(name, { wait: false });
      for (const name of names) await cluster.waitForNode(name, (n) => n.Status === 'ready', 60_000);
      const timings: NomadClusterTimings = { serverReadyMs, clusterReadyMs: performance.now() - started };
      Object.assign(cluster, { timings });
      return cluster;
    } catch (err) {
      const tail = await server.logTail();
      await cluster.stop();
      throw new Error(`Nomad cluster did not start: ${err instanceof Error ? err.message : String(err)}\n${tail}`, { cause: err });
    }
  }

  private static async spec(root: string, name: string, role: 'server' | 'client', meta: Readonly<Record<string, string>>): Promise<NomadAgentSpec> {
    const dir = join(root, name);
    await mkdir(join(dir, 'data'), { recursive: true });
    return { name, dir, role, meta, httpPort: await freePort(), rpcPort: await freePort(), serfPort: await freePort() };
  }

  // Returns the child wrapped: an async function returning the (thenable) subprocess itself
  // would wait for it to exit.
  private static async spawn(binary: string, spec: NomadAgentSpec, config: string): Promise<{ child: ResultPromise }> {
    const configPath = join(spec.dir, 'agent.hcl');
    await writeFile(configPath, config);
    const child = execa(binary, ['agent', `-config=${configPath}`], {
      reject: false,
      stdin: 'ignore',
      stdout: { file: join(spec.dir, 'agent.log'), append: true },
      stderr: { file: join(spec.dir, 'agent.log'), append: true },
      // No NOMAD_* from the caller's environment leaks into the agents.
      extendEnv: false,
      env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: spec.dir },
    });
    return { child };
  }

  /**
   * Starts one more client (e.g. a host whose agent has not attested yet). With wait (the
   * default) it returns once the node is registered (any status); without, at once.
   */
  async addClient(name: string, opts: { meta?: Readonly<Record<string, string>>; wait?: boolean } = {}): Promise<NomadAgentProcess> {
    if (this.clients.has(name)) throw new Error(`client ${name} exists`);
    const spec = await NomadCluster.spec(this.root, name, 'client', opts.meta ?? this.clientMeta(name));
    const agent = new NomadAgentProcess(spec, (await NomadCluster.spawn(this.binary, spec, clientConfig(spec, this.server.spec.rpcPort, this.acl))).child);
    this.clients.set(name, agent);
    if (opts.wait ?? true) await this.waitForNode(name, () => true, 60_000);
    return agent;
  }

  /** Stops a client process (its node goes `down` after the heartbeat TTL). */
  async stopClient(name: string, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    await this.clients.get(name)?.stop(signal);
  }

  /** Stops the server only (clients keep running their allocations). */
  async stopServer(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    await this.server.stop(signal);
  }

  /** Starts the server again on the same ports and data dir, and waits for a leader. */
  async startServer(): Promise<void> {
    if (this.server.running) return;
    this.server.attach((await NomadCluster.spawn(this.binary, this.server.spec, serverConfig(this.server.spec, this.acl))).child);
    await this.waitForLeader(30_000);
  }

  /** Bootstraps ACLs (retrying while the new leader settles) and keeps the management token. */
  private async bootstrapAcl(): Promise<void> {
    let last = '';
    for (let i = 0; i < 50; i++) {
      const res = await fetch(`${this.address}/v1/acl/bootstrap`, { method: 'POST', signal: AbortSignal.timeout(5000) });
      const text = await res.text();
      if (res.ok) {
        const v: unknown = JSON.parse(text);
        const secret: unknown = typeof v === 'object' && v !== null ? Reflect.get(v, 'SecretID') : undefined;
        if (typeof secret !== 'string') throw new Error('ACL bootstrap returned no SecretID');
        this.managementToken = secret;
        return;
      }
      last = `${res.status} ${text}`;
      await delay(100);
    }
    throw new Error(`ACL bootstrap failed: ${last}`);
  }

  /** GETs a path from the server's HTTP API (test code: the product uses controller/nomad/client.ts). */
  async get(path: string): Promise<unknown> {
    const headers: Record<string, string> = this.managementToken === null ? {} : { 'x-nomad-token': this.managementToken };
    const res = await fetch(`${this.address}${path}`, { headers, signal: AbortSignal.timeout(5000) });
    if (!res.ok) throw new Error(`GET ${path}: ${res.status} ${await res.text()}`);
    const v: unknown = await res.json();
    return v;
  }

  async waitForLeader(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = '';
    while (Date.now() < deadline) {
      if (this.server.crashed) throw new Error(`the Nomad server exited:\n${await this.server.logTail()}`);
      try {
        const leader = await this.get('/v1/status/leader');
        if (typeof leader === 'string' && leader !== '') return;
      } catch (err) {
        last = err instanceof Error ? err.message : String(err);
      }
      await delay(100);
    }
    throw new Error(`no Nomad leader within ${timeoutMs} ms (${last})`);
  }

  /** The /v1/nodes stubs as loose test values (Name, ID, Status, SchedulingEligibility, Drain). */
  async nodeStubs(): Promise<TestNodeStub[]> {
    const v = await this.get('/v1/nodes');
    if (!Array.isArray(v)) throw new Error('/v1/nodes is not an array');
    return v.map((x: unknown) => {
      const get = (k: string): unknown => (typeof x === 'object' && x !== null ? Reflect.get(x, k) : undefined);
      return {
        ID: String(get('ID')),
        Name: String(get('Name')),
        Status: String(get('Status')),
        SchedulingEligibility: String(get('SchedulingEligibility')),
        Drain: get('Drain') === true,
      };
    });
  }

  /** Waits until a node with this name satisfies `ok`; returns its stub. */
  async waitForNode(name: string, ok: (n: TestNodeStub) => boolean, timeoutMs: number): Promise<TestNodeStub> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const client = this.clients.get(name);
      if (client?.crashed === true) throw new Error(`Nomad client ${name} exited:\n${await client.logTail()}`);
      let found: TestNodeStub | undefined;
      try {
        found = (await this.nodeStubs()).find((n) => n.Name === name);
      } catch {
        found = undefined;
      }
      if (found !== undefined && ok(found)) return found;
      if (Date.now() > deadline) throw new Error(`node ${name} not as expected within ${timeoutMs} ms: ${JSON.stringify(found)}`);
      await delay(100);
    }
  }

  /** Kills every agent and removes the root directory. */
  async stop(): Promise<void> {
    await Promise.all([...this.clients.values()].map((c) => c.stop('SIGTERM', 3000)));
    await this.server.stop('SIGTERM', 3000);
    killAll(await processesUnder(this.root));
    await unmountUnder(this.root);
    await rm(this.root, { recursive: true, force: true });
  }
}

/** The few node fields tests look at. */
export interface TestNodeStub {
  readonly ID: string;
  readonly Name: string;
  readonly Status: string;
  readonly SchedulingEligibility: string;
  readonly Drain: boolean;
}

/**
 * Runs a Nomad test file: builds (or finds) the binary under a long timeout, then `run`
 * under `timeoutMs`. Without a binary the file fails with the reason: a machine that cannot
 * build Nomad (no suitable Go toolchain, say) must not pass these tests without running them.
 */
export async function withNomad(t: Test, timeoutMs: number, run: () => Promise<void>): Promise<void> {
  // A cold build of Nomad takes minutes (then it is cached per machine).
  t.setTimeout(30 * 60_000);
  const binary = await ensureNomadBinary();
  if (binary === null) {
    t.fail(`no Nomad binary, so the Nomad tests cannot run: ${nomadUnavailableReason() ?? 'unknown reason'}`);
    return;
  }
  t.comment(`nomad binary ${binary} (ensureNomadBinary took ${Math.round(nomadBuildMs() ?? 0)} ms)`);
  t.setTimeout(timeoutMs);
  await run();
}
