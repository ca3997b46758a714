/**
 * Writes the event log fixtures of test/fixtures/eventlog/: NAME.bin made by the log
 * builder (test/helpers/eventlog-builder.ts) and NAME.json with what a reader must get —
 * the PCR values from the builder's own arithmetic (not from lib/eventlog), the TPM's
 * values for quirk fixtures, and where tpm2_eventlog 5.4 disagrees. Run by hand:
 *
 *   npx tsc -p . && node dist/test/lib/eventlog/make-fixtures.js
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildBootLog, type BootScenario, type BuiltBoot } from '../../helpers/eventlog-builder.js';
import { fixtureDir, tpm2Eventlog } from './eventlog-helpers.js';

interface Spec {
  readonly name: string;
  readonly description: string;
  readonly scenario: Partial<BootScenario>;
  readonly quirks?: readonly string[];
}

const SPECS: readonly Spec[] = [
  {
    name: 'debian-secureboot-sha1-sha256',
    description: 'Debian-style Secure Boot chain (shim, GRUB, kernel) on OVMF-like firmware, sha1+sha256, StartupLocality 0, 40 measured events',
    scenario: {},
  },
  {
    name: 'debian-secureboot-400-events',
    description: 'the same chain padded with 180 GRUB insmod commands and module files to 400 measured events',
    scenario: { padTo: 400 },
  },
  {
    name: 'secure-boot-off',
    description: 'the same chain with SecureBoot = 0, sha256 only, no StartupLocality event',
    scenario: { secureBoot: false, banks: ['sha256'], startupLocality: null },
  },
  {
    name: 'startup-locality-3',
    description: 'StartupLocality 3 (PCR 0 starts at 0x00..03), sha1+sha256+sha384, and the Linux EFI stub initrd EV_EVENT_TAG in PCR 9',
    scenario: { startupLocality: 3, banks: ['sha1', 'sha256', 'sha384'], efistubInitrdTag: true },
  },
  {
    name: 'quirk-exit-boot-services-not-logged',
    description: 'quirk EXIT_BOOT_SERVICES_NOT_LOGGED: the TPM got the two ExitBootServices EV_EFI_ACTION strings in PCR 5, the log does not have them',
    scenario: { exitBootServicesLogged: false },
    quirks: ['EXIT_BOOT_SERVICES_NOT_LOGGED'],
  },
  {
    name: 'quirk-shim-authority-trailing-octet',
    description: "quirk SHIM_AUTHORITY_TRAILING_OCTET: shim's Shim authority event in PCR 7 carries one octet more than it hashed",
    scenario: { shimAuthorityTrailingOctet: true },
    quirks: ['SHIM_AUTHORITY_TRAILING_OCTET'],
  },
];

function pcrsJson(built: BuiltBoot, loggedOnly: boolean): Record<string, Record<string, string>> {
  // The replay of the log: only logged events; the TPM's values: every measurement.
  const b = built.builder;
  const saved = b.events.slice();
  if (loggedOnly) b.events.splice(0, b.events.length, ...saved.filter((e) => e.logged));
  const values = b.expectedPcrs(built.scenario.startupLocality);
  b.events.splice(0, b.events.length, ...saved);
  return Object.fromEntries([...values].map(([bank, m]) => [bank, Object.fromEntries([...m].map(([p, v]) => [String(p), v]))]));
}

const dir = fixtureDir();
const tmp = await mkdtemp(join(tmpdir(), 'bulwark-evfix-'));
try {
  for (const spec of SPECS) {
    const built = buildBootLog(spec.scenario);
    const logPcrs = pcrsJson(built, true);
    const tpmPcrs = pcrsJson(built, false);
    const path = join(tmp, `${spec.name}.bin`);
    await writeFile(path, built.bytes);
    const tool = await tpm2Eventlog(path);
    const differs: number[] = [];
    if (tool.ok) {
      for (const [bank, m] of Object.entries(logPcrs)) {
        for (const [pcr, hex] of Object.entries(m)) {
          const t = [...tool.pcrs].find(([b]) => b === bank)?.[1].get(Number(pcr));
          if (t !== hex && !differs.includes(Number(pcr))) differs.push(Number(pcr));
        }
      }
    }
    const json = {
      description: spec.description,
      made: `buildBootLog(${JSON.stringify(spec.scenario)}) in test/helpers/eventlog-builder.ts, written by test/lib/eventlog/make-fixtures.ts`,
      events: built.builder.events.filter((e) => e.logged).length + (built.scenario.startupLocality === null ? 0 : 1),
      banks: built.scenario.banks,
      startupLocality: built.scenario.startupLocality,
      secureBoot: built.scenario.secureBoot,
      pcrs: logPcrs,
      ...(spec.quirks === undefined ? {} : { quirks: spec.quirks }),
      ...(JSON.stringify(tpmPcrs) === JSON.stringify(logPcrs) ? {} : { tpmPcrs }),
      ...(differs.length === 0
        ? {}
        : {
            tpm2EventlogDiffers: {
              pcrs: differs,
              reason: 'tpm2_eventlog 5.4 extends the StartupLocality EV_NO_ACTION event (a zero digest) into PCR 0 instead of seeding PCR 0 with the locality',
            },
          }),
    };
    await writeFile(join(dir, `${spec.name}.bin`), built.bytes);
    await writeFile(join(dir, `${spec.name}.json`), `${JSON.stringify(json, null, 2)}\n`);
    process.stdout.write(`${spec.name}: ${built.bytes.length} octets, ${json.events} events${differs.length > 0 ? `, tpm2_eventlog differs on PCR ${differs.join(',')}` : ''}${tool.ok ? '' : ', tpm2_eventlog failed'}\n`);
  }
  // A cut-off log: the default log without its last 10 octets.
  const cut = buildBootLog().bytes;
  await writeFile(join(dir, 'truncated.bin'), cut.subarray(0, cut.length - 10));
  await writeFile(
    join(dir, 'truncated.json'),
    `${JSON.stringify({ description: 'debian-secureboot-sha1-sha256 without its last 10 octets (cut inside the last event)', made: 'buildBootLog().bytes.subarray(0, length - 10)', error: 'EVENTLOG_TRUNCATED' }, null, 2)}\n`,
  );
} finally {
  await rm(tmp, { recursive: true, force: true });
}
