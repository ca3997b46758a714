/**
 * The metrics plumbing without a fleet: the strict Prometheus text parser of test/helpers
 * (it must refuse what is out of the format, or the fleet test proves nothing), the
 * controller's and the agent's registries (one per instance; several in one process), the
 * HTTP endpoint (only GET /metrics, TCP or unix socket) and the listen-address config keys
 * (off by default, a bad address stops the daemon with the key path).
 */
import t from 'tap';
import { request } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ControllerMetrics } from '../../controller/metrics/index.js';
import { AgentMetrics } from '../../agent/metrics.js';
import { parseControllerConfig, CONTROLLER_DEFAULTS } from '../../controller/config/index.js';
import { parseAgentConfig } from '../../agent/config.js';
import { parseMetricsAddress, serveMetrics, silentLogger } from '../../daemon/index.js';
import { isBulwarkError } from '../../lib/index.js';
import { parsePrometheusText, sampleSum, sampleValue } from '../helpers/prometheus.js';

/** One HTTP request to a TCP address or a unix socket: status, content type and body. */
function get(address: string, path: string, method = 'GET'): Promise<{ status: number; type: string; body: string }> {
  const target = address.startsWith('unix:') ? { socketPath: address.slice(5) } : { host: address.replace(/:\d+$/, '').replace(/^\[|\]$/g, ''), port: Number(/:(\d+)$/.exec(address)?.[1]) };
  return new Promise((resolve, reject) => {
    const req = request({ ...target, path, method }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body }));
    });
    req.on('error', reject);
    req.end();
  });
}

t.test('the parser reads a well-formed exposition and refuses what is out of the format', async (t) => {
  const good = [
    '# HELP a_total Things.',
    '# TYPE a_total counter',
    'a_total{code="X",msg="a \\"q\\" \\\\ \\n"} 3',
    'a_total{code="Y"} 0 1700000000000',
    '# TYPE h histogram',
    'h_bucket{le="0.1"} 1',
    'h_bucket{le="+Inf"} 2',
    'h_sum 0.3',
    'h_count 2',
    '# TYPE g gauge',
    'g NaN',
    '',
  ].join('\n');
  const parsed = parsePrometheusText(good);
  t.equal(parsed.get('a_total')?.type, 'counter');
  t.equal(sampleValue(parsed, 'a_total', { code: 'X' }), 3);
  t.equal(parsed.get('a_total')?.samples[0]?.labels['msg'], 'a "q" \\ \n', 'escapes decoded');
  t.equal(sampleValue(parsed, 'h_count'), 2);
  t.ok(Number.isNaN(sampleValue(parsed, 'g')), 'NaN');
  const bad: Array<[string, string, RegExp]> = [
    ['no final newline', 'a 1', /newline/],
    ['a bad escape', 'a{x="\\t"} 1\n', /bad escape/],
    ['an unterminated label value', 'a{x="1} 1\n', /unterminated|expected/],
    ['a value that is no number', 'a 1,5\n', /not a number|expected/],
    ['a series twice', 'a{x="1"} 1\na{x="1"} 2\n', /given twice/],
    ['TYPE after samples', 'a 1\n# TYPE a gauge\n', /after its samples/],
    ['a family split in two', '# TYPE a gauge\na 1\n# TYPE b gauge\nb 1\na{x="2"} 1\n', /not together/],
    ['an unknown type', '# TYPE a meter\n', /unknown type/],
    ['a negative counter', '# TYPE c_total counter\nc_total -1\n', /counter/],
    ['buckets not cumulative', '# TYPE h histogram\nh_bucket{le="1"} 3\nh_bucket{le="+Inf"} 2\nh_sum 1\nh_count 2\n', /cumulative/],
    ['no +Inf bucket', '# TYPE h histogram\nh_bucket{le="1"} 1\nh_sum 1\nh_count 1\n', /\+Inf/],
    ['_count unlike +Inf', '# TYPE h histogram\nh_bucket{le="+Inf"} 2\nh_sum 1\nh_count 3\n', /_count/],
    ['a reserved label', 'a{__name__="x"} 1\n', /reserved/],
    ['a label twice', 'a{x="1",x="2"} 1\n', /twice/],
    ['a bad metric name', '1a 1\n', /metric name/],
  ];
  for (const [what, text, why] of bad) t.throws(() => parsePrometheusText(text), why, what);
});

