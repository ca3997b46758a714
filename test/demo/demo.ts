/**
 * `npm run demo`: a small local fleet from the real binaries. One bulwark-controller
 * (with its embedded nats-server), three hosts each with its own provisioned swtpm and a
 * bulwark-agent process, bulwarkctl showing their trust states, then a tamper (a boot PCR
 * extended behind the controller's back) caught with its reason. Cleans up after itself.
 */
import { execa, type ResultPromise } from 'execa';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { buildBootLog } from '../helpers/eventlog-builder.js';
import { CONTROLLER_MAIN, CTL_MAIN } from '../helpers/fleet.js';
import { keySetDocument, keySetEnvelope, signPolicy, testKey } from '../helpers/signing.js';
import { createTestCa, exportCaBundle, freePort, makeTempDir, provisionTpm, removeDir, SwtpmProcess } from '../helpers/swtpm.js';

const AGENT_MAIN = join(CONTROLLER_MAIN, '..', '..', 'agent', 'main.js');
const HOSTS = ['host-1', 'host-2', 'host-3'];

const bold = (s: string): string => (process.stdout.isTTY ? `\x1b[1m${s}\x1b[0m` : s);
const say = (s: string): void => {
  process.stdout.write(`\n${bold(`== ${s}`)}\n`);
};

/** The admin credential set the controller wrote in its data directory on first start. */
let adminCredentials = '';

