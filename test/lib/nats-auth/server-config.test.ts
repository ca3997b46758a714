/**
 * The permission model and the nats-server config rendered from it: exact node rights,
 * the one-application-account shape (never an `authorization` block), limits, and refusal
 * of anything that could break out of a quoted config string.
 */
import t from 'tap';
import { BulwarkError } from '../../../lib/index.js';
import {
  NATS_SERVER_DEFAULTS,
  controllerPermissions,
  nkeyUserFromRawSeed,
  nodePermissions,
  parseNatsNodeId,
  renderNatsServerConfig,
  type NatsServerConfigSpec,
} from '../../../lib/nats-auth/index.js';

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    return err instanceof BulwarkError ? err.code : `not a BulwarkError: ${String(err)}`;
  }
  return 'no error';
}

const key = (n: number): string => nkeyUserFromRawSeed(new Uint8Array(32).fill(n)).publicKey;
const CONTROLLER = key(1);
const NODE_A = key(2);
const NODE_B = key(3);

const SPEC: NatsServerConfigSpec = {
  host: '127.0.0.1',
  port: 4222,
  tls: { certFile: '/etc/bulwark/nats/server.pem', keyFile: '/etc/bulwark/nats/server-key.pem', caFile: '/etc/bulwark/nats/ca.pem' },
  storeDir: '/var/lib/bulwark/jetstream',
  controller: { kind: 'nkey', publicKey: CONTROLLER },
  nodes: [
    { nodeId: parseNatsNodeId('node-b'), publicKey: NODE_B },
    { nodeId: parseNatsNodeId('node-a'), publicKey: NODE_A },
  ],
};

t.test('a node may publish its requests and receive its challenges and replies, nothing else', async (t) => {
  const p = nodePermissions(parseNatsNodeId('node-a'));
  t.same(p.publish.allow, ['bulwark.v1.nonce.node-a', 'bulwark.v1.evidence.node-a', 'bulwark.v1.attest-sign.node-a']);
  t.same(p.subscribe.allow, ['bulwark.v1.challenge.node-a', '_INBOX.node.node-a.>']);
  for (const denied of ['$JS.>', '$KV.>', '$SYS.>', 'bulwark.v1.trust.>', 'bulwark.v1.audit.>']) {
    t.ok(p.publish.deny.includes(denied), `publish deny ${denied}`);
    t.ok(p.subscribe.deny.includes(denied), `subscribe deny ${denied}`);
  }
  t.equal(p.allowResponses, null);
  for (const s of [...p.publish.allow, ...p.subscribe.allow]) t.notOk(/(^|\.)(\*)(\.|$)/.test(s) || s === '>' || s.startsWith('$'), `${s} is not a broad wildcard`);
  const c = controllerPermissions();
  t.same(c.publish.allow, ['>']);
  t.same(c.subscribe.allow, ['>']);
});

