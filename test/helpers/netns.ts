/**
 * A host in a network namespace for the baseline tests: its own nftables (never the
 * machine's ruleset), a veth pair to the root namespace with a /30 of its own, loopback
 * up, and real TCP listeners inside. Connections are made from the root namespace, so
 * they cross the namespace's input hook as another host's would. Needs root (CI runs as
 * root). Test code.
 */
import { execa, type ResultPromise } from 'execa';
import { randomBytes } from 'node:crypto';
import { readFile, readdir, readlink } from 'node:fs/promises';
import { connect as tcpConnect } from 'node:net';

/**
 * How long a connection attempt may take before it counts as timed out. A port nftables
 * drops never answers the SYN, so "times out" means: no SYN-ACK and no RST within this
 * bound. Any bound works for a drop; over a veth a listening port answers in well under a
 * millisecond and a closed one is refused as fast, so this bound only decides how long a
 * dropped attempt is waited out, not whether a result is right.
 */
export const CONNECT_TIMEOUT_MS = 1500;

export type ConnectResult = 'connected' | 'timeout' | 'refused';

/** Listens on every port given in argv (all addresses) and prints "ready" once all listen. */
const LISTENER = `
const net = require('node:net');
const ports = process.argv.slice(1).map(Number);
let listening = 0;
for (const port of ports) {
  const srv = net.createServer((s) => { s.on('error', () => {}); s.end(); });
  srv.on('error', (e) => { console.error(String(e)); process.exit(1); });
  srv.listen(port, '0.0.0.0', () => { if (++listening === ports.length) console.log('ready'); });
}
process.on('SIGTERM', () => process.exit(0));
`;

