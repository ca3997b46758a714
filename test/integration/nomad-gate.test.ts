/**
 * The Nomad placement gate against a real Nomad (one server, three clients named after
 * Bulwark nodes) and real trust state (node records in JetStream KV via ControllerStore):
 * trusted nodes take a constrained app spread over them; a node turning untrusted is made
 * ineligible and drained and its allocation moves; trusted again, it is eligible; a node whose
 * verdicts stop is gated though its record still says trusted; a new client that registers
 * before its agent attested is made ineligible before anything is placed on it.
 * Fails, with the reason, when no Nomad binary can be built on this machine.
 */
import t from 'tap';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { hasTrustConstraint, injectTrustConstraint } from '../../lib/nomad/trust-constraint.js';
import { isLiveAllocation, type NomadAllocation } from '../../lib/nomad/jobs.js';
import { withNomad } from '../helpers/nomad.js';
import { GATE_DEFAULTS, NomadTestbed } from '../helpers/nomad-testbed.js';
import { makeTempDir } from '../helpers/swtpm.js';
import { waitFor } from '../helpers/wait.js';

const here = dirname(fileURLToPath(import.meta.url));
const appsDir = join(here, '..', '..', '..', 'test', 'fixtures', 'apps');

await withNomad(t, 4 * 60_000, run);

