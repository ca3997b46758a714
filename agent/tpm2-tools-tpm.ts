/**
 * The agent's TPM over tpm2-tools 5.4, run with execa (argument arrays, never a shell,
 * a timeout per command). There is no resource manager in front of the TPM (swtpm, or a
 * raw /dev/tpm0): the AK is persisted and addressed by handle, transient objects are
 * flushed after key creation, and commands are serialized by a mutex so two tools never
 * talk to the TPM at once. Output is parsed by the pure functions of lib/.
 */
import { execa } from 'execa';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { bytesEqual, toHex } from '../lib/index.js';
import { BulwarkError } from '../lib/index.js';
import { encodeTpm2ToolsCredential, type CredentialBlob } from '../lib/tpm/index.js';
import { formatPcrSelectionSpec, parsePcrSelectionSpec } from '../lib/tpm/index.js';
import { checkAkAttributes, computeName, decodeTpm2bPublic, decodeTpmtPublic, tpmtPublicToKeyObject } from '../lib/tpm/index.js';
import { parseHandleList, parsePcrReadOutput, summarizeToolStderr, trimNvCertificate } from '../lib/tpm/index.js';
import { HASH_ALGS, TPMA_OBJECT, type PcrBanks, type TpmtPublic } from '../lib/tpm/index.js';
import type { QuoteOutput, Tpm, TpmKeyAlgorithm, TpmKeys } from './tpm.js';

/** Where swtpm_setup (and the TCG provisioning guidance) persist the EKs. */
export const EK_PERSISTENT_HANDLES: Readonly<Record<TpmKeyAlgorithm, number>> = { rsa: 0x81010001, ecc: 0x81010016 };

/**
 * NV indices of EK certificates (TCG EK Credential Profile 2.5, 2.2.1.4): RSA-2048 at
 * 0x01c00002; ECC NIST P-256 at 0x01c0000a and the high-range ECC P-384 at 0x01c00016.
 * Candidates in the order they are tried; only one whose key is the EK's is returned.
 */
export const EK_CERT_NV_INDICES: Readonly<Record<TpmKeyAlgorithm, readonly number[]>> = { rsa: [0x01c00002], ecc: [0x01c0000a, 0x01c00016] };

/** The AK's persistent handle unless configured otherwise. */
export const DEFAULT_AK_HANDLE = 0x81010002;

/** TPM2_Quote's qualifyingData is a TPM2B_DATA: at most sizeof(TPMU_HA) = 64 bytes (Part 2, 10.4.3). */
const MAX_NONCE_BYTES = 64;
/** Highest PCR index of a PC client TPM (PCRs 0-23). */
const MAX_PCR_INDEX = 23;
/** Largest file a tool writes that we read back (a TPM2B_PUBLIC, a certificate, a quote). */
const MAX_TOOL_FILE_BYTES = 64 * 1024;
/** Captured stdout/stderr per command; tpm2_quote prints the most (a few KiB). */
const MAX_TOOL_OUTPUT_BYTES = 1024 * 1024;

/** How Tpm2ToolsTpm reaches the TPM. */
export interface Tpm2ToolsTpmOptions {
  /** TPM2TOOLS_TCTI for every command ("device:/dev/tpmrm0", "swtpm:host=127.0.0.1,port=2321"). */
  readonly tcti: string;
  /** Each tpm2-tools command is killed after this long (TPM_TOOL_TIMEOUT). */
  readonly toolTimeoutMs: number;
  /** Algorithm of an AK created by ensureKeys (an existing AK must have it too). */
  readonly akAlg: TpmKeyAlgorithm;
  /** Folder in which the private work directory is made; os.tmpdir() by default. */
  readonly workRoot?: string;
  /**
   * Folder holding the tpm2_* executables ("/usr/bin"), so a root agent does not depend on
   * PATH; by default they are looked up in PATH.
   */
  readonly toolDir?: string;
}

