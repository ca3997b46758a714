/**
 * Layered configuration for both daemons, in one place (the order rust-keylime uses):
 *
 *   1. built-in defaults: the `default` of every property of the daemon's schema;
 *   2. the JSON file (/etc/bulwark/<daemon>.json, or --config FILE);
 *   3. drop-ins: every `*.json` in the directory beside it named after it
 *      (/etc/bulwark/<daemon>.d/), in lexical order, each a partial document merged
 *      deeply (objects key by key; arrays and scalars replaced);
 *   4. environment variables, from the daemon's one table (variable → key → type).
 *
 * Each layer is validated where it is read, against the schema with every key optional
 * and no unknown key allowed, so an error names the file (or variable) and the JSON
 * path. The merged result is validated once more against the full schema. Adding a key
 * means adding it to the schema (and, if it has one, to the env table).
 */
import { readdir, readFile } from 'node:fs/promises';
import { basename, dirname, extname, join } from 'node:path';
import { Type, type Static, type TObject } from '@sinclair/typebox';
import { BulwarkError } from '../lib/index.js';
import { defineDocument, parseJsonText, type DocumentSchema } from '../lib/schema/index.js';

/** Largest config file or drop-in read. */
export const MAX_CONFIG_FILE_BYTES = 1024 * 1024;

/**
 * How an environment variable's text becomes a value: `string` as it is; `integer` a
 * decimal or 0x-hex number (text that is neither is left as text, for the schema to
 * refuse with the key's path); `path-or-none` a path, or null for the word "none";
 * `boolean` true for "true", "1", "yes", false for "false", "0", "no" (other text is left
 * as text, for the schema to refuse).
 */
export type EnvValueType = 'string' | 'integer' | 'path-or-none' | 'boolean';

/** One environment override: the key it sets and how its text converts. */
export interface EnvOverride<K extends string> {
  readonly key: K;
  readonly type: EnvValueType;
}

/** A daemon's environment table: variable name → override. */
export type EnvTable<K extends string> = Readonly<Record<string, EnvOverride<K>>>;

/** One parsed layer and where it came from (a file path, "layer N"). */
export interface ConfigLayer {
  readonly source: string;
  readonly value: unknown;
  /** True when `source` is a file: errors then start with the file's path. */
  readonly file: boolean;
}

/** A daemon's configuration: its schema (every property with a default), its env table, and their validators. */
export interface ConfigSpec<T extends TObject> {
  /** For messages: "agent config", "controller config". */
  readonly what: string;
  readonly schema: T;
  readonly env: EnvTable<Extract<keyof Static<T>, string>>;
  /** The whole document (after layering). */
  readonly full: DocumentSchema<T>;
  /** One layer: every key optional, unknown keys refused. */
  readonly partial: DocumentSchema<TObject>;
}

/** Defines a daemon's configuration; validators compile on first use. */
export function defineConfig<T extends TObject>(what: string, schema: T, env: EnvTable<Extract<keyof Static<T>, string>>): ConfigSpec<T> {
  return {
    what,
    schema,
    env,
    full: defineDocument(schema, what, 'CONFIG_INVALID'),
    partial: defineDocument(Type.Partial(schema, { additionalProperties: false }), what, 'CONFIG_INVALID'),
  };
}

/** A layered, validated document and, per top-level key, the source that set it last. */
export interface LayeredConfig<T extends TObject> {
  readonly value: Static<T>;
  readonly origin: (key: string) => ConfigLayer | null;
}

/**
 * A CONFIG_INVALID naming the key, its source and the JSON path: "FILE: config KEY is
 * invalid at /KEY/...: why" for files, "config KEY (SOURCE) is invalid ..." otherwise.
 */
export function configError(key: string, layer: ConfigLayer | null, path: string, why: string, cause?: unknown): BulwarkError {
  const source = layer?.source ?? 'defaults';
  const at = path === '' ? '' : ` at ${path}`;
  const message = layer?.file === true ? `${source}: config ${key} is invalid${at}: ${why}` : `config ${key} (${source}) is invalid${at}: ${why}`;
  return new BulwarkError('CONFIG_INVALID', message, { key, source, path: path === '' ? '/' : path }, cause === undefined ? undefined : { cause });
}

/** The top-level key a JSON pointer is under ("" for the document itself). */
function keyOfPointer(pointer: string): string {
  const first = pointer.split('/')[1] ?? '';
  return first.replaceAll('~1', '/').replaceAll('~0', '~');
}