async function ctl(grpc: string, args: readonly string[]): Promise<{ code: number; out: string }> {
  const r = await execa('node', [CTL_MAIN, '--controller', grpc, '--credentials', adminCredentials, ...args], { reject: false });
  return { code: r.exitCode ?? -1, out: `${r.stdout}${r.stderr === '' ? '' : `\n${r.stderr}`}` };
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function nodeStates(grpc: string): Promise<Map<string, string>> {
  const r = await ctl(grpc, ['nodes', '--json']);
  if (r.code !== 0) return new Map();
  const list: unknown = JSON.parse(r.out);
  const out = new Map<string, string>();
  if (Array.isArray(list)) {
    for (const n of list) {
      const id: unknown = Reflect.get(n, 'nodeId');
      const state: unknown = Reflect.get(n, 'state');
      if (typeof id === 'string' && typeof state === 'string') out.set(id, state);
    }
  }
  return out;
}

async function main(): Promise<void> {
  const root = await makeTempDir('demo');
  const children: ResultPromise[] = [];
  const tpms: SwtpmProcess[] = [];
  const agentLogs: string[] = [];
  /** The last lines each agent logged, so a failed demo says why before its files are removed. */
  const showAgentLogs = async (): Promise<void> => {
    for (const log of agentLogs) {
      const text = await readFile(log, 'utf8').catch(() => '');
      const tail = text.trim().split('\n').slice(-8).join('\n');
      process.stderr.write(`--- last lines of ${log}\n${tail}\n`);
    }
  };
  const cleanup = async (): Promise<void> => {
    for (const c of children.reverse()) {
      if (c.exitCode === null) c.kill('SIGTERM');
      await Promise.race([c.catch(() => undefined), new Promise((r) => setTimeout(r, 5000))]);
      if (c.exitCode === null) c.kill('SIGKILL');
    }
    for (const t of tpms) await t.stop();
    await removeDir(root);
  };
  process.once('SIGINT', () => void cleanup().then(() => process.exit(130)));

  try {
    say('Provisioning three software TPMs with EK certificates from a local CA, each measuring a UEFI boot');
    const ca = await createTestCa(join(root, 'ca'));
    for (const host of HOSTS) {
      await provisionTpm(ca, join(root, host, 'tpm'));
      const tpm = await SwtpmProcess.start(join(root, host, 'tpm'));
      tpms.push(tpm);
      // No kernel here exposes an event log: each host gets a generated one, its digests
      // extended into its swtpm as firmware would have.
      const boot = buildBootLog();
      await mkdir(join(root, host, 'agent'), { recursive: true });
      await writeFile(join(root, host, 'agent', 'binary_bios_measurements'), boot.bytes);
      await boot.builder.extendInto(tpm, ['sha256']);
      process.stdout.write(`  ${host}: swtpm on ${tpm.tcti}, event log of ${boot.bytes.length} bytes\n`);
    }
    await exportCaBundle(ca);

    say('Starting bulwark-controller (it starts its own nats-server with JetStream, TLS from its CA and an nkey per node)');
    const grpcPort = await freePort();
    const controllerConfig = join(root, 'controller.json');
    await writeFile(
      controllerConfig,
      JSON.stringify({
        dataDir: join(root, 'controller'),
        natsPort: 0,
        grpcListen: `127.0.0.1:${grpcPort}`,
        ekCaDir: ca.bundleDir,
        // The demo's own TPMs enroll at once; a real fleet keeps the default, approve.
        enrollment: 'open',
        // The demo hosts carry no host baseline yet: a node without one gets a note, not POLICY_MISSING.
        requireBaseline: false,
        intervalMs: 2000,
        pullIntervalMs: 3000,
        staleAfterMs: 10_000,
      }),
    );
    const controller = execa('node', [CONTROLLER_MAIN, '--config', controllerConfig], { reject: false, stdout: 'pipe', stderr: 'ignore' });
    children.push(controller);
    const ready = await new Promise<{ grpc: string; nats: string }>((resolve, reject) => {
      let buf = '';
      controller.stdout?.on('data', (d: Buffer) => {
        buf += d.toString();
        const line = buf.split('\n').find((l) => l.includes('"ready"'));
        if (line !== undefined) {
          const v: unknown = JSON.parse(line);
          resolve({ grpc: String(Reflect.get(Object(v), 'grpc')), nats: String(Reflect.get(Object(v), 'nats')) });
        }
      });
      void controller.then(() => reject(new Error('the controller exited')));
    });
    adminCredentials = join(root, 'controller', 'credentials', 'admin');
    process.stdout.write(`  gRPC ${ready.grpc} (TLS 1.3, client certificates), NATS ${ready.nats}\n`);
    process.stdout.write(`  admin credentials: ${adminCredentials}; agents pin ${join(root, 'controller', 'ca', 'ca.pem')}\n`);

    // With no measured-boot policy a node is untrusted (POLICY_MISSING): each host gets the
    // reference policy made from its own known-good event log.
    // Policies are pushed signed (DSSE): the measured-boot key set is installed first. An
    // operator signs with an HSM key (bulwarkctl sign); the demo signs with a PEM key.
    say('Installing the trusted measured-boot key set (bulwarkctl keys init), with a demo signing key');
    const signingKey = testKey('demo-key-1');
    const keySetPath = join(root, 'measured-boot.keyset.dsse.json');
    await writeFile(keySetPath, await keySetEnvelope(keySetDocument('measured-boot', 1, 1, [signingKey]), [signingKey]));
    const init = await ctl(ready.grpc, ['keys', 'init', 'measured-boot', keySetPath]);
    if (init.code !== 0) throw new Error(`bulwarkctl keys init failed: ${init.out}`);
    say('Creating a measured-boot policy from each host\'s own event log, signing, pushing and assigning it');
    for (const host of HOSTS) {
      const created = await execa('node', [CTL_MAIN, 'policy', 'measured-boot', 'create', '--from-eventlog', join(root, host, 'agent', 'binary_bios_measurements'), '--name', host], { reject: false });
      if (created.exitCode !== 0) throw new Error(`policy create for ${host} failed: ${created.stderr}`);
      const policyPath = join(root, `${host}.policy.dsse.json`);
      await writeFile(policyPath, await signPolicy('measured-boot', created.stdout, [signingKey]));
      for (const args of [
        ['policy', 'push', 'measured-boot', host, policyPath],
        ['policy', 'assign', 'measured-boot', host, '--node', host],
      ]) {
        const r = await ctl(ready.grpc, args);
        if (r.code !== 0) throw new Error(`bulwarkctl ${args.join(' ')} failed: ${r.out}`);
      }
      process.stdout.write(`  bulwarkctl policy assign measured-boot ${host} --node ${host}\n`);
    }

    say('Starting one bulwark-agent per host: enroll (EK certificate, AK, credential activation), then attest every 2 s');
    for (const [i, host] of HOSTS.entries()) {
      const dataDir = join(root, host, 'agent');
      await mkdir(dataDir, { recursive: true });
      const config = join(dataDir, 'agent.json');
      const tpm = tpms[i];
      if (tpm === undefined) throw new Error('missing TPM');
      // The agent pins the controller's CA, for gRPC and for its embedded NATS server (both chain to it).
      const caFile = join(root, 'controller', 'ca', 'ca.pem');
      const eventLogPath = join(dataDir, 'binary_bios_measurements');
      await writeFile(config, JSON.stringify({ tcti: tpm.tcti, controller: ready.grpc, controllerCa: caFile, dataDir, nodeId: host, natsCaFile: caFile, intervalMs: 2000, toolTimeoutMs: 20_000, eventLogPath, imaLogPath: null }));
      // The agent's log lines go to a file of the demo, shown if the demo fails.
      const log = join(dataDir, 'agent.log');
      agentLogs.push(log);
      const agent = execa('node', [AGENT_MAIN, 'run', '--config', config], { reject: false, stdout: { file: log }, stderr: { file: log, append: true } });
      children.push(agent);
    }
    await waitFor('three trusted nodes', async () => [...(await nodeStates(ready.grpc)).values()].filter((s) => s === 'trusted').length === HOSTS.length, 60_000);

    say('bulwarkctl nodes');
    process.stdout.write((await ctl(ready.grpc, ['nodes'])).out + '\n');

    say('Tampering with host-2: extending PCR 7 (Secure Boot policy) behind the controller\'s back');
    const victim = tpms[1];
    if (victim === undefined) throw new Error('missing TPM');
    const digest = randomBytes(32).toString('hex');
    await victim.extendPcr(7, digest);
    process.stdout.write(`  tpm2_pcrextend 7:sha256=${digest.slice(0, 16)}...\n`);
    const t0 = Date.now();
    await waitFor('host-2 to turn untrusted', async () => (await nodeStates(ready.grpc)).get('host-2') === 'untrusted', 30_000);
    process.stdout.write(`  caught after ${Date.now() - t0} ms (next attestation round)\n`);

    say('bulwarkctl nodes');
    process.stdout.write((await ctl(ready.grpc, ['nodes'])).out + '\n');
    say('bulwarkctl node host-2');
    const detail = await ctl(ready.grpc, ['node', 'host-2']);
    process.stdout.write(`${detail.out}\n  (exit code ${detail.code}: the node is not trusted)\n`);

    say('Stopping the fleet');
  } catch (err) {
    await showAgentLogs();
    throw err;
  } finally {
    await cleanup();
  }
  process.stdout.write('done: every process stopped, temporary files removed\n');
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`demo failed: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