/** A public area as the TPM reported it, with its Name checked against the bytes. */
interface ReadPublic {
  readonly decoded: TpmtPublic;
  readonly name: Uint8Array;
}

function handleHex(handle: number): string {
  return `0x${handle.toString(16).padStart(8, '0')}`;
}

/** TPM_HT_PERSISTENT (Part 2, 7.2): persistent object handles are 0x81xxxxxx. */
function checkPersistentHandle(handle: number, what: string): void {
  if (!Number.isInteger(handle) || handle < 0x81000000 || handle > 0x81ffffff) {
    const shown = Number.isInteger(handle) && handle >= 0 ? handleHex(handle) : String(handle);
    throw new BulwarkError('USAGE', `${what} ${shown} is not a persistent handle (0x81000000-0x81ffffff)`, { handle: shown });
  }
}

function hasAttr(pub: TpmtPublic, attr: keyof typeof TPMA_OBJECT): boolean {
  return (pub.objectAttributes & TPMA_OBJECT[attr]) !== 0;
}

/** Serializes async sections: each runs after the previous one settled, whatever its outcome. */
class AsyncMutex {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.tail.then(fn, fn);
    this.tail = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }
}

/** Tpm over tpm2-tools 5.4; the TPM's answers are returned as read, unverified. */
export class Tpm2ToolsTpm implements Tpm {
  private readonly tcti: string;
  private readonly toolTimeoutMs: number;
  private readonly akAlg: TpmKeyAlgorithm;
  private readonly workDir: string;
  private readonly toolDir: string | undefined;
  private readonly mutex = new AsyncMutex();
  private closed = false;

  private constructor(opts: Tpm2ToolsTpmOptions, workDir: string) {
    this.tcti = opts.tcti;
    this.toolTimeoutMs = opts.toolTimeoutMs;
    this.akAlg = opts.akAlg;
    this.workDir = workDir;
    this.toolDir = opts.toolDir;
  }

  /** Creates the private work directory (mode 0700) and returns a ready instance; nothing is sent to the TPM yet. */
  static async open(opts: Tpm2ToolsTpmOptions): Promise<Tpm2ToolsTpm> {
    if (opts.tcti.length === 0) throw new BulwarkError('USAGE', 'Tpm2ToolsTpm needs a TCTI');
    if (opts.toolDir !== undefined && !isAbsolute(opts.toolDir)) throw new BulwarkError('USAGE', `tool directory ${opts.toolDir} is not an absolute path`);
    if (!Number.isInteger(opts.toolTimeoutMs) || opts.toolTimeoutMs <= 0) {
      throw new BulwarkError('USAGE', `tool timeout ${opts.toolTimeoutMs} ms is not a positive integer`);
    }
    let workDir: string;
    try {
      workDir = await mkdtemp(join(opts.workRoot ?? tmpdir(), 'bulwark-tpm-'));
    } catch (err) {
      throw new BulwarkError('IO_FAILED', `cannot create the TPM work directory: ${err instanceof Error ? err.message : String(err)}`, {}, { cause: err });
    }
    return new Tpm2ToolsTpm(opts, workDir);
  }

  async ensureKeys(opts: { readonly ekType: TpmKeyAlgorithm; readonly akHandle: number }): Promise<TpmKeys> {
    const ekHandle = EK_PERSISTENT_HANDLES[opts.ekType];
    checkPersistentHandle(opts.akHandle, 'AK handle');
    if (opts.akHandle === ekHandle) throw new BulwarkError('USAGE', `AK handle ${handleHex(opts.akHandle)} is the ${opts.ekType} EK's handle`);
    return this.exclusive((dir) => this.ensureKeysLocked(opts.ekType, ekHandle, opts.akHandle, dir));
  }