/** What the schema layer says, made plainer for the two messages that say least. */
function explain(schema: TObject, key: string, path: string, why: string): string {
  if (why === 'Unexpected property') return 'is not a known setting';
  const property = schema.properties[key];
  if (why !== 'Expected union value' || path !== `/${key}` || property === undefined || !Array.isArray(property.anyOf)) return why;
  const options = property.anyOf.map((option: unknown): string => {
    if (typeof option !== 'object' || option === null) return '?';
    if ('const' in option) return JSON.stringify(option.const);
    const pattern = 'pattern' in option && typeof option.pattern === 'string' ? ` matching ${option.pattern}` : '';
    const range = 'minimum' in option && 'maximum' in option ? ` in ${String(option.minimum)}..${String(option.maximum)}` : '';
    return 'type' in option ? `${String(option.type)}${range}${pattern}` : '?';
  });
  return `must be one of: ${options.join(', ')}`;
}

/** Validates one layer against the partial schema; a failure names the layer and the path. */
function checkLayer(schema: TObject, partial: DocumentSchema<TObject>, layer: ConfigLayer): Record<string, unknown> {
  try {
    return partial.parse(layer.value);
  } catch (err) {
    if (!(err instanceof BulwarkError)) throw err;
    const path = typeof err.details['path'] === 'string' ? err.details['path'] : '';
    const key = keyOfPointer(path);
    const why = explain(schema, key, path, err.message.replace(/^.*? is invalid(?: at \S+)?: /, ''));
    if (key === '') {
      const message = layer.file ? `${layer.source}: config is not a JSON object` : `config (${layer.source}) is not a JSON object`;
      throw new BulwarkError('CONFIG_INVALID', message, { key: '', source: layer.source, path: '/' }, { cause: err });
    }
    throw configError(key, layer, path, why, err);
  }
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Deep merge of `over` into `base` (new objects; own keys only, defined as data so "__proto__" is a key like any other). */
export function mergeConfig(base: Readonly<Record<string, unknown>>, over: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const put = (k: string, v: unknown): void => {
    Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true });
  };
  for (const [k, v] of Object.entries(base)) put(k, v);
  for (const [k, v] of Object.entries(over)) {
    const current = Object.prototype.hasOwnProperty.call(out, k) ? out[k] : undefined;
    put(k, isPlainObject(current) && isPlainObject(v) ? mergeConfig(current, v) : v);
  }
  return out;
}

/** The defaults the schema declares, one per property. */
function schemaDefaults(schema: TObject): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, property] of Object.entries(schema.properties)) {
    const value: unknown = property.default;
    if (value !== undefined) out[k] = structuredClone(value);
  }
  return out;
}

/** An environment variable's text as the value its table entry says. */
function envValue(text: string, type: EnvValueType): unknown {
  switch (type) {
    case 'string':
      return text;
    case 'path-or-none':
      return text === 'none' ? null : text;
    case 'boolean': {
      const s = text.trim().toLowerCase();
      if (s === 'true' || s === '1' || s === 'yes') return true;
      if (s === 'false' || s === '0' || s === 'no') return false;
      return text;
    }
    case 'integer': {
      const s = text.trim();
      if (/^[0-9]{1,16}$/.test(s)) return Number(s);
      if (/^0x[0-9a-fA-F]{1,13}$/.test(s)) return Number.parseInt(s.slice(2), 16);
      return text;
    }
  }
}

/**
 * Layers a configuration: the schema's defaults, then `layers` in order, then the
 * variables of `env` named in the spec's table (an empty variable counts as unset). Pure:
 * no I/O. Every failure is CONFIG_INVALID with `details.key`, `details.source` (file,
 * "layer N" or variable) and `details.path`.
 */
export function layerConfig<T extends TObject>(spec: ConfigSpec<T>, layers: readonly ConfigLayer[], env: Readonly<Record<string, string | undefined>>): LayeredConfig<T> {
  let merged = schemaDefaults(spec.schema);
  const origins = new Map<string, ConfigLayer>();
  for (const layer of layers) {
    const value = checkLayer(spec.schema, spec.partial, layer);
    merged = mergeConfig(merged, value);
    for (const k of Object.keys(value)) origins.set(k, layer);
  }
  for (const [name, override] of Object.entries(spec.env)) {
    const text = env[name];
    if (text === undefined || text === '') continue;
    const layer: ConfigLayer = { source: name, value: { [override.key]: envValue(text, override.type) }, file: false };
    merged = mergeConfig(merged, checkLayer(spec.schema, spec.partial, layer));
    origins.set(override.key, layer);
  }
  const origin = (key: string): ConfigLayer | null => origins.get(key) ?? null;
  try {
    return { value: spec.full.parse(merged), origin };
  } catch (err) {
    if (!(err instanceof BulwarkError)) throw err;
    const path = typeof err.details['path'] === 'string' ? err.details['path'] : '';
    const key = keyOfPointer(path);
    throw configError(key, origin(key), path, explain(spec.schema, key, path, err.message.replace(/^.*? is invalid(?: at \S+)?: /, '')), err);
  }
}

