/**
 * A real local fleet for integration tests and the demo: a nats-server (TLS and nkey
 * authentication, started from a rendered config whose node users follow the node records
 * in KV, as an operator's external server would), a controller
 * (in this process, or as a child process that can be SIGKILLed), and agents each with
 * its own provisioned swtpm talking to it over gRPC and NATS.
 */
import { execa, type ResultPromise } from 'execa';
import { readFileSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { randomUUID } from 'node:crypto';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect, type ConnectionOptions, type NatsConnection } from 'nats';
import { Agent, type RoundResult } from '../../agent/agent.js';
import { parseAgentConfig, type AgentConfig } from '../../agent/config.js';
import { Tpm2ToolsTpm } from '../../agent/tpm2-tools-tpm.js';
import { evidenceSources } from '../../agent/sources.js';
import { BaselineSource } from '../../agent/baseline/index.js';
import type { HostFacts } from '../../lib/facts/facts.js';
import { parseControllerConfig, type ControllerConfig } from '../../controller/config/config.js';
import { Controller } from '../../controller/controller.js';
import { silentLogger, type Logger } from '../../daemon/index.js';
import { runCtl } from '../../cli/ctl.js';
import { NatsIdentitySync, startEmbeddedNats, type EmbeddedNats } from '../../controller/nats-auth/index.js';
import { ControllerStore } from '../../controller/state/store.js';
import { natsClientAuthOptions } from '../../daemon/index.js';
import { parseNatsNodeId } from '../../lib/nats-auth/index.js';
import { ControllerClient, type ClientTls } from '../../proto/grpc.js';
import type { NodeMsg } from '../../proto/wire.js';
import { nftMonitorSubscribed } from './netns.js';
import { isBulwarkError } from '../../lib/index.js';
import { parseJsonText } from '../../lib/schema/index.js';
import { isKeySetKind, KEYSET_KINDS } from '../../lib/signing/index.js';
import { keySetDocument, keySetEnvelope, signPolicy, testKey, type TestKey } from './signing.js';
import { createTestCa, exportCaBundle, freePort, provisionTpm, SwtpmProcess, type TestCa } from './swtpm.js';
import { waitFor, waitUntil } from './wait.js';

/** Host facts for test agents: fixed and distinct per node, so tests do not depend on the machine. */
export function testFacts(nodeId: string): HostFacts {
  return {
    hostname: nodeId,
    osDistro: 'Debian GNU/Linux',
    osRelease: '12',
    kernel: '6.1.0-test',
    arch: 'x64',
    cpu: 'Test CPU',
    cpuCores: 2,
    memoryBytes: 2 ** 33,
    disks: [{ device: '/dev/vda', type: 'HD', sizeBytes: 2 ** 36, serial: `disk-${nodeId}` }],
    interfaces: [{ name: 'eth0', mac: '52:54:00:00:00:01', addresses: ['192.0.2.10'] }],
    machineId: randomUUID().replaceAll('-', ''),
    systemManufacturer: 'QEMU',
    systemModel: 'Standard PC',
    systemSerial: `serial-${nodeId}`,
    systemUuid: randomUUID(),
    boardManufacturer: 'QEMU',
    boardModel: 'Q35',
    boardSerial: '',
  };
}

/** TLS with the admin credential set a controller wrote in `controllerDataDir` on its first start. */
export function adminTlsFor(controllerDataDir: string): ClientTls {
  const dir = join(controllerDataDir, 'credentials', 'admin');
  return { caPem: readFileSync(join(dir, 'ca.pem'), 'utf8'), certPem: readFileSync(join(dir, 'cert.pem'), 'utf8'), keyPem: readFileSync(join(dir, 'key.pem'), 'utf8') };
}

/** One host: its swtpm, its boot id file, and its agent. */
export interface TestNode {
  readonly nodeId: string;
  readonly swtpm: SwtpmProcess;
  readonly tpm: Tpm2ToolsTpm;
  readonly agent: Agent;
  readonly config: AgentConfig;
  readonly bootIdPath: string;
  readonly rounds: RoundResult[];
  /** The agent's baseline source (null: the node runs without a host baseline). */
  readonly baseline: BaselineSource | null;
}

/**
 * A host baseline for a test node: the nft command it reads and changes (a NetnsHost's
 * `nftCommand`, or a script standing in for nft) and the root of its SELinux tree
 * (writeSelinuxTree).
 */
