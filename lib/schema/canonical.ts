/**
 * Canonical JSON, the form Bulwark hashes and signs: object keys sorted (UTF-16 code unit
 * order) at every level, no whitespace, undefined members left out (an undefined array item
 * or value written as null). Values that JSON cannot carry (non-finite
 * numbers, functions, bigints) are refused, and so is nesting past `maxDepth`.
 */
import { BulwarkError, type ErrorCode } from '../errors.js';

export interface CanonicalJsonOptions {
  /** What is being written, for the error message. Default "a value". */
  readonly what?: string;
  /** The code of the refusal. Default USAGE (the caller built the value). */
  readonly code?: ErrorCode;
  /** Deepest nesting written (the top level is 1). Default unbounded. */
  readonly maxDepth?: number;
}

export function canonicalJson(value: unknown, options: CanonicalJsonOptions = {}): string {
  const what = options.what ?? 'a value';
  const code = options.code ?? 'USAGE';
  const maxDepth = options.maxDepth ?? Number.POSITIVE_INFINITY;
  const write = (v: unknown, depth: number): string => {
    if (depth > maxDepth) throw new BulwarkError(code, `${what} nests deeper than ${maxDepth} levels`);
    if (v === null || v === undefined) return 'null';
    if (typeof v === 'boolean' || typeof v === 'string') return JSON.stringify(v);
    if (typeof v === 'number') {
      if (!Number.isFinite(v)) throw new BulwarkError(code, `${what} holds a number JSON cannot carry`);
      return JSON.stringify(v);
    }
    if (Array.isArray(v)) return `[${v.map((item: unknown) => write(item, depth + 1)).join(',')}]`;
    if (typeof v === 'object') {
      const entries = Object.entries(v)
        .filter(([, member]) => member !== undefined)
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
      return `{${entries.map(([k, member]) => `${JSON.stringify(k)}:${write(member, depth + 1)}`).join(',')}}`;
    }
    throw new BulwarkError(code, `${what} holds a ${typeof v}, which JSON cannot carry`);
  };
  return write(value, 1);
}
