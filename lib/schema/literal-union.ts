/**
 * Schemas for validated enums: a value passes only when it is one of a fixed set of
 * strings, and its type after validation is the literal union of that set (never a
 * loose `string`). `literalUnion` (validate.ts) takes a list; `keyOfTable` a code table.
 */
import { Type, type SchemaOptions, type TUnsafe } from '@sinclair/typebox';

/** A schema accepting exactly the keys of `table` (a code table such as ERROR_CODES), typed as their union. */
export function keyOfTable<T extends Readonly<Record<string, unknown>>>(table: T, options?: SchemaOptions): TUnsafe<Extract<keyof T, string>> {
  const keys: Array<Extract<keyof T, string>> = [];
  for (const key in table) if (Object.prototype.hasOwnProperty.call(table, key)) keys.push(key);
  return Type.Unsafe<Extract<keyof T, string>>(Type.Union(keys.map((k) => Type.Literal(k)), options));
}
