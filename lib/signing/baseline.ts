/**
 * A baseline as an agent receives it: a DSSE envelope (application/vnd.bulwark.baseline+json)
 * verified against the baseline key set before its document is parsed.
 */
import { BulwarkError } from '../errors.js';
import { parseBaselineJson, type Baseline } from '../baseline/index.js';
import type { VerifiedEnvelope } from '../dsse/index.js';
import { verifyWithKeySet, type KeySet } from './keyset.js';

/**
 * Verifies a baseline envelope (its bytes) against the baseline key set at `now`, then
 * parses the signed payload: the baseline to enforce. Throws the DSSE codes, KEYSET_EXPIRED,
 * or BASELINE_INVALID for a signed payload that is not a baseline. Trust: verified.
 */
export function verifyBaselineEnvelope(bytes: Uint8Array | string, keyset: KeySet, now = Date.now()): { baseline: Baseline; verified: VerifiedEnvelope } {
  if (keyset.document.kind !== 'baseline') throw new BulwarkError('USAGE', `a baseline is verified with the baseline key set, not the ${keyset.document.kind} one`);
  const verified = verifyWithKeySet(bytes, keyset, now);
  return { baseline: parseBaselineJson(verified.payload, 'signed baseline'), verified };
}
