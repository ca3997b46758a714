/**
 * The keys of a KV bucket, read from its stream's per-subject counts (nats.js pages the
 * stream info). Not KV keys(): its ordered consumer can end before the last key on a
 * bucket whose keys were written just before (seen with nats-server 2.9, history > 1, and
 * in the package tests on a fresh bucket), and a key it misses is a node not listed, a
 * credential not revoked by name, a record a migration does not see. A key whose last
 * message is a delete marker is listed: readers skip what get() does not return as a PUT.
 */
import type { JetStreamManager } from 'nats';
import { toBulwarkError } from '../../lib/index.js';

export async function bucketKeys(jsm: JetStreamManager, bucket: string): Promise<string[]> {
  const prefix = `$KV.${bucket}.`;
  let subjects: Readonly<Record<string, number>>;
  try {
    subjects = (await jsm.streams.info(`KV_${bucket}`, { subjects_filter: `${prefix}>` })).state.subjects ?? {};
  } catch (err) {
    throw toBulwarkError(err, 'NATS_FAILED', `cannot list the keys of ${bucket}`);
  }
  return Object.keys(subjects)
    .filter((s) => s.startsWith(prefix))
    .map((s) => s.slice(prefix.length))
    .sort();
}