export interface NodeBaseline {
  readonly nftCommand: readonly string[];
  readonly selinuxRoot: string;
}

export interface FleetOptions {
  readonly root: string;
  /** Overrides of the controller config (timings). */
  readonly controller?: Partial<Record<keyof ControllerConfig, unknown>>;
  readonly logger?: Logger;
  /**
   * The measured-boot policy the fleet assigns as the default once its controller is up:
   * an explicit accept-all policy named {@link TEST_ACCEPT_ALL_POLICY} (for tests that do
   * not test the boot), or none (the controller's fail-closed default: POLICY_MISSING).
   */
  readonly measuredBootPolicy?: 'accept-all' | 'none';
  /**
   * The controller's requireBaseline: test fleets run agents without a baseline, so it is
   * false unless a test asks for it (then a node without one is POLICY_MISSING).
   */
  readonly requireBaseline?: boolean;
}

/** The accept-all measured-boot policy test fleets assign by default (explicitly, audited). */
export const TEST_ACCEPT_ALL_POLICY = 'test-accept-all';

export const FAST_TIMINGS = {
  intervalMs: 1000,
  pullIntervalMs: 1500,
  staleAfterMs: 6000,
  nonceTtlMs: 3000,
  enrollTtlMs: 10_000,
} as const;

const here = dirname(fileURLToPath(import.meta.url));
/** dist/controller/main.js, next to this file's build output. */
export const CONTROLLER_MAIN = join(here, '..', '..', 'controller', 'main.js');
export const CTL_MAIN = join(here, '..', '..', 'cli', 'bulwarkctl.js');

/** A controller running as a separate process, so it can be SIGKILLed. */
export class ControllerProcess {
  readonly child: ResultPromise;
  readonly grpcAddress: string;

  private constructor(child: ResultPromise, grpcAddress: string) {
    this.child = child;
    this.grpcAddress = grpcAddress;
  }

  /** Starts `command` (default: the dev tree's bulwark-controller under node) with `--config configPath`. */
  static async start(configPath: string, command: readonly string[] = ['node', CONTROLLER_MAIN]): Promise<ControllerProcess> {
    const [file = 'node', ...args] = command;
    const child = execa(file, [...args, '--config', configPath], { reject: false, stdout: 'pipe', stderr: 'pipe', env: { BULWARK_CONTROLLER_CONFIG: '' } });
    const address = await new Promise<string>((resolve, reject) => {
      let buf = '';
      const timer = setTimeout(() => reject(new Error(`controller did not start: ${buf}`)), 20_000);
      child.stdout?.on('data', (d: Buffer) => {
        buf += d.toString();
        // The ready line, not a log record (logs share stdout).
        const m = /\{"ready":true,"grpc":"([^"]+)"/.exec(buf);
        if (m?.[1] !== undefined) {
          clearTimeout(timer);
          resolve(m[1]);
        }
      });
      void child.then((r) => {
        clearTimeout(timer);
        reject(new Error(`controller exited ${String(r.exitCode)}: ${`${String(r.stdout)}${String(r.stderr)}`.slice(-2000)}`));
      });
    });
    return new ControllerProcess(child, address);
  }

  async kill(signal: NodeJS.Signals): Promise<void> {
    if (this.child.exitCode !== null) return;
    this.child.kill(signal);
    await this.child;
  }
}

export class TestFleet {
  readonly root: string;
  readonly ca: TestCa;
  /** The fleet's nats-server; its node users follow KV through `natsSync`. */
  readonly nats: EmbeddedNats;
  readonly natsSync: NatsIdentitySync;
  private readonly natsAdmin: NatsConnection;
  readonly controllerConfig: ControllerConfig;
  controller: Controller | null = null;
  controllerProcess: ControllerProcess | null = null;
  readonly nodes = new Map<string, TestNode>();
  private readonly logger: Logger;
  private grpcAddress = '';
  private tpmCount = 0;
  private readonly measuredBootPolicy: 'accept-all' | 'none';
  private policyAssigned = false;
  /**
   * The fleet's signing key, as an operator's HSM key: it signs the first key set of every
   * kind (installed at the controller's first start, with `keys init`'s RPC) and every policy
   * the fleet pushes, so tests take the production path (signed pushes, verified).
   */
  readonly signingKey: TestKey = testKey('fleet-key-1');
  private keySetsInstalled = false;

