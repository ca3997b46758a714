/**
 * Bulwark node ↔ Nomad node mapping: the name by default, an explicit map over it, and every
 * ambiguity mapped to nothing (so the node stays ineligible).
 */
import t from 'tap';
import { NodeMapping } from '../../../lib/nomad/mapping.js';

const n = (id: string, name: string, status = 'ready'): { id: string; name: string; status: string } => ({ id, name, status });

t.test('default: the Nomad node name is the Bulwark node id', async (tt) => {
  const m = NodeMapping.create().resolve([n('1', 'node-a'), n('2', 'node-b')]);
  tt.same(m.get('1'), { bulwarkId: 'node-a' });
  tt.same(m.get('2'), { bulwarkId: 'node-b' });
});

t.test('explicit map by Nomad name or ID', async (tt) => {
  const mapping = NodeMapping.create({ 'bulwark-1': 'nomad-host-1', 'bulwark-2': 'id-2' });
  const m = mapping.resolve([n('id-1', 'nomad-host-1'), n('id-2', 'whatever'), n('id-3', 'node-c')]);
  tt.same(m.get('id-1'), { bulwarkId: 'bulwark-1' });
  tt.same(m.get('id-2'), { bulwarkId: 'bulwark-2' });
  tt.same(m.get('id-3'), { bulwarkId: 'node-c' }, 'others keep the default');
  tt.ok(mapping.couldBe('bulwark-1', n('id-1', 'nomad-host-1')));
  tt.notOk(mapping.couldBe('node-c', n('id-1', 'nomad-host-1')));
});

t.test('an explicit entry overrides its own default', async (tt) => {
  const m = NodeMapping.create({ 'node-a': 'host-17' }).resolve([n('1', 'node-a'), n('2', 'host-17')]);
  tt.same(m.get('2'), { bulwarkId: 'node-a' });
  tt.same(m.get('1'), { bulwarkId: null, conflict: null }, 'a Nomad node named node-a is not node-a any more');
});

t.test('conflicts map to nothing', async (tt) => {
  const renamed = NodeMapping.create({ 'node-x': 'node-a' });
  tt.same(renamed.resolve([n('1', 'node-a')]).get('1'), { bulwarkId: 'node-x' }, 'explicit wins while no Bulwark node is named node-a');
  const twoClaims = renamed.resolve([n('1', 'node-a')], new Set(['node-a', 'node-x']));
  tt.equal(twoClaims.get('1')?.bulwarkId, null, 'claimed by node-x (explicit) and the existing Bulwark node node-a (its name)');
  tt.match(twoClaims.get('1'), { conflict: /claimed by Bulwark nodes node-x, node-a/ });
  const twoLive = NodeMapping.create().resolve([n('1', 'node-a'), n('2', 'node-a', 'initializing')]);
  tt.equal(twoLive.get('1')?.bulwarkId, null, 'a second host registering under the same name gates both');
  tt.equal(twoLive.get('2')?.bulwarkId, null);
  const reinstalled = NodeMapping.create().resolve([n('old', 'node-a', 'down'), n('new', 'node-a')]);
  tt.same(reinstalled.get('new'), { bulwarkId: 'node-a' }, 'a down predecessor does not block its successor');
  tt.equal(reinstalled.get('old')?.bulwarkId, null, 'and gets no identity itself');
  tt.same(NodeMapping.create().resolve([n('old', 'node-a', 'down')]).get('old'), { bulwarkId: 'node-a' }, 'a lone down node keeps its identity');
  tt.same(NodeMapping.create().resolve([n('1', '')]).get('1'), { bulwarkId: null, conflict: null }, 'an empty name is nobody');
});

t.test('an explicit map that maps two Bulwark nodes to one Nomad node is refused', async (tt) => {
  tt.throws(() => NodeMapping.create({ a: 'host', b: 'host' }), { name: 'BulwarkError', code: 'NOMAD_NODE_MAPPING_CONFLICT' });
  tt.throws(() => NodeMapping.create({ a: '' }), { code: 'NOMAD_NODE_MAPPING_CONFLICT' });
});
