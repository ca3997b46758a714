/**
 * The agent's systemd log source on the recorded UKI boot (test/fixtures/eventlog/uki/):
 * it sends the log whole, sends nothing when the file is absent, and refuses (CONFIG_INVALID)
 * a baseline PCR the boot's logs extend — PCR 13 (systemd-stub's sysexts) or 15 (systemd).
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import { SystemdLogSource } from '../../agent/systemd-log-source.js';
import { UKI_DIR } from '../lib/eventlog/uki-helpers.js';

const SD = `${UKI_DIR}tpm2-measure.log`;
const FW = `${UKI_DIR}binary_bios_measurements`;

t.test('sends the recorded log whole, every round', async (t) => {
  const source = new SystemdLogSource({ path: SD, firmwareLogPath: FW, baselinePcr: 18 });
  const fields = await source.collect();
  t.same(Buffer.from(fields.systemdLog ?? []), readFileSync(SD));
  source.acknowledge();
  t.same(Buffer.from((await source.collect()).systemdLog ?? []), readFileSync(SD), 'again after an acknowledgement');
});

t.test('no file: no log', async (t) => {
  t.same(await new SystemdLogSource({ path: `${UKI_DIR}no-such-log`, firmwareLogPath: null, baselinePcr: 13 }).collect(), {});
});

t.test('a baseline PCR the boot extends is refused', async (t) => {
  await t.rejects(new SystemdLogSource({ path: SD, firmwareLogPath: FW, baselinePcr: 13 }).collect(), { code: 'CONFIG_INVALID', details: { pcr: 13 } }, 'PCR 13: the stub measured a sysext');
  await t.rejects(new SystemdLogSource({ path: SD, firmwareLogPath: null, baselinePcr: 15 }).collect(), { code: 'CONFIG_INVALID', details: { pcr: 15 } }, 'PCR 15: systemd measured the machine id');
  t.ok((await new SystemdLogSource({ path: SD, firmwareLogPath: FW, baselinePcr: null }).collect()).systemdLog, 'no baseline reports: nothing to refuse');
});
