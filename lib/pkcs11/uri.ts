/**
 * PKCS #11 URIs (RFC 7512): which module, token and object a key lives in, and where its
 * PIN comes from. Pure: text in, a typed value out; nothing is opened or read here.
 *
 *   pkcs11:token=Bulwark;object=policy-signer;id=%01;type=private?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/etc/bulwark/pin
 *
 * The path (attributes separated by ";") selects the object; the query (separated by "&")
 * says how to reach it (section 2.3). Every value is percent-decoded; `id` stays bytes,
 * every other value must be UTF-8 text.
 *
 * RFC 7512 rules kept here:
 * - An attribute appears at most once, in the path and in the query (section 2.3): a repeat
 *   is PKCS11_URI_INVALID.
 * - The path has no unescaped "/" or "?" and the query no unescaped "&" inside a value
 *   (pk11-pchar, pk11-qchar); characters outside those sets are refused.
 * - Vendor-specific attributes (any other name of letters, digits, "-" and "_", e.g. the
 *   RFC's `vendor-aaa`): "An unrecognized attribute in the URI path, including a vendor-
 *   specific attribute, MUST result in an empty set of matched resources", and unknown
 *   query attributes are ignored. So the parser keeps unknown path attributes in
 *   `vendorPath` (the consumer, daemon/pkcs11, then matches nothing and says so) and
 *   unknown query attributes in `vendorQuery` (ignored).
 * - pin-value and pin-source are both "how to get the PIN": a URI with both is refused
 *   rather than one picked silently.
 *
 * formatPkcs11Uri writes a URI back for display and logs: it never writes pin-value.
 */
import { BulwarkError } from '../errors.js';

/** The longest URI accepted (a named cap before any work). */
export const PKCS11_URI_MAX_LENGTH = 4096;

/** CKO_* classes as RFC 7512 names them in `type`. */
export const PKCS11_OBJECT_TYPES = ['public', 'private', 'cert', 'secret-key', 'data'] as const;
export type Pkcs11ObjectType = (typeof PKCS11_OBJECT_TYPES)[number];

/** The path attributes RFC 7512 defines that are text (section 2.3), in its order. */
const TEXT_PATH_ATTRIBUTES = [
  'library-description',
  'library-manufacturer',
  'library-version',
  'manufacturer',
  'model',
  'object',
  'serial',
  'slot-description',
  'slot-manufacturer',
  'token',
] as const;
type TextPathAttribute = (typeof TEXT_PATH_ATTRIBUTES)[number];

/** A parsed PKCS #11 URI. `pinValue` is a secret: never log or display it (formatPkcs11Uri leaves it out). */
export interface Pkcs11Uri {
  /** CK_TOKEN_INFO label (token), manufacturerID, model, serialNumber. */
  readonly token?: string;
  readonly manufacturer?: string;
  readonly model?: string;
  readonly serial?: string;
  /** CK_INFO libraryDescription, manufacturerID, libraryVersion ("M" or "M.N"). */
  readonly libraryDescription?: string;
  readonly libraryManufacturer?: string;
  readonly libraryVersion?: string;
  /** CK_SLOT_INFO slotDescription, manufacturerID, and the CK_SLOT_ID as a decimal number. */
  readonly slotDescription?: string;
  readonly slotManufacturer?: string;
  readonly slotId?: number;
  /** CKA_LABEL. */
  readonly object?: string;
  /** CKA_ID, raw bytes. */
  readonly id?: Uint8Array;
  /** CKA_CLASS. */
  readonly type?: Pkcs11ObjectType;
  /** Path attributes RFC 7512 does not define: a consumer matches nothing with them. */
  readonly vendorPath: ReadonlyMap<string, string>;
  readonly modulePath?: string;
  readonly moduleName?: string;
  /** Where the PIN is: a file path (a `file:` URI's path, or the value as given). */
  readonly pinSource?: string;
  /** The PIN itself. Secret. */
  readonly pinValue?: string;
  /** Query attributes RFC 7512 does not define: ignored. */
  readonly vendorQuery: ReadonlyMap<string, string>;
}

