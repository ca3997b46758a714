/**
 * Collects host facts (lib/facts.ts) with systeminformation and node:os. Only cheap
 * sources are used (no SMART queries, no per-interface helper commands), each with its
 * own time limit, and a source that fails or is missing (containers, no DMI, no root)
 * leaves its fields empty and is reported, instead of failing the whole collection.
 */
import { readFile } from 'node:fs/promises';
import { hostname as osHostname, networkInterfaces } from 'node:os';
import { baseboard, blockDevices, cpu, mem, osInfo, system } from 'systeminformation';
import { FACTS_LIMITS, sanitizeFactText, validateHostFacts, type HostDisk, type HostFacts, type HostNetworkInterface } from '../lib/facts/index.js';

/** A source of facts that could not be read; its fields are empty in the facts. */
export interface FactFailure {
  readonly section: 'os' | 'cpu' | 'memory' | 'disks' | 'system' | 'baseboard' | 'machineId' | 'network';
  readonly message: string;
}

/** Facts plus what could not be collected (failures are not part of the facts or their digest). */
export interface HostFactsReport {
  readonly facts: HostFacts;
  readonly failures: readonly FactFailure[];
}

/** Options of collectHostFactsReport; the defaults are production's. */
export interface CollectOptions {
  /** Time limit per source, in ms (default 2500). */
  readonly sourceTimeoutMs?: number;
  /** Where the machine id is read (default /etc/machine-id). */
  readonly machineIdPath?: string;
}

const DEFAULT_SOURCE_TIMEOUT_MS = 2500;
/** Block devices that are not disks of the machine. */
const PSEUDO_DISK = /^(loop|ram|zram|fd|nbd)\d*/;
/** Ephemeral container-side links: they come and go with every container and would churn the digest. */
const EPHEMERAL_INTERFACE = /^veth/;

type Outcome<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly message: string };

/** Runs one source with a time limit; never rejects. */
async function attempt<T>(fn: () => Promise<T>, timeoutMs: number): Promise<Outcome<T>> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<Outcome<T>>((resolve) => {
    timer = setTimeout(() => resolve({ ok: false, message: `no answer within ${timeoutMs} ms` }), timeoutMs);
    timer.unref();
  });
  try {
    return await Promise.race([
      fn().then(
        (value): Outcome<T> => ({ ok: true, value }),
        (err: unknown): Outcome<T> => ({ ok: false, message: err instanceof Error ? err.message : String(err) }),
      ),
      timeout,
    ]);
  } finally {
    if (timer !== undefined) clearTimeout(timer);
  }
}

/** systeminformation's text, with its "unknown" placeholder ("-") as empty. */
function text(value: unknown, cap: number = FACTS_LIMITS.string): string {
  const s = sanitizeFactText(value, cap);
  return s === '-' ? '' : s;
}

function count(value: unknown, max: number = Number.MAX_SAFE_INTEGER): number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 && value <= max ? value : 0;
}

function byKey<T>(key: (v: T) => string): (a: T, b: T) => number {
  return (a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0);
}

/** Non-loopback interfaces from node:os (instant, unlike systeminformation's, which runs helpers per interface). */
function collectInterfaces(): HostNetworkInterface[] {
  const out: HostNetworkInterface[] = [];
  for (const [name, addrs] of Object.entries(networkInterfaces())) {
    if (addrs === undefined || addrs.length === 0 || addrs.every((a) => a.internal) || EPHEMERAL_INTERFACE.test(name)) continue;
    const addresses = [...new Set(addrs.filter((a) => !a.internal).map((a) => text(a.address)))].filter((a) => a.length > 0).sort();
    out.push({
      name: text(name),
      mac: text(addrs[0]?.mac ?? ''),
      addresses: addresses.slice(0, FACTS_LIMITS.addressesPerInterface),
    });
  }
  return out.sort(byKey((i) => i.name)).slice(0, FACTS_LIMITS.interfaces);
}

/**
 * Collects the host's facts and reports sources that failed. Sources run in parallel,
 * each limited to `sourceTimeoutMs`; lists are sorted so the digest is stable, and every
 * value is cut to FACTS_LIMITS, so the result always passes validateHostFacts.
 */
export async function collectHostFactsReport(opts: CollectOptions = {}): Promise<HostFactsReport> {
  const limit = opts.sourceTimeoutMs ?? DEFAULT_SOURCE_TIMEOUT_MS;
  const [osR, cpuR, memR, diskR, sysR, boardR, idR, netR] = await Promise.all([
    attempt(() => osInfo(), limit),
    attempt(() => cpu(), limit),
    attempt(() => mem(), limit),
    attempt(() => blockDevices(), limit),
    attempt(() => system(), limit),
    attempt(() => baseboard(), limit),
    attempt(() => readFile(opts.machineIdPath ?? '/etc/machine-id', 'utf8'), limit),
    attempt(async () => collectInterfaces(), limit),
  ]);
  const failures: FactFailure[] = [];
  const take = <T>(section: FactFailure['section'], r: Outcome<T>): T | undefined => {
    if (r.ok) return r.value;
    failures.push({ section, message: sanitizeFactText(r.message) });
    return undefined;
  };
  const os = take('os', osR);
  const cpuData = take('cpu', cpuR);
  const memData = take('memory', memR);
  const blocks = take('disks', diskR);
  const sys = take('system', sysR);
  const board = take('baseboard', boardR);
  const machineIdText = take('machineId', idR);
  const interfaces = take('network', netR) ?? [];

  let machineId = '';
  if (machineIdText !== undefined) {
    const id = machineIdText.trim();
    // machine-id(5): 32 lower-case hex digits; anything else is not reported.
    if (/^[0-9a-f]{32}$/.test(id)) machineId = id;
    else failures.push({ section: 'machineId', message: 'machine id is not 32 lower-case hex digits' });
  }

  const disks: HostDisk[] = (Array.isArray(blocks) ? blocks : [])
    .filter((d) => d.type === 'disk' && !PSEUDO_DISK.test(d.name))
    .map((d) => ({
      device: text(typeof d.device === 'string' && d.device.length > 0 ? d.device : `/dev/${d.name}`),
      type: text(d.physical),
      sizeBytes: count(d.size),
      serial: text(d.serial),
    }))
    .sort(byKey((d) => d.device))
    .slice(0, FACTS_LIMITS.disks);

  const facts: HostFacts = {
    hostname: text(osHostname(), FACTS_LIMITS.hostname),
    osDistro: text(os?.distro),
    osRelease: text(os?.release),
    kernel: text(os?.kernel),
    arch: text(os?.arch),
    cpu: text(`${text(cpuData?.manufacturer)} ${text(cpuData?.brand)}`),
    cpuCores: count(cpuData?.cores, FACTS_LIMITS.cpuCores),
    memoryBytes: count(memData?.total),
    disks,
    interfaces,
    machineId,
    systemManufacturer: text(sys?.manufacturer),
    systemModel: text(sys?.model),
    systemSerial: text(sys?.serial),
    systemUuid: text(sys?.uuid),
    boardManufacturer: text(board?.manufacturer),
    boardModel: text(board?.model),
    boardSerial: text(board?.serial),
  };
  // Collected values are cut to the limits above; validating here proves it, and a
  // failure would be a bug in this collector, not in the host.
  return { facts: validateHostFacts(facts), failures };
}

/** Collects the host's facts (self-reported inventory, unattested); sources that fail are left empty. */
export async function collectHostFacts(): Promise<HostFacts> {
  return (await collectHostFactsReport()).facts;
}