t.test('each controller has its own registry; the exposition parses; state gauges read their sources', async (t) => {
  const a = new ControllerMetrics({ replica: 'a', version: '9.9.9' });
  const b = new ControllerMetrics({ replica: 'b', version: '9.9.9' });
  a.round('untrusted', ['PCR_CHANGED_WITHIN_BOOT', 'PCR_CHANGED_WITHIN_BOOT', 'NONCE_EXPIRED'], 0.02);
  a.round('trusted', [], 0.01);
  a.nonceIssued();
  a.nonceConsumed('ok');
  a.nomadAction('set-ineligible', true);
  a.observe({
    nodeStates: async () => ['trusted', 'trusted', 'untrusted'],
    leases: () => [
      { name: 'verifier-scheduler', held: true },
      { name: 'nomad-reconciler', held: false },
    ],
    auditCheckpoint: async () => ({ at: Date.now() - 5000, signedBy: 'a' }),
    nomad: { address: 'http://127.0.0.1:4646', lastPassAt: () => Date.now() - 1000 },
  });
  const pa = parsePrometheusText(await a.withProcessMetrics().withProcessMetrics().registry.metrics());
  const pb = parsePrometheusText(await b.registry.metrics());
  t.equal(sampleValue(pa, 'bulwark_controller_info', { replica: 'a', version: '9.9.9' }), 1);
  t.equal(sampleValue(pa, 'bulwark_evidence_rounds_total', { verdict: 'untrusted' }), 1);
  t.equal(sampleValue(pa, 'bulwark_evidence_findings_total', { code: 'PCR_CHANGED_WITHIN_BOOT' }), 1, 'one per code per round');
  t.equal(sampleValue(pa, 'bulwark_evidence_findings_total', { code: 'NONCE_EXPIRED' }), 1);
  t.equal(sampleValue(pa, 'bulwark_verdict_duration_seconds_count', { verdict: 'trusted' }), 1);
  t.equal(sampleValue(pa, 'bulwark_nodes', { state: 'trusted' }), 2);
  t.equal(sampleValue(pa, 'bulwark_nodes', { state: 'stale' }), 0, 'every state listed');
  t.equal(sampleValue(pa, 'bulwark_lease_held', { lease: 'verifier-scheduler' }), 1);
  t.equal(sampleValue(pa, 'bulwark_lease_held', { lease: 'nomad-reconciler' }), 0);
  t.ok((sampleValue(pa, 'bulwark_audit_checkpoint_age_seconds', { signed_by: 'a' }) ?? 0) >= 5, 'checkpoint age');
  t.ok((sampleValue(pa, 'bulwark_nomad_reconcile_lag_seconds') ?? 0) >= 1, 'reconcile lag');
  t.equal(sampleValue(pa, 'bulwark_nomad_reconcile_actions_total', { action: 'set-ineligible', result: 'ok' }), 1);
  t.ok(pa.has('process_resident_memory_bytes'), 'process metrics');
  t.equal(sampleSum(pb, 'bulwark_evidence_rounds_total'), 0, 'the other controller counted nothing');
  t.notOk(pb.has('process_resident_memory_bytes'), 'process metrics only once served');
  t.equal(sampleValue(pb, 'bulwark_audit_checkpoint_age_seconds'), undefined, 'no checkpoint age without a checkpoint');
  t.equal(sampleValue(pb, 'bulwark_nomad_reconcile_lag_seconds'), undefined, 'no lag without Nomad');
});

t.test('the agent registry: quote latency, round failures, log sizes', async (t) => {
  const m = new AgentMetrics();
  m.quoted(0.05);
  m.failed('NATS_FAILED');
  m.sent({ eventLog: new Uint8Array(100), imaFromOffset: 1000, imaEntries: new Uint8Array(50), baselineFrom: 2, baselineReports: [new Uint8Array(10), new Uint8Array(5)] });
  m.answered('trusted');
  const p = parsePrometheusText(await m.registry.metrics());
  t.equal(sampleValue(p, 'bulwark_agent_quote_duration_seconds_count'), 1);
  t.equal(sampleValue(p, 'bulwark_agent_round_failures_total', { code: 'NATS_FAILED' }), 1);
  t.equal(sampleValue(p, 'bulwark_agent_event_log_bytes'), 100);
  t.equal(sampleValue(p, 'bulwark_agent_ima_sent_bytes_total'), 50);
  t.equal(sampleValue(p, 'bulwark_agent_ima_offset_bytes'), 1050);
  t.equal(sampleValue(p, 'bulwark_agent_baseline_report_log_entries'), 4);
  t.equal(sampleValue(p, 'bulwark_agent_baseline_sent_bytes_total'), 15);
  t.equal(sampleValue(p, 'bulwark_agent_rounds_total', { verdict: 'trusted' }), 1);
});

