/**
 * What the Nomad answer parsers share: the JSON value types a job is kept in, the schema
 * pieces Nomad's answers are checked with, and the coded error. Nomad is asked, never
 * trusted: every answer goes through a TypeBox schema of the schema layer (lib/schema) that
 * checks the fields Bulwark reads and lets the many others through, and a value of the wrong
 * type is NOMAD_RESPONSE_MALFORMED naming its JSON pointer, never a TypeError later on.
 */
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { BulwarkError } from '../errors.js';
import { defineDocument, parseJsonText as parseDocumentText, type DocumentSchema } from '../schema/index.js';

/** Any JSON value, as a JSON parser can produce it. */
export type JsonValue = null | boolean | number | string | readonly JsonValue[] | { readonly [key: string]: JsonValue };

/** A JSON object. */
export type JsonObject = { readonly [key: string]: JsonValue };

const CODE = 'NOMAD_RESPONSE_MALFORMED';

/** Throws NOMAD_RESPONSE_MALFORMED for a value at `path` (a JSON pointer) that breaks a rule no schema states. */
export function malformed(what: string, path: string, expected: string): never {
  throw new BulwarkError(CODE, `Nomad ${what} is invalid at ${path === '' ? '/' : path}: not ${expected}`, { path });
}

/** Whether a JSON value is an object (not null, not an array). */
export function isJsonObject(v: JsonValue | undefined): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A Nomad answer kind: its schema, checked through the schema layer with NOMAD_RESPONSE_MALFORMED. */
export function nomadDocument<T extends TSchema>(schema: T, what: string): DocumentSchema<T> {
  return defineDocument(schema, `Nomad ${what}`, CODE);
}

/**
 * Parses a part of an answer (the Node inside an event) with its own document kind, the
 * error's JSON pointer rebased onto `path`, the part's place in the whole answer.
 */
export function parseAt<T extends TSchema>(doc: DocumentSchema<T>, value: unknown, path: string): Static<T> {
  try {
    return doc.parse(value);
  } catch (err) {
    if (!(err instanceof BulwarkError)) throw err;
    const inner = typeof err.details['path'] === 'string' ? err.details['path'] : '';
    throw new BulwarkError(CODE, `${err.message} (at ${path}${inner} of the whole answer)`, { path: `${path}${inner}` }, { cause: err });
  }
}

/** Nomad's indexes and counts: non-negative integers. */
export const NomadIndex = Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER });

/** A string Nomad may leave out or write as null (read as ""). */
export const OptionalString = Type.Optional(Type.Union([Type.String(), Type.Null()]));

/** A list Nomad writes as null when it is empty (or leaves out). */
export function nullableList<T extends TSchema>(item: T) {
  return Type.Union([Type.Array(item), Type.Null()]);
}

/** A map of strings to strings; null or missing is an empty map. */
export const StringMap = Type.Optional(Type.Union([Type.Record(Type.String(), Type.String()), Type.Null()]));

/** Copies an unknown value into a JsonValue, checking every node (no cycles, no functions). */
export function toJsonValue(v: unknown, path: string, depth = 0): JsonValue {
  if (depth > 64) malformed('answer', path, 'nested at most 64 levels deep');
  if (v === null || typeof v === 'boolean' || typeof v === 'string') return v;
  if (typeof v === 'number') return Number.isFinite(v) ? v : malformed('answer', path, 'a finite number');
  if (Array.isArray(v)) return v.map((x: unknown, i) => toJsonValue(x, `${path}/${i}`, depth + 1));
  if (typeof v === 'object') {
    const out: Record<string, JsonValue> = {};
    for (const [k, x] of Object.entries(v)) out[k] = toJsonValue(x, `${path}/${k.replace(/~/g, '~0').replace(/\//g, '~1')}`, depth + 1);
    return out;
  }
  return malformed('answer', path, 'a JSON value');
}

/** Copies an unknown value into a JsonObject (an object whose every node is JSON). */
export function toJsonObject(v: unknown, path: string): JsonObject {
  const out = toJsonValue(v, path);
  return isJsonObject(out) ? out : malformed('answer', path, 'an object');
}

/** Parses JSON text into an unknown value (size and depth capped); bad JSON is NOMAD_RESPONSE_MALFORMED. */
export function parseJsonText(text: string, what: string): unknown {
  return parseDocumentText(text, `Nomad response to ${what}`, CODE);
}
