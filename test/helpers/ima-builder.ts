/**
 * Builds real-format IMA measurement lists for tests, the way the kernel writes them
 * (Linux security/integrity/ima/ima_fs.c, ima_template_lib.c, ima_crypto.c), independently
 * of lib/ima's parsers: template data per field (u32 length + data), template hashes (SHA-1
 * column, or the bank's in the per-bank files), ascii_runtime_measurements lines and
 * binary_runtime_measurements records, and the values each entry extends into PCR 10 per
 * bank under both kernel rules. Digests are of real files on this machine. Test code only.
 */
import { constants, createHash, privateEncrypt, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ByteWriter } from '../../lib/bytes.js';
import { TPM_ALG, type PcrBanks } from '../../lib/tpm/types.js';

export type BuilderTemplate = 'ima' | 'ima-ng' | 'ima-sig' | 'ima-ngv2' | 'ima-sigv2' | 'ima-buf' | 'ima-modsig';
type FileTemplate = 'ima-ng' | 'ima-sig' | 'ima-ngv2' | 'ima-sigv2' | 'ima-modsig';
export type BuilderBank = 'sha1' | 'sha256';
export type BuilderRule = 'per-bank' | 'sha1-padded';

/** One entry as the kernel would hold it. */
export interface BuiltEntry {
  readonly template: BuilderTemplate;
  readonly pcr: number;
  readonly path: string;
  readonly digestAlgorithm: string;
  readonly digest: Buffer;
  readonly violation: boolean;
  /** Field data in template order (for 'ima': digest, name + NUL as the kernel stores it). */
  readonly fields: readonly Buffer[];
  /** What ima_calc_field_array_hash_tfm hashes. */
  readonly hashInput: Buffer;
  readonly signature: Buffer | null;
  readonly buffer: Buffer | null;
}

const HEX = (b: Uint8Array): string => Buffer.from(b).toString('hex');

function sha(alg: string, data: Uint8Array): Buffer {
  return createHash(alg).update(data).digest();
}

/** DATA_FMT_DIGEST_WITH_ALGO: "<algo>:" NUL digest. */
function digestWithAlgo(algorithm: string, digest: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`${algorithm}:`, 'latin1'), Buffer.of(0), digest]);
}

/** DATA_FMT_DIGEST_WITH_TYPE_AND_ALGO (d-ngv2): "<type>:<algo>:" NUL digest. */
function digestWithTypeAndAlgo(type: string, algorithm: string, digest: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`${type}:${algorithm}:`, 'latin1'), Buffer.of(0), digest]);
}

/** DATA_FMT_STRING: the name with spaces turned into '_' (ima_write_template_field_data), then NUL. */
function eventName(path: string): Buffer {
  return Buffer.concat([Buffer.from(path.replaceAll(' ', '_'), 'utf8'), Buffer.of(0)]);
}

/** PKCS#1 v1.5 DigestInfo prefixes (RFC 8017 9.2), to sign a digest as evmctl does. */
const DIGEST_INFO: Readonly<Record<string, string>> = {
  sha1: '3021300906052b0e03021a05000414',
  sha256: '3031300d060960864801650304020105000420',
  sha512: '3051300d060960864801650304020305000440',
};

/** HASH_ALGO_* ids for the signature header. */
const HASH_ALGO_ID: Readonly<Record<string, number>> = { sha1: 2, sha256: 4, sha384: 5, sha512: 6 };

/**
 * An IMA signature_v2_hdr over `digest` with an RSA private key (what `evmctl ima_sign`
 * writes into security.ima): type 3, version 2, hash_algo, keyid (BE), sig_size (BE), sig.
 */