  private async ensureKeysLocked(ekType: TpmKeyAlgorithm, ekHandle: number, akHandle: number, dir: string): Promise<TpmKeys> {
    const persistent = await this.listHandles('handles-persistent');
    if (!persistent.includes(ekHandle)) {
      // Same template as swtpm_setup and the TCG EK profile's low range (RSA-2048, ECC P-256).
      await this.withTransientFlush(() => this.run('tpm2_createek', ['-c', handleHex(ekHandle), '-G', ekType, '-u', join(dir, 'ek-created.pub')]));
    }
    const ek = await this.readPublic(ekHandle, dir, 'ek');
    if (ek.decoded.type !== ekType || !hasAttr(ek.decoded, 'restricted') || !hasAttr(ek.decoded, 'decrypt') || hasAttr(ek.decoded, 'sign')) {
      throw new BulwarkError(
        'TPM_OBJECT_UNEXPECTED',
        `the object at ${handleHex(ekHandle)} is not a restricted ${ekType} decryption key (an EK): type ${ek.decoded.type}, attributes 0x${ek.decoded.objectAttributes.toString(16)}`,
        { handle: handleHex(ekHandle) },
      );
    }

    let created: { readonly pub: Uint8Array; readonly name: Uint8Array } | null = null;
    if (!persistent.includes(akHandle)) created = await this.createAk(ekHandle, akHandle, dir);
    const ak = await this.readPublic(akHandle, dir, 'ak');
    if (created !== null && (!bytesEqual(created.pub, ak.decoded.encoded) || !bytesEqual(created.name, ak.name))) {
      throw new BulwarkError('TPM_OBJECT_UNEXPECTED', `the key persisted at ${handleHex(akHandle)} is not the AK tpm2_createak just made`, { handle: handleHex(akHandle) });
    }
    const problems = checkAkAttributes(ak.decoded).map((f) => f.message);
    if (ak.decoded.type !== this.akAlg) problems.unshift(`it is an ${ak.decoded.type} key, the configured akAlg is ${this.akAlg}`);
    if (problems.length > 0) {
      throw new BulwarkError(
        'TPM_OBJECT_UNEXPECTED',
        `the object at ${handleHex(akHandle)} is not a usable AK (${problems.join('; ')}); evict it (tpm2_evictcontrol -C o -c ${handleHex(akHandle)}) or configure another akHandle`,
        { handle: handleHex(akHandle) },
      );
    }

    const ekCertificate = await this.readEkCertificate(ekType, ek.decoded, dir);
    return {
      ekType,
      ekHandle,
      ekPublic: ek.decoded.encoded,
      ekCertificate,
      akHandle,
      akPublic: ak.decoded.encoded,
      akName: ak.name,
    };
  }

  /** tpm2_createak under the EK, persisted at `akHandle`; returns what createak wrote (TPMT_PUBLIC and Name). */
  private async createAk(ekHandle: number, akHandle: number, dir: string): Promise<{ pub: Uint8Array; name: Uint8Array }> {
    const ctx = join(dir, 'ak.ctx');
    const pubFile = join(dir, 'ak-created.pub');
    const nameFile = join(dir, 'ak-created.name');
    const scheme = this.akAlg === 'rsa' ? 'rsassa' : 'ecdsa';
    // Without a resource manager every loaded object occupies one of about three slots:
    // start empty, and flush what createak and evictcontrol leave loaded.
    await this.run('tpm2_flushcontext', ['-t']);
    await this.withTransientFlush(async () => {
      await this.run('tpm2_createak', ['-C', handleHex(ekHandle), '-c', ctx, '-G', this.akAlg, '-g', 'sha256', '-s', scheme, '-u', pubFile, '-n', nameFile]);
      await this.run('tpm2_evictcontrol', ['-C', 'o', '-c', ctx, handleHex(akHandle)]);
    });
    const pub = decodeTpm2bPublic(await this.readToolFile(pubFile, 'tpm2_createak'));
    return { pub: pub.encoded, name: await this.readToolFile(nameFile, 'tpm2_createak') };
  }