t.test('the endpoint serves GET /metrics only, on TCP and on a unix socket', async (t) => {
  const m = new ControllerMetrics({ replica: 'http' });
  const tcp = await serveMetrics(m.registry, '127.0.0.1:0', silentLogger());
  t.teardown(() => tcp.close());
  t.match(tcp.address, /^127\.0\.0\.1:\d+$/);
  const ok = await get(tcp.address, '/metrics');
  t.equal(ok.status, 200);
  t.match(ok.type, /^text\/plain; version=0\.0\.4/);
  t.ok(parsePrometheusText(ok.body).has('bulwark_nodes'));
  t.equal((await get(tcp.address, '/')).status, 404);
  t.equal((await get(tcp.address, '/metrics/../admin')).status, 404);
  t.equal((await get(tcp.address, '/metrics', 'POST')).status, 405);
  t.equal((await get(tcp.address, '/metrics', 'HEAD')).status, 200);
  const dir = await mkdtemp(join(tmpdir(), 'bulwark-metrics-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const unix = await serveMetrics(new AgentMetrics().registry, `unix:${join(dir, 'metrics.sock')}`, silentLogger());
  t.teardown(() => unix.close());
  const viaSocket = await get(unix.address, '/metrics');
  t.equal(viaSocket.status, 200);
  t.ok(parsePrometheusText(viaSocket.body).has('bulwark_agent_quote_duration_seconds'));
  await t.rejects(serveMetrics(m.registry, tcp.address, silentLogger()), { code: 'IO_FAILED' }, 'an address in use fails the start');
});

t.test('listen addresses: off by default, checked with the key path', async (t) => {
  t.equal(CONTROLLER_DEFAULTS.metricsListen, null, 'the controller serves no metrics unless configured');
  t.equal(parseAgentConfig([], {}).metricsListen, null, 'nor does the agent');
  t.same(parseMetricsAddress('[::1]:9464'), { kind: 'tcp', host: '::1', port: 9464 });
  t.same(parseMetricsAddress('unix:/run/bulwark/agent-metrics.sock'), { kind: 'unix', path: '/run/bulwark/agent-metrics.sock' });
  t.equal(parseControllerConfig([{ metricsListen: '127.0.0.1:9464' }], {}).metricsListen, '127.0.0.1:9464');
  t.equal(parseControllerConfig([], { BULWARK_METRICS_LISTEN: '127.0.0.1:1' }).metricsListen, '127.0.0.1:1');
  for (const [layers, env] of [
    [[{ metricsListen: '127.0.0.1:70000' }], {}],
    [[{ metricsListen: 'unix:/run/x.sock' }], {}],
    [[{ metricsListen: 9464 }], {}],
  ] as const) {
    try {
      parseControllerConfig(layers, env);
      t.fail(`${JSON.stringify(layers)} accepted`);
    } catch (err) {
      t.ok(isBulwarkError(err) && err.code === 'CONFIG_INVALID' && err.details['key'] === 'metricsListen', `${JSON.stringify(layers)}: CONFIG_INVALID at metricsListen`);
    }
  }
  t.equal(parseAgentConfig([{ metricsListen: 'unix:/run/bulwark/agent-metrics.sock' }], {}).metricsListen, 'unix:/run/bulwark/agent-metrics.sock');
  t.throws(() => parseAgentConfig([{ metricsListen: 'unix:relative.sock' }], {}), { code: 'CONFIG_INVALID' });
  t.throws(() => parseAgentConfig([{ metricsListen: '0.0.0.0:99999' }], {}), { code: 'CONFIG_INVALID' });
});