  private constructor(root: string, ca: TestCa, nats: EmbeddedNats, natsSync: NatsIdentitySync, natsAdmin: NatsConnection, controllerConfig: ControllerConfig, logger: Logger, measuredBootPolicy: 'accept-all' | 'none') {
    this.measuredBootPolicy = measuredBootPolicy;
    this.root = root;
    this.ca = ca;
    this.nats = nats;
    this.natsSync = natsSync;
    this.natsAdmin = natsAdmin;
    this.controllerConfig = controllerConfig;
    this.logger = logger;
  }

  /** Starts nats-server and creates the EK CA (the controller is started separately). */
  static async create(opts: FleetOptions): Promise<TestFleet> {
    const ca = await createTestCa(join(opts.root, 'ca'));
    // Provision one throwaway TPM so the CA exists before the controller reads its bundle.
    await provisionTpm(ca, join(opts.root, 'ca-init-tpm'));
    await exportCaBundle(ca);
    // The NATS server with its own CA, TLS certificate and controller nkey (as the embedded one).
    const nats = await startEmbeddedNats({ dataDir: join(opts.root, 'nats'), port: 0 });
    const natsAdmin = await connect({ servers: nats.url, ...(await natsClientAuthOptions({ credentials: { kind: 'nkey', seedFile: nats.seedFile }, caFile: nats.caFile })) });
    const store = await ControllerStore.open(natsAdmin);
    const natsSync = new NatsIdentitySync({ watch: (onChange, onCaughtUp) => store.watchNodeKeys(onChange, onCaughtUp), apply: (nodes) => nats.setNodes(nodes), log: opts.logger ?? silentLogger() });
    await natsSync.start();
    const grpcPort = await freePort();
    const config = parseControllerConfig(
      [
        {
          dataDir: join(opts.root, 'controller'),
          natsUrl: nats.url,
          natsCaFile: nats.caFile,
          natsNkeySeedFile: nats.seedFile,
          grpcListen: `127.0.0.1:${grpcPort}`,
          ekCaDir: ca.bundleDir,
          // Test hosts enroll without an admin's approval unless a test asks for it.
          enrollment: 'open',
          // Every test host enrolls from one loopback address.
          enrollBurst: 1000,
          requireBaseline: opts.requireBaseline ?? false,
          ...FAST_TIMINGS,
          ...opts.controller,
        },
      ],
      {},
    );
    return new TestFleet(opts.root, ca, nats, natsSync, natsAdmin, config, opts.logger ?? silentLogger(), opts.measuredBootPolicy ?? 'accept-all');
  }

  get controllerAddress(): string {
    return this.grpcAddress;
  }

  /** The admin credential set the controller writes on first start (bulwarkctl --credentials). */
  get adminCredentials(): string {
    return join(this.controllerConfig.dataDir, 'credentials', 'admin');
  }

  /** The controller CA certificate agents pin (written on the controller's first start). */
  get controllerCaPath(): string {
    return join(this.controllerConfig.dataDir, 'ca', 'ca.pem');
  }

  /** What `bulwark-agent gate` of node `nodeId` is given: the controller, the pinned CA, the agent's data directory. */
  gateOptions(nodeId: string): { controller: string; nodeId: string; controllerCa: string; dataDir: string } {
    return { controller: this.grpcAddress, nodeId, controllerCa: this.controllerCaPath, dataDir: join(this.root, 'agents', nodeId) };
  }

  /** TLS with the admin credential set (read when called: the controller must have started once). */
  adminTls(): ClientTls {
    return adminTlsFor(this.controllerConfig.dataDir);
  }

  /** Points agents added from now on, and the clients, at another controller replica. */
  useController(grpcAddress: string): void {
    this.grpcAddress = grpcAddress;
  }

  async startController(): Promise<Controller> {
    const c = new Controller(this.controllerConfig, this.logger);
    await c.start();
    this.controller = c;
    this.grpcAddress = c.grpcAddress;
    await this.installKeySets();
    await this.assignFleetPolicy();
    return c;
  }

  async stopController(): Promise<void> {
    await this.controller?.stop();
    this.controller = null;
  }