/** The drop-in directory of a config file: /etc/bulwark/agent.json → /etc/bulwark/agent.d. */
export function dropInDirOf(configPath: string): string {
  return join(dirname(configPath), `${basename(configPath, extname(configPath))}.d`);
}

function errnoOf(err: unknown): string | undefined {
  return err instanceof Error && 'code' in err && typeof err.code === 'string' ? err.code : undefined;
}

/** Reads and parses one config file; every failure is CONFIG_INVALID naming the file. */
async function readLayer(path: string, what: string): Promise<ConfigLayer> {
  let data: Uint8Array;
  try {
    data = await readFile(path);
  } catch (err) {
    throw new BulwarkError('CONFIG_INVALID', `cannot read config file ${path}: ${err instanceof Error ? err.message : String(err)}`, { source: path, path: '/' }, { cause: err });
  }
  if (data.length > MAX_CONFIG_FILE_BYTES) {
    throw new BulwarkError('CONFIG_INVALID', `config file ${path} is larger than ${MAX_CONFIG_FILE_BYTES} bytes`, { source: path, path: '/' });
  }
  return { source: path, value: parseJsonText(data, what, 'CONFIG_INVALID', path), file: true };
}

/**
 * Reads the file layers: `explicitPath` (from --config or a variable), which must exist,
 * else `defaultPath`, which may be missing; then the drop-ins beside whichever it was
 * (`dropInDirOf`), a missing directory meaning none. A drop-in that cannot be read or
 * parsed is an error naming it.
 */
export async function readConfigLayers(explicitPath: string | undefined, defaultPath: string, what: string): Promise<ConfigLayer[]> {
  const path = explicitPath ?? defaultPath;
  const layers: ConfigLayer[] = [];
  try {
    layers.push(await readLayer(path, what));
  } catch (err) {
    const missing = err instanceof BulwarkError && errnoOf(err.cause) === 'ENOENT';
    if (!(missing && explicitPath === undefined)) throw err;
  }
  const dir = dropInDirOf(path);
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if (errnoOf(err) === 'ENOENT') return layers;
    throw new BulwarkError('CONFIG_INVALID', `cannot read the drop-in directory ${dir}: ${err instanceof Error ? err.message : String(err)}`, { source: dir, path: '/' }, { cause: err });
  }
  // Lexical order by code unit, the same on every machine (no locale): 10-x.json before 20-y.json.
  for (const name of names.filter((n) => n.endsWith('.json')).sort()) layers.push(await readLayer(join(dir, name), what));
  return layers;
}

/**
 * Whether the schema marks a property secret: JSON Schema's `writeOnly` annotation (a value
 * that is given but never shown back, as OpenAPI uses it for passwords). Tokens, PINs and
 * keys, and the paths of files that hold them, carry it; `--check-config` and logs never
 * show their values.
 */
export function isSecretProperty(property: unknown): boolean {
  return typeof property === 'object' && property !== null && 'writeOnly' in property && property.writeOnly === true;
}

/** The keys of `schema` marked secret (`writeOnly`), in schema order. */
export function secretKeys(schema: TObject): string[] {
  return Object.entries(schema.properties)
    .filter(([, property]) => isSecretProperty(property))
    .map(([k]) => k);
}

/**
 * `value` for showing: every top-level key the schema marks secret that is set (not null)
 * becomes "[redacted]", so it shows that it is set and not what it is. Secrets are
 * top-level keys only (a nested secret would need its own marking pass).
 */
export function redactConfig(schema: TObject, value: Readonly<Record<string, unknown>>, censor: string): Record<string, unknown> {
  const secret = new Set(secretKeys(schema));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    Object.defineProperty(out, k, { value: secret.has(k) && v !== null && v !== undefined ? censor : v, enumerable: true, writable: true, configurable: true });
  }
  return out;
}

/** Where a checked configuration came from: the files read (file, then drop-ins in order) and the variables that set a key. */
export interface ConfigSources {
  readonly files: readonly string[];
  readonly environment: readonly string[];
}

/** The sources `layers` and `env` contribute under `spec` (the variables of its table that are set and not empty). */
export function configSources<T extends TObject>(spec: ConfigSpec<T>, layers: readonly ConfigLayer[], env: Readonly<Record<string, string | undefined>>): ConfigSources {
  return {
    files: layers.filter((l) => l.file).map((l) => l.source),
    environment: Object.keys(spec.env).filter((name) => (env[name] ?? '') !== ''),
  };
}
