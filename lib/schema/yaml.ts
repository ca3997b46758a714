/**
 * YAML documents for the schema layer: a YAML 1.2 text (core schema) read strictly into the
 * JSON data model, so that a YAML document and its JSON twin validate, hash and sign alike.
 *
 * Strict means: one document; no tags at all (no `!!binary`, `!!js/...`, custom `!tag`);
 * mapping keys are plain strings (no collections or numbers as keys); a key once per
 * mapping; `<<` is an ordinary key (no merge keys, YAML 1.2); aliases are allowed but their
 * expansion is capped (MAX_YAML_ALIAS_COUNT, against "billion laughs"); the text is capped
 * in size and the result in depth (as parseJsonText); numbers must be finite. The value
 * comes back through canonical JSON, so it holds exactly what JSON can. Every failure is a
 * BulwarkError with the caller's code, never a YAML exception.
 */
import { isScalar, parseDocument, visit, type Document } from 'yaml';
import { BulwarkError, type ErrorCode } from '../errors.js';
import { canonicalJson } from './canonical.js';
import { documentText, MAX_DOCUMENT_BYTES, MAX_DOCUMENT_DEPTH, parseJsonText } from './validate.js';

/** Most alias expansions while building the value (the yaml library's guard against alias bombs). */
export const MAX_YAML_ALIAS_COUNT = 100;

/** The format of a document file, by its name: `.yaml`/`.yml` is YAML, anything else JSON. */
export type DocumentFormat = 'json' | 'yaml';

export function documentFormatOf(name: string): DocumentFormat {
  return /\.ya?ml$/i.test(name) ? 'yaml' : 'json';
}

/** The first thing strict YAML does not allow in a parsed document, with its line when known. */
function strictProblem(doc: Document.Parsed): string | undefined {
  let problem: string | undefined;
  visit(doc, {
    Node(_key, node) {
      if (node.tag !== undefined) {
        problem = `the tag ${node.tag} is not allowed`;
        return visit.BREAK;
      }
      return undefined;
    },
    Pair(_key, pair) {
      if (!isScalar(pair.key) || typeof pair.key.value !== 'string') {
        problem = 'a mapping key must be a string';
        return visit.BREAK;
      }
      return undefined;
    },
  });
  return problem;
}

/**
 * Parses YAML text (or UTF-8 octets) strictly into a JSON value; see the module comment.
 * Untrusted text in, a plain JSON value out (not yet validated: pass it to a DocumentSchema).
 */
export function parseYamlText(text: string | Uint8Array, what: string, code: ErrorCode, source?: string, maxBytes: number = MAX_DOCUMENT_BYTES): unknown {
  const from = source === undefined ? '' : ` (${source})`;
  const str = documentText(text, what, code, source, maxBytes);
  let value: unknown;
  try {
    const doc = parseDocument(str, { version: '1.2', schema: 'core', uniqueKeys: true, merge: false, customTags: [], strict: true, prettyErrors: false });
    const first = doc.errors[0] ?? doc.warnings[0];
    if (first !== undefined) throw new BulwarkError(code, `${what}${from} is not strict YAML: ${first.message.split('\n')[0] ?? first.code}`, { path: '', yaml: first.code });
    const problem = strictProblem(doc);
    if (problem !== undefined) throw new BulwarkError(code, `${what}${from} is not strict YAML: ${problem}`, { path: '' });
    value = doc.toJS({ maxAliasCount: MAX_YAML_ALIAS_COUNT });
  } catch (err) {
    if (err instanceof BulwarkError) throw err;
    // The yaml library's ReferenceError for alias bombs, or a RangeError on a pathological nesting.
    const reason = err instanceof Error ? err.message : String(err);
    throw new BulwarkError(code, `${what}${from} cannot be read as YAML: ${reason}`, { path: '' }, { cause: err });
  }
  // Aliases share subtrees: what they expand to is bounded like the text itself.
  if (!expandsWithin(value, maxBytes)) {
    throw new BulwarkError(code, `${what}${from}: its aliases expand to more than ${maxBytes} octets`, { path: '' });
  }
  // Through canonical JSON: only JSON values survive, numbers must be finite, nesting is capped.
  const json = canonicalJson(value ?? null, { what: `${what}${from}`, code, maxDepth: MAX_DOCUMENT_DEPTH });
  return parseJsonText(json, what, code, source, Math.max(maxBytes, json.length));
}

/**
 * Whether a value, with every alias expanded, stays within `budget` (strings by length,
 * every other node as 8), walked iteratively and abandoned as soon as it is over.
 */
function expandsWithin(root: unknown, budget: number): boolean {
  // Counted when pushed, so the stack never holds more than the budget allows.
  let used = 8;
  const stack: unknown[] = [root];
  const push = (v: unknown): boolean => {
    used += typeof v === 'string' ? v.length + 8 : 8;
    stack.push(v);
    return used <= budget;
  };
  while (stack.length > 0) {
    const v = stack.pop();
    if (Array.isArray(v)) {
      for (const item of v) if (!push(item)) return false;
    } else if (typeof v === 'object' && v !== null) {
      for (const [k, item] of Object.entries(v)) if (!push(k) || !push(item)) return false;
    }
  }
  return used <= budget;
}

/**
 * A document in either format, by `format`: parseJsonText or parseYamlText. Untrusted text
 * in, a plain JSON value out.
 */
export function parseDocumentText(text: string | Uint8Array, format: DocumentFormat, what: string, code: ErrorCode, source?: string, maxBytes?: number): unknown {
  return format === 'yaml' ? parseYamlText(text, what, code, source, maxBytes) : parseJsonText(text, what, code, source, maxBytes);
}
