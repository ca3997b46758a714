/**
 * Evidence rounds per second through the controller's NATS path, with the production
 * transport (TLS from the controller CA, an nkey per client, node-scoped permissions and
 * inboxes) against the same over a plain nats-server with neither, both measured in one run.
 *
 * A round is what an agent does: a nonce request on `bulwark.v1.nonce.<node>`, a quote by a
 * software AK (test/helpers/soft-tpm.ts, so no TPM is the bottleneck), evidence on
 * `bulwark.v1.evidence.<node>`, and the verdict reply. The controller side is the same
 * request/reply wiring controller/controller.ts installs (queue subscriptions on the
 * node-scoped subjects, the subject/body node check, refusals in a header) over a real
 * ControllerStore and Verifier: nonce in KV, quote verify, node record update, audit append,
 * trust event. No appraisers run (no event log or IMA in the evidence), so the figure is the
 * transport, KV and quote cost the TLS and authentication are judged against.
 *
 * Both servers are up for the whole run and measured in alternating passes; the best pass of
 * each is reported. Test code only.
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect, headers, type ConnectionOptions, type Msg, type NatsConnection, type Subscription } from 'nats';
import { natsClientAuthOptions } from '../../daemon/index.js';
import { createNkeyUser, NODE_SUBJECTS, parseNatsNodeId } from '../../lib/nats-auth/index.js';
import { toBulwarkError } from '../../lib/index.js';
import { ControllerStore, ERROR_HEADER, NatsServerProcess, TrustEvents, Verifier } from '../../controller/index.js';
import { requestNodeId } from '../../controller/controller.js';
import { startEmbeddedNats, type EmbeddedNats } from '../../controller/nats-auth/index.js';
import { wire } from '../../proto/wire.js';
import { QUOTED_SPEC, SoftTpm } from '../helpers/soft-tpm.js';
import { makeTempDir, removeDir } from '../helpers/swtpm.js';
import { enrolledRecord, evidenceFrom } from '../controller/state-bed.js';
import { requestChallenge, sendEvidence } from '../helpers/rounds.js';
import { printResults, type BenchResult } from './result.js';

const QUEUE = 'bulwark-verifiers';

/** One software-AK host and its own NATS connection. */
interface BenchNode {
  readonly nodeId: string;
  readonly tpm: SoftTpm;
  readonly nc: NatsConnection;
}

/** A controller side (store, verifier, subscriptions) and its nodes on one server. */
interface Bed {
  readonly label: string;
  readonly nodes: readonly BenchNode[];
  close(): Promise<void>;
}

/** Replies to a request as the controller does: the produced bytes, or a refusal code in a header. */
async function answer(msg: Msg, produce: () => Promise<Uint8Array>): Promise<void> {
  try {
    msg.respond(await produce());
  } catch (err) {
    const e = toBulwarkError(err, 'INTERNAL', 'request failed');
    const h = headers();
    h.set(ERROR_HEADER, e.code);
    h.set('Bulwark-Message', e.message.slice(0, 200));
    msg.respond(new Uint8Array(0), { headers: h });
  }
}

/** The controller's nonce and evidence subscriptions (controller/controller.ts start()). */
function serve(nc: NatsConnection, verifier: Verifier): Subscription[] {
  return [
    nc.subscribe(NODE_SUBJECTS.nonceAll, {
      queue: QUEUE,
      callback: (err, msg) => {
        if (err === null) void answer(msg, async () => wire.challenge.encode(await verifier.requestChallenge(requestNodeId('nonce', msg.subject, wire.nonceRequest.decode(msg.data).nodeId))));
      },
    }),
    nc.subscribe(NODE_SUBJECTS.evidenceAll, {
      queue: QUEUE,
      callback: (err, msg) => {
        if (err === null)
          void answer(msg, async () => {
            const evidence = wire.evidence.decode(msg.data);
            requestNodeId('evidence', msg.subject, evidence.nodeId);
            return wire.evidenceReply.encode(await verifier.handleEvidence(evidence));
          });
      },
    }),
  ];
}

/** Opens the store and verifier on `controllerNc`, enrolls the nodes and connects each with `nodeOptions`. */
async function openBed(
  label: string,
  controllerNc: NatsConnection,
  nodeCount: number,
  url: string,
  nodeOptions: (nodeId: string, index: number) => Promise<Partial<ConnectionOptions>>,
  stopServer: () => Promise<void>,
): Promise<Bed> {
  const store = await ControllerStore.open(controllerNc);
  const verifier = new Verifier(store, new TrustEvents(store), { pcrSelection: QUOTED_SPEC, nonceTtlMs: 60_000, staleAfterMs: 600_000 });
  const subs = serve(controllerNc, verifier);
  await controllerNc.flush();
  const nodes: BenchNode[] = [];
  for (let i = 0; i < nodeCount; i++) {
    const nodeId = `bench-${i}`;
    const tpm = new SoftTpm();
    await store.putNode(enrolledRecord(nodeId, tpm, new Date().toISOString()), 0);
    nodes.push({ nodeId, tpm, nc: await connect({ servers: url, name: nodeId, ...(await nodeOptions(nodeId, i)) }) });
  }
  return {
    label,
    nodes,
    async close() {
      for (const n of nodes) await n.nc.close();
      for (const s of subs) s.unsubscribe();
      await controllerNc.close();
      await stopServer();
    },
  };
}