export function signImaDigest(key: KeyObject, keyId: number, algorithm: string, digest: Buffer): Buffer {
  const prefix = DIGEST_INFO[algorithm];
  const algo = HASH_ALGO_ID[algorithm];
  if (prefix === undefined || algo === undefined) throw new Error(`cannot sign with ${algorithm}`);
  const sig = privateEncrypt({ key, padding: constants.RSA_PKCS1_PADDING }, Buffer.concat([Buffer.from(prefix, 'hex'), digest]));
  return Buffer.from(
    new ByteWriter()
      .u8(3) // type: EVM_IMA_XATTR_DIGSIG
      .u8(2) // version: DIGSIG_VERSION_2
      .u8(algo) // hash_algo
      .u32be(keyId) // keyid
      .u16be(sig.length) // sig_size
      .bytes(sig) // signature
      .finish(),
  );
}

export interface BuilderOptions {
  /** Algorithm of the template hash column: 'sha1' (classic files) or 'sha256' (per-bank file). */
  readonly templateHashAlgorithm?: 'sha1' | 'sha256';
}

export class ImaLogBuilder {
  readonly entries: BuiltEntry[] = [];
  private readonly column: 'sha1' | 'sha256';

  constructor(options: BuilderOptions = {}) {
    this.column = options.templateHashAlgorithm ?? 'sha1';
  }

  private push(e: Omit<BuiltEntry, 'hashInput'>): BuiltEntry {
    let hashInput: Buffer;
    if (e.template === 'ima') {
      // digest || name zero-padded to IMA_EVENT_NAME_LEN_MAX + 1 (the 'n' field data holds name + NUL).
      const name = e.fields[1] ?? Buffer.alloc(1);
      const padded = Buffer.alloc(256);
      name.copy(padded, 0, 0, name.length - 1);
      hashInput = Buffer.concat([e.fields[0] ?? Buffer.alloc(0), padded]);
    } else {
      const w = new ByteWriter();
      for (const f of e.fields) w.u32le(f.length).bytes(f); // per field: length (host order, LE here), data
      hashInput = Buffer.from(w.finish());
    }
    const entry: BuiltEntry = { ...e, hashInput };
    this.entries.push(entry);
    return entry;
  }

  /** The first entry: boot_aggregate over PCRs 0-7 (0-9), here any digest the test chooses. */
  bootAggregate(digest: Buffer, algorithm = 'sha256', template: 'ima-ng' | 'ima' = 'ima-ng'): BuiltEntry {
    return template === 'ima' ? this.imaTemplate('boot_aggregate', digest) : this.file('boot_aggregate', { digest, algorithm, template });
  }

  /** A file entry: ima-ng, ima-sig (with a signature or none), ima-ngv2 / ima-sigv2 (digest type 'ima' or 'verity'), ima-modsig. */
  file(
    path: string,
    opts: {
      digest: Buffer;
      algorithm?: string;
      template?: FileTemplate;
      digestType?: 'ima' | 'verity';
      signature?: Buffer | null;
      modsig?: { digest: Buffer; signature: Buffer } | null;
      pcr?: number;
    },
  ): BuiltEntry {
    const algorithm = opts.algorithm ?? 'sha256';
    const template = opts.template ?? 'ima-ng';
    const v2 = template === 'ima-ngv2' || template === 'ima-sigv2';
    const fields = [v2 ? digestWithTypeAndAlgo(opts.digestType ?? 'ima', algorithm, opts.digest) : digestWithAlgo(algorithm, opts.digest), eventName(path)];
    const signature = opts.signature ?? null;
    if (template === 'ima-sig' || template === 'ima-sigv2' || template === 'ima-modsig') fields.push(signature ?? Buffer.alloc(0));
    if (template === 'ima-modsig') {
      const m = opts.modsig ?? null;
      fields.push(m === null ? Buffer.alloc(0) : digestWithAlgo(algorithm, m.digest));
      fields.push(m === null ? Buffer.alloc(0) : m.signature);
    }
    return this.push({ template, pcr: opts.pcr ?? 10, path, digestAlgorithm: algorithm, digest: opts.digest, violation: false, fields, signature, buffer: null });
  }

