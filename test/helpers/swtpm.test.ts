/**
 * The swtpm helper itself: it starts a provisioned TPM that answers commands, holds EK
 * certificates issued by the test CA, reboots (a TPM reset), and really stops.
 */
import t from 'tap';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parsePemBundle } from '../../lib/tpm/ekcert.js';
import { makeTempDir, removeDir, startTestTpms } from './swtpm.js';

/** resetCount as tpm2_readclock prints it (YAML: "reset_count: N"). */
async function resetCount(tool: (cmd: string, args: readonly string[]) => Promise<string>): Promise<number> {
  const m = /reset_count:\s*(\d+)/.exec(await tool('tpm2_readclock', []));
  if (m?.[1] === undefined) throw new Error('tpm2_readclock printed no reset_count');
  return Number(m[1]);
}

t.test('a provisioned swtpm answers, holds EK certificates, reboots and stops', async (t) => {
  const root = await makeTempDir('swtpm');
  const fleet = await startTestTpms(root, 1);
  t.teardown(async () => {
    await fleet.stop();
    await removeDir(root);
  });
  const [tpm] = fleet.tpms;
  if (tpm === undefined) return t.fail('no TPM was started');
  const tool = (cmd: string, args: readonly string[]): Promise<string> => tpm.tool(cmd, args);

  t.match(await tool('tpm2_getrandom', ['--hex', '8']), /^[0-9a-f]{16}$/, 'the TPM answers a command');
  const handles = await tool('tpm2_getcap', ['handles-nv-index']);
  t.match(handles, /0x1c00002/i, 'RSA EK certificate index');
  t.match(handles, /0x1c00016/i, 'ECC P-384 EK certificate index');
  const bundle = await readdir(fleet.ca.bundleDir);
  const pems = await Promise.all(bundle.map((f) => readFile(join(fleet.ca.bundleDir, f), 'utf8')));
  t.equal(pems.flatMap((p) => parsePemBundle(p)).length, 2, 'the CA bundle holds the root and the issuer');

  await tpm.extendPcr(16, '11'.repeat(32));
  t.notMatch(await tool('tpm2_pcrread', ['sha256:16']), /0x0{64}/, 'PCR 16 extended');
  const resetsBefore = await resetCount(tool);
  await tpm.reboot();
  t.match(await tool('tpm2_pcrread', ['sha256:16']), /0x0{64}/i, 'PCR 16 is zero after the reboot');
  t.equal(await resetCount(tool), resetsBefore + 1, 'the reboot is a TPM reset (resetCount grew)');

  await tpm.stop();
  await t.rejects(tool('tpm2_getrandom', ['--hex', '8']), 'a stopped TPM answers nothing');
});
