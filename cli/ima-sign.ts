/**
 * `bulwarkctl sign ima --rootfs DIR --key URI`: IMA v2 file signatures made through the HSM,
 * byte for byte what `evmctl ima_sign` writes (lib/ima encodeImaSignature): every regular
 * file under DIR is hashed here, its digest signed by the token (RSA PKCS#1 v1.5 over the
 * DigestInfo, or ECDSA DER), and the signature written as the file's security.ima xattr
 * (setfattr, as root) or, with --manifest, listed in a JSON manifest instead. Everything is
 * signed before anything is written, so a token failure leaves no file half-signed.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { execa } from 'execa';
import { openPkcs11Signer, type HsmOptions } from '../daemon/index.js';
import { BulwarkError, EXIT_CODES, toHex } from '../lib/index.js';
import { computeImaKeyId, encodeImaSignature, HASH_ALGO } from '../lib/ima/index.js';
import type { Call } from './command.js';
import { writeOutput } from './io.js';

const HASHES = { sha256: HASH_ALGO.SHA256, sha384: HASH_ALGO.SHA384, sha512: HASH_ALGO.SHA512 } as const;
type ImaHash = keyof typeof HASHES;
/** The most files one run signs (a named cap). */
const MAX_FILES = 1_000_000;

function isImaHash(value: string): value is ImaHash {
  return value === 'sha256' || value === 'sha384' || value === 'sha512';
}

/** Every regular file under `dir` (symlinks and special files left out), sorted. */
async function regularFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string): Promise<void> => {
    let entries;
    try {
      entries = await readdir(d, { withFileTypes: true });
    } catch (err) {
      throw new BulwarkError('IO_FAILED', `cannot read directory ${d}`, {}, { cause: err });
    }
    for (const e of entries) {
      const path = join(d, e.name);
      if (e.isDirectory()) await walk(path);
      else if (e.isFile()) {
        out.push(path);
        if (out.length > MAX_FILES) throw new BulwarkError('USAGE', `more than ${MAX_FILES} files under ${dir}`);
      }
    }
  };
  await walk(dir);
  return out.sort();
}

async function fileDigest(path: string, hash: ImaHash): Promise<Uint8Array> {
  const h = createHash(hash);
  try {
    for await (const chunk of createReadStream(path)) h.update(chunk);
  } catch (err) {
    throw new BulwarkError('IO_FAILED', `cannot read ${path}`, {}, { cause: err });
  }
  return new Uint8Array(h.digest());
}

/** `sign ima --rootfs DIR --key URI [--hash H] [--manifest FILE]`. */
export async function signIma(call: Call): Promise<number> {
  const root = call.required('--rootfs');
  const hash = call.string('--hash') ?? 'sha256';
  if (!isImaHash(hash)) throw new BulwarkError('USAGE', `--hash ${hash} is not sha256, sha384 or sha512`);
  const manifest = call.string('--manifest');
  const modulePath = call.string('--module');
  const pinFile = call.string('--pin-file');
  const options: HsmOptions = { env: call.io.env, ...(modulePath === undefined ? {} : { modulePath }), ...(pinFile === undefined ? {} : { pinFile }) };
  const files = await regularFiles(root);
  const { signer, hsm } = await openPkcs11Signer(call.required('--key'), options);
  const signed: Array<{ path: string; digest: Uint8Array; xattr: Uint8Array }> = [];
  try {
    const keyId = computeImaKeyId(await signer.publicKey());
    for (const path of files) {
      const digest = await fileDigest(path, hash);
      const signature = await signer.signDigest(digest, hash);
      signed.push({ path, digest, xattr: encodeImaSignature(HASHES[hash], keyId, signature) });
    }
  } finally {
    await hsm.close();
  }
  if (manifest !== undefined) {
    const doc = {
      version: 1,
      kind: 'bulwark-ima-signatures',
      hash,
      key: signer.uri,
      files: signed.map((s) => ({ path: `/${relative(root, s.path)}`, digest: toHex(s.digest), signature: toHex(s.xattr) })),
    };
    await writeOutput(call.io, manifest, `${JSON.stringify(doc, null, 2)}\n`);
  } else {
    for (const s of signed) {
      try {
        await execa('setfattr', ['-n', 'security.ima', '-v', `0x${toHex(s.xattr)}`, s.path], { timeout: 30_000 });
      } catch (err) {
        throw new BulwarkError('IO_FAILED', `cannot write security.ima of ${s.path} (root, and a filesystem with security xattrs, are needed)`, {}, { cause: err });
      }
    }
  }
  call.io.err(`signed ${signed.length} files with ${signer.uri}\n`);
  return EXIT_CODES.ok;
}