t.test('renders one application account holding every user, with TLS, JetStream and limits', async (t) => {
  const text = renderNatsServerConfig(SPEC);
  t.notMatch(text, /^\s*authorization\s*[:{]/m, 'no authorization block (GHSA-fr2g-9hjm-wr23 shape)');
  t.notMatch(text, /no_auth_user/);
  t.notMatch(text, /"\$SYS"\s*:/, 'no $SYS account block');
  t.match(text, /accounts: \{\n {2}"BULWARK": \{/);
  t.match(text, /tls: \{\n {2}cert_file: "\/etc\/bulwark\/nats\/server.pem"\n {2}key_file: "\/etc\/bulwark\/nats\/server-key.pem"\n {2}ca_file: "\/etc\/bulwark\/nats\/ca.pem"\n {2}verify: false\n {2}timeout: 2\n\}/);
  t.match(text, /store_dir: "\/var\/lib\/bulwark\/jetstream"/);
  t.match(text, `max_payload: ${NATS_SERVER_DEFAULTS.limits.maxPayloadBytes}\n`);
  t.match(text, `max_connections: ${NATS_SERVER_DEFAULTS.limits.maxConnections}\n`);
  t.match(text, `max_streams: ${NATS_SERVER_DEFAULTS.accountLimits.maxStreams}\n`);
  t.match(text, `max_consumers: ${NATS_SERVER_DEFAULTS.accountLimits.maxConsumers}\n`);
  t.match(text, `nkey: "${CONTROLLER}"`);
  t.match(text, 'publish: { allow: [">"] }');
  t.match(text, `nkey: "${NODE_A}",\n        permissions: {\n          publish: { allow: ["bulwark.v1.nonce.node-a", "bulwark.v1.evidence.node-a", "bulwark.v1.attest-sign.node-a"], deny: [`);
  t.ok(text.indexOf('# node node-a') < text.indexOf('# node node-b'), 'nodes sorted by id');
  t.equal(renderNatsServerConfig({ ...SPEC, nodes: [...SPEC.nodes].reverse() }), text, 'same fleet, same bytes');
  t.match(renderNatsServerConfig({ ...SPEC, tls: { ...SPEC.tls, verify: true } }), /verify: true/);
  const limited = renderNatsServerConfig({ ...SPEC, limits: { maxPayloadBytes: 4096 }, accountLimits: { maxStreams: 3 } });
  t.match(limited, 'max_payload: 4096\n');
  t.match(limited, 'max_streams: 3\n');
});

t.test('a controller with user and password', async (t) => {
  const text = renderNatsServerConfig({ ...SPEC, controller: { kind: 'password', user: 'bulwark-controller', password: 'Zm9vYmFyYmF6cXV4cXV1eA-_' } });
  t.match(text, '{ user: "bulwark-controller", password: "Zm9vYmFyYmF6cXV4cXV1eA-_",');
  for (const password of ['short', 'has space in it....', 'has"quote.........', 'has$dollar........', 'back\\slash........', 'new\nline..........']) {
    t.equal(codeOf(() => renderNatsServerConfig({ ...SPEC, controller: { kind: 'password', user: 'c', password } })), 'NATS_AUTH_CREDENTIAL_INVALID', JSON.stringify(password));
  }
  t.equal(codeOf(() => renderNatsServerConfig({ ...SPEC, controller: { kind: 'password', user: 'a b', password: 'x'.repeat(20) } })), 'NATS_AUTH_CREDENTIAL_INVALID');
});

t.test('refuses specs that could not be rendered safely', async (t) => {
  const cases: Array<[string, NatsServerConfigSpec, string]> = [
    ['relative path', { ...SPEC, storeDir: 'data/js' }, 'NATS_AUTH_CONFIG_INVALID'],
    ['quote in a path', { ...SPEC, tls: { ...SPEC.tls, certFile: '/x"\ninclude "/etc/passwd' } }, 'NATS_AUTH_CONFIG_INVALID'],
    ['variable in a path', { ...SPEC, tls: { ...SPEC.tls, keyFile: '/x/$HOME' } }, 'NATS_AUTH_CONFIG_INVALID'],
    ['bad host', { ...SPEC, host: '127.0.0.1"\nport: 1' }, 'NATS_AUTH_CONFIG_INVALID'],
    ['port 0', { ...SPEC, port: 0 }, 'NATS_AUTH_CONFIG_INVALID'],
    ['port 65536', { ...SPEC, port: 65536 }, 'NATS_AUTH_CONFIG_INVALID'],
    ['$SYS account', { ...SPEC, accountName: '$SYS' }, 'NATS_AUTH_CONFIG_INVALID'],
    ['fractional limit', { ...SPEC, limits: { maxConnections: 1.5 } }, 'NATS_AUTH_CONFIG_INVALID'],
    ['negative limit', { ...SPEC, accountLimits: { maxFileBytes: -1 } }, 'NATS_AUTH_CONFIG_INVALID'],
    ['zero memory', { ...SPEC, accountLimits: { maxMemoryBytes: 0 } }, 'NATS_AUTH_CONFIG_INVALID'],
    ['pending below payload', { ...SPEC, limits: { maxPayloadBytes: 8 * 1024 * 1024, maxPendingBytes: 1024 * 1024 } }, 'NATS_AUTH_CONFIG_INVALID'],
    ['duplicate node', { ...SPEC, nodes: [SPEC.nodes[0] ?? { nodeId: parseNatsNodeId('x'), publicKey: NODE_A }, { nodeId: parseNatsNodeId('node-b'), publicKey: key(9) }] }, 'NATS_AUTH_CONFIG_INVALID'],
    ['shared nkey', { ...SPEC, nodes: [{ nodeId: parseNatsNodeId('node-c'), publicKey: CONTROLLER }] }, 'NATS_AUTH_CONFIG_INVALID'],
    ['bad nkey', { ...SPEC, nodes: [{ nodeId: parseNatsNodeId('node-c'), publicKey: `${NODE_A.slice(0, -1)}"` }] }, 'NATS_AUTH_CREDENTIAL_INVALID'],
  ];
  for (const [name, spec, code] of cases) t.equal(codeOf(() => renderNatsServerConfig(spec)), code, name);

  // A node id that skipped parseNatsNodeId (the brand is only a type) is still refused.
  const unchecked: string = 'node-a.>';
  const smuggled = { nodeId: parseNatsNodeId('ok'), publicKey: NODE_A };
  Object.defineProperty(smuggled, 'nodeId', { value: unchecked });
  t.equal(codeOf(() => renderNatsServerConfig({ ...SPEC, nodes: [smuggled] })), 'NATS_AUTH_NODE_ID_INVALID');
});