  /** Starts the controller as a child process (same config, written to a file); `command` as for ControllerProcess.start. */
  async startControllerProcess(command?: readonly string[]): Promise<ControllerProcess> {
    const path = join(this.root, 'controller.json');
    await writeFile(path, JSON.stringify(this.controllerConfig));
    const p = await ControllerProcess.start(path, command);
    this.controllerProcess = p;
    this.grpcAddress = p.grpcAddress;
    await this.installKeySets();
    await this.assignFleetPolicy();
    return p;
  }

  /**
   * Pushes and assigns (as the default) the fleet's measured-boot policy through the
   * controller at `grpcAddress` (default: the fleet's), once per fleet; the pushes are
   * audited like any operator's. Nothing for a fleet created with `measuredBootPolicy: 'none'`.
   */
  async assignFleetPolicy(grpcAddress = this.grpcAddress): Promise<void> {
    if (this.measuredBootPolicy === 'none' || this.policyAssigned) return;
    await this.installKeySets(grpcAddress);
    const client = new ControllerClient(grpcAddress, { tls: this.adminTls() });
    try {
      await client.putPolicy('measured-boot', TEST_ACCEPT_ALL_POLICY, await this.signed('measured-boot', JSON.stringify({ name: TEST_ACCEPT_ALL_POLICY, acceptAll: true })));
      await client.assignPolicy('measured-boot', TEST_ACCEPT_ALL_POLICY, null);
    } finally {
      client.close();
    }
    this.policyAssigned = true;
  }

  /** Provisions a new swtpm (with EK certificates from `ca`, by default the fleet's CA). */
  async newTpm(ca: TestCa = this.ca): Promise<SwtpmProcess> {
    const dir = join(this.root, `tpm-${this.tpmCount++}`);
    await provisionTpm(ca, dir);
    return SwtpmProcess.start(dir);
  }

  /** A host with its own swtpm and an agent (not started). */
  async addNode(
    nodeId: string,
    opts: {
      ca?: TestCa;
      ekType?: 'rsa' | 'ecc';
      eventLogPath?: string;
      imaLogPath?: string;
      imaFormat?: 'ascii' | 'binary';
      nomadNode?: string;
      baseline?: NodeBaseline;
      /** Further agent config keys (the last layer), e.g. metricsListen. */
      agent?: Readonly<Record<string, unknown>>;
    } = {},
  ): Promise<TestNode> {
    const swtpm = await this.newTpm(opts.ca);
    const dataDir = join(this.root, 'agents', nodeId);
    await mkdir(dataDir, { recursive: true });
    const bootIdPath = join(dataDir, 'boot_id');
    await writeFile(bootIdPath, `${randomUUID()}\n`);
    // A node with a baseline verifies the envelopes it receives with the fleet's baseline key set (its one key).
    const baselineKeys = opts.baseline !== undefined && this.controllerConfig.requireSignedPolicies ? join(dataDir, 'baseline-keys.pem') : null;
    if (baselineKeys !== null) await writeFile(baselineKeys, this.signingKey.publicKeyPem);
    const config = parseAgentConfig(
      [
        {
          tcti: swtpm.tcti,
          controller: this.grpcAddress,
          controllerCa: this.controllerCaPath,
          dataDir,
          nodeId,
          natsCaFile: this.nats.caFile,
          intervalMs: this.controllerConfig.intervalMs,
          ekType: opts.ekType ?? 'rsa',
          toolTimeoutMs: 20_000,
          bootIdPath,
          eventLogPath: opts.eventLogPath ?? null,
          imaLogPath: opts.imaLogPath ?? null,
          // Host baselines read nft and SELinux: off unless a test gives the node a namespace and a tree.
          ...(opts.baseline === undefined ? { baseline: false } : { baseline: true, nftCommand: [...opts.baseline.nftCommand], selinuxRoot: opts.baseline.selinuxRoot, baselineKeys }),
          ...(opts.imaFormat === undefined ? {} : { imaFormat: opts.imaFormat }),
          ...(opts.nomadNode === undefined ? {} : { nomadNode: opts.nomadNode }),
          ...opts.agent,
        },
      ],
      {},
    );
    const tpm = await Tpm2ToolsTpm.open({ tcti: swtpm.tcti, toolTimeoutMs: config.toolTimeoutMs, akAlg: config.akAlg });
    return this.nodeWithAgent({ nodeId, swtpm, tpm, config, bootIdPath });
  }

