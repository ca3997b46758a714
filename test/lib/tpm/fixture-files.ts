/**
 * Fixture access for tests compiled into dist/: fixtures stay in test/fixtures/<kind>/
 * of the source tree, four levels above this compiled file (dist/test/lib/tpm/).
 * JSON is read as `unknown` and narrowed field by field.
 */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

export function fixturePath(kind: 'tpm' | 'ekcert', name: string): string {
  return fileURLToPath(new URL(`../../../../test/fixtures/${kind}/${name}`, import.meta.url));
}

export async function readFixture(kind: 'tpm' | 'ekcert', name: string): Promise<Uint8Array> {
  return new Uint8Array(await readFile(fixturePath(kind, name)));
}

export async function readFixtureText(kind: 'tpm' | 'ekcert', name: string): Promise<string> {
  return readFile(fixturePath(kind, name), 'utf8');
}

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

export async function readFixtureJson(kind: 'tpm' | 'ekcert', name: string): Promise<Record<string, unknown>> {
  const value: unknown = JSON.parse(await readFixtureText(kind, name));
  return record(value, name);
}

export function record(value: unknown, what: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error(`${what} is not an object`);
  return Object.fromEntries(Object.entries(value));
}

export function str(obj: Record<string, unknown>, key: string): string {
  const v = obj[key];
  if (typeof v !== 'string') throw new Error(`fixture field ${key} is not a string`);
  return v;
}

export function optStr(obj: Record<string, unknown>, key: string): string | undefined {
  return obj[key] === undefined ? undefined : str(obj, key);
}

export function num(obj: Record<string, unknown>, key: string): number {
  const v = obj[key];
  if (typeof v !== 'number') throw new Error(`fixture field ${key} is not a number`);
  return v;
}

export function optNum(obj: Record<string, unknown>, key: string): number | undefined {
  return obj[key] === undefined ? undefined : num(obj, key);
}

export function strArray(obj: Record<string, unknown>, key: string): string[] {
  const v = obj[key];
  if (!Array.isArray(v) || !v.every((x): x is string => typeof x === 'string')) throw new Error(`fixture field ${key} is not a string array`);
  return v;
}

export function records(obj: Record<string, unknown>, key: string): Record<string, unknown>[] {
  const v = obj[key];
  if (!Array.isArray(v)) throw new Error(`fixture field ${key} is not an array`);
  return v.map((x, i) => record(x, `${key}[${i}]`));
}