const SCHEME = 'pkcs11:';
/** An attribute name: pk11-v-attr-nm-char (ALPHA / DIGIT / "-" / "_"). */
const NAME = /^[A-Za-z0-9_-]+$/;
/** pk11-pchar: unreserved / pk11-res-avail (":" "[" "]" "@" "!" "$" "'" "(" ")" "*" "+" "," "=") / pct-encoded. */
const PATH_VALUE = /^(?:[A-Za-z0-9\-._~:[\]@!$'()*+,=&]|%[0-9A-Fa-f]{2})*$/;
/** pk11-qchar: unreserved / pk11-res-avail-query (pk11-res-avail, "/", "?", "|", ";") / pct-encoded. */
const QUERY_VALUE = /^(?:[A-Za-z0-9\-._~:[\]@!$'()*+,=/?|;]|%[0-9A-Fa-f]{2})*$/;

function invalid(message: string, details: Record<string, string | number> = {}): BulwarkError {
  return new BulwarkError('PKCS11_URI_INVALID', message, details);
}

/** Percent-decodes `value` to bytes (the character classes above were checked first). */
function percentDecode(value: string): Uint8Array {
  const out: number[] = [];
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c === 0x25) {
      out.push(Number.parseInt(value.slice(i + 1, i + 3), 16));
      i += 2;
    } else out.push(c);
  }
  return Uint8Array.from(out);
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });

function decodeText(name: string, value: string): string {
  try {
    return UTF8.decode(percentDecode(value));
  } catch {
    throw invalid(`PKCS#11 URI attribute ${name} is not UTF-8 text`, { attribute: name });
  }
}

/** Splits `part` at `separator` into name/value pairs, refusing repeats and bad names or characters. */
function attributes(part: string, separator: string, allowed: RegExp, where: 'path' | 'query'): Map<string, string> {
  const out = new Map<string, string>();
  if (part === '') return out;
  // Messages name an attribute by its position, never by its text: a stray "&" inside a
  // pin-value would otherwise put a piece of the PIN in the error.
  for (const [index, item] of part.split(separator).entries()) {
    const eq = item.indexOf('=');
    if (eq <= 0) throw invalid(`PKCS#11 URI ${where} attribute ${index + 1} is not NAME=VALUE`, { index: index + 1 });
    const name = item.slice(0, eq);
    const value = item.slice(eq + 1);
    if (!NAME.test(name)) throw invalid(`PKCS#11 URI ${where} attribute ${index + 1} has an invalid name`, { index: index + 1 });
    if (!allowed.test(value)) throw invalid(`PKCS#11 URI ${where} attribute ${name} has a character that must be percent-encoded`, { attribute: name });
    if (out.has(name)) throw invalid(`PKCS#11 URI ${where} attribute ${name} given more than once`, { attribute: name });
    out.set(name, value);
  }
  return out;
}

const TEXT_PATH_NAMES: ReadonlySet<string> = new Set(TEXT_PATH_ATTRIBUTES);
const OBJECT_TYPE_NAMES: ReadonlySet<string> = new Set(PKCS11_OBJECT_TYPES);

function isTextPathAttribute(name: string): name is TextPathAttribute {
  return TEXT_PATH_NAMES.has(name);
}

function isObjectType(value: string): value is Pkcs11ObjectType {
  return OBJECT_TYPE_NAMES.has(value);
}

/** The file a pin-source names: a `file:` URI's path (RFC 8089: file:/p, file:///p, file://localhost/p) or a plain path. */
function pinSourcePath(value: string): string {
  if (!value.startsWith('file:')) return value;
  const rest = value.slice('file:'.length);
  if (rest.startsWith('///')) return rest.slice(2);
  if (rest.startsWith('//localhost/')) return rest.slice('//localhost'.length);
  if (rest.startsWith('//')) throw invalid('PKCS#11 URI pin-source names a file on another host');
  if (rest === '') throw invalid('PKCS#11 URI pin-source names no file');
  return rest;
}

/** Parses a PKCS #11 URI (RFC 7512). Throws PKCS11_URI_INVALID for anything malformed. Trust: untrusted text in. */
export function parsePkcs11Uri(text: string): Pkcs11Uri {
  if (text.length > PKCS11_URI_MAX_LENGTH) throw invalid(`PKCS#11 URI longer than ${PKCS11_URI_MAX_LENGTH} characters`, { length: text.length });
  // The scheme is case-insensitive (RFC 3986, 3.1).
  if (text.slice(0, SCHEME.length).toLowerCase() !== SCHEME) throw invalid('not a PKCS#11 URI (it must start with "pkcs11:")');
  const body = text.slice(SCHEME.length);
  if (body.includes('#')) throw invalid('a PKCS#11 URI has no fragment');
  const q = body.indexOf('?');
  const pathPart = q < 0 ? body : body.slice(0, q);
  const queryPart = q < 0 ? '' : body.slice(q + 1);

  const path = attributes(pathPart, ';', PATH_VALUE, 'path');
  const text_: Partial<Record<TextPathAttribute, string>> = {};
  const vendorPath = new Map<string, string>();
  let id: Uint8Array | undefined;
  let type: Pkcs11ObjectType | undefined;
  let slotId: number | undefined;
  for (const [name, raw] of path) {
    if (isTextPathAttribute(name)) text_[name] = decodeText(name, raw);
    else if (name === 'id') id = percentDecode(raw);
    else if (name === 'type') {
      const t = decodeText(name, raw);
      if (!isObjectType(t)) throw invalid(`PKCS#11 URI type "${t.slice(0, 40)}" is not one of ${PKCS11_OBJECT_TYPES.join(', ')}`);
      type = t;
    } else if (name === 'slot-id') {
      const s = decodeText(name, raw);
      const n = Number(s);
      if (!/^[0-9]{1,15}$/.test(s) || !Number.isSafeInteger(n)) throw invalid('PKCS#11 URI slot-id is not a decimal number', { attribute: name });
      slotId = n;
    } else vendorPath.set(name, decodeText(name, raw));
  }
  const libraryVersion = text_['library-version'];
  if (libraryVersion !== undefined && !/^[0-9]+(?:\.[0-9]+)?$/.test(libraryVersion)) throw invalid('PKCS#11 URI library-version is not M or M.N');

  const query = attributes(queryPart, '&', QUERY_VALUE, 'query');
  const vendorQuery = new Map<string, string>();
  let modulePath: string | undefined;
  let moduleName: string | undefined;
  let pinSource: string | undefined;
  let pinValue: string | undefined;
  for (const [name, raw] of query) {
    if (name === 'module-path') modulePath = decodeText(name, raw);
    else if (name === 'module-name') moduleName = decodeText(name, raw);
    else if (name === 'pin-source') pinSource = pinSourcePath(decodeText(name, raw));
    // Never put the PIN (or a part of it) in a message: decodeText's error names only the attribute.
    else if (name === 'pin-value') pinValue = decodeText(name, raw);
    else vendorQuery.set(name, decodeText(name, raw));
  }
  if (pinSource !== undefined && pinValue !== undefined) throw invalid('PKCS#11 URI gives both pin-source and pin-value');
  if (modulePath === '') throw invalid('PKCS#11 URI module-path is empty');

  return {
    ...(text_.token === undefined ? {} : { token: text_.token }),
    ...(text_.manufacturer === undefined ? {} : { manufacturer: text_.manufacturer }),
    ...(text_.model === undefined ? {} : { model: text_.model }),
    ...(text_.serial === undefined ? {} : { serial: text_.serial }),
    ...(text_['library-description'] === undefined ? {} : { libraryDescription: text_['library-description'] }),
    ...(text_['library-manufacturer'] === undefined ? {} : { libraryManufacturer: text_['library-manufacturer'] }),
    ...(libraryVersion === undefined ? {} : { libraryVersion }),
    ...(text_['slot-description'] === undefined ? {} : { slotDescription: text_['slot-description'] }),
    ...(text_['slot-manufacturer'] === undefined ? {} : { slotManufacturer: text_['slot-manufacturer'] }),
    ...(slotId === undefined ? {} : { slotId }),
    ...(text_.object === undefined ? {} : { object: text_.object }),
    ...(id === undefined ? {} : { id }),
    ...(type === undefined ? {} : { type }),
    vendorPath,
    ...(modulePath === undefined ? {} : { modulePath }),
    ...(moduleName === undefined ? {} : { moduleName }),
    ...(pinSource === undefined ? {} : { pinSource }),
    ...(pinValue === undefined ? {} : { pinValue }),
    vendorQuery,
  };
}

/** Characters written as they are in a value (unreserved, RFC 3986 2.3); everything else is %XX. */
function percentEncode(bytes: Uint8Array, keep: RegExp): string {
  let out = '';
  for (const b of bytes) {
    const c = String.fromCharCode(b);
    out += b < 0x80 && keep.test(c) ? c : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

const KEEP_PATH = /^[A-Za-z0-9\-._~]$/;
const KEEP_QUERY = /^[A-Za-z0-9\-._~/]$/;
const UTF8_ENCODER = new TextEncoder();

/** The parts of a URI formatPkcs11Uri writes (a parsed URI, or one built for a key). */
export type Pkcs11UriParts = Partial<Omit<Pkcs11Uri, 'vendorPath' | 'vendorQuery'>> & {
  readonly vendorPath?: ReadonlyMap<string, string>;
  readonly vendorQuery?: ReadonlyMap<string, string>;
};

/**
 * Writes a PKCS #11 URI for display, logs and `hsm list`: path attributes in RFC 7512's
 * order, `id` fully percent-encoded, and the query's module-name, module-path and
 * pin-source. pin-value is never written, whatever the input holds.
 */
export function formatPkcs11Uri(uri: Pkcs11UriParts): string {
  const path: string[] = [];
  const text = (name: string, value: string | undefined): void => {
    if (value !== undefined) path.push(`${name}=${percentEncode(UTF8_ENCODER.encode(value), KEEP_PATH)}`);
  };
  text('library-description', uri.libraryDescription);
  text('library-manufacturer', uri.libraryManufacturer);
  text('library-version', uri.libraryVersion);
  text('slot-description', uri.slotDescription);
  text('slot-manufacturer', uri.slotManufacturer);
  if (uri.slotId !== undefined) path.push(`slot-id=${uri.slotId}`);
  text('manufacturer', uri.manufacturer);
  text('model', uri.model);
  text('serial', uri.serial);
  text('token', uri.token);
  text('object', uri.object);
  if (uri.id !== undefined) path.push(`id=${[...uri.id].map((b) => `%${b.toString(16).toUpperCase().padStart(2, '0')}`).join('')}`);
  text('type', uri.type);
  for (const [name, value] of uri.vendorPath ?? []) text(name, value);
  const query: string[] = [];
  const q = (name: string, value: string | undefined): void => {
    if (value !== undefined) query.push(`${name}=${percentEncode(UTF8_ENCODER.encode(value), KEEP_QUERY)}`);
  };
  q('module-name', uri.moduleName);
  q('module-path', uri.modulePath);
  q('pin-source', uri.pinSource);
  for (const [name, value] of uri.vendorQuery ?? []) q(name, value);
  return `${SCHEME}${path.join(';')}${query.length === 0 ? '' : `?${query.join('&')}`}`;
}