  /** A new agent (not started) for a node whose agent was stopped: same config, TPM, data dir and boot (an agent restart on the host). */
  newAgent(nodeId: string): TestNode {
    const node = this.nodes.get(nodeId);
    if (node === undefined) throw new Error(`no node ${nodeId} in this fleet`);
    return this.nodeWithAgent(node);
  }

  private nodeWithAgent(host: Pick<TestNode, 'nodeId' | 'swtpm' | 'tpm' | 'config' | 'bootIdPath'>): TestNode {
    const { nodeId, config, tpm } = host;
    const sources = evidenceSources(config, { imaPollMs: 50, tpm, log: this.logger });
    const agent = new Agent({ config, tpm, collectFacts: async () => testFacts(nodeId), sources, log: this.logger });
    const rounds: RoundResult[] = [];
    agent.onRound = (r) => rounds.push(r);
    const baseline = sources.find((s): s is BaselineSource => s instanceof BaselineSource) ?? null;
    const node: TestNode = { ...host, agent, rounds, baseline };
    this.nodes.set(nodeId, node);
    return node;
  }

  /**
   * Waits until the started agent of a node with a baseline has its `nft monitor`
   * subscribed to nftables events, so a ruleset change made from now on triggers a round.
   */
  async waitForNftMonitor(nodeId: string, timeoutMs = 20_000): Promise<void> {
    const source = this.nodes.get(nodeId)?.baseline;
    if (source === undefined || source === null) throw new Error(`node ${nodeId} runs without a baseline`);
    const pid = await waitFor(`the nft monitor of ${nodeId}`, () => source.nftMonitor?.pid, timeoutMs);
    await waitUntil(`the nft monitor of ${nodeId} subscribed`, () => nftMonitorSubscribed(pid), timeoutMs);
  }

  client(): ControllerClient {
    return new ControllerClient(this.grpcAddress, { tls: this.adminTls() });
  }

  /**
   * Installs the first key set of every kind (one key, threshold 1: the fleet's signing
   * key) through the controller at `grpcAddress`, once per fleet; a set already installed
   * (a restarted controller keeps its sets) is left alone.
   */
  async installKeySets(grpcAddress = this.grpcAddress): Promise<void> {
    if (this.keySetsInstalled) return;
    const client = new ControllerClient(grpcAddress, { tls: this.adminTls() });
    try {
      for (const kind of KEYSET_KINDS) {
        try {
          await client.putKeySet(kind, await keySetEnvelope(keySetDocument(kind, 1, 1, [this.signingKey]), [this.signingKey]), true);
        } catch (err) {
          if (!isBulwarkError(err) || err.code !== 'KEYSET_EXISTS') throw err;
        }
      }
    } finally {
      client.close();
    }
    this.keySetsInstalled = true;
  }

  /**
   * A policy document (JSON text) as the fleet pushes it: a DSSE envelope signed with the
   * fleet's key when the controller requires signed policies (the default), else unchanged.
   * Text that already is an envelope is returned as it is.
   */
  async signed(kind: string, text: string): Promise<string> {
    if (!this.controllerConfig.requireSignedPolicies || !isKeySetKind(kind)) return text;
    let value: unknown;
    try {
      value = parseJsonText(text, 'policy', 'CONFIG_INVALID');
    } catch {
      // Not JSON: signed as it is, so the controller refuses it for what it is, not for a missing signature.
      return signPolicy(kind, text, [this.signingKey]);
    }
    if (typeof value === 'object' && value !== null && 'payloadType' in value && 'signatures' in value) return text;
    return signPolicy(kind, text, [this.signingKey]);
  }

  /** The envelope file of app `name`'s spec (the `--file` given in `args`, else the catalogue's), signed with the fleet's key. */
  private async signedAppSpec(name: string, args: readonly string[]): Promise<string> {
    const fileAt = args.indexOf('--file');
    const specPath = fileAt >= 0 ? args[fileAt + 1] : undefined;
    const hcl = await readFile(specPath ?? join(this.controllerConfig.appsDir, `${name}.nomad.hcl`), 'utf8');
    const path = join(this.root, `signed-app-${name}-${randomUUID()}.dsse.json`);
    await writeFile(path, await signPolicy('app', { version: 1, name, hcl }, [this.signingKey]));
    return path;
  }

