/**
 * TPM objects on a real swtpm for tests, through tpm2-tools: EK publics and certificates
 * from the provisioned handles and NV indices, persisted AKs, and credential activation.
 * swtpm has no resource manager, so every command that loads a context is followed by
 * flushing transient objects and sessions.
 */
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { TPMA_OBJECT, type TpmtPublic } from '../../../lib/tpm/types.js';
import { HASH_ALGS } from '../../../lib/tpm/types.js';
import type { SwtpmProcess } from '../../helpers/swtpm.js';

/** Handles and NV indices swtpm_setup provisions, and the ones these tests persist AKs at. */
export const HANDLE = {
  rsaEk: '0x81010001',
  eccP384Ek: '0x81010016',
  rsaAk: '0x81010002',
  eccAk: '0x81010003',
} as const;

export const NV_INDEX = {
  rsaEkCert: '0x1c00002',
  eccP384EkCert: '0x1c00016',
} as const;

/** TPM2B_PUBLIC as tpm2_readpublic -o writes it, the Name from -n, and the Name tpm2-tools prints. */
export interface ToolPublic {
  readonly tpm2b: Uint8Array;
  readonly name: Uint8Array;
  readonly printedName: string;
  /** objectAttributes as tpm2_readpublic prints them ("raw: 0x..."). */
  readonly printedAttributes: number;
}

async function flush(tpm: SwtpmProcess): Promise<void> {
  for (const flag of ['-t', '-s', '-l']) await tpm.tool('tpm2_flushcontext', [flag]).catch(() => undefined);
}

/** Reads a loaded or persistent object's public area with tpm2_readpublic. */
export async function readPublic(tpm: SwtpmProcess, handle: string, dir: string): Promise<ToolPublic> {
  const pubFile = join(dir, `readpublic-${handle}.pub`);
  const nameFile = join(dir, `readpublic-${handle}.name`);
  const text = await tpm.tool('tpm2_readpublic', ['-c', handle, '-o', pubFile, '-n', nameFile]);
  const printedName = /^name: ([0-9a-f]+)$/m.exec(text)?.[1];
  const rawAttrs = /^attributes:\n\s+value: .*\n\s+raw: (0x[0-9a-f]+)$/m.exec(text)?.[1];
  if (printedName === undefined || rawAttrs === undefined) throw new Error(`tpm2_readpublic printed no name/attributes:\n${text}`);
  return {
    tpm2b: new Uint8Array(await readFile(pubFile)),
    name: new Uint8Array(await readFile(nameFile)),
    printedName,
    printedAttributes: Number.parseInt(rawAttrs, 16),
  };
}

/** Creates an AK under the RSA EK with tpm2_createak and persists it at `handle`. */
export async function createPersistentAk(tpm: SwtpmProcess, dir: string, kind: 'rsa' | 'ecc', handle: string): Promise<{ tpm2b: Uint8Array; name: Uint8Array }> {
  const ctx = join(dir, `ak-${kind}.ctx`);
  const pub = join(dir, `ak-${kind}.pub`);
  const name = join(dir, `ak-${kind}.name`);
  const alg = kind === 'rsa' ? ['-G', 'rsa', '-g', 'sha256', '-s', 'rsassa'] : ['-G', 'ecc', '-g', 'sha256', '-s', 'ecdsa'];
  try {
    await tpm.tool('tpm2_createak', ['-C', HANDLE.rsaEk, '-c', ctx, ...alg, '-u', pub, '-n', name]);
    await tpm.tool('tpm2_evictcontrol', ['-C', 'o', '-c', ctx, handle]);
  } finally {
    await flush(tpm);
  }
  return { tpm2b: new Uint8Array(await readFile(pub)), name: new Uint8Array(await readFile(name)) };
}

/** Reads an EK certificate from NV (the whole index: the DER plus any padding). */
export async function readNvCertificate(tpm: SwtpmProcess, index: string, dir: string): Promise<Uint8Array> {
  const out = join(dir, `nv-${index}.der`);
  await tpm.tool('tpm2_nvread', [index, '-C', 'o', '-o', out]);
  return new Uint8Array(await readFile(out));
}

/**
 * TPM2_ActivateCredential with tpm2_activatecredential: the AK at `akHandle`, the EK at
 * `ekHandle`. An EK without userWithAuth (the RSA EK, template L-1) is authorized with a
 * policy session satisfying PolicySecret(TPM_RH_ENDORSEMENT) in the EK's nameAlg; swtpm's
 * P-384 EK has userWithAuth and an empty authValue, so it takes a plain password. Resolves
 * with the recovered secret; rejects with the tool's error.
 */
export async function activateCredential(tpm: SwtpmProcess, dir: string, akHandle: string, ekHandle: string, ek: TpmtPublic, credentialFile: Uint8Array): Promise<Uint8Array> {
  const cred = join(dir, 'activate.cred');
  const out = join(dir, 'activate.out');
  const session = join(dir, 'activate-session.ctx');
  await writeFile(cred, credentialFile);
  // A stale output file must never pass for a recovered secret.
  await rm(out, { force: true });
  try {
    if ((ek.objectAttributes & TPMA_OBJECT.userWithAuth) !== 0) {
      await tpm.tool('tpm2_activatecredential', ['-c', akHandle, '-C', ekHandle, '-i', cred, '-o', out]);
    } else {
      const hash = HASH_ALGS.get(ek.nameAlg);
      if (hash === undefined) throw new Error(`EK nameAlg 0x${ek.nameAlg.toString(16)} unknown`);
      await tpm.tool('tpm2_startauthsession', ['--policy-session', '-g', hash.name, '-S', session]);
      await tpm.tool('tpm2_policysecret', ['-S', session, '-c', 'e']);
      await tpm.tool('tpm2_activatecredential', ['-c', akHandle, '-C', ekHandle, '-i', cred, '-o', out, '-P', `session:${session}`]);
    }
  } finally {
    await flush(tpm);
  }
  return new Uint8Array(await readFile(out));
}
