/**
 * What the daemons cost a host: the controller's resident memory once idle (its own
 * process tree, NATS excluded: the fleet's nats-server is external here), and the agent's
 * resident memory and CPU time per attestation round (a real bulwark-agent process on a
 * swtpm, rounds counted from its own /metrics on a unix socket; CPU from /proc/PID/stat,
 * with and without its waited-for children, tpm2-tools).
 *
 * From the dev tree (dist/) by default; when the Debian packages are installed
 * (/usr/lib/bulwark and /usr/bin/bulwark-controller, /usr/bin/bulwark-agent exist) the
 * installed binaries are measured instead, and the figures say so. Test code.
 */
import { execa, type ResultPromise } from 'execa';
import { existsSync } from 'node:fs';
import { readFile, readdir, writeFile, mkdir } from 'node:fs/promises';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TestFleet } from '../helpers/fleet.js';
import { sampleSum, scrapeMetrics } from '../helpers/prometheus.js';
import { makeTempDir, removeDir } from '../helpers/swtpm.js';
import { waitFor } from '../helpers/wait.js';
import type { BenchResult } from './result.js';

const AGENT_MAIN = fileURLToPath(new URL('../../agent/main.js', import.meta.url));
/** Rounds the agent's CPU time is averaged over. */
const ROUNDS = 20;
/** How long the controller is left alone before its memory is read. */
const IDLE_MS = 5000;

/** The binaries to measure: the installed package's when present, else the dev tree's. */
function binaries(): { readonly where: string; readonly controller: readonly string[] | undefined; readonly agent: readonly string[] } {
  if (existsSync('/usr/lib/bulwark') && existsSync('/usr/bin/bulwark-controller') && existsSync('/usr/bin/bulwark-agent')) {
    return { where: 'installed package', controller: ['/usr/bin/bulwark-controller'], agent: ['/usr/bin/bulwark-agent'] };
  }
  return { where: 'dev tree', controller: undefined, agent: ['node', AGENT_MAIN] };
}

/** Every process id below `pid` (a wrapper script's node, a tool in flight), and `pid` itself. */
async function processTree(pid: number): Promise<number[]> {
  const parents = new Map<number, number>();
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const stat = await readFile(`/proc/${name}/stat`, 'utf8').catch(() => '');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    parents.set(Number(name), Number(fields[1]));
  }
  const tree = [pid];
  for (let i = 0; i < tree.length; i++) for (const [child, parent] of parents) if (parent === tree[i]) tree.push(child);
  return tree;
}

/** Resident memory (VmRSS) of a process tree, bytes. */
async function treeRss(pid: number): Promise<number> {
  let kib = 0;
  for (const p of await processTree(pid)) {
    const status = await readFile(`/proc/${p}/status`, 'utf8').catch(() => '');
    kib += Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? 0);
  }
  return kib * 1024;
}

/** CPU time (ms) of a process tree from /proc/PID/stat: its own, and with its waited-for children. */
async function treeCpuMs(pid: number, ticksPerSecond: number): Promise<{ own: number; withChildren: number }> {
  let own = 0;
  let children = 0;
  for (const p of await processTree(pid)) {
    const stat = await readFile(`/proc/${p}/stat`, 'utf8').catch(() => '');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // Fields 14-17 (utime, stime, cutime, cstime), counted from the state field (3) here.
    own += Number(f[11] ?? 0) + Number(f[12] ?? 0);
    children += Number(f[13] ?? 0) + Number(f[14] ?? 0);
  }
  const ms = (ticks: number): number => (ticks * 1000) / ticksPerSecond;
  return { own: ms(own), withChildren: ms(own + children) };
}

export async function benchFootprint(): Promise<BenchResult[]> {
  const bin = binaries();
  const ticksPerSecond = Number((await execa('getconf', ['CLK_TCK'])).stdout.trim()) || 100;
  const root = await makeTempDir('bulwark-footprint-');
  const fleet = await TestFleet.create({ root, controller: { intervalMs: 1000, pullIntervalMs: 60_000, staleAfterMs: 120_000 } });
  let agent: ResultPromise | null = null;
  const swtpm = await fleet.newTpm();
  try {
    const controller = await fleet.startControllerProcess(bin.controller);
    const controllerPid = controller.child.pid;
    if (controllerPid === undefined) throw new Error('the controller process has no pid');
    await new Promise((r) => setTimeout(r, IDLE_MS));
    const controllerRss = await treeRss(controllerPid);

    // A real agent process with its metrics on a unix socket.
    const dataDir = join(root, 'agent');
    await mkdir(dataDir, { recursive: true });
    const bootIdPath = join(dataDir, 'boot_id');
    await writeFile(bootIdPath, `${randomUUID()}\n`);
    const socket = join(root, 'agent-metrics.sock');
    const configPath = join(root, 'agent.json');
    await writeFile(
      configPath,
      JSON.stringify({
        tcti: swtpm.tcti,
        controller: fleet.controllerAddress,
        controllerCa: fleet.controllerCaPath,
        dataDir,
        nodeId: 'footprint',
        natsCaFile: fleet.nats.caFile,
        intervalMs: 500,
        bootIdPath,
        eventLogPath: null,
        imaLogPath: null,
        baseline: false,
        metricsListen: `unix:${socket}`,
        logLevel: 'warn',
      }),
    );
    const [file = 'node', ...args] = bin.agent;
    agent = execa(file, [...args, 'run', '--config', configPath], { reject: false, env: { BULWARK_AGENT_CONFIG: '' }, stdout: 'ignore', stderr: 'pipe' });
    const agentPid = agent.pid;
    if (agentPid === undefined) throw new Error('the agent process has no pid');
    const rounds = async (): Promise<number> => sampleSum(await scrapeMetrics(`unix:${socket}`), 'bulwark_agent_rounds_total');
    // Warm: enrolled, and a few rounds done.
    await waitFor('the agent attesting', async () => ((await rounds().catch(() => 0)) >= 3 ? true : undefined), 120_000, 200);
    const r0 = await rounds();
    const c0 = await treeCpuMs(agentPid, ticksPerSecond);
    const r1 = await waitFor(`${ROUNDS} more rounds`, async () => {
      const r = await rounds();
      return r >= r0 + ROUNDS ? r : undefined;
    }, 120_000, 100);
    const c1 = await treeCpuMs(agentPid, ticksPerSecond);
    const agentRss = await treeRss(agentPid);
    const n = r1 - r0;
    const mib = (b: number): number => b / 2 ** 20;
    return [
      { name: `controller idle RSS (${bin.where}, no embedded NATS)`, value: mib(controllerRss), unit: 'MiB' },
      { name: `agent RSS while attesting (${bin.where})`, value: mib(agentRss), unit: 'MiB' },
      { name: `agent CPU per round, own process (${bin.where}, swtpm)`, value: (c1.own - c0.own) / n, unit: 'ms' },
      { name: `agent CPU per round, with tpm2-tools children (${bin.where}, swtpm)`, value: (c1.withChildren - c0.withChildren) / n, unit: 'ms' },
    ];
  } finally {
    agent?.kill('SIGTERM');
    await agent;
    await swtpm.stop();
    await fleet.stop();
    await removeDir(root);
  }
}
