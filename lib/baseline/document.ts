/** Baseline documents (policies/baselines/schema.json). (Contract; implemented here.) */
import type { Baseline } from './types.js';

/** Checks a baseline document; a BulwarkError naming the JSON path of what is wrong. */
export function validateBaseline(document: unknown): Baseline {
  void document;
  throw new Error('not implemented');
}