async function ip(args: readonly string[]): Promise<string> {
  const r = await execa('ip', [...args], { reject: false, timeout: 20_000 });
  if (r.failed) throw new Error(`ip ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout;
}

/** A /30 in 10.128.0.0/9 that no interface of the root namespace uses yet: [host address, peer address]. */
async function freeSubnet(): Promise<[string, string]> {
  const used = await ip(['-4', '-o', 'addr', 'show']);
  for (let i = 0; i < 100; i++) {
    const block = randomBytes(3).readUIntBE(0, 3) & 0x1fffff; // 2^21 /30 blocks in a /9
    const base = (10 << 24) | (128 << 16) | (block << 2);
    const dotted = (n: number): string => [24, 16, 8, 0].map((s) => (n >>> s) & 0xff).join('.');
    const prefix = dotted(base).split('.').slice(0, 3).join('.');
    if (used.includes(` ${prefix}.`)) continue;
    return [dotted(base + 1), dotted(base + 2)];
  }
  throw new Error('no free /30 found');
}

export interface NetnsHostOptions {
  /** TCP ports listened on inside the namespace. */
  readonly ports?: readonly number[];
}

export class NetnsHost {
  readonly name: string;
  /** The root namespace's end of the veth pair. */
  readonly hostAddress: string;
  /** The address inside the namespace connections go to. */
  readonly address: string;
  private readonly hostLink: string;
  private listener: ResultPromise | undefined;
  private closed = false;

  private constructor(name: string, hostLink: string, hostAddress: string, address: string) {
    this.name = name;
    this.hostLink = hostLink;
    this.hostAddress = hostAddress;
    this.address = address;
  }

  /** The nft command for this namespace (config nftCommand). */
  get nftCommand(): string[] {
    return ['ip', 'netns', 'exec', this.name, 'nft'];
  }

  /** Creates the namespace, the veth pair and the listeners; removed by close(), which `t.teardown` is given when passed. */
  static async create(opts: NetnsHostOptions = {}, t?: { teardown(fn: () => Promise<void>): void }): Promise<NetnsHost> {
    const id = randomBytes(4).toString('hex');
    const name = `bwbase-${id}`;
    const hostLink = `bwh${id}`;
    const peerLink = `bwp${id}`;
    const [hostAddress, address] = await freeSubnet();
    await ip(['netns', 'add', name]);
    const host = new NetnsHost(name, hostLink, hostAddress, address);
    t?.teardown(() => host.close());
    try {
      await ip(['link', 'add', hostLink, 'type', 'veth', 'peer', 'name', peerLink]);
      await ip(['link', 'set', peerLink, 'netns', name]);
      await ip(['addr', 'add', `${hostAddress}/30`, 'dev', hostLink]);
      await ip(['link', 'set', hostLink, 'up']);
      await ip(['-n', name, 'addr', 'add', `${address}/30`, 'dev', peerLink]);
      await ip(['-n', name, 'link', 'set', peerLink, 'up']);
      await ip(['-n', name, 'link', 'set', 'lo', 'up']);
      if (opts.ports !== undefined && opts.ports.length > 0) await host.listen(opts.ports);
    } catch (err) {
      await host.close();
      throw err;
    }
    return host;
  }

  /** Starts the listener child inside the namespace and waits until it prints "ready". */
  private async listen(ports: readonly number[]): Promise<void> {
    const child = execa('ip', ['netns', 'exec', this.name, process.execPath, '-e', LISTENER, ...ports.map(String)], { reject: false, buffer: false, stdin: 'ignore' });
    this.listener = child;
    await new Promise<void>((resolve, reject) => {
      let out = '';
      let err = '';
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('ready')) resolve();
      });
      child.stderr.on('data', (d: Buffer) => {
        err += d.toString();
      });
      void child.then(() => reject(new Error(`the listener in ${this.name} exited: ${err}`)));
    });
  }

  /** One TCP connection attempt from the root namespace, bounded by CONNECT_TIMEOUT_MS (see there for what "timeout" means). */
  async connect(port: number, timeoutMs = CONNECT_TIMEOUT_MS): Promise<ConnectResult> {
    return new Promise((resolve) => {
      const socket = tcpConnect({ host: this.address, port, localAddress: this.hostAddress });
      const done = (result: ConnectResult): void => {
        clearTimeout(timer);
        socket.destroy();
        resolve(result);
      };
      const timer = setTimeout(() => done('timeout'), timeoutMs);
      socket.once('connect', () => done('connected'));
      socket.once('error', (err) => done('code' in err && err.code === 'ECONNREFUSED' ? 'refused' : 'timeout'));
    });
  }

  /** Runs a command inside the namespace; returns stdout. */
  async run(argv: readonly string[], input?: string): Promise<string> {
    const r = await execa('ip', ['netns', 'exec', this.name, ...argv], { reject: false, timeout: 20_000, ...(input === undefined ? {} : { input }) });
    if (r.failed) throw new Error(`${argv.join(' ')} failed in ${this.name}: ${r.stderr}`);
    return r.stdout;
  }

  /** `nft -f -` inside the namespace. */
  async nft(text: string): Promise<void> {
    await this.run(['nft', '-f', '-'], text);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const listener = this.listener;
    if (listener !== undefined) {
      listener.kill('SIGTERM');
      await listener.catch(() => undefined);
    }
    // Deleting the namespace takes its end of the veth pair, and with it the root namespace's end.
    await execa('ip', ['link', 'del', this.hostLink], { reject: false });
    await execa('ip', ['netns', 'delete', this.name], { reject: false });
  }
}

/** NFNLGRP_NFTABLES (linux/netfilter/nfnetlink.h) as a bit of /proc/net/netlink's Groups column. */
const NFTABLES_GROUP_BIT = 1 << (7 - 1);
/** NETLINK_NETFILTER. */
const NETLINK_NETFILTER = 12;

/**
 * Whether process `pid` (an `nft monitor`) has a netfilter netlink socket subscribed to
 * nftables events: the condition a test waits on before it changes the ruleset, so a
 * change is never made before the monitor can see it.
 */
export async function nftMonitorSubscribed(pid: number): Promise<boolean> {
  try {
    const inodes = new Set<string>();
    for (const fd of await readdir(`/proc/${pid}/fd`)) {
      const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '');
      const m = /^socket:\[(\d+)\]$/.exec(target);
      if (m?.[1] !== undefined) inodes.add(m[1]);
    }
    const table = await readFile(`/proc/${pid}/net/netlink`, 'utf8');
    return table
      .split('\n')
      .slice(1)
      .some((line) => {
        const cols = line.trim().split(/\s+/);
        const [, eth, , groups] = cols;
        const inode = cols[9];
        return Number(eth) === NETLINK_NETFILTER && inode !== undefined && inodes.has(inode) && (Number.parseInt(groups ?? '0', 16) & NFTABLES_GROUP_BIT) !== 0;
      });
  } catch {
    return false;
  }
}
