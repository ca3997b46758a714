/**
 * The host gate fails closed when no controller answers: it keeps retrying (with jittered
 * waits, never past its timeout) and ends untrusted with the reason.
 */
import t from 'tap';
import { waitTrusted } from '../../agent/gate.js';
import { freePort } from '../helpers/swtpm.js';

t.test('no controller at the address: not trusted, state unreachable', async (t) => {
  const port = await freePort();
  const lines: string[] = [];
  const result = await waitTrusted({ controller: `127.0.0.1:${port}`, nodeId: 'host-x', timeoutMs: 400, pollMs: 50, log: (m) => lines.push(m) });
  t.equal(result.trusted, false);
  t.equal(result.state, 'unreachable');
  t.ok(result.reasons.length > 0, `the reason is given (${result.reasons.join(', ')})`);
  t.ok(result.waitedMs >= 400, 'it gave up only once the timeout had passed');
  t.match(lines[0], /node host-x is unreachable/, 'the wait is reported once');
  t.equal(lines.length, 1, 'and not again while nothing changes');
});
