/**
 * Policies in JetStream KV against a real nats-server: checked before they are stored,
 * assigned per node or as a default, resolved node first.
 */
import t from 'tap';
import { connect } from 'nats';
import { join } from 'node:path';
import { BulwarkError } from '../../lib/errors.js';
import { NatsServerProcess } from '../../controller/state/embedded-nats.js';
import { PolicyStore, type PolicyKind } from '../../controller/policies/policy-store.js';
import { makeTempDir, removeDir } from '../helpers/swtpm.js';

interface AllowList {
  readonly allow: readonly string[];
}

const allowKind: PolicyKind<AllowList> = {
  kind: 'allow-list',
  parsed: new Map(),
  parse(doc: unknown): AllowList {
    const allow: unknown = typeof doc === 'object' && doc !== null ? Reflect.get(doc, 'allow') : undefined;
    if (!Array.isArray(allow) || !allow.every((x) => typeof x === 'string')) throw new BulwarkError('CONFIG_INVALID', 'allow must be a list of strings');
    return { allow };
  },
};

const root = await makeTempDir('policies');
const server = await NatsServerProcess.start({ storeDir: join(root, 'nats') });
const nc = await connect({ servers: server.url });
t.teardown(async () => {
  await nc.close();
  await server.stop();
  await removeDir(root);
});

t.test('policies are checked, stored, assigned and resolved', async (t) => {
  const store = await PolicyStore.open(nc.jetstream());
  store.register(allowKind);
  await t.rejects(store.put('allow-list', 'bad', '{"allow": 3}'), { code: 'CONFIG_INVALID' }, 'an invalid document is refused');
  await t.rejects(store.put('allow-list', 'bad', 'not json'), { code: 'CONFIG_INVALID' });
  await t.rejects(store.put('nope', 'x', '{}'), { code: 'USAGE' }, 'an unknown kind is refused');
  await t.rejects(store.put('allow-list', '../etc', '{"allow":[]}'), { code: 'USAGE' }, 'a name outside the alphabet is refused');
  t.equal(await store.resolve(allowKind, 'node-1'), null, 'nothing applies before anything is assigned');

  const a = await store.put('allow-list', 'base', '{"allow":["a"]}');
  await store.put('allow-list', 'strict', '{"allow":["b"]}');
  await t.rejects(store.assign('allow-list', 'missing', null), { code: 'NODE_NOT_FOUND' });
  await store.assign('allow-list', 'base', null);
  await store.assign('allow-list', 'strict', 'node-2');
  t.same((await store.resolve(allowKind, 'node-1'))?.policy.allow, ['a'], 'the default applies to a node without its own');
  t.same((await store.resolve(allowKind, 'node-2'))?.policy.allow, ['b'], "a node's own assignment wins");

  const updated = await store.put('allow-list', 'base', '{"allow":["a","c"]}');
  t.ok(updated.revision > a.revision);
  t.not(updated.sha256, a.sha256, 'a new version has a new digest');
  t.same((await store.resolve(allowKind, 'node-1'))?.policy.allow, ['a', 'c'], 'the new version applies at once');

  const list = await store.list('allow-list');
  t.same(
    list.map((p) => [p.name, p.assignedTo]),
    [
      ['base', ['*']],
      ['strict', ['node-2']],
    ],
  );
  await store.assign('allow-list', null, 'node-2');
  t.same((await store.resolve(allowKind, 'node-2'))?.policy.allow, ['a', 'c'], 'removing the assignment falls back to the default');

  await store.put('allow-list', 'edge', '{"allow":["e"]}');
  await store.assign('allow-list', 'edge', { group: 'edge-sites' });
  await store.setGroup('node-3', 'edge-sites');
  t.same((await store.resolve(allowKind, 'node-3'))?.policy.allow, ['e'], "a node in a group gets the group's policy");
  await store.assign('allow-list', 'strict', 'node-3');
  t.same((await store.resolve(allowKind, 'node-3'))?.policy.allow, ['b'], "the node's own assignment still wins over its group's");
  await store.assign('allow-list', null, 'node-3');
  await store.setGroup('node-3', null);
  t.same((await store.resolve(allowKind, 'node-3'))?.policy.allow, ['a', 'c'], 'out of the group, the default applies');
  t.same((await store.list('allow-list')).find((p) => p.name === 'edge')?.assignedTo, ['group:edge-sites']);
  await t.rejects(store.setGroup('node-3', 'no spaces allowed'), { code: 'USAGE' });
});
