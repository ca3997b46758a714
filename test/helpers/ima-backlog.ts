/**
 * A boot-time IMA backlog for tests and benchmarks: ima-sig entries (an RSA-2048 signature
 * each, about 700 bytes an ascii line, as on a distribution that signs its files) under
 * /usr/lib/backlog/, appended to a builder until its ascii list grows by `bytes`. Digests
 * are derived from the entry number (fast and deterministic); the signature is one real
 * signature_v2 header reused, since the policies that meet it exclude the tree. Test code only.
 */
import { createHash, generateKeyPairSync } from 'node:crypto';
import { signImaDigest, type ImaLogBuilder } from './ima-builder.js';

/** The tree a backlog's entries are under (policies exclude it with `^/usr/lib/backlog/`). */
export const BACKLOG_EXCLUDE = '^/usr/lib/backlog/';

/** Appends backlog entries to `b` until they make at least `bytes` of ascii list; returns the bytes added. */
export function addImaBacklog(b: ImaLogBuilder, bytes: number): number {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const signature = signImaDigest(privateKey, 0x1234abcd, 'sha256', createHash('sha256').update('backlog').digest());
  // Lines differ only in their path: the first line's length and the path lengths give the size without rendering twice.
  let added = 0;
  let line = 0;
  let firstPath = 0;
  for (let i = 0; added < bytes; i++) {
    const digest = createHash('sha256').update(`file ${i}`).digest();
    const e = b.file(`/usr/lib/backlog/pkg-${i % 997}/lib${i}.so.1`, { digest, template: 'ima-sig', signature });
    if (i === 0) {
      line = b.ascii(b.entries.length - 1).length;
      firstPath = e.path.length;
    }
    added += line + e.path.length - firstPath;
  }
  return added;
}