  /** A file of this machine, hashed with `algorithm`. */
  realFile(path: string, opts: { algorithm?: string; template?: FileTemplate; signature?: Buffer | null } = {}): BuiltEntry {
    const algorithm = opts.algorithm ?? 'sha256';
    return this.file(path, { ...opts, algorithm, digest: sha(algorithm, readFileSync(path)) });
  }

  /** The old 'ima' template: SHA-1 digest, name at most 255 bytes. */
  imaTemplate(path: string, digest: Buffer): BuiltEntry {
    return this.push({ template: 'ima', pcr: 10, path, digestAlgorithm: 'sha1', digest, violation: false, fields: [digest, eventName(path)], signature: null, buffer: null });
  }

  /** An ima-buf entry (critical data or a key): digest = hash of the buffer. */
  buffer(name: string, buf: Buffer, algorithm = 'sha256'): BuiltEntry {
    const digest = sha(algorithm, buf);
    return this.push({
      template: 'ima-buf',
      pcr: 10,
      path: name,
      digestAlgorithm: algorithm,
      digest,
      violation: false,
      fields: [digestWithAlgo(algorithm, digest), eventName(name), buf],
      signature: null,
      buffer: buf,
    });
  }

  /** A violation: zero digest in the list, 0xff..ff extended (ima_add_violation). */
  violation(path: string, algorithm = 'sha256', template: 'ima-ng' | 'ima-sig' | 'ima-ngv2' | 'ima-sigv2' = 'ima-ng'): BuiltEntry {
    const size = algorithm === 'sha1' ? 20 : 32;
    const digest = Buffer.alloc(size);
    // A violation's d-ngv2 keeps the type "ima" (ima_eventdigest_ngv2_init).
    const fields = [template === 'ima-ngv2' || template === 'ima-sigv2' ? digestWithTypeAndAlgo('ima', algorithm, digest) : digestWithAlgo(algorithm, digest), eventName(path)];
    if (template === 'ima-sig' || template === 'ima-sigv2') fields.push(Buffer.alloc(0));
    return this.push({ template, pcr: 10, path, digestAlgorithm: algorithm, digest, violation: true, fields, signature: null, buffer: null });
  }

  /** The template hash column of an entry (zero for a violation). */
  columnHash(e: BuiltEntry): Buffer {
    return e.violation ? Buffer.alloc(this.column === 'sha1' ? 20 : 32) : sha(this.column, e.hashInput);
  }

  /** One ascii_runtime_measurements line (ima_ascii_measurements_show). */
  asciiLine(e: BuiltEntry): string {
    const texts = e.fields.map((f, i) => {
      if (f.length === 0) return ''; // an empty field prints nothing
      if (e.template === 'ima') return i === 0 ? HEX(f) : f.subarray(0, f.length - 1).toString('utf8');
      const id = ['d-ng', 'n-ng', e.template === 'ima-buf' ? 'buf' : 'sig', 'd-modsig', 'modsig'][i];
      if (id === 'd-ng' || id === 'd-modsig') {
        // ima_show_template_data_ascii: the text up to the NUL after the (last) ':', then the digest in hex.
        const colon = f.indexOf(0);
        return `${f.subarray(0, colon).toString('latin1')}${HEX(f.subarray(colon + 1))}`;
      }
      if (id === 'n-ng') return f.subarray(0, f.length - 1).toString('utf8');
      return HEX(f);
    });
    return `${String(e.pcr).padStart(2, ' ')} ${HEX(this.columnHash(e))} ${e.template}${texts.map((t) => ` ${t}`).join('')}\n`;
  }

