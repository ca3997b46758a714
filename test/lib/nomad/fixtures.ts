/**
 * Access to the captured Nomad answers in test/fixtures/nomad/ (see README.md there) from
 * tests compiled into dist/test/lib/nomad/. Expected values are read as `unknown` and narrowed.
 */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

export function nomadFixturePath(name: string): string {
  return fileURLToPath(new URL(`../../../../test/fixtures/nomad/${name}`, import.meta.url));
}

/** The raw text Nomad sent. */
export async function nomadFixtureText(name: string): Promise<string> {
  return readFile(nomadFixturePath(name), 'utf8');
}

/** The raw bytes Nomad sent. */
export async function nomadFixtureBytes(name: string): Promise<Uint8Array> {
  return new Uint8Array(await readFile(nomadFixturePath(name)));
}

/** NAME.expected.json as a plain object. */
export async function expected(name: string): Promise<Record<string, unknown>> {
  const v: unknown = JSON.parse(await nomadFixtureText(`${name}.expected.json`));
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error(`${name}.expected.json is not an object`);
  return Object.fromEntries(Object.entries(v));
}

/** A field of an expected object as a record (tests fail loudly on a wrong fixture). */
export function rec(v: unknown, what: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error(`${what} is not an object`);
  return Object.fromEntries(Object.entries(v));
}

export function strings(v: unknown, what: string): string[] {
  if (!Array.isArray(v) || !v.every((x): x is string => typeof x === 'string')) throw new Error(`${what} is not a string list`);
  return v;
}