  /** Runs `fn`, then `tpm2_flushcontext -t`; a flush failure after a failed `fn` does not hide fn's error. */
  private async withTransientFlush<T>(fn: () => Promise<T>): Promise<T> {
    let result: T;
    try {
      result = await fn();
    } catch (err) {
      await this.run('tpm2_flushcontext', ['-t']).catch(() => undefined);
      throw err;
    }
    await this.run('tpm2_flushcontext', ['-t']);
    return result;
  }

  /** tpm2_readpublic: the TPM2B_PUBLIC file (size prefix checked and stripped) and the Name, which must be the Name of those bytes. */
  private async readPublic(handle: number, dir: string, label: string): Promise<ReadPublic> {
    const pubFile = join(dir, `${label}.pub`);
    const nameFile = join(dir, `${label}.name`);
    await this.run('tpm2_readpublic', ['-c', handleHex(handle), '-o', pubFile, '-n', nameFile]);
    const bytes = await this.readToolFile(pubFile, 'tpm2_readpublic');
    let decoded: TpmtPublic;
    try {
      decoded = decodeTpm2bPublic(bytes);
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      throw new BulwarkError('TPM_OBJECT_UNEXPECTED', `the object at ${handleHex(handle)} is not an RSA or ECC key Bulwark can use: ${reason}`, { handle: handleHex(handle) }, { cause: err });
    }
    const name = await this.readToolFile(nameFile, 'tpm2_readpublic');
    if (!bytesEqual(name, computeName(decoded))) {
      throw new BulwarkError('TPM_TOOL_OUTPUT_MALFORMED', `tpm2_readpublic reported a Name for ${handleHex(handle)} that is not the Name of its public area`, { handle: handleHex(handle) });
    }
    return { decoded, name };
  }

  /**
   * Reads the EK certificate candidates from NV and returns the first whose public key is
   * the EK's. A candidate that is missing, does not parse or certifies another key (e.g. a
   * P-384 certificate next to a P-256 EK) is passed over, so null means "no certificate for
   * this EK"; the controller decides what that means for trust.
   */
  private async readEkCertificate(ekType: TpmKeyAlgorithm, ek: TpmtPublic, dir: string): Promise<Uint8Array | null> {
    const nvIndices = await this.listHandles('handles-nv-index');
    const ekKey = tpmtPublicToKeyObject(ek);
    for (const index of EK_CERT_NV_INDICES[ekType]) {
      if (!nvIndices.includes(index)) continue;
      const file = join(dir, `nv-${index.toString(16)}.der`);
      await this.run('tpm2_nvread', [handleHex(index), '-C', 'o', '-o', file]);
      const data = await this.readToolFile(file, 'tpm2_nvread');
      let der: Uint8Array;
      let matches: boolean;
      try {
        der = trimNvCertificate(data);
        matches = new X509Certificate(der).publicKey.equals(ekKey);
      } catch {
        continue;
      }
      if (matches) return der.slice();
    }
    return null;
  }

