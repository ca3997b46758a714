import t from 'tap';
import { join } from 'node:path';
import { makeTempDir, removeDir, startTestTpms } from './swtpm.js';

t.test('a provisioned swtpm holds EK certificates and reboots', async (t) => {
  const root = await makeTempDir('swtpm');
  const fleet = await startTestTpms(root, 1);
  t.teardown(async () => {
    await fleet.stop();
    await removeDir(root);
  });
  const tpm = fleet.tpms[0]!;
  const handles = await tpm.tool('tpm2_getcap', ['handles-nv-index']);
  t.match(handles, /0x1c00002/i);
  t.match(handles, /0x1c00016/i);
  await tpm.extendPcr(16, '11'.repeat(32));
  const before = await tpm.tool('tpm2_pcrread', ['sha256:16']);
  t.notMatch(before, /0x0{64}/);
  await tpm.reboot();
  const after = await tpm.tool('tpm2_pcrread', ['sha256:16']);
  t.match(after, /0x0{64}/i);
  t.ok(join(root, 'ca'));
});
