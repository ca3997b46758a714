/**
 * The placement gate with everything real at once: a Nomad server and three clients named
 * after three hosts, each host with its own swtpm and bulwark-agent, the controller with
 * its Nomad reconciler, apps deployed through `bulwarkctl apps`, and the host-side gate
 * (Placement.IsTrusted). A tampered host is made ineligible and its allocation moves.
 * Fails, with the reason, when no Nomad binary can be built on this machine.
 */
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { waitTrusted } from '../../agent/gate.js';
import { NomadHttpClient } from '../../controller/nomad/client.js';
import { TestFleet } from '../helpers/fleet.js';
import { NomadCluster, withNomad } from '../helpers/nomad.js';
import { makeTempDir, removeDir } from '../helpers/swtpm.js';
import { waitUntil } from '../helpers/wait.js';

const HOSTS = ['host-a', 'host-b', 'host-c'];
const WEB = `job "web" {
  datacenters = ["dc1"]
  type        = "service"
  group "web" {
    count = 2
    spread {
      attribute = "\${node.unique.name}"
    }
    update {
      max_parallel     = 2
      health_check     = "task_states"
      min_healthy_time = "1s"
      healthy_deadline = "30s"
    }
    migrate {
      max_parallel     = 2
      health_check     = "task_states"
      min_healthy_time = "1s"
      healthy_deadline = "30s"
    }
    task "web" {
      driver = "raw_exec"
      config {
        command = "/bin/sleep"
        args    = ["3600"]
      }
      kill_timeout = "1s"
      resources {
        cpu    = 20
        memory = 16
      }
    }
  }
}
`;

await withNomad(t, 5 * 60_000, run);

async function run(): Promise<void> {
  const root = await makeTempDir('nomad-fleet');
  const appsDir = join(root, 'apps');
  await mkdir(appsDir);
  await writeFile(join(appsDir, 'web.nomad.hcl'), WEB);
  const cluster = await NomadCluster.start({ root: join(root, 'nomad'), clientNames: HOSTS });
  const fleet = await TestFleet.create({
    root,
    controller: { nomadAddr: cluster.address, appsDir, nomadReconcileIntervalMs: 1000, nomadDrainDeadlineMs: 10_000 },
  });
  await fleet.startController();
  const nomad = new NomadHttpClient({ address: cluster.address });
  t.teardown(async () => {
    await fleet.stop();
    await cluster.stop();
    await removeDir(root);
  });

  const eligibility = async (): Promise<Map<string, string>> => new Map((await nomad.listNodes()).map((n) => [n.name, n.eligibility]));
  const until = waitUntil;
  const ctl = (args: string[]): Promise<{ code: number; out: string; err: string }> => fleet.ctl(args);

  await t.test('Nomad clients of hosts Bulwark has not verified are ineligible; the host gate waits', async (t) => {
    await until('all three ineligible', async () => [...(await eligibility()).values()].filter((e) => e === 'ineligible').length === 3);
    const gate = await waitTrusted({ ...fleet.gateOptions('host-a'), timeoutMs: 500, pollMs: 100 });
    t.equal(gate.trusted, false, 'bulwark-agent gate does not let the Nomad client start yet');
    const refused = await ctl(['apps', 'deploy', 'web']);
    t.equal(refused.code, 0, refused.err);
    const status = await ctl(['apps', 'status', 'web', '--json']);
    const running = (JSON.parse(status.out) as { allocations: { clientStatus: string }[] }).allocations.filter((a) => a.clientStatus === 'running');
    t.equal(running.length, 0, 'nothing is placed while no node is trusted');
  });

  await t.test('attested hosts become eligible, the gate opens, and the app lands on them', async (t) => {
    for (const id of HOSTS) await fleet.addNode(id);
    await Promise.all(HOSTS.map((id) => fleet.nodes.get(id)?.agent.start()));
    for (const id of HOSTS) await fleet.waitForNode(id, (n) => n.state === 'trusted');
    await until('all three eligible', async () => [...(await eligibility()).values()].every((e) => e === 'eligible'));
    const gate = await waitTrusted({ ...fleet.gateOptions('host-a'), timeoutMs: 5000, pollMs: 100 });
    t.equal(gate.trusted, true, 'the host gate opens');
    await until(
      'two running allocations',
      async () => {
        const s = await ctl(['apps', 'status', 'web', '--json']);
        return (JSON.parse(s.out) as { allocations: { clientStatus: string }[] }).allocations.filter((a) => a.clientStatus === 'running').length === 2;
      },
      60_000,
    );
    const job = await nomad.parseJobHcl(WEB);
    t.equal(job.id, 'web');
    const list = await ctl(['apps', 'list']);
    t.match(list.out, /web\s+web\.nomad\.hcl\s+yes/);
  });

  await t.test('an agent names its Nomad client; a second claim on it is refused', async (t) => {
    await cluster.addClient('nomad-edge');
    await until('the new Nomad client is ineligible', async () => (await eligibility()).get('nomad-edge') === 'ineligible');
    const edge = await fleet.addNode('edge-1', { nomadNode: 'nomad-edge' });
    await edge.agent.start();
    await fleet.waitForNode('edge-1', (n) => n.state === 'trusted');
    await until('nomad-edge eligible through the claim of edge-1', async () => (await eligibility()).get('nomad-edge') === 'eligible');
    const impostor = await fleet.addNode('edge-2', { nomadNode: 'nomad-edge' });
    await t.rejects(impostor.agent.enroll(), { code: 'NOMAD_NODE_MAPPING_CONFLICT' }, 'a second host cannot claim the same Nomad client');
    const byId = await fleet.addNode('edge-3', { nomadNode: 'host-a' });
    await t.rejects(byId.agent.enroll(), { code: 'NOMAD_NODE_MAPPING_CONFLICT' }, 'nor the Nomad client another node runs under its own id');
  });

  await t.test('a tampered host is made ineligible and its allocation moves to trusted hosts', async (t) => {
    const status = await ctl(['apps', 'status', 'web', '--json']);
    const allocs = (JSON.parse(status.out) as { allocations: { nodeName: string; clientStatus: string }[] }).allocations;
    const victimName = allocs.find((a) => a.clientStatus === 'running')?.nodeName ?? 'host-a';
    const victim = fleet.nodes.get(victimName);
    if (victim === undefined) throw new Error(`no host ${victimName}`);
    await victim.swtpm.extendPcr(7, randomBytes(32).toString('hex'));
    await victim.agent.attestNow();
    await fleet.waitForNode(victimName, (n) => n.state === 'untrusted');
    const started = Date.now();
    await until(`${victimName} ineligible`, async () => (await eligibility()).get(victimName) === 'ineligible');
    t.comment(`ineligible ${Date.now() - started} ms after the verdict was observed`);
    await until(
      `no running allocation on ${victimName} and two running elsewhere`,
      async () => {
        const s = JSON.parse((await ctl(['apps', 'status', 'web', '--json'])).out) as { allocations: { nodeName: string; clientStatus: string; desiredStatus: string }[] };
        const running = s.allocations.filter((a) => a.clientStatus === 'running');
        return running.length === 2 && running.every((a) => a.nodeName !== victimName);
      },
      60_000,
    );
    const gate = await waitTrusted({ ...fleet.gateOptions(victimName), timeoutMs: 300, pollMs: 100 });
    t.equal(gate.trusted, false, 'the host gate stays closed for the tampered host');
    t.equal(gate.state, 'untrusted');
    const stopped = await ctl(['apps', 'stop', 'web']);
    t.equal(stopped.code, 0, stopped.err);
  });
}
