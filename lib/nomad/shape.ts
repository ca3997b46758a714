/**
 * Hand-written shape checks for Nomad's JSON answers. Nomad is asked, never trusted: every
 * value read from a response goes through one of these, and a value of the wrong type is a
 * NOMAD_RESPONSE_MALFORMED error naming the path, never a TypeError later on.
 */
import { BulwarkError } from '../errors.js';

/** Any JSON value, as JSON.parse can produce it. */
export type JsonValue = null | boolean | number | string | readonly JsonValue[] | { readonly [key: string]: JsonValue };

/** A JSON object. */
export type JsonObject = { readonly [key: string]: JsonValue };

/** Throws NOMAD_RESPONSE_MALFORMED for a value at `path` that is not what a parser expects. */
export function malformed(path: string, expected: string): never {
  throw new BulwarkError('NOMAD_RESPONSE_MALFORMED', `Nomad response: ${path} is not ${expected}`, { path });
}

/** Whether a value is a plain object (not null, not an array). */
export function isObject(v: unknown): v is Readonly<Record<string, unknown>> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Whether a JSON value is an object (not null, not an array). */
export function isJsonObject(v: JsonValue | undefined): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The value as an object, or NOMAD_RESPONSE_MALFORMED. */
export function obj(v: unknown, path: string): Readonly<Record<string, unknown>> {
  return isObject(v) ? v : malformed(path, 'an object');
}

/** The value as an array, or NOMAD_RESPONSE_MALFORMED. */
export function arr(v: unknown, path: string): readonly unknown[] {
  return Array.isArray(v) ? v : malformed(path, 'an array');
}

/** An array, where Nomad writes null (or leaves the field out) for an empty one. */
export function arrOrNull(v: unknown, path: string): readonly unknown[] {
  return v === null || v === undefined ? [] : arr(v, path);
}

/** A string field. */
export function str(o: Readonly<Record<string, unknown>>, key: string, path: string): string {
  const v = o[key];
  return typeof v === 'string' ? v : malformed(`${path}.${key}`, 'a string');
}

/** A string field that may be missing or null (then ""). */
export function strOrEmpty(o: Readonly<Record<string, unknown>>, key: string, path: string): string {
  const v = o[key];
  return v === null || v === undefined ? '' : typeof v === 'string' ? v : malformed(`${path}.${key}`, 'a string');
}

/** A boolean field. */
export function bool(o: Readonly<Record<string, unknown>>, key: string, path: string): boolean {
  const v = o[key];
  return typeof v === 'boolean' ? v : malformed(`${path}.${key}`, 'a boolean');
}

/** A non-negative integer field (Nomad's indexes, counts, nanosecond durations). */
export function uint(o: Readonly<Record<string, unknown>>, key: string, path: string): number {
  const v = o[key];
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : malformed(`${path}.${key}`, 'a non-negative integer');
}

/** A map of strings to strings; null or missing is an empty map. */
export function strMap(v: unknown, path: string): Readonly<Record<string, string>> {
  if (v === null || v === undefined) return {};
  const o = obj(v, path);
  const out: Record<string, string> = {};
  for (const [k, val] of Object.entries(o)) {
    if (typeof val !== 'string') malformed(`${path}.${k}`, 'a string');
    out[k] = val;
  }
  return out;
}

/** Copies an unknown value into a JsonValue, checking every node (no cycles, no functions). */
export function toJsonValue(v: unknown, path: string, depth = 0): JsonValue {
  if (depth > 64) malformed(path, 'nested at most 64 levels deep');
  if (v === null || typeof v === 'boolean' || typeof v === 'string') return v;
  if (typeof v === 'number') return Number.isFinite(v) ? v : malformed(path, 'a finite number');
  if (Array.isArray(v)) return v.map((x: unknown, i) => toJsonValue(x, `${path}[${i}]`, depth + 1));
  if (isObject(v)) {
    const out: Record<string, JsonValue> = {};
    for (const [k, x] of Object.entries(v)) out[k] = toJsonValue(x, `${path}.${k}`, depth + 1);
    return out;
  }
  return malformed(path, 'a JSON value');
}

/** Copies an unknown value into a JsonObject (an object whose every node is JSON). */
export function toJsonObject(v: unknown, path: string): JsonObject {
  const o = obj(v, path);
  const out: Record<string, JsonValue> = {};
  for (const [k, x] of Object.entries(o)) out[k] = toJsonValue(x, `${path}.${k}`, 1);
  return out;
}

/** Parses JSON text into an unknown value; bad JSON is NOMAD_RESPONSE_MALFORMED. */
export function parseJsonText(text: string, what: string): unknown {
  try {
    const v: unknown = JSON.parse(text);
    return v;
  } catch (err) {
    throw new BulwarkError('NOMAD_RESPONSE_MALFORMED', `Nomad response to ${what} is not JSON`, { what }, { cause: err });
  }
}
