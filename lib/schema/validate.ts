/**
 * The one schema layer: every JSON document that crosses a boundary (config files and
 * drop-ins, stored KV records, policies, Nomad answers, checked wire fields) is parsed
 * and validated here, in one call, into a typed value. Schemas are TypeBox values, which
 * are JSON Schema (draft 2020-12 keywords) and carry their TypeScript type, so the
 * published `schema.json` files are written from the same objects the validators use.
 *
 * Validators compile on first use (TypeBox's TypeCompiler), so a process that never
 * reads a document of some kind pays nothing for its schema at start.
 */
import { Type, type SchemaOptions, type Static, type TSchema, type TUnsafe } from '@sinclair/typebox';
import { TypeCompiler, type TypeCheck, type ValueError } from '@sinclair/typebox/compiler';
import { BulwarkError, type ErrorCode } from '../errors.js';

/** Largest JSON text any document parser accepts before it is parsed (16 MiB). */
export const MAX_DOCUMENT_BYTES = 16 * 1024 * 1024;

/** How deep a JSON document may nest: deeper is refused before validation. */
export const MAX_DOCUMENT_DEPTH = 64;

/** A document validator for one schema: `parse*` returns the typed value or throws a coded `BulwarkError`. */
export interface DocumentSchema<T extends TSchema> {
  /** The JSON Schema itself (for publishing as schema.json and for composition). */
  readonly schema: T;
  /** What the document is, for messages ("controller config", "node record"). */
  readonly what: string;
  /** The error code a document that does not validate gets. */
  readonly code: ErrorCode;
  /** Validates an already-parsed value. */
  parse(value: unknown, source?: string): Static<T>;
  /** Parses JSON text (or UTF-8 bytes) and validates it. */
  parseJson(text: string | Uint8Array, source?: string): Static<T>;
  /** True when the value validates (no error built). */
  check(value: unknown): value is Static<T>;
}

/** One validation problem: a JSON pointer (`/policies/0/digest`) and what is wrong there. */
export interface SchemaIssue {
  readonly path: string;
  readonly message: string;
}

/**
 * Defines a document kind: its schema, a name for messages, and the error code it fails
 * with (`CONFIG_INVALID`, `STORE_CORRUPT`, `MEASURED_BOOT_POLICY_INVALID`, ...).
 */
export function defineDocument<T extends TSchema>(schema: T, what: string, code: ErrorCode): DocumentSchema<T> {
  let compiled: TypeCheck<T> | undefined;
  const checker = (): TypeCheck<T> => (compiled ??= TypeCompiler.Compile(schema));
  const fail = (issues: readonly SchemaIssue[], source: string | undefined): BulwarkError => {
    const first = issues[0];
    const where = first === undefined ? '' : ` at ${first.path === '' ? '/' : first.path}`;
    const from = source === undefined ? '' : ` (${source})`;
    return new BulwarkError(code, `${what}${from} is invalid${where}: ${first?.message ?? 'does not match its schema'}`, {
      path: first?.path ?? '',
      issues: issues.length,
      ...(source === undefined ? {} : { source }),
    });
  };
  const parse = (value: unknown, source?: string): Static<T> => {
    const c = checker();
    if (c.Check(value)) return value;
    throw fail(schemaIssues(c, value), source);
  };
  return {
    schema,
    what,
    code,
    parse,
    parseJson(text: string | Uint8Array, source?: string): Static<T> {
      return parse(parseJsonText(text, what, code, source), source);
    },
    check(value: unknown): value is Static<T> {
      return checker().Check(value);
    },
  };
}

/** The first few issues of a failed check, with JSON pointers. */
function schemaIssues<T extends TSchema>(c: TypeCheck<T>, value: unknown): SchemaIssue[] {
  const out: SchemaIssue[] = [];
  for (const e of c.Errors(value)) {
    const d = deepest(e);
    out.push({ path: d.path, message: issueMessage(d) });
    if (out.length >= 8) break;
  }
  return out;
}

/**
 * For a union that failed, the error of the alternative that got furthest into the value
 * (a list that may be null: the bad item inside the list, not "Expected union value" at the
 * list); the union's own error when no alternative got further.
 */
