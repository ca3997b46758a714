/**
 * Day-two observability against a real fleet (nats-server, controller, an agent on swtpm):
 * the controller's /metrics parses with a strict Prometheus text parser and its counters
 * move when the fleet attests and when a node is tampered with (PCR 7 extended within a
 * boot); the agent serves its own metrics on a unix socket; gRPC reflection lists every
 * service to an authenticated caller and refuses an anonymous one; health answers per
 * service; `bulwarkctl status` exits 0 healthy, 1 degraded (NATS not answering, Nomad configured but
 * unreachable), 4 with the controller stopped.
 */
import t from 'tap';
import * as grpc from '@grpc/grpc-js';
import { loadSync, type MethodDefinition } from '@grpc/proto-loader';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Controller } from '../../controller/controller.js';
import { parseJsonText } from '../../lib/schema/index.js';
import { clientCredentials, CONTROLLER_SERVICE_NAMES, ControllerClient, REFLECTION_SERVICE_NAMES, ERROR_CODE_METADATA } from '../../proto/index.js';
import { TestFleet } from '../helpers/fleet.js';
import { sampleSum, sampleValue, scrapeMetrics } from '../helpers/prometheus.js';
import { freePort, makeTempDir, removeDir } from '../helpers/swtpm.js';
import { waitFor } from '../helpers/wait.js';
import { recordingLogger, type LogRecord } from '../helpers/logs.js';

const root = await makeTempDir('bulwark-observability-');
const records: LogRecord[] = [];
const log = recordingLogger((r) => records.push(r), 'info');
const fleet = await TestFleet.create({ root, logger: log, controller: { metricsListen: '127.0.0.1:0', auditCheckpointIntervalMs: 200 } });
const controller = await fleet.startController();
t.teardown(async () => {
  await fleet.stop();
  await removeDir(root);
});

const scrape = scrapeMetrics;

const NODE = 'observed';
const agentSocket = join(root, 'agent-metrics.sock');

t.test('controller /metrics: counters move as the fleet attests and when a node is tampered with', async (t) => {
  const metricsAddress = controller.metricsAddress;
  if (metricsAddress === null) throw new Error('the controller serves no metrics');
  t.match(metricsAddress, /^127\.0\.0\.1:\d+$/, 'bound on loopback as configured');
  const before = await scrape(metricsAddress);
  t.equal(sampleValue(before, 'bulwark_nodes', { state: 'trusted' }), 0, 'no node yet');
  const roundsBefore = sampleSum(before, 'bulwark_evidence_rounds_total');

  const node = await fleet.addNode(NODE, { agent: { metricsListen: `unix:${agentSocket}` } });
  await node.agent.start();
  await fleet.waitForNode(NODE, (n) => n.state === 'trusted');
  const attested = await waitFor(
    'a checkpoint and a counted trusted round',
    async () => {
      const m = await scrape(metricsAddress);
      return (sampleValue(m, 'bulwark_evidence_rounds_total', { verdict: 'trusted' }) ?? 0) > 0 && sampleSum(m, 'bulwark_audit_checkpoint_age_seconds') >= 0 && m.get('bulwark_audit_checkpoint_age_seconds')?.samples.length === 1 ? m : undefined;
    },
    20_000,
  );
  t.ok(sampleSum(attested, 'bulwark_evidence_rounds_total') > roundsBefore, 'rounds counted');
  t.equal(sampleValue(attested, 'bulwark_nodes', { state: 'trusted' }), 1, 'one trusted node');
  t.ok((sampleValue(attested, 'bulwark_nonces_issued_total') ?? 0) >= 1, 'nonces issued');
  t.ok((sampleValue(attested, 'bulwark_nonces_consumed_total', { result: 'ok' }) ?? 0) >= 1, 'nonces consumed');
  t.ok((sampleValue(attested, 'bulwark_verdict_duration_seconds_count', { verdict: 'trusted' }) ?? 0) >= 1, 'verdict latency observed');
  t.ok(sampleSum(attested, 'bulwark_kv_operation_duration_seconds_count', { bucket: 'bulwark_nodes', operation: 'get', result: 'ok' }) >= 1, 'KV latency observed');
  t.equal(sampleValue(attested, 'bulwark_lease_held', { lease: 'verifier-scheduler' }), 1, 'this replica holds the scheduler lease');
  t.equal(attested.get('bulwark_audit_checkpoint_age_seconds')?.samples[0]?.labels['signed_by'], fleet.controllerConfig.replicaId || attested.get('bulwark_controller_info')?.samples[0]?.labels['replica'], 'the checkpoint age names the signer');
  t.equal(sampleSum(attested, 'bulwark_evidence_findings_total'), 0, 'no finding while trusted');

  const agentMetrics = await scrape(`unix:${agentSocket}`);
  t.ok((sampleValue(agentMetrics, 'bulwark_agent_quote_duration_seconds_count') ?? 0) >= 1, 'the agent timed its quotes');
  t.ok((sampleValue(agentMetrics, 'bulwark_agent_rounds_total', { verdict: 'trusted' }) ?? 0) >= 1, 'the agent counted its trusted rounds');

  await node.swtpm.extendPcr(7, randomBytes(32).toString('hex'));
  await node.agent.attestNow();
  await fleet.waitForNode(NODE, (n) => n.state === 'untrusted');
  const tampered = await waitFor(
    'the untrusted round counted',
    async () => {
      const m = await scrape(metricsAddress);
      return (sampleValue(m, 'bulwark_evidence_findings_total', { code: 'PCR_CHANGED_WITHIN_BOOT' }) ?? 0) >= 1 ? m : undefined;
    },
    10_000,
  );
  t.ok((sampleValue(tampered, 'bulwark_evidence_rounds_total', { verdict: 'untrusted' }) ?? 0) >= 1, 'an untrusted round');
  t.equal(sampleValue(tampered, 'bulwark_nodes', { state: 'untrusted' }), 1, 'the node counted untrusted');
  t.equal(sampleValue(tampered, 'bulwark_nodes', { state: 'trusted' }), 0, 'and no longer trusted');
  // The SIEM's view of the same tamper: one JSON line with node, from, to and the finding codes.
  const line = await waitFor(
    'the tamper logged',
    () => records.find((r) => r.msg === 'trust transition' && r.fields['node'] === NODE && r.fields['to'] === 'untrusted'),
    10_000,
  );
  t.match(line, { level: 'info', fields: { node: NODE, from: 'trusted', to: 'untrusted', codes: ['PCR_CHANGED_WITHIN_BOOT'], cause: 'evidence', sequence: Number } });
  const agentAfter = await scrape(`unix:${agentSocket}`);
  t.ok((sampleValue(agentAfter, 'bulwark_agent_rounds_total', { verdict: 'untrusted' }) ?? 0) >= 1, 'the agent saw the untrusted verdict');
});