  /**
   * Runs bulwarkctl against this fleet's controller, in this process. `policy push KIND
   * NAME FILE` of an unsigned document pushes it signed with the fleet's key, and `apps
   * deploy NAME` without `--envelope` deploys the spec signed with it (what an operator
   * does with `bulwarkctl sign` first), unless `sign: false`.
   */
  async ctl(args: readonly string[], options: { readonly sign?: boolean } = {}): Promise<{ code: number; out: string; err: string }> {
    let out = '';
    let err = '';
    let argv = args;
    const [group, verb, kind, name, file] = args;
    if (options.sign !== false && group === 'policy' && verb === 'push' && kind !== undefined && name !== undefined && file !== undefined && args.length === 5 && file !== '-') {
      const signedPath = join(this.root, `signed-${kind}-${name}-${randomUUID()}.dsse.json`);
      await writeFile(signedPath, await this.signed(kind, await readFile(file, 'utf8')));
      argv = [group, verb, kind, name, signedPath];
    }
    if (options.sign !== false && group === 'apps' && verb === 'deploy' && kind !== undefined && this.controllerConfig.requireSignedPolicies && !args.includes('--envelope')) {
      argv = [...args, '--envelope', await this.signedAppSpec(kind, args)];
    }
    const code = await runCtl(['--controller', this.grpcAddress, '--credentials', this.adminCredentials, ...argv], { out: (s) => (out += s), err: (s) => (err += s), env: {} });
    return { code, out, err };
  }

  /** A connection with the controller's identity (full rights): tests read and write state through it. */
  async natsConnection(): Promise<NatsConnection> {
    const options = await natsClientAuthOptions({ credentials: { kind: 'nkey', seedFile: this.nats.seedFile }, caFile: this.nats.caFile });
    // A connection that arrives while nats-server reloads its users (a node enrolled or
    // removed a moment ago) can be refused once: connect again, for a few seconds at most.
    for (let attempt = 1; ; attempt++) {
      try {
        return await connect({ servers: this.nats.url, ...options });
      } catch (err) {
        const denied = err instanceof Error && 'code' in err && err.code === 'AUTHORIZATION_VIOLATION';
        if (!denied || attempt >= 50) throw err;
        // A growing wait (20 ms, 40 ms, ...): the reload takes a fraction of a second.
        await new Promise((resolve) => setTimeout(resolve, 20 * attempt));
      }
    }
  }

  /** A connection as an enrolled host: its own nkey seed from its agent's data dir, its own inbox. */
  async nodeNatsConnection(nodeId: string, extra: Partial<ConnectionOptions> = {}): Promise<NatsConnection> {
    const node = this.nodes.get(nodeId);
    if (node === undefined) throw new Error(`no node ${nodeId} in this fleet`);
    const auth = await natsClientAuthOptions({ credentials: { kind: 'nkey', seedFile: node.agent.natsSeedPath }, caFile: node.config.natsCaFile, nodeId: parseNatsNodeId(nodeId) });
    return connect({ servers: this.nats.url, ...auth, ...extra });
  }

  /** Polls the controller until `pred` holds for the node, or fails after `timeoutMs`. */
  async waitForNode(nodeId: string, pred: (n: NodeMsg) => boolean, timeoutMs = 20_000): Promise<NodeMsg> {
    const client = this.client();
    const deadline = Date.now() + timeoutMs;
    let last: NodeMsg | null = null;
    try {
      while (Date.now() < deadline) {
        try {
          last = await client.getNode(nodeId);
          if (pred(last)) return last;
        } catch {
          // not enrolled yet, or the controller is restarting
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    } finally {
      client.close();
    }
    throw new Error(`node ${nodeId} did not reach the expected state; last: ${JSON.stringify(last?.state)} ${JSON.stringify(last?.reasons)}`);
  }

  async stop(): Promise<void> {
    for (const n of this.nodes.values()) {
      await n.agent.stop().catch(() => undefined);
      await n.tpm.close().catch(() => undefined);
      await n.swtpm.stop();
    }
    await this.controller?.stop().catch(() => undefined);
    await this.controllerProcess?.kill('SIGKILL').catch(() => undefined);
    this.natsSync.stop();
    await this.natsAdmin.close().catch(() => undefined);
    await this.nats.stop();
  }
}