  /** One binary_runtime_measurements record (ima_measurements_show), little-endian. */
  binaryRecord(e: BuiltEntry): Buffer {
    const w = new ByteWriter();
    w.u32le(e.pcr); // PCR index
    w.bytes(this.columnHash(e)); // template hash
    w.u32le(e.template.length); // template name length
    w.bytes(Buffer.from(e.template, 'latin1')); // template name
    if (e.template === 'ima') {
      const name = e.fields[1] ?? Buffer.alloc(1);
      w.bytes(e.fields[0] ?? Buffer.alloc(0)); // d without length (IMA_SHOW_BINARY_NO_FIELD_LEN)
      w.u32le(name.length - 1); // n: strlen (IMA_SHOW_BINARY_OLD_STRING_FMT)
      w.bytes(name.subarray(0, name.length - 1)); // n: the name without NUL
    } else {
      w.u32le(e.hashInput.length); // template data length
      w.bytes(e.hashInput); // template data: per field u32 length + data
    }
    return Buffer.from(w.finish());
  }

  ascii(from = 0, to = this.entries.length): Buffer {
    return Buffer.from(this.entries.slice(from, to).map((e) => this.asciiLine(e)).join(''), 'utf8');
  }

  binary(from = 0, to = this.entries.length): Buffer {
    return Buffer.concat(this.entries.slice(from, to).map((e) => this.binaryRecord(e)));
  }

  /** The value entry `e` extends into `bank` (ima_calc_field_array_hash / ima_init_digests, or pre-5.1 padding). */
  extendValue(e: BuiltEntry, bank: BuilderBank, rule: BuilderRule = 'per-bank'): Buffer {
    const size = bank === 'sha1' ? 20 : 32;
    if (e.violation) {
      const v = Buffer.alloc(size);
      v.fill(0xff, 0, rule === 'per-bank' || bank === 'sha1' ? size : 20);
      return v;
    }
    if (rule === 'per-bank' || bank === 'sha1') return sha(bank, e.hashInput);
    return Buffer.concat([sha('sha1', e.hashInput), Buffer.alloc(size - 20)]);
  }

  /** PCR 10 after the first `count` entries, from zero. */
  pcr10(bank: BuilderBank, rule: BuilderRule = 'per-bank', count = this.entries.length): Buffer {
    let pcr: Buffer = Buffer.alloc(bank === 'sha1' ? 20 : 32);
    for (const e of this.entries.slice(0, count)) {
      if (e.pcr !== 10) continue;
      pcr = sha(bank, Buffer.concat([pcr, this.extendValue(e, bank, rule)]));
    }
    return pcr;
  }
}

/** The PCR file `evmctl ima_measurement --pcrs ALG,FILE` reads: "PCR-NN: hex" for PCRs 0-23. */
export function evmctlPcrFile(pcr10: Buffer): string {
  let out = '';
  for (let i = 0; i < 24; i++) out += `PCR-${String(i).padStart(2, '0')}: ${(i === 10 ? pcr10 : Buffer.alloc(pcr10.length)).toString('hex')}\n`;
  return out;
}

/** Real executables and libraries of this machine, for realistic entries. */
export const REAL_FILES: readonly string[] = [
  '/usr/bin/ls',
  '/usr/bin/cat',
  '/usr/bin/bash',
  '/usr/bin/cp',
  '/usr/bin/env',
  '/usr/bin/grep',
  '/usr/bin/sed',
  '/usr/bin/tar',
  '/usr/bin/gzip',
  '/usr/bin/openssl',
  '/usr/lib/x86_64-linux-gnu/libc.so.6',
  '/usr/lib/x86_64-linux-gnu/libssl.so.3',
];

/** boot_aggregate as the kernel computes it: sha256 over the TPM's sha256 PCRs 0-9, read now. */
export async function bootAggregateOf(tpm: { readPcrs(selection: string): Promise<PcrBanks> }): Promise<Buffer> {
  const bank = (await tpm.readPcrs('sha256:0,1,2,3,4,5,6,7,8,9')).get(TPM_ALG.SHA256);
  const aggregate = createHash('sha256');
  for (let i = 0; i <= 9; i++) aggregate.update(bank?.get(i) ?? new Uint8Array(32));
  return aggregate.digest();
}