/** The reflection v1 method, from @grpc/reflection's own .proto (the client side of the protocol). */
function reflectionMethod(): MethodDefinition<object, object> {
  const protoPath = fileURLToPath(new URL('../../../node_modules/@grpc/reflection/build/proto/grpc/reflection/v1/reflection.proto', import.meta.url));
  const definition = loadSync(protoPath, { keepCase: false, defaults: true, oneofs: true });
  const service = definition['grpc.reflection.v1.ServerReflection'];
  if (service === undefined || !('ServerReflectionInfo' in service)) throw new Error('no reflection service in its .proto');
  const method = service['ServerReflectionInfo'];
  if (method === undefined) throw new Error('no ServerReflectionInfo');
  return method;
}

/** One reflection request on a fresh stream: the first response, or the call's error status and code. */
function reflect(tls: Parameters<typeof clientCredentials>[0], message: object): Promise<{ response: unknown } | { status: number; code: string }> {
  const method = reflectionMethod();
  const client = new grpc.Client(fleet.controllerAddress, clientCredentials(tls));
  return new Promise((resolve) => {
    const call = client.makeBidiStreamRequest(method.path, method.requestSerialize, method.responseDeserialize, new grpc.Metadata(), { deadline: Date.now() + 10_000 });
    let first: unknown;
    call.on('data', (d: unknown) => (first ??= d));
    call.on('error', (err: grpc.ServiceError) => {
      const v = err.metadata.get(ERROR_CODE_METADATA)[0];
      client.close();
      resolve({ status: err.code, code: typeof v === 'string' ? v : '' });
    });
    call.on('end', () => {
      client.close();
      resolve({ response: first });
    });
    call.write(message);
    call.end();
  });
}

t.test('reflection lists every service to an authenticated caller, refuses an anonymous one', async (t) => {
  const listed = await reflect(fleet.adminTls(), { listServices: '' });
  if (!('response' in listed)) throw new Error(`reflection refused the admin: ${JSON.stringify(listed)}`);
  t.match(listed.response, { listServicesResponse: { service: Array } });
  const names =
    typeof listed.response === 'object' && listed.response !== null && 'listServicesResponse' in listed.response
      ? JSON.stringify(listed.response.listServicesResponse)
      : '';
  for (const name of [...CONTROLLER_SERVICE_NAMES, ...REFLECTION_SERVICE_NAMES]) t.ok(names.includes(`"${name}"`), `lists ${name}`);

  const described = await reflect(fleet.adminTls(), { fileContainingSymbol: 'bulwark.v1.Attestation' });
  if (!('response' in described)) throw new Error('no descriptor');
  const text = JSON.stringify(described.response);
  t.ok(text.includes('fileDescriptorResponse'), 'a file descriptor for the Attestation service');

  const anonymous = await reflect({ caPem: fleet.adminTls().caPem }, { listServices: '' });
  t.same(anonymous, { status: grpc.status.UNAUTHENTICATED, code: 'AUTH_CERTIFICATE_REQUIRED' }, 'no certificate, no reflection');
});

