/**
 * The I/O half of `bulwarkctl policy runtime create`: walks a Debian root filesystem and
 * hashes what IMA would measure there (lib/ima/measured-files.ts decides what; lib/ima/policy.ts
 * builds the policy). Symbolic links are never followed, so the walk cannot leave the root
 * and each file is listed under the path the kernel would log for it.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, open, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { BulwarkError } from '../lib/index.js';
import {
  buildRuntimePolicy,
  IMA_MEASURED_ROOTS,
  imaEventName,
  imaHashSize,
  wouldImaMeasure,
  type MeasuredFile,
  type RuntimePolicy,
} from '../lib/ima/index.js';

export interface RootfsScanOptions {
  /** Top-level directories to walk, as absolute paths inside the root (default IMA_MEASURED_ROOTS). */
  readonly roots?: readonly string[];
  /** File digest algorithm, as the host's ima_hash (default sha256). */
  readonly algorithm?: string;
  /** Files hashed at once (default 8). */
  readonly concurrency?: number;
}

export interface RootfsScan {
  readonly files: MeasuredFile[];
  /** Regular files IMA would not measure (no exec bit, not ELF, not a module). */
  readonly notMeasured: number;
  /** Names that are not valid UTF-8: a policy cannot name them, so IMA entries for them will be findings. */
  readonly unnamable: readonly string[];
}

/** ELF magic is in the first 4 bytes. */
async function readHead(path: string): Promise<Uint8Array> {
  const handle = await open(path, 'r');
  try {
    const head = new Uint8Array(4);
    const { bytesRead } = await handle.read(head, 0, 4, 0);
    return head.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}

async function hashFile(path: string, algorithm: string): Promise<Uint8Array> {
  const h = createHash(algorithm);
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) {
    if (typeof chunk === 'string' || !(chunk instanceof Uint8Array)) throw new BulwarkError('INTERNAL', 'read stream yielded text');
    h.update(chunk);
  }
  return new Uint8Array(h.digest());
}

function ioError(err: unknown, what: string): BulwarkError {
  return new BulwarkError('IO_FAILED', `${what}: ${err instanceof Error ? err.message : String(err)}`, {}, { cause: err });
}

/**
 * Walks `rootDir` (a mounted or unpacked Debian root filesystem) and hashes every regular
 * file IMA would measure. Paths come out as the host will see them ("/usr/bin/ls"), with
 * spaces as IMA logs them ('_'). Throws IO_FAILED when the root cannot be read.
 */
export async function scanRootfs(rootDir: string, options: RootfsScanOptions = {}): Promise<RootfsScan> {
  const algorithm = options.algorithm ?? 'sha256';
  const size = imaHashSize(algorithm);
  if (size === undefined) throw new BulwarkError('USAGE', `unknown hash algorithm ${algorithm}`);
  try {
    if (!(await lstat(rootDir)).isDirectory()) throw new BulwarkError('USAGE', `${rootDir} is not a directory`);
  } catch (err) {
    if (err instanceof BulwarkError) throw err;
    throw ioError(err, `cannot read root filesystem ${rootDir}`);
  }
  const candidates: string[] = [];
  const unnamable: string[] = [];
  let notMeasured = 0;

  // Breadth-first over directories; symbolic links (including /bin -> usr/bin on merged-/usr) are skipped.
  const pending: string[] = [];
  for (const root of options.roots ?? IMA_MEASURED_ROOTS) {
    const rel = root.replace(/^\/+/, '');
    try {
      const st = await lstat(join(rootDir, rel));
      if (st.isDirectory()) pending.push(rel);
    } catch {
      // A root this filesystem does not have (no /lib32 on amd64-only systems).
    }
  }
  while (pending.length > 0) {
    const rel = pending.shift();
    if (rel === undefined) break;
    let entries;
    try {
      entries = await readdir(join(rootDir, rel), { withFileTypes: true });
    } catch (err) {
      throw ioError(err, `cannot list ${join(rootDir, rel)}`);
    }
    for (const d of entries) {
      const childRel = `${rel}/${d.name}`;
      if (d.isDirectory()) pending.push(childRel);
      else if (d.isFile()) {
        if (d.name.includes('\ufffd') || rel.includes('\ufffd')) unnamable.push(`/${childRel}`);
        else candidates.push(childRel);
      }
    }
  }

  const files: MeasuredFile[] = [];
  const concurrency = Math.max(1, options.concurrency ?? 8);
  let next = 0;
  const worker = async (): Promise<void> => {
    for (;;) {
      const i = next++;
      const rel = candidates[i];
      if (rel === undefined) return;
      const abs = join(rootDir, rel);
      try {
        const st = await lstat(abs);
        if (!st.isFile()) continue;
        if (!wouldImaMeasure(`/${rel}`, st.mode, st.size >= 4 ? await readHead(abs) : new Uint8Array(0))) {
          notMeasured++;
          continue;
        }
        files.push({ path: imaEventName(`/${rel}`), digest: { algorithm, value: await hashFile(abs, algorithm) } });
      } catch (err) {
        throw ioError(err, `cannot hash ${abs}`);
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, () => worker()));
  files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return { files, notMeasured, unnamable };
}

export interface GenerateRuntimePolicyOptions extends RootfsScanOptions {
  readonly generator: string;
  readonly generatedAt?: string;
  readonly release?: number;
  readonly base?: RuntimePolicy;
  readonly excludes?: readonly string[];
}

/** Scans a root filesystem and builds its runtime policy (rolled forward from `base` when given). */
export async function generateRuntimePolicy(rootDir: string, options: GenerateRuntimePolicyOptions): Promise<{ policy: RuntimePolicy; scan: RootfsScan }> {
  const scan = await scanRootfs(rootDir, options);
  const policy = buildRuntimePolicy(scan.files, {
    generatedAt: options.generatedAt ?? new Date().toISOString(),
    generator: options.generator,
    ...(options.release === undefined ? {} : { release: options.release }),
    ...(options.base === undefined ? {} : { base: options.base }),
    // boot_aggregate is no file: the verifier checks it against the quoted PCRs 0-9 instead.
    excludes: ['boot_aggregate$', ...(options.excludes ?? [])],
  });
  return { policy, scan };
}
