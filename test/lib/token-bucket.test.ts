import t from 'tap';
import { TokenBuckets } from '../../lib/token-bucket.js';

t.test('a key spends its burst, then regains tokens at the rate', async (t) => {
  const b = new TokenBuckets({ ratePerSecond: 2, burst: 3, maxKeys: 10 });
  t.same([b.take('a', 0), b.take('a', 0), b.take('a', 0), b.take('a', 0)], [true, true, true, false], 'the burst, then refused');
  t.equal(b.take('b', 0), true, 'keys are independent');
  t.equal(b.take('a', 400), false, '0.8 tokens regained: not enough');
  t.equal(b.take('a', 500), true, 'one token after 500 ms at 2/s');
  t.equal(b.take('a', 500), false);
  t.same([b.take('a', 100_000), b.take('a', 100_000), b.take('a', 100_000), b.take('a', 100_000)], [true, true, true, false], 'never more than the burst');
});

t.test('the number of keys is bounded', async (t) => {
  const b = new TokenBuckets({ ratePerSecond: 1, burst: 1, maxKeys: 100 });
  for (let i = 0; i < 10_000; i++) b.take(`k${i}`, 0);
  t.ok(b.size <= 100, `kept ${b.size} keys`);
  t.equal(b.take('k9999', 0), false, 'a recent key keeps its empty bucket');
});
