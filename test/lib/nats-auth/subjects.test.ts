/**
 * Node ids and the node-scoped subjects: only ids that are one safe subject token get
 * through, and the node id read from a subject is the one the subject names.
 */
import t from 'tap';
import { BulwarkError } from '../../../lib/index.js';
import { NODE_SUBJECTS, checkBodyNodeId, nodeIdFromSubject, parseNatsNodeId } from '../../../lib/nats-auth/index.js';

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    return err instanceof BulwarkError ? err.code : `not a BulwarkError: ${String(err)}`;
  }
  return 'no error';
}

t.test('node ids: letters, digits, _ and -, 1-128 characters', async (t) => {
  for (const ok of ['node-a', 'host_1', 'A', '0abc', 'x'.repeat(128)]) t.equal(parseNatsNodeId(ok), ok, ok);
  const bad: unknown[] = ['', 'a.b', 'a*', '*', '>', 'a>', 'a b', ' a', 'a\n', 'a\r\nPUB x 1', 'a\t', '-a', '_a', 'x'.repeat(129), 'é', 'a"b', 'a\\b', 'a$b', 'a/b', 42, null, undefined];
  for (const value of bad) t.equal(codeOf(() => parseNatsNodeId(value)), 'NATS_AUTH_NODE_ID_INVALID', JSON.stringify(value));
});

t.test('node-scoped subjects keep the bulwark.v1 prefix and end in the node id', async (t) => {
  const id = parseNatsNodeId('node-a');
  t.equal(NODE_SUBJECTS.nonce(id), 'bulwark.v1.nonce.node-a');
  t.equal(NODE_SUBJECTS.evidence(id), 'bulwark.v1.evidence.node-a');
  t.equal(NODE_SUBJECTS.challenge(id), 'bulwark.v1.challenge.node-a');
  t.equal(NODE_SUBJECTS.inboxPrefix(id), '_INBOX.node.node-a');
  t.equal(NODE_SUBJECTS.evidenceAll, 'bulwark.v1.evidence.*');
  t.equal(NODE_SUBJECTS.nonceAll, 'bulwark.v1.nonce.*');
  t.equal(NODE_SUBJECTS.attestSign(id), 'bulwark.v1.attest-sign.node-a');
  t.equal(NODE_SUBJECTS.attestSignAll, 'bulwark.v1.attest-sign.*');
  t.equal(nodeIdFromSubject('attest-sign', 'bulwark.v1.attest-sign.node-a'), 'node-a');
  t.equal(codeOf(() => nodeIdFromSubject('attest-sign', 'bulwark.v1.evidence.node-a')), 'NATS_AUTH_SUBJECT_INVALID');
});

t.test('the node id comes from the subject; a body naming another node is refused', async (t) => {
  t.equal(nodeIdFromSubject('evidence', 'bulwark.v1.evidence.node-a'), 'node-a');
  t.equal(nodeIdFromSubject('nonce', 'bulwark.v1.nonce.node-b'), 'node-b');
  for (const subject of [
    'bulwark.v1.evidence',
    'bulwark.v1.evidence.',
    'bulwark.v1.evidence.node-a.x',
    'bulwark.v1.evidence.*',
    'bulwark.v1.evidence.>',
    'bulwark.v1.nonce.node-a',
    'bulwark.v2.evidence.node-a',
    `bulwark.v1.evidence.${'x'.repeat(129)}`,
    'x'.repeat(100_000),
  ]) {
    t.equal(codeOf(() => nodeIdFromSubject('evidence', subject)), 'NATS_AUTH_SUBJECT_INVALID', subject.slice(0, 60));
  }
  t.equal(checkBodyNodeId('evidence', 'bulwark.v1.evidence.node-a', 'node-a'), 'node-a');
  t.equal(checkBodyNodeId('nonce', 'bulwark.v1.nonce.node-a', ''), 'node-a', 'a body without a node id takes the subject\'s');
  t.equal(codeOf(() => checkBodyNodeId('evidence', 'bulwark.v1.evidence.node-a', 'node-b')), 'NATS_AUTH_NODE_MISMATCH');
  t.equal(codeOf(() => checkBodyNodeId('evidence', 'bulwark.v1.evidence.node-a', 'node-a.x')), 'NATS_AUTH_NODE_MISMATCH');
});
