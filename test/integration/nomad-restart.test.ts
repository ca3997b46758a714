/**
 * The Nomad gate across failures, against a real Nomad and real trust state: only the lease
 * holder acts (a second replica stands by, then takes over when the first stops), and when the
 * Nomad server is down while a node turns untrusted, the reconciler backs off and converges
 * once Nomad is back. Fails, with the reason, when no Nomad binary can be built here.
 */
import t from 'tap';
import { withNomad } from '../helpers/nomad.js';
import { NomadTestbed } from '../helpers/nomad-testbed.js';
import { makeTempDir } from '../helpers/swtpm.js';
import { waitFor } from '../helpers/wait.js';

await withNomad(t, 4 * 60_000, run);

async function run(): Promise<void> {
  const nodes = ['node-a', 'node-b', 'node-c'];
  const bed = await NomadTestbed.start(await makeTempDir('nomad-restart'), nodes);
  t.teardown(() => bed.stop());
  for (const id of nodes) await bed.setTrust(id, 'trusted');
  const eligible = async (name: string): Promise<boolean> => (await bed.node(name)).eligibility === 'eligible';

  await t.test('only the lease holder acts; the standby takes over when it stops', async (tt) => {
    bed.startReconciler('replica-1');
    await waitFor('replica-1 active', () => (bed.logs.some((l) => l.replica === 'replica-1' && /holds the lease/.test(l.msg)) ? true : undefined), 10_000);
    bed.startReconciler('replica-2');
    // replica-2 is running and has been refused the lease, twice: it is standing by.
    await waitFor('replica-2 refused the lease twice', () => (bed.leaseAttempts.filter((a) => a.replica === 'replica-2' && !a.held).length >= 2 ? true : undefined), 10_000);
    await bed.setTrust('node-a', 'untrusted');
    await waitFor('node-a ineligible', async () => ((await eligible('node-a')) ? undefined : true), 5000, 20);
    tt.ok(bed.actions.some((a) => a.replica === 'replica-1' && a.nomadNodeName === 'node-a'), 'replica-1 gated node-a');
    tt.equal(bed.actions.filter((a) => a.replica === 'replica-2').length, 0, 'replica-2 made no call while replica-1 held the lease');

    await bed.stopReconciler('replica-1'); // releases the lease
    await bed.setTrust('node-a', 'trusted');
    await waitFor('node-a eligible again', async () => ((await eligible('node-a')) ? true : undefined), 10_000, 50);
    tt.ok(bed.actions.some((a) => a.replica === 'replica-2' && a.nomadNodeName === 'node-a' && a.ok), 'replica-2 took over and made node-a eligible');
  });

  await t.test('Nomad restarts while a node turns untrusted: the reconciler backs off and converges once Nomad is back', async (tt) => {
    for (const id of nodes) await waitFor(`${id} eligible`, async () => ((await eligible(id)) ? true : undefined), 10_000, 50);
    const passFailed = (l: { msg: string }): boolean => l.msg === 'nomad reconcile failed; retrying';
    const failuresBefore = bed.logs.filter(passFailed).length;
    await bed.cluster.stopServer('SIGKILL');
    await bed.setTrust('node-b', 'untrusted');
    const failures = await waitFor(
      'three failed passes while Nomad is down',
      () => {
        const seen = bed.logs.filter(passFailed).slice(failuresBefore);
        return seen.length >= 3 ? seen : undefined;
      },
      20_000,
    );
    tt.ok(failures.length >= 3, `the reconciler kept retrying while Nomad was down (${failures.length} failed passes)`);
    tt.ok(failures.every((l) => l.fields['code'] === 'NOMAD_UNAVAILABLE'), 'each failure is NOMAD_UNAVAILABLE');
    // Full jitter: each wait is drawn below its ceiling, and the ceilings grow (to the cap).
    const waits = failures.map((l) => ({ delay: l.fields['retryInMs'], cap: l.fields['retryCapMs'] })).filter((w): w is { delay: number; cap: number } => typeof w.delay === 'number' && typeof w.cap === 'number');
    tt.ok(waits.length >= 2 && waits.every((w, i) => i === 0 || w.cap >= (waits[i - 1]?.cap ?? 0)), `retry ceilings back off (${waits.map((w) => w.cap).join(', ')} ms)`);
    tt.ok((waits[1]?.cap ?? 0) > (waits[0]?.cap ?? 0), 'the second ceiling is above the first');
    tt.ok(waits.every((w) => w.delay >= 0 && w.delay <= w.cap), `each wait is within its ceiling (${waits.map((w) => w.delay).join(', ')} ms)`);

    const back = performance.now();
    await bed.cluster.startServer();
    const serverMs = performance.now() - back;
    await waitFor('node-b ineligible after the restart', async () => ((await eligible('node-b')) ? undefined : true), 30_000, 50);
    tt.comment(`Nomad server back in ${Math.round(serverMs)} ms; node-b gated ${Math.round(performance.now() - back)} ms after the restart began`);
    tt.ok(await eligible('node-a'), 'node-a stays eligible');
    tt.ok(await eligible('node-c'), 'node-c stays eligible');
    const node = await bed.node('node-b');
    tt.ok(node.drain || node.eligibility === 'ineligible', 'node-b is ineligible (and drained)');
  });
}
