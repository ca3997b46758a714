/**
 * NomadHttpClient against a real Nomad with ACLs on: the token (given, or from NOMAD_TOKEN) is
 * sent as X-Nomad-Token and never shows in messages or inspection; a missing token, an unknown
 * node, an unreachable or silent Nomad each give their BulwarkError; node eligibility, drain,
 * dynamic metadata and the Node event stream work end to end.
 * Fails, with the reason, when no Nomad binary can be built on this machine.
 */
import t from 'tap';
import { createServer, type Socket } from 'node:net';
import { inspect } from 'node:util';
import { NomadHttpClient } from '../../controller/nomad/client.js';
import { BulwarkError } from '../../lib/errors.js';
import type { NomadEventFrame } from '../../lib/nomad/events.js';
import { NomadCluster, withNomad } from '../helpers/nomad.js';
import { freePort, makeTempDir } from '../helpers/swtpm.js';
import { waitFor } from '../helpers/wait.js';

await withNomad(t, 3 * 60_000, run);

async function run(): Promise<void> {
  const cluster = await NomadCluster.start({ root: await makeTempDir('nomad-client'), clients: 1, acl: true });
  t.teardown(() => cluster.stop());
  const token = cluster.managementToken ?? '';
  const nomad = new NomadHttpClient({ address: cluster.address, token, env: {} });

  await t.test('the ACL token is sent, taken from NOMAD_TOKEN when not given, and never shown', async (tt) => {
    const nodes = await nomad.listNodes();
    tt.same(nodes.map((n) => n.name), ['client-1'], 'lists the node with the token');
    const fromEnv = new NomadHttpClient({ address: cluster.address, env: { NOMAD_TOKEN: token } });
    tt.equal((await fromEnv.listNodes()).length, 1, 'NOMAD_TOKEN from the environment works');
    const none = new NomadHttpClient({ address: cluster.address, env: {} });
    await tt.rejects(none.listNodes(), { code: 'NOMAD_FAILED', details: { status: 403 } }, 'no token: NOMAD_FAILED, Nomad answered 403');
    const wrongToken = '00000000-1111-2222-3333-444444444444';
    const wrong = new NomadHttpClient({ address: cluster.address, token: wrongToken, env: {} });
    const bad = await tt.rejects(wrong.listNodes(), { code: 'NOMAD_FAILED' }, 'a wrong token: NOMAD_FAILED');
    if (!(bad instanceof BulwarkError)) return tt.fail('no BulwarkError to inspect');
    for (const text of [bad.message, JSON.stringify(bad), JSON.stringify(bad.details), inspect(wrong), JSON.stringify(wrong), inspect(nomad), JSON.stringify(nomad)]) {
      tt.notOk(text.includes(wrongToken) || text.includes(token), `no token in: ${text.slice(0, 80)}`);
    }
  });

  await t.test('errors: unknown node, unreachable Nomad, a Nomad that never answers', async (tt) => {
    await tt.rejects(nomad.readNode('00000000-0000-0000-0000-000000000000'), { code: 'NOMAD_FAILED', details: { status: 404 } }, 'unknown node: 404');
    const port = await freePort();
    const gone = await tt.rejects(new NomadHttpClient({ address: `http://127.0.0.1:${port}`, env: {} }).listNodes(), { code: 'NOMAD_UNAVAILABLE' }, 'nothing listening: NOMAD_UNAVAILABLE');
    tt.ok(gone instanceof Error && gone.cause !== undefined, 'with the cause');
    const sockets = new Set<Socket>();
    const silent = createServer((s) => sockets.add(s));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const addr = silent.address();
    const silentPort = typeof addr === 'object' && addr !== null ? addr.port : 0;
    try {
      const slow = new NomadHttpClient({ address: `http://127.0.0.1:${silentPort}`, timeoutMs: 300, env: {} });
      // Rejecting at all is the timeout at work: without it the request waits forever.
      await tt.rejects(slow.listNodes(), { code: 'NOMAD_UNAVAILABLE' }, 'a silent server: NOMAD_UNAVAILABLE');
      const stream = slow.streamEvents({ topics: ['Node'], idleTimeoutMs: 300 });
      await tt.rejects(stream.next(), { code: 'NOMAD_UNAVAILABLE' }, 'a silent event stream: NOMAD_UNAVAILABLE after the idle timeout');
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise((r) => silent.close(r));
    }
    tt.throws(() => new NomadHttpClient({ address: 'not a url' }), { code: 'CONFIG_INVALID' }, 'a bad address is CONFIG_INVALID');
  });

  await t.test('eligibility, drain and dynamic metadata, seen on the Node event stream', async (tt) => {
    const id = (await nomad.listNodes())[0]?.id ?? '';
    const frames: NomadEventFrame[] = [];
    const ctl = new AbortController();
    const reading = (async () => {
      for await (const f of nomad.streamEvents({ topics: ['Node'], signal: ctl.signal })) frames.push(f);
    })();
    await waitFor('the first frame', () => (frames.length > 0 ? true : undefined), 10_000);
    await nomad.setEligibility(id, false);
    tt.equal((await nomad.readNode(id)).eligibility, 'ineligible', 'ineligible');
    await nomad.drainNode(id, { deadlineMs: 60_000, meta: { bulwark: 'test' } });
    await nomad.cancelDrain(id, { markEligible: true });
    const node = await nomad.readNode(id);
    tt.equal(node.eligibility, 'eligible', 'cancelling the drain with markEligible makes it eligible');
    tt.equal(node.drain, false, 'no drain left');
    await tt.rejects(nomad.drainNode(id, { deadlineMs: 0 }), { code: 'USAGE' }, 'a drain needs a positive deadline');
    const meta = await nomad.applyNodeMeta(id, { bulwark_trusted: 'false', bulwark_verdict_at: null });
    tt.equal(meta.dynamic['bulwark_trusted'], 'false', 'dynamic meta set');
    tt.equal(meta.meta['bulwark_trusted'], 'false', 'and merged');
    tt.equal((await nomad.readNodeMeta(id)).dynamic['bulwark_trusted'], 'false', 'read back from the client');
    const seen = await waitFor('the eligibility change on the stream', () => {
      const events = frames.flatMap((f) => (f.kind === 'events' ? f.events : []));
      const ineligible = events.find((e) => e.node?.id === id && e.node.eligibility === 'ineligible');
      const drained = events.find((e) => e.node?.id === id && e.node.drain);
      return ineligible !== undefined && drained !== undefined ? { ineligible, drained } : undefined;
    }, 10_000);
    tt.equal(seen.drained.node?.drainStrategy?.deadlineNs, 60_000_000_000, 'the drain deadline in nanoseconds');
    ctl.abort();
    await reading;
    tt.pass('aborting the signal ends the stream without an error');
  });
}