  async activateCredential(blob: CredentialBlob, keys: TpmKeys): Promise<Uint8Array> {
    checkPersistentHandle(keys.akHandle, 'AK handle');
    checkPersistentHandle(keys.ekHandle, 'EK handle');
    const ek = decodeTpmtPublic(keys.ekPublic);
    const credential = encodeTpm2ToolsCredential(blob);
    return this.exclusive(async (dir) => {
      const credFile = join(dir, 'credential');
      const outFile = join(dir, 'secret');
      await writeFile(credFile, credential, { mode: 0o600 });
      // tpm2_activatecredential prints the secret as "certinfodata:" on stdout: stdout is
      // discarded and never put into an error.
      const activate = ['-c', handleHex(keys.akHandle), '-C', handleHex(keys.ekHandle), '-i', credFile, '-o', outFile];
      if (hasAttr(ek, 'userWithAuth')) {
        // High-range EKs (the P-384 EK swtpm persists at 0x81010016) allow the empty authValue.
        await this.run('tpm2_activatecredential', activate);
      } else {
        // Low-range EK templates (TCG EK profile B.3.3/B.3.4) have only the policy
        // PolicySecret(TPM_RH_ENDORSEMENT), computed with the EK's nameAlg.
        const hash = HASH_ALGS.get(ek.nameAlg);
        if (hash === undefined) throw new BulwarkError('TPM_ALG_UNSUPPORTED', `EK nameAlg 0x${ek.nameAlg.toString(16)} has no hash Bulwark supports`, { nameAlg: ek.nameAlg });
        const session = join(dir, 'session.ctx');
        await this.run('tpm2_startauthsession', ['--policy-session', '-g', hash.name, '-S', session]);
        try {
          await this.run('tpm2_policysecret', ['-S', session, '-c', 'e']);
          await this.run('tpm2_activatecredential', [...activate, '-P', `session:${session}`]);
        } catch (err) {
          await this.run('tpm2_flushcontext', [session]).catch(() => undefined);
          throw err;
        }
        await this.run('tpm2_flushcontext', [session]);
      }
      return this.readToolFile(outFile, 'tpm2_activatecredential');
    });
  }

  async quote(nonce: Uint8Array, selection: string, akHandle: number): Promise<QuoteOutput> {
    checkPersistentHandle(akHandle, 'AK handle');
    if (nonce.length === 0 || nonce.length > MAX_NONCE_BYTES) {
      throw new BulwarkError('USAGE', `a quote nonce must be 1-${MAX_NONCE_BYTES} bytes, not ${nonce.length}`, { length: nonce.length });
    }
    // Re-formatted from the parsed selection, so nothing but a selection reaches argv.
    const spec = formatPcrSelectionSpec(parsePcrSelectionSpec(selection));
    return this.exclusive(async (dir) => {
      const msg = join(dir, 'quote.msg');
      const sig = join(dir, 'quote.sig');
      const pcrs = join(dir, 'quote.pcrs');
      await this.run('tpm2_quote', ['-c', handleHex(akHandle), '-l', spec, '-q', toHex(nonce), '-m', msg, '-s', sig, '-o', pcrs, '-F', 'serialized', '-g', 'sha256']);
      return {
        attest: await this.readToolFile(msg, 'tpm2_quote'),
        signature: await this.readToolFile(sig, 'tpm2_quote'),
        pcrs: await this.readToolFile(pcrs, 'tpm2_quote'),
      };
    });
  }

  async extendPcr(pcr: number, sha256: Uint8Array): Promise<void> {
    // PCRs 0-23 of a PC client TPM (TCG PC Client Platform TPM Profile, 4.6); the digest is one sha256.
    if (!Number.isInteger(pcr) || pcr < 0 || pcr > MAX_PCR_INDEX) throw new BulwarkError('USAGE', `PCR ${String(pcr)} is not a PCR index (0-${MAX_PCR_INDEX})`, { pcr: String(pcr) });
    if (sha256.length !== 32) throw new BulwarkError('USAGE', `a sha256 PCR extend takes 32 bytes, not ${sha256.length}`, { length: sha256.length });
    await this.exclusive(async () => {
      await this.run('tpm2_pcrextend', [`${pcr}:sha256=${toHex(sha256)}`]);
    });
  }

  async readPcrs(selection: string): Promise<PcrBanks> {
    const wanted = parsePcrSelectionSpec(selection);
    const spec = formatPcrSelectionSpec(wanted);
    const banks = await this.exclusive(async () => parsePcrReadOutput(await this.run('tpm2_pcrread', [spec])));
    for (const sel of wanted) {
      const bank = banks.get(sel.hashAlg);
      const missing = sel.pcrs.filter((p) => bank === undefined || !bank.has(p));
      if (missing.length > 0) {
        const name = HASH_ALGS.get(sel.hashAlg)?.name ?? `0x${sel.hashAlg.toString(16)}`;
        throw new BulwarkError('TPM_PCR_BANK_UNAVAILABLE', `the TPM reported no ${name} value for PCR ${missing.join(',')} (bank not allocated?)`, {
          hashAlg: sel.hashAlg,
          pcrs: missing,
        });
      }
    }
    return banks;
  }