function deepest(e: ValueError): ValueError {
  let best = e;
  for (const alternative of e.errors) {
    const first = alternative.First();
    if (first !== undefined && first.path.length > best.path.length) best = deepest(first);
  }
  return best;
}

/** TypeBox's message, except for a union of literals, where it names the allowed values. */
function issueMessage(e: ValueError): string {
  const anyOf: unknown = e.schema['anyOf'];
  if (!Array.isArray(anyOf) || anyOf.length === 0) return e.message;
  const allowed: string[] = [];
  for (const member of anyOf) {
    const value: unknown = typeof member === 'object' && member !== null && 'const' in member ? member.const : undefined;
    if (value === undefined) return e.message;
    allowed.push(JSON.stringify(value));
  }
  // A long list (every finding code) is cut: the path already says which field it is.
  const shown = allowed.length > 12 ? [...allowed.slice(0, 12), `… (${allowed.length - 12} more)`] : allowed;
  return `Expected one of ${shown.join(', ')}`;
}

/**
 * A union of string literals (JSON Schema `anyOf` of `const`s) whose static type is the
 * union of the values: a validated enum, for value lists built at run time from a table.
 */
export function literalUnion<const T extends string>(values: readonly T[], options?: SchemaOptions): TUnsafe<T> {
  return Type.Unsafe<T>(Type.Union(values.map((v) => Type.Literal(v)), options));
}

/**
 * The text of a document of at most `maxBytes` (JSON or YAML): octets must be UTF-8. Throws
 * `code` naming `what` (and `source`) when it is larger or not UTF-8.
 */
export function documentText(text: string | Uint8Array, what: string, code: ErrorCode, source?: string, maxBytes: number = MAX_DOCUMENT_BYTES): string {
  const from = source === undefined ? '' : ` (${source})`;
  if (text.length > maxBytes) throw new BulwarkError(code, `${what}${from} is larger than ${maxBytes} bytes`, { path: '', size: text.length });
  try {
    return typeof text === 'string' ? text : new TextDecoder('utf-8', { fatal: true }).decode(text);
  } catch (err) {
    throw new BulwarkError(code, `${what}${from} is not UTF-8`, { path: '' }, { cause: err });
  }
}

/**
 * JSON.parse with a size cap and a depth cap, every failure a coded `BulwarkError`
 * (never a `SyntaxError`). The only `JSON.parse` outside tests. `maxBytes` raises the cap
 * for a kind that is legitimately larger (a runtime policy of a whole root file system).
 */
export function parseJsonText(text: string | Uint8Array, what: string, code: ErrorCode, source?: string, maxBytes: number = MAX_DOCUMENT_BYTES): unknown {
  const from = source === undefined ? '' : ` (${source})`;
  const str = documentText(text, what, code, source, maxBytes);
  let value: unknown;
  try {
    value = JSON.parse(str);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new BulwarkError(code, `${what}${from} is not JSON: ${reason}`, { path: '' }, { cause: err });
  }
  const depth = jsonDepth(value);
  if (depth > MAX_DOCUMENT_DEPTH) {
    throw new BulwarkError(code, `${what}${from} nests deeper than ${MAX_DOCUMENT_DEPTH} levels`, { path: '', depth });
  }
  return value;
}

/** Depth of a parsed JSON value, iteratively (a hostile document cannot overflow the stack); leaves count one level. */
function jsonDepth(root: unknown): number {
  if (root === null || typeof root !== 'object') return 1;
  let max = 1;
  // Only containers go on the stack: a document of millions of strings walks fast.
  const stack: Array<[object, number]> = [[root, 1]];
  while (stack.length > 0) {
    const top = stack.pop();
    if (top === undefined) break;
    const [value, depth] = top;
    if (depth > MAX_DOCUMENT_DEPTH) return depth;
    const children: unknown[] = Array.isArray(value) ? value : Object.values(value);
    for (const v of children) {
      if (depth + 1 > max) max = depth + 1;
      if (v !== null && typeof v === 'object') stack.push([v, depth + 1]);
    }
    if (depth > max) max = depth;
  }
  return max;
}