t.test('health answers per service name', async (t) => {
  const client = new ControllerClient(fleet.controllerAddress, { tls: { caPem: fleet.adminTls().caPem } });
  t.teardown(() => client.close());
  t.equal(await client.healthCheck(), 'SERVING', 'the server, without a certificate');
  for (const name of [...CONTROLLER_SERVICE_NAMES, ...REFLECTION_SERVICE_NAMES]) t.equal(await client.healthCheck(name), 'SERVING', name);
  await t.rejects(client.healthCheck('bulwark.v1.NoSuchService'), { code: 'SERVICE_NOT_FOUND' }, 'an unknown service is NOT_FOUND');
});

t.test('bulwarkctl status: 0 healthy, 1 degraded (Nomad unreachable, NATS not answering), 4 controller stopped', async (t) => {
  const healthy = await fleet.ctl(['status', '--json']);
  t.equal(healthy.code, 0, `healthy: exit 0 (${healthy.err})`);
  const doc = parseJsonText(healthy.out, 'status', 'WIRE_MALFORMED');
  t.match(doc, {
    reachable: true,
    healthy: true,
    version: /^\d+\.\d+\.\d+/,
    nodeVersion: process.version,
    dependencies: [
      { name: 'nats', configured: true, reachable: true },
      { name: 'nomad', configured: false, reachable: false },
    ],
  });
  const st: Readonly<Record<string, unknown>> = doc !== null && typeof doc === 'object' && !Array.isArray(doc) ? Object.fromEntries(Object.entries(doc)) : {};
  t.match(st['nodes'], [{ state: 'unknown', count: 0 }, { state: 'enrolled' }, { state: 'trusted' }, { state: 'untrusted', count: 1 }, { state: 'stale' }], 'nodes by state');
  t.match(JSON.stringify(st['leases']), /"name":"verifier-scheduler","holder":"[^"]+","heldByThisReplica":true/, 'the scheduler lease, held here');
  const text = await fleet.ctl(['status']);
  t.equal(text.code, 0);
  t.match(text.out, /health: +healthy/);
  t.match(text.out, /nats +reachable/);
  t.match(text.out, /nomad +off/);

  // The same controller (data directory, address), now with a Nomad nobody answers at.
  await fleet.stopController();
  const stopped = await fleet.ctl(['status']);
  t.equal(stopped.code, 4, 'controller stopped: exit 4');
  t.match(stopped.err, /is unreachable/);
  const stoppedJson = await fleet.ctl(['status', '--json']);
  t.equal(stoppedJson.code, 4);
  t.match(parseJsonText(stoppedJson.out, 'status', 'WIRE_MALFORMED'), { reachable: false, healthy: false });

  const nomadAddr = `http://127.0.0.1:${await freePort()}`;
  const degradedController = new Controller({ ...fleet.controllerConfig, nomadAddr, nomadReconcileIntervalMs: 500 }, log);
  await degradedController.start();
  fleet.controller = degradedController;
  const degraded = await fleet.ctl(['status']);
  t.equal(degraded.code, 1, `Nomad unreachable: exit 1 (${degraded.out}${degraded.err})`);
  t.match(degraded.out, /health: +degraded: nomad unreachable/);
  t.match(degraded.out, /nomad +UNREACHABLE +http:\/\/127\.0\.0\.1:\d+/);
  const degradedJson = await fleet.ctl(['status', '--json']);
  t.equal(degradedJson.code, 1);
  t.match(parseJsonText(degradedJson.out, 'status', 'WIRE_MALFORMED'), { reachable: true, healthy: false, dependencies: [{ name: 'nats', reachable: true }, { name: 'nomad', configured: true, reachable: false }] });

  // NATS stops answering (the server process stopped, its sockets open): the controller
  // still answers, degraded, within its probe timeout.
  const natsPid = fleet.nats.server.pid;
  process.kill(natsPid, 'SIGSTOP');
  let resumed = false;
  const resume = (): void => {
    if (resumed) return;
    resumed = true;
    process.kill(natsPid, 'SIGCONT');
  };
  t.teardown(resume);
  const natsDown = await fleet.ctl(['status', '--json']);
  resume();
  t.equal(natsDown.code, 1, `NATS not answering: exit 1 (${natsDown.out}${natsDown.err})`);
  t.match(parseJsonText(natsDown.out, 'status', 'WIRE_MALFORMED'), { reachable: true, healthy: false, dependencies: [{ name: 'nats', configured: true, reachable: false }] });
});