  async getPersistentHandles(): Promise<number[]> {
    return this.exclusive(() => this.listHandles('handles-persistent'));
  }

  async close(): Promise<void> {
    await this.mutex.run(async () => {
      if (this.closed) return;
      this.closed = true;
      await rm(this.workDir, { recursive: true, force: true });
    });
  }

  /** Runs `fn` alone (no other command in flight) with a fresh scratch folder that is removed afterwards. */
  private exclusive<T>(fn: (dir: string) => Promise<T>): Promise<T> {
    return this.mutex.run(async () => {
      if (this.closed) throw new BulwarkError('USAGE', 'the TPM adapter is closed');
      const dir = await mkdtemp(join(this.workDir, 'op-'));
      try {
        return await fn(dir);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });
  }

  private async listHandles(kind: 'handles-persistent' | 'handles-nv-index'): Promise<number[]> {
    return parseHandleList(await this.run('tpm2_getcap', [kind]));
  }

  /** Reads back a file a tool wrote, refusing anything larger than a TPM structure can be. */
  private async readToolFile(path: string, tool: string): Promise<Uint8Array> {
    try {
      const info = await stat(path);
      if (info.size > MAX_TOOL_FILE_BYTES) {
        throw new BulwarkError('TPM_TOOL_OUTPUT_MALFORMED', `${tool} wrote ${info.size} bytes, more than the cap of ${MAX_TOOL_FILE_BYTES}`, { tool, size: info.size });
      }
      return new Uint8Array(await readFile(path));
    } catch (err) {
      if (err instanceof BulwarkError) throw err;
      throw new BulwarkError('TPM_TOOL_OUTPUT_MALFORMED', `${tool} exited 0 but its output file cannot be read: ${err instanceof Error ? err.message : String(err)}`, { tool }, { cause: err });
    }
  }

  /**
   * Runs one tpm2-tools command against this TPM. Exit status ≠ 0 → TPM_TOOL_FAILED
   * (stderr summarized in the message), timeout → TPM_TOOL_TIMEOUT. Returns stdout.
   */
  private async run(tool: string, args: readonly string[]): Promise<string> {
    const result = await execa(this.toolDir === undefined ? tool : join(this.toolDir, tool), args, {
      env: { TPM2TOOLS_TCTI: this.tcti },
      timeout: this.toolTimeoutMs,
      forceKillAfterDelay: 1000,
      reject: false,
      stdin: 'ignore',
      cwd: this.workDir,
      maxBuffer: MAX_TOOL_OUTPUT_BYTES,
      encoding: 'utf8',
    });
    if (result.timedOut) {
      throw new BulwarkError('TPM_TOOL_TIMEOUT', `${tool} did not finish within ${this.toolTimeoutMs} ms`, { tool, timeoutMs: this.toolTimeoutMs }, { cause: new Error(result.shortMessage ?? 'timed out') });
    }
    if (result.failed) {
      const stderr = typeof result.stderr === 'string' ? result.stderr : '';
      const reason = stderr.trim().length > 0 ? summarizeToolStderr(stderr) : (result.shortMessage ?? 'no error output');
      const status = result.exitCode === undefined ? (result.signal === undefined ? '' : ` (${result.signal})`) : ` (exit ${result.exitCode})`;
      // The cause carries execa's short message only: stdout may hold secrets
      // (tpm2_activatecredential prints the activated secret).
      throw new BulwarkError('TPM_TOOL_FAILED', `${tool} failed${status}: ${reason}`, { tool, exitCode: result.exitCode }, { cause: new Error(result.shortMessage ?? `${tool} failed`) });
    }
    return result.stdout;
  }
}