async function run(): Promise<void> {
  const nodes = ['node-a', 'node-b', 'node-c'];
  const bed = await NomadTestbed.start(await makeTempDir('nomad-gate'), nodes);
  t.teardown(() => bed.stop());
  t.comment(`nomad cluster: server ready in ${Math.round(bed.cluster.timings.serverReadyMs)} ms, 3 clients ready in ${Math.round(bed.cluster.timings.clusterReadyMs)} ms`);
  for (const id of nodes) await bed.setTrust(id, 'trusted');
  bed.startReconciler('replica-1');
  const nomad = bed.nomad;

  const liveOn = (allocs: readonly NomadAllocation[], node: string): NomadAllocation[] => allocs.filter((a) => a.nodeName === node && isLiveAllocation(a) && a.desiredStatus === 'run');
  const running = (allocs: readonly NomadAllocation[]): NomadAllocation[] => allocs.filter((a) => a.clientStatus === 'running' && a.desiredStatus === 'run');

  await t.test('trusted nodes become eligible and labelled; an app with the injected constraint spreads over all three', async (tt) => {
    for (const id of nodes) {
      const n = await waitFor(`${id} labelled bulwark_trusted=true`, async () => {
        const node = await bed.node(id);
        return node.meta['bulwark_trusted'] === 'true' && node.eligibility === 'eligible' ? node : undefined;
      }, 20_000, 200);
      tt.match(n.meta['bulwark_verdict_at'], /^\d{4}-\d\d-\d\dT/, `${id} carries bulwark_verdict_at`);
    }
    const parsed = await nomad.parseJobHcl(await readFile(join(appsDir, 'nextcloud.raw.nomad.hcl'), 'utf8'));
    const job = injectTrustConstraint(parsed.json);
    tt.ok(hasTrustConstraint(job), 'every task group carries the trust constraint');
    const validation = await nomad.validateJob(job);
    tt.same(validation.errors, [], 'Nomad validates the constrained job');
    await nomad.registerJob(job);
    const allocs = await waitFor('three running nextcloud allocations', async () => {
      const a = running(await nomad.jobAllocations('nextcloud'));
      return a.length === 3 ? a : undefined;
    }, 30_000, 200);
    tt.same(new Set(allocs.map((a) => a.nodeName)), new Set(nodes), 'one allocation on each trusted node');
  });

  await t.test('a health-checked raw_exec app (tiny HTTP server) runs on trusted nodes and answers', async (tt) => {
    const parsed = await nomad.parseJobHcl(await readFile(join(appsDir, 'grafana.raw.nomad.hcl'), 'utf8'), { variables: `node_binary = ${JSON.stringify(process.execPath)}` });
    await nomad.registerJob(injectTrustConstraint(parsed.json));
    const allocs = await waitFor('two healthy grafana allocations', async () => {
      const a = running(await nomad.jobAllocations('grafana'));
      if (a.length !== 2) return undefined;
      for (const x of a) {
        const checks = await bed.cluster.get(`/v1/client/allocation/${x.id}/checks`);
        const results = typeof checks === 'object' && checks !== null ? Object.values(checks) : [];
        if (!results.some((r: unknown) => typeof r === 'object' && r !== null && Reflect.get(r, 'Status') === 'success')) return undefined;
      }
      return a;
    }, 30_000, 200);
    tt.equal(new Set(allocs.map((a) => a.nodeName)).size, 2, 'on two different trusted nodes');
    const services = await bed.cluster.get('/v1/service/grafana');
    const regs = Array.isArray(services) ? services : [];
    tt.equal(regs.length, 2, 'two registrations in Nomad service discovery');
    for (const r of regs) {
      const address: unknown = typeof r === 'object' && r !== null ? Reflect.get(r, 'Address') : undefined;
      const port: unknown = typeof r === 'object' && r !== null ? Reflect.get(r, 'Port') : undefined;
      const res = await fetch(`http://${String(address)}:${String(port)}/api/health`, { signal: AbortSignal.timeout(3000) });
      const body: unknown = await res.json();
      tt.match(body, { database: 'ok', node: /^node-[abc]$/ }, `the server at ${String(address)}:${String(port)} answers`);
    }
    await nomad.stopJob('grafana', { purge: true });
  });

  await t.test('a node turning untrusted is made ineligible, labelled false and drained; its allocation is replaced on trusted nodes', async (tt) => {
    const started = performance.now();
    await bed.setTrust('node-c', 'untrusted');
    await waitFor('node-c ineligible', async () => ((await bed.node('node-c')).eligibility === 'ineligible' ? true : undefined), 5000, 10);
    const ineligibleMs = performance.now() - started;
    tt.comment(`untrusted → ineligible: ${Math.round(ineligibleMs)} ms`);
    // The drain and the label follow the eligibility call, in that order.
    const nodeC = await bed.nodeId('node-c');
    await waitFor('node-c labelled false', async () => ((await nomad.readNodeMeta(nodeC)).dynamic['bulwark_trusted'] === 'false' ? true : undefined), 5000, 20);
    tt.pass('node-c is labelled bulwark_trusted=false');
    const drains = bed.actions.filter((a) => a.nomadNodeName === 'node-c' && a.action.kind === 'drain' && a.ok);
    tt.equal(drains.length, 1, 'the reconciler drained node-c once');
    const after = await waitFor('node-c empty and three allocations running on node-a/node-b', async () => {
      const allocs = await nomad.jobAllocations('nextcloud');
      return liveOn(allocs, 'node-c').length === 0 && running(allocs).length === 3 ? allocs : undefined;
    }, 30_000, 100);
    tt.comment(`untrusted → allocation off node-c and replaced: ${Math.round(performance.now() - started)} ms`);
    tt.ok(running(after).every((a) => a.nodeName !== 'node-c'), 'every running allocation is on a trusted node');
    // Nomad has finished scheduling the job: no evaluation of it is pending or blocked.
    await waitFor('every evaluation of nextcloud settled', async () => {
      const evals = await bed.cluster.get('/v1/job/nextcloud/evaluations');
      if (!Array.isArray(evals)) return undefined;
      const statuses = evals.map((e: unknown) => (typeof e === 'object' && e !== null ? Reflect.get(e, 'Status') : undefined));
      return statuses.every((s) => s !== 'pending' && s !== 'blocked') ? true : undefined;
    }, 30_000, 100);
    const later = await nomad.jobAllocations('nextcloud');
    tt.equal(liveOn(later, 'node-c').length, 0, 'no new allocation was placed on node-c');
    tt.equal((await bed.node('node-c')).eligibility, 'ineligible', 'node-c stays ineligible');
  });

  await t.test('trusted again, the node becomes eligible and labelled true again', async (tt) => {
    await bed.setTrust('node-c', 'trusted');
    const n = await waitFor('node-c eligible', async () => {
      const node = await bed.node('node-c');
      return node.eligibility === 'eligible' ? node : undefined;
    }, 5000, 20);
    tt.equal(n.drain, false, 'no drain is left on node-c');
    const meta = await nomad.readNodeMeta(n.id);
    tt.equal(meta.dynamic['bulwark_trusted'], 'true', 'node-c is labelled bulwark_trusted=true');
  });

  await t.test('a node whose verdicts stop is gated after the freshness window, though its record still says trusted', async (tt) => {
    const started = performance.now();
    bed.fresh.delete('node-b'); // the agent went silent; nobody wrote "stale" yet
    const record = await bed.store.getNode('node-b');
    tt.equal(record?.record.state, 'trusted', 'the stored record still says trusted');
    await waitFor('node-b ineligible', async () => ((await bed.node('node-b')).eligibility === 'ineligible' ? true : undefined), GATE_DEFAULTS.freshnessMs + 5000, 50);
    const ms = performance.now() - started;
    tt.ok(ms >= GATE_DEFAULTS.freshnessMs - 1500, `gated after about the freshness window (${Math.round(ms)} ms, window ${GATE_DEFAULTS.freshnessMs} ms)`);
    // The latest gating of node-b (earlier ones, from before it was first trusted, had other reasons).
    const action = [...bed.actions].reverse().find((a) => a.nomadNodeName === 'node-b' && a.action.kind === 'set-ineligible');
    tt.equal(action !== undefined && !action.judgement.trusted ? action.judgement.reason : undefined, 'verdict-stale', 'judged verdict-stale');
    await bed.setTrust('node-b', 'trusted');
    await waitFor('node-b eligible again', async () => ((await bed.node('node-b')).eligibility === 'eligible' ? true : undefined), 5000, 50);
  });

  await t.test('a new client that registers before its agent attested is gated at once; no app is ever placed on it', async (tt) => {
    // Two system jobs: Nomad places a system job on every eligible ready node the moment one
    // appears, the most eager placement there is. `gated` is a Bulwark app (trust constraint
    // injected); `open` is a job submitted to Nomad directly, without the constraint.
    const probe = (name: string): string => `job "${name}" {
  datacenters = ["dc1"]
  type        = "system"
  group "probe" {
    task "probe" {
      driver = "raw_exec"
      config {
        command = "/bin/sleep"
        args    = ["3600"]
      }
      kill_timeout = "1s"
      resources {
        cpu    = 10
        memory = 10
      }
    }
  }
}
`;
    await nomad.registerJob(injectTrustConstraint((await nomad.parseJobHcl(probe('gated'))).json));
    await nomad.registerJob((await nomad.parseJobHcl(probe('open'))).json);
    for (const job of ['gated', 'open']) {
      await waitFor(`${job} on node-a, node-b, node-c`, async () => (running(await nomad.jobAllocations(job)).length === 3 ? true : undefined), 20_000, 100);
    }
    const firstEvent = bed.events.length;
    await bed.cluster.addClient('node-d', { wait: false });
    const id = await waitFor('node-d registered', async () => (await nomad.listNodes()).find((n) => n.name === 'node-d')?.id, 30_000, 20);
    await bed.cluster.waitForNode('node-d', (n) => n.Status === 'ready', 30_000);
    // Nomad itself reports node-d ready and ineligible: the gate held past the moment it became ready.
    await waitFor('node-d ready and ineligible on the event stream', () => (bed.events.some((e) => e.name === 'node-d' && e.status === 'ready' && e.eligibility === 'ineligible') ? true : undefined), 30_000, 50);
    const stub = (await nomad.listNodes()).find((n) => n.id === id);
    tt.equal(stub?.eligibility, 'ineligible', 'node-d is ineligible');
    const seen = bed.events.slice(firstEvent).filter((e) => e.name === 'node-d');
    const registered = seen.find((e) => e.type === 'NodeRegistration');
    const gatedAt = seen.find((e) => e.eligibility === 'ineligible');
    tt.ok(registered !== undefined && gatedAt !== undefined, 'the registration and the gating were both seen on the event stream');
    if (registered !== undefined && gatedAt !== undefined) {
      tt.equal(registered.status, 'initializing', 'node-d registered as initializing (Nomad makes it eligible)');
      const windowMs = gatedAt.at - registered.at;
      tt.ok(gatedAt.index > registered.index, `gated after registering (${Math.round(windowMs)} ms later)`);
      const firstReady = seen.find((e) => e.status === 'ready' && e.eligibility === 'eligible');
      tt.comment(
        `new client: eligible for ${Math.round(windowMs)} ms after registering (Raft index ${registered.index} → ${gatedAt.index}); ` +
          (firstReady === undefined ? 'never ready while eligible' : `ready and eligible for ${Math.round(gatedAt.at - firstReady.at)} ms (index ${firstReady.index} → ${gatedAt.index})`),
      );
    }
    const decision = bed.actions.find((a) => a.nomadNodeName === 'node-d' && a.action.kind === 'set-ineligible');
    tt.equal(decision !== undefined && !decision.judgement.trusted ? decision.judgement.reason : undefined, 'unknown-node', 'judged unknown to Bulwark');

    const allocs = await nomad.nodeAllocations(id);
    tt.same(allocs.filter((a) => a.jobId === 'gated').map((a) => a.clientStatus), [], 'the Bulwark app was never placed on node-d');
    // Nomad has no admission hook: a job without the trust constraint can win the race in the
    // few milliseconds between the node turning ready and the eligibility write (the plan
    // applier checks eligibility at apply time). What won it must not keep running: the drain
    // the gate issued stops it.
    const raced = allocs.filter((a) => a.jobId === 'open');
    tt.comment(`unconstrained job placed on node-d in the race window: ${raced.length} allocation(s)${raced.length > 0 ? ` (${raced.map((a) => a.clientStatus).join(', ')})` : ''}`);
    await waitFor('nothing live on node-d', async () => ((await nomad.nodeAllocations(id)).some(isLiveAllocation) ? undefined : true), 15_000, 100);
    tt.pass('nothing runs on node-d');

    // Once its agent attests, both eager jobs land on it: the gate was what kept them off.
    await bed.setTrust('node-d', 'trusted');
    await waitFor('both probes on node-d', async () => {
      const jobs = running(await nomad.nodeAllocations(id)).map((a) => a.jobId);
      return jobs.includes('gated') && jobs.includes('open') ? true : undefined;
    }, 30_000, 100);
    tt.pass('after attesting, node-d takes the Bulwark app and the open job');
  });
}
