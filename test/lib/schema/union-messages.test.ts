/**
 * The schema layer's messages for unions: a union of literals names its values, and a list
 * that may be null reports the bad item inside it, not "Expected union value" at the list.
 */
import t from 'tap';
import { Type } from '@sinclair/typebox';
import { defineDocument, literalUnion } from '../../../lib/schema/index.js';

const Doc = defineDocument(
  Type.Object({
    bank: literalUnion(['sha1', 'sha256']),
    items: Type.Union([Type.Array(Type.Object({ n: Type.Integer({ minimum: 0 }) })), Type.Null()]),
  }),
  'test document',
  'CONFIG_INVALID',
);

t.test('a literal union is a validated enum that names its values', async (t) => {
  const ok = Doc.parse({ bank: 'sha256', items: null });
  const bank: 'sha1' | 'sha256' = ok.bank;
  t.equal(bank, 'sha256');
  t.throws(() => Doc.parse({ bank: 'md5', items: null }), { code: 'CONFIG_INVALID', details: { path: '/bank' }, message: /Expected one of "sha1", "sha256"/ });
});

t.test('a nullable list reports the item that is wrong', async (t) => {
  t.same(Doc.parse({ bank: 'sha1', items: [{ n: 1 }] }).items, [{ n: 1 }]);
  t.throws(() => Doc.parse({ bank: 'sha1', items: [{ n: 1 }, { n: -1 }] }), { code: 'CONFIG_INVALID', details: { path: '/items/1/n' } });
  t.throws(() => Doc.parse({ bank: 'sha1', items: 'none' }), { code: 'CONFIG_INVALID', details: { path: '/items' } }, 'no alternative gets further: the union itself');
});