/** The production transport: the embedded server (TLS, nkeys), one nkey and permission set per node. */
async function openAuthenticated(root: string, nodeCount: number): Promise<Bed> {
  const server: EmbeddedNats = await startEmbeddedNats({ dataDir: join(root, 'auth'), port: 0 });
  const users = Array.from({ length: nodeCount }, () => createNkeyUser());
  await server.setNodes(users.map((u, i) => ({ nodeId: parseNatsNodeId(`bench-${i}`), publicKey: u.publicKey })));
  const controllerNc = await connect({ servers: server.url, ...(await natsClientAuthOptions({ credentials: { kind: 'nkey', seedFile: server.seedFile }, caFile: server.caFile })) });
  return openBed(
    'TLS + nkey',
    controllerNc,
    nodeCount,
    server.url,
    async (nodeId, i) => {
      const seed = users[i]?.seed ?? '';
      return natsClientAuthOptions({ credentials: { kind: 'nkey-seed', seed: () => seed }, caFile: server.caFile, nodeId: parseNatsNodeId(nodeId) });
    },
    () => server.stop(),
  );
}

/** The same without TLS or authentication: a plain `nats-server -js` (node inboxes kept, for the same subjects). */
async function openPlain(root: string, nodeCount: number): Promise<Bed> {
  const server = await NatsServerProcess.start({ storeDir: join(root, 'plain', 'nats') });
  const controllerNc = await connect({ servers: server.url });
  return openBed('plain', controllerNc, nodeCount, server.url, async (nodeId) => ({ inboxPrefix: NODE_SUBJECTS.inboxPrefix(parseNatsNodeId(nodeId)) }), () => server.stop());
}

/** Each node runs `rounds` rounds one after another, all nodes at once; rounds per second overall. */
async function measure(bed: Bed, rounds: number): Promise<number> {
  const start = performance.now();
  await Promise.all(
    bed.nodes.map(async (n) => {
      for (let r = 0; r < rounds; r++) {
        const ch = await requestChallenge(n.nc, n.nodeId);
        const reply = await sendEvidence(n.nc, evidenceFrom(n.nodeId, n.tpm, ch.nonce, { round: r + 1 }));
        if (reply.verdict !== 'trusted') throw new Error(`${bed.label}: ${n.nodeId} round ${r}: ${reply.verdict} ${reply.findings.map((f) => f.code).join(',')}`);
      }
    }),
  );
  return (bed.nodes.length * rounds) / ((performance.now() - start) / 1000);
}

/** Evidence rounds per second with TLS and nkey authentication, against a plain server, same run. */
export async function benchControlPlane(opts: { nodes?: number; rounds?: number; passes?: number } = {}): Promise<BenchResult[]> {
  const nodeCount = opts.nodes ?? 4;
  const rounds = opts.rounds ?? 250;
  const passes = opts.passes ?? 5;
  const root = await makeTempDir('bench-control-plane');
  const beds: Bed[] = [];
  try {
    const auth = await openAuthenticated(root, nodeCount);
    beds.push(auth);
    const plain = await openPlain(root, nodeCount);
    beds.push(plain);
    // Warm-up: connections, JIT, KV buckets and the nodes' first (state-changing) round.
    await measure(plain, 20);
    await measure(auth, 20);
    let bestPlain = 0;
    let bestAuth = 0;
    for (let p = 0; p < passes; p++) {
      bestPlain = Math.max(bestPlain, await measure(plain, rounds));
      bestAuth = Math.max(bestAuth, await measure(auth, rounds));
    }
    const label = `${nodeCount} nodes x ${rounds} rounds, best of ${passes}`;
    const baseName = `plain NATS, no auth (${label})`;
    return [
      { name: baseName, value: bestPlain, unit: 'rounds/s' },
      {
        name: `TLS + nkey NATS (${label})`,
        value: bestAuth,
        unit: 'rounds/s',
        baseline: { name: 'plain', value: bestPlain },
        ratio: bestAuth / bestPlain,
        target: '≥ 0.8',
      },
    ];
  } finally {
    for (const b of beds) await b.close().catch(() => undefined);
    await removeDir(root);
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  printResults(await benchControlPlane());
}
