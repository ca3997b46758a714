/**
 * Keys in a PKCS #11 token (an HSM in production, SoftHSM2 in tests) through pkcs11js:
 * signing, public keys, key generation and listing, for the daemons and bulwarkctl.
 *
 * - Which key: an RFC 7512 URI (lib/pkcs11). The module is the URI's module-path, else the
 *   caller's, else $BULWARK_PKCS11_MODULE; the PIN is the URI's pin-value, else the file its
 *   pin-source names, else $BULWARK_PKCS11_PIN, else the caller's PIN file (one trailing
 *   newline trimmed).
 * - A PIN is never logged, never in an error's message, details or cause: errors carry the
 *   CKR_* name, the operation and the token label only.
 * - One loaded module per path in the process (a module is initialized once; SoftHSM2 reads
 *   SOFTHSM2_CONF at that moment), one session per token, logged in once
 *   (CKR_USER_ALREADY_LOGGED_IN is success). close() of the last user finalizes the module.
 * - Fail closed, typed: PKCS11_MODULE_MISSING, PKCS11_TOKEN_MISSING, PKCS11_PIN_MISSING,
 *   PKCS11_PIN_INCORRECT, PKCS11_KEY_NOT_FOUND, PKCS11_TOKEN_REMOVED (the token went away
 *   under an open session: the session is dropped, the next call looks for the token
 *   again), PKCS11_FAILED for any other CKR_*.
 * - Signatures: RSA PKCS #1 v1.5 (CKM_SHA256_RSA_PKCS) and PSS (CKM_SHA256_RSA_PKCS_PSS,
 *   MGF1-SHA256, salt 32); ECDSA P-256/P-384 hashes in Node (SHA-256/SHA-384: SoftHSM2 has no
 *   CKM_ECDSA_SHA256) and signs the digest with CKM_ECDSA, returning ASN.1 DER.
 *
 * Calls into the module are synchronous: one sign is SignInit + Sign with nothing
 * awaited between them, so two signers never interleave on one session.
 */
import { createHash, createPublicKey, randomBytes, type KeyObject } from 'node:crypto';
import { access, readFile, stat } from 'node:fs/promises';
import type * as Pkcs11Js from 'pkcs11js';
import { BulwarkError, type ErrorCode } from '../lib/index.js';
import {
  ecdsaRawToDer,
  ecParamsOf,
  ecPublicJwk,
  formatPkcs11Uri,
  parsePkcs11Uri,
  PKCS11_EC_CURVES,
  rsaPublicJwk,
  curveOfEcParams,
  type Pkcs11EcCurve,
  type Pkcs11Uri,
  type PublicJwk,
} from '../lib/pkcs11/index.js';

type Pkcs11Lib = typeof Pkcs11Js;

/** The key types keygen makes and signers sign with. */
export const HSM_KEY_TYPES = ['rsa-2048', 'rsa-3072', 'ec-p256', 'ec-p384'] as const;
export type HsmKeyType = (typeof HSM_KEY_TYPES)[number];

/** Signature schemes: what `sign(data)` computes. ECDSA signatures are DER. */
export const HSM_SIGNATURE_SCHEMES = ['rsa-pss-sha256', 'rsa-pkcs1v15-sha256', 'ecdsa-p256-sha256', 'ecdsa-p384-sha384'] as const;
export type HsmSignatureScheme = (typeof HSM_SIGNATURE_SCHEMES)[number];

/** The largest PIN file read. */
const MAX_PIN_FILE_BYTES = 1024;
/** How many objects one search returns at most (list() of a token). */
const MAX_OBJECTS = 10_000;

/** Where the module and PIN come from when the URI does not say. */
export interface HsmOptions {
  /** $BULWARK_PKCS11_MODULE and $BULWARK_PKCS11_PIN are read from here (default process.env). */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** The module when the URI has no module-path (bulwarkctl --module). */
  readonly modulePath?: string;
  /** The PIN file when neither the URI nor the environment gives a PIN (bulwarkctl --pin-file). */
  readonly pinFile?: string;
}

/** A DSSE-style signer: `sign` returns the signature over `data` (DER for ECDSA). */
export interface Pkcs11Signer {
  readonly keyid?: string;
  readonly scheme: HsmSignatureScheme;
  /** The URI of the private key, without any PIN. */
  readonly uri: string;
  sign(data: Uint8Array): Promise<Uint8Array>;
  /**
   * Signs a digest made elsewhere (IMA signs the file digest): RSA PKCS #1 v1.5 over the
   * DigestInfo (CKM_RSA_PKCS), ECDSA (DER) over the digest. `hash` names the digest's algorithm.
   */
  signDigest(digest: Uint8Array, hash: 'sha256' | 'sha384' | 'sha512'): Promise<Uint8Array>;
  publicKey(): Promise<KeyObject>;
}

/** One key pair on a token, as list() reports it. */
export interface HsmKeyInfo {
  readonly label: string;
  /** CKA_ID in lower-case hex. */
  readonly id: string;
  /** The key type, or the raw CKK_* and curve when it is not one Bulwark makes. */
  readonly type: HsmKeyType | string;
  /** The private key's URI (token, object, id, type=private), without module or PIN. */
  readonly uri: string;
}

/** DigestInfo prefixes (RFC 8017, 9.2 note 1). */
const DIGEST_INFO_PREFIX = {
  sha256: Buffer.from('3031300d060960864801650304020105000420', 'hex'),
  sha384: Buffer.from('3041300d060960864801650304020205000430', 'hex'),
  sha512: Buffer.from('3051300d060960864801650304020305000440', 'hex'),
} as const;

/** CKR_* values that mean the session, its objects or the token went away. */
const GONE = new Set([
  'CKR_DEVICE_REMOVED',
  'CKR_TOKEN_NOT_PRESENT',
  'CKR_TOKEN_NOT_RECOGNIZED',
  'CKR_SESSION_HANDLE_INVALID',
  'CKR_SESSION_CLOSED',
  'CKR_OBJECT_HANDLE_INVALID',
  'CKR_KEY_HANDLE_INVALID',
  'CKR_DEVICE_ERROR',
  'CKR_GENERAL_ERROR',
  'CKR_CRYPTOKI_NOT_INITIALIZED',
  'CKR_USER_NOT_LOGGED_IN',
]);
const PIN_REFUSED = new Set(['CKR_PIN_INCORRECT', 'CKR_PIN_LEN_RANGE', 'CKR_PIN_LOCKED', 'CKR_PIN_EXPIRED', 'CKR_PIN_INVALID']);

/** The CKR_* name of a pkcs11js error, or undefined for another error. */
function ckrOf(err: unknown): string | undefined {
  if (!(err instanceof Error)) return undefined;
  const m = /^(CKR_[A-Z0-9_]+)/.exec(err.message);
  return m?.[1];
}

/**
 * A typed error for a failed PKCS #11 call. The cause is a fresh Error carrying only the
 * CKR name: pkcs11js errors hold nothing secret, but a cause is logged and we keep it that way
 * by construction.
 */
function failure(code: ErrorCode, message: string, details: Record<string, string | number>, ckr: string | undefined): BulwarkError {
  return new BulwarkError(code, message, { ...details, ...(ckr === undefined ? {} : { ckr }) }, ckr === undefined ? undefined : { cause: new Error(ckr) });
}

/** Reads a native ulong attribute (pkcs11js returns the C representation, little-endian on Linux). */
function ulong(value: Buffer): number {
  if (value.length === 8) return Number(value.readBigUInt64LE(0));
  if (value.length === 4) return value.readUInt32LE(0);
  throw new BulwarkError('PKCS11_FAILED', `attribute of ${value.length} bytes is not a CK_ULONG`);
}

/** A loaded and initialized module, shared by every Hsm on its path. */
class LoadedModule {
  private users = 0;
  /** Open sessions by slot (hex of the slot handle). */
  readonly sessions = new Map<string, { session: Buffer; loggedIn: boolean }>();
  private finalized = false;

  constructor(
    readonly path: string,
    readonly lib: Pkcs11Lib,
    readonly p11: Pkcs11Js.PKCS11,
  ) {}

  acquire(): void {
    this.users++;
  }

  /** Drops one user; the last one closes every session and finalizes the module. */
  release(): void {
    this.users--;
    if (this.users > 0 || this.finalized) return;
    this.finalized = true;
    MODULES.delete(this.path);
    for (const { session } of this.sessions.values()) {
      try {
        this.p11.C_CloseSession(session);
      } catch {
        // The token may be gone: the session goes with the finalize below.
      }
    }
    this.sessions.clear();
    try {
      this.p11.C_Finalize();
    } catch {
      // Already finalized (by another library in the process): nothing left to free.
    }
    try {
      this.p11.close();
    } catch {
      // dlclose failures leave nothing to clean up.
    }
  }
}

const MODULES = new Map<string, Promise<LoadedModule>>();

async function loadPkcs11js(): Promise<Pkcs11Lib> {
  // Loaded on use: --help and offline commands do not load the native addon.
  const mod = await import('pkcs11js');
  return mod.default;
}

async function loadModule(path: string): Promise<LoadedModule> {
  let pending = MODULES.get(path);
  if (pending === undefined) {
    pending = (async () => {
      try {
        await access(path);
      } catch {
        throw new BulwarkError('PKCS11_MODULE_MISSING', `PKCS#11 module ${path} does not exist or cannot be read`, { module: path });
      }
      const lib = await loadPkcs11js();
      const p11 = new lib.PKCS11();
      try {
        p11.load(path);
      } catch (err) {
        throw new BulwarkError('PKCS11_MODULE_MISSING', `PKCS#11 module ${path} does not load`, { module: path }, { cause: err });
      }
      try {
        p11.C_Initialize({ flags: lib.CKF_OS_LOCKING_OK });
      } catch (err) {
        const ckr = ckrOf(err);
        // Another user of the same library in this process has initialized it already.
        if (ckr !== 'CKR_CRYPTOKI_ALREADY_INITIALIZED') {
          p11.close();
          throw failure('PKCS11_MODULE_MISSING', `PKCS#11 module ${path} does not initialize (${ckr ?? 'error'})`, { module: path, operation: 'C_Initialize' }, ckr);
        }
      }
      return new LoadedModule(path, lib, p11);
    })();
    MODULES.set(path, pending);
    pending.catch(() => MODULES.delete(path));
  }
  const loaded = await pending;
  loaded.acquire();
  return loaded;
}

/** Reads a PIN file: at most MAX_PIN_FILE_BYTES, one trailing newline (LF or CRLF) trimmed. */
async function readPinFile(path: string): Promise<string> {
  try {
    const st = await stat(path);
    if (!st.isFile() || st.size > MAX_PIN_FILE_BYTES) throw new BulwarkError('PKCS11_PIN_MISSING', `PIN file ${path} is not a file of at most ${MAX_PIN_FILE_BYTES} bytes`, { file: path });
    return (await readFile(path, 'utf8')).replace(/\r?\n$/, '');
  } catch (err) {
    if (err instanceof BulwarkError) throw err;
    // No cause: a read error names the path only, but nothing of the file may travel.
    throw new BulwarkError('PKCS11_PIN_MISSING', `cannot read PIN file ${path}`, { file: path });
  }
}

/** The key to use: a URI's object selection. */
interface KeySelector {
  readonly object?: string;
  readonly id?: Uint8Array;
}

/** What was found about a private key. */
interface FoundKey {
  readonly handle: Buffer;
  readonly label: string;
  readonly id: Uint8Array;
  readonly jwk: PublicJwk;
}

function keyTypeOf(jwk: PublicJwk, modulusBits: number): HsmKeyType | string {
  if (jwk.kty === 'EC') return jwk.crv === 'P-256' ? 'ec-p256' : 'ec-p384';
  return modulusBits === 2048 ? 'rsa-2048' : modulusBits === 3072 ? 'rsa-3072' : `rsa-${modulusBits}`;
}

function defaultScheme(jwk: PublicJwk): HsmSignatureScheme {
  if (jwk.kty === 'RSA') return 'rsa-pss-sha256';
  return jwk.crv === 'P-256' ? 'ecdsa-p256-sha256' : 'ecdsa-p384-sha384';
}

function hexOf(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex');
}

/**
 * One token of one module, logged in as the user. Open it with openHsm; close() it when done.
 * Trust: the token's answers are trusted as the HSM's; what callers pass is checked.
 */
export class Hsm {
  private closed = false;
  /** The slot (hex of its handle) of the token, once found. */
  private slotKey: string | undefined;
  /** Key handles found, by selector, dropped when the session is. */
  private readonly keys = new Map<string, FoundKey>();

  private constructor(
    private readonly module: LoadedModule,
    /** The token selection of the URI (module and PIN left out). */
    private readonly tokenUri: Pkcs11Uri,
    /** The token's label, for messages (known after the first lookup). */
    private tokenLabel: string,
    private readonly pin: string | undefined,
  ) {}

  /**
   * Opens the token a URI names (its path's token attributes; object and id are for
   * signer/publicKey). The PIN is needed only for private keys and keygen; a missing one is
   * PKCS11_PIN_MISSING when first needed.
   */
  static async open(uriText: string | Pkcs11Uri, options: HsmOptions = {}): Promise<Hsm> {
    const uri = typeof uriText === 'string' ? parsePkcs11Uri(uriText) : uriText;
    const env = options.env ?? process.env;
    const modulePath = uri.modulePath ?? options.modulePath ?? nonEmpty(env['BULWARK_PKCS11_MODULE']);
    if (modulePath === undefined) throw new BulwarkError('PKCS11_MODULE_MISSING', 'no PKCS#11 module: give module-path in the URI, --module, or BULWARK_PKCS11_MODULE');
    let pin: string | undefined;
    if (uri.pinValue !== undefined) pin = uri.pinValue;
    else if (uri.pinSource !== undefined) pin = await readPinFile(uri.pinSource);
    else if (nonEmpty(env['BULWARK_PKCS11_PIN']) !== undefined) pin = env['BULWARK_PKCS11_PIN'];
    else if (options.pinFile !== undefined) pin = await readPinFile(options.pinFile);
    const module = await loadModule(modulePath);
    const hsm = new Hsm(module, uri, uri.token ?? '', pin);
    try {
      hsm.slot();
    } catch (err) {
      module.release();
      throw err;
    }
    return hsm;
  }

  private get p11(): Pkcs11Js.PKCS11 {
    if (this.closed) throw new BulwarkError('PKCS11_FAILED', 'the HSM handle is closed');
    return this.module.p11;
  }

  private get lib(): Pkcs11Lib {
    return this.module.lib;
  }

  /** Runs one PKCS #11 call sequence; a CKR_* failure becomes a typed error (see the header). */
  private call<T>(operation: string, fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      if (err instanceof BulwarkError) throw err;
      const ckr = ckrOf(err);
      const details = { operation, token: this.tokenLabel };
      if (ckr !== undefined && PIN_REFUSED.has(ckr)) throw failure('PKCS11_PIN_INCORRECT', `token ${this.tokenLabel} refused the PIN (${ckr})`, details, ckr);
      if (ckr !== undefined && GONE.has(ckr)) {
        this.dropSession();
        if (!this.tokenPresent()) throw failure('PKCS11_TOKEN_REMOVED', `token ${this.tokenLabel} went away during ${operation} (${ckr})`, details, ckr);
      }
      throw failure('PKCS11_FAILED', `${operation} on token ${this.tokenLabel} failed: ${ckr ?? 'not a PKCS#11 error'}`, details, ckr);
    }
  }

  /** Whether the token is still in a slot (a probe after a failure; never throws). */
  private tokenPresent(): boolean {
    try {
      this.slot();
      return true;
    } catch {
      return false;
    }
  }

  /** Forgets this token's session and key handles; the next call finds the token again. */
  private dropSession(): void {
    this.keys.clear();
    const key = this.slotKey;
    this.slotKey = undefined;
    if (key === undefined) return;
    const s = this.module.sessions.get(key);
    this.module.sessions.delete(key);
    if (s === undefined) return;
    try {
      this.module.p11.C_CloseSession(s.session);
    } catch {
      // Already gone with its token.
    }
  }

  /** The slot of the one token the URI selects; PKCS11_TOKEN_MISSING for none or several. */
  private slot(): Buffer {
    const uri = this.tokenUri;
    const what = formatPkcs11Uri({ ...pickToken(uri) });
    if (uri.vendorPath.size > 0) {
      // RFC 7512: an unrecognized path attribute matches nothing.
      throw new BulwarkError('PKCS11_TOKEN_MISSING', `${what}: the URI has attributes Bulwark does not know (${[...uri.vendorPath.keys()].join(', ')}), so it matches no token`);
    }
    let slots: Buffer[];
    try {
      slots = this.p11.C_GetSlotList(true);
    } catch (err) {
      const ckr = ckrOf(err);
      throw failure('PKCS11_FAILED', `cannot list PKCS#11 slots (${ckr ?? 'error'})`, { operation: 'C_GetSlotList' }, ckr);
    }
    const matches: Array<{ slot: Buffer; label: string }> = [];
    for (const slot of slots) {
      let info: Pkcs11Js.TokenInfo;
      try {
        info = this.p11.C_GetTokenInfo(slot);
      } catch {
        continue; // A slot whose token went away between the two calls.
      }
      const label = info.label.trimEnd();
      if (uri.token !== undefined && uri.token !== label) continue;
      if (uri.serial !== undefined && uri.serial !== info.serialNumber.trimEnd()) continue;
      if (uri.model !== undefined && uri.model !== info.model.trimEnd()) continue;
      if (uri.manufacturer !== undefined && uri.manufacturer !== info.manufacturerID.trimEnd()) continue;
      if (uri.slotId !== undefined && uri.slotId !== slotNumber(slot)) continue;
      // An initialized token only (CKF_TOKEN_INITIALIZED): SoftHSM2 also shows an empty one.
      if ((info.flags & this.lib.CKF_TOKEN_INITIALIZED) === 0) continue;
      matches.push({ slot, label });
    }
    const [only] = matches;
    if (only === undefined) throw new BulwarkError('PKCS11_TOKEN_MISSING', `no token matches ${what}`, { token: uri.token ?? '' });
    if (matches.length > 1) throw new BulwarkError('PKCS11_TOKEN_MISSING', `${matches.length} tokens match ${what}; name one with token=`, { matches: matches.length });
    this.tokenLabel = only.label;
    return only.slot;
  }

  /** The token's session, opened and logged in on first use (a PIN is needed only with `login`). */
  private session(login: boolean): Buffer {
    // An open session is used as it is: a token that went away shows in the call that fails.
    let s = this.slotKey === undefined ? undefined : this.module.sessions.get(this.slotKey);
    if (s === undefined) {
      const slot = this.slot();
      const key = slot.toString('hex');
      this.slotKey = key;
      const session = this.call('C_OpenSession', () => this.p11.C_OpenSession(slot, this.lib.CKF_SERIAL_SESSION | this.lib.CKF_RW_SESSION));
      s = { session, loggedIn: false };
      this.module.sessions.set(key, s);
    }
    if (login && !s.loggedIn) {
      const pin = this.pin;
      if (pin === undefined) throw new BulwarkError('PKCS11_PIN_MISSING', `no PIN for token ${this.tokenLabel}: give pin-source in the URI, BULWARK_PKCS11_PIN, or a PIN file`, { token: this.tokenLabel });
      const open = s;
      this.call('C_Login', () => {
        try {
          this.p11.C_Login(open.session, this.lib.CKU_USER, pin);
        } catch (err) {
          // Logged in already (by another session of this application): that is the state we want.
          if (ckrOf(err) !== 'CKR_USER_ALREADY_LOGGED_IN') throw err;
        }
      });
      s.loggedIn = true;
    }
    return s.session;
  }

  private findObjects(session: Buffer, template: Pkcs11Js.Template, max: number): Buffer[] {
    return this.call('C_FindObjects', () => {
      this.p11.C_FindObjectsInit(session, template);
      try {
        return this.p11.C_FindObjects(session, max);
      } finally {
        this.p11.C_FindObjectsFinal(session);
      }
    });
  }

  private attributes(session: Buffer, handle: Buffer, types: readonly number[]): Map<number, Buffer> {
    const result = this.call('C_GetAttributeValue', () =>
      this.p11.C_GetAttributeValue(
        session,
        handle,
        types.map((type) => ({ type })),
      ),
    );
    return new Map(result.map((a) => [a.type, a.value]));
  }

  private selectorTemplate(cls: number, sel: KeySelector): Pkcs11Js.Template {
    return [
      { type: this.lib.CKA_CLASS, value: cls },
      ...(sel.object === undefined ? [] : [{ type: this.lib.CKA_LABEL, value: sel.object }]),
      ...(sel.id === undefined ? [] : [{ type: this.lib.CKA_ID, value: Buffer.from(sel.id) }]),
    ];
  }

  /** The public key of the pair `sel` names: from the public key object, else (RSA) the private one. */
  private publicJwk(session: Buffer, sel: KeySelector, privateHandle: Buffer | undefined): PublicJwk {
    const lib = this.lib;
    const [pub] = this.findObjects(session, this.selectorTemplate(lib.CKO_PUBLIC_KEY, sel), 1);
    const handle = pub ?? privateHandle;
    if (handle === undefined) throw new BulwarkError('PKCS11_KEY_NOT_FOUND', `no public key ${describe(sel)} on token ${this.tokenLabel}`, { token: this.tokenLabel });
    const keyType = ulong(this.attributes(session, handle, [lib.CKA_KEY_TYPE]).get(lib.CKA_KEY_TYPE) ?? Buffer.alloc(0));
    if (keyType === lib.CKK_EC) {
      if (pub === undefined) throw new BulwarkError('PKCS11_KEY_NOT_FOUND', `no EC public key object ${describe(sel)} on token ${this.tokenLabel}`, { token: this.tokenLabel });
      const a = this.attributes(session, pub, [lib.CKA_EC_PARAMS, lib.CKA_EC_POINT]);
      try {
        return ecPublicJwk(a.get(lib.CKA_EC_PARAMS) ?? Buffer.alloc(0), a.get(lib.CKA_EC_POINT) ?? Buffer.alloc(0));
      } catch (err) {
        throw new BulwarkError('PKCS11_KEY_UNSUPPORTED', `key ${describe(sel)}: ${err instanceof Error ? err.message : 'unsupported EC key'}`, { token: this.tokenLabel });
      }
    }
    if (keyType === lib.CKK_RSA) {
      const a = this.attributes(session, handle, [lib.CKA_MODULUS, lib.CKA_PUBLIC_EXPONENT]);
      return rsaPublicJwk(a.get(lib.CKA_MODULUS) ?? Buffer.alloc(0), a.get(lib.CKA_PUBLIC_EXPONENT) ?? Buffer.alloc(0));
    }
    throw new BulwarkError('PKCS11_KEY_UNSUPPORTED', `key ${describe(sel)} is of type CKK ${keyType}, not RSA or EC`, { token: this.tokenLabel, keyType });
  }

  /** The private key `sel` names: exactly one, or PKCS11_KEY_NOT_FOUND. */
  private privateKey(sel: KeySelector): FoundKey {
    const cacheKey = `${sel.object ?? ''}\u0000${sel.id === undefined ? '' : hexOf(sel.id)}`;
    const cached = this.keys.get(cacheKey);
    if (cached !== undefined) return cached;
    if (sel.object === undefined && sel.id === undefined) throw new BulwarkError('PKCS11_KEY_NOT_FOUND', 'the URI names no key: give object= or id=');
    const session = this.session(true);
    const found = this.findObjects(session, this.selectorTemplate(this.lib.CKO_PRIVATE_KEY, sel), 2);
    const [handle] = found;
    if (handle === undefined) throw new BulwarkError('PKCS11_KEY_NOT_FOUND', `no private key ${describe(sel)} on token ${this.tokenLabel}`, { token: this.tokenLabel });
    if (found.length > 1) throw new BulwarkError('PKCS11_KEY_NOT_FOUND', `several private keys match ${describe(sel)} on token ${this.tokenLabel}; add id=`, { token: this.tokenLabel });
    const a = this.attributes(session, handle, [this.lib.CKA_LABEL, this.lib.CKA_ID]);
    const label = (a.get(this.lib.CKA_LABEL) ?? Buffer.alloc(0)).toString('utf8');
    const id = new Uint8Array(a.get(this.lib.CKA_ID) ?? Buffer.alloc(0));
    // The public half by the private key's own id and label, so it is this pair's.
    const jwk = this.publicJwk(session, { object: label, id }, handle);
    const key: FoundKey = { handle, label, id, jwk };
    this.keys.set(cacheKey, key);
    return key;
  }

  /** A signer for the private key a URI names (its object and id; the token is this Hsm's). */
  async signer(keyUri: string | Pkcs11Uri, options: { scheme?: HsmSignatureScheme; keyid?: string } = {}): Promise<Pkcs11Signer> {
    const uri = typeof keyUri === 'string' ? parsePkcs11Uri(keyUri) : keyUri;
    if (uri.vendorPath.size > 0) throw new BulwarkError('PKCS11_KEY_NOT_FOUND', `the key URI has attributes Bulwark does not know (${[...uri.vendorPath.keys()].join(', ')}), so it matches no key`);
    if (uri.type !== undefined && uri.type !== 'private') throw new BulwarkError('PKCS11_KEY_NOT_FOUND', `a signing key URI names type=private, not type=${uri.type}`);
    const sel: KeySelector = { ...(uri.object === undefined ? {} : { object: uri.object }), ...(uri.id === undefined ? {} : { id: uri.id }) };
    const key = this.privateKey(sel);
    const scheme = options.scheme ?? defaultScheme(key.jwk);
    const fits = key.jwk.kty === 'RSA' ? scheme.startsWith('rsa-') : (key.jwk.crv === 'P-256' && scheme === 'ecdsa-p256-sha256') || (key.jwk.crv === 'P-384' && scheme === 'ecdsa-p384-sha384');
    if (!fits) throw new BulwarkError('PKCS11_KEY_UNSUPPORTED', `key ${describe(sel)} cannot sign with ${scheme}`, { scheme });
    const publicKey = createPublicKey({ key: { ...key.jwk }, format: 'jwk' });
    const uriText = formatPkcs11Uri({ token: this.tokenLabel, object: key.label, id: key.id, type: 'private' });
    return {
      ...(options.keyid === undefined ? {} : { keyid: options.keyid }),
      scheme,
      uri: uriText,
      sign: async (data) => this.signWith(sel, scheme, data),
      signDigest: async (digest, hash) => this.signDigestWith(sel, digest, hash),
      publicKey: async () => publicKey,
    };
  }

  private signRaw(sel: KeySelector, mechanism: Pkcs11Js.Mechanism, input: Uint8Array, operation: string): Buffer {
    const key = this.privateKey(sel);
    const session = this.session(true);
    return this.call(operation, () => {
      this.p11.C_SignInit(session, mechanism, key.handle);
      return this.p11.C_Sign(session, Buffer.from(input), Buffer.alloc(1024));
    });
  }

  private signWith(sel: KeySelector, scheme: HsmSignatureScheme, data: Uint8Array): Uint8Array {
    const lib = this.lib;
    switch (scheme) {
      case 'rsa-pkcs1v15-sha256':
        return new Uint8Array(this.signRaw(sel, { mechanism: lib.CKM_SHA256_RSA_PKCS }, data, 'C_Sign'));
      case 'rsa-pss-sha256': {
        // RFC 8017 RSASSA-PSS with SHA-256, MGF1-SHA-256 and a 32-byte salt (the hash length).
        const pss: Pkcs11Js.RsaPSS = { type: lib.CK_PARAMS_RSA_PSS, hashAlg: lib.CKM_SHA256, mgf: lib.CKG_MGF1_SHA256, saltLen: 32 };
        return new Uint8Array(this.signRaw(sel, { mechanism: lib.CKM_SHA256_RSA_PKCS_PSS, parameter: pss }, data, 'C_Sign'));
      }
      case 'ecdsa-p256-sha256':
      case 'ecdsa-p384-sha384': {
        const curve: Pkcs11EcCurve = scheme === 'ecdsa-p256-sha256' ? 'P-256' : 'P-384';
        const { size, hash } = PKCS11_EC_CURVES[curve];
        // SoftHSM2 has no CKM_ECDSA_SHA256: hash here, sign the digest.
        const digest = createHash(hash).update(data).digest();
        return ecdsaRawToDer(this.signRaw(sel, { mechanism: lib.CKM_ECDSA }, digest, 'C_Sign'), size);
      }
    }
  }

  private signDigestWith(sel: KeySelector, digest: Uint8Array, hash: 'sha256' | 'sha384' | 'sha512'): Uint8Array {
    const key = this.privateKey(sel);
    const want = { sha256: 32, sha384: 48, sha512: 64 }[hash];
    if (digest.length !== want) throw new BulwarkError('USAGE', `a ${hash} digest has ${want} bytes, not ${digest.length}`);
    if (key.jwk.kty === 'RSA') {
      // RSASSA-PKCS1-v1_5 over a precomputed digest: CKM_RSA_PKCS pads the DigestInfo we give it.
      const info = Buffer.concat([DIGEST_INFO_PREFIX[hash], digest]);
      return new Uint8Array(this.signRaw(sel, { mechanism: this.lib.CKM_RSA_PKCS }, info, 'C_Sign'));
    }
    return ecdsaRawToDer(this.signRaw(sel, { mechanism: this.lib.CKM_ECDSA }, digest, 'C_Sign'), PKCS11_EC_CURVES[key.jwk.crv].size);
  }

  /**
   * The public key of the pair a URI names, as a node:crypto KeyObject. A public key object
   * is read without logging in when the token allows it.
   */
  async publicKey(keyUri: string | Pkcs11Uri): Promise<KeyObject> {
    const uri = typeof keyUri === 'string' ? parsePkcs11Uri(keyUri) : keyUri;
    if (uri.vendorPath.size > 0) throw new BulwarkError('PKCS11_KEY_NOT_FOUND', 'the key URI has attributes Bulwark does not know, so it matches no key');
    if (uri.object === undefined && uri.id === undefined) throw new BulwarkError('PKCS11_KEY_NOT_FOUND', 'the URI names no key: give object= or id=');
    const sel: KeySelector = { ...(uri.object === undefined ? {} : { object: uri.object }), ...(uri.id === undefined ? {} : { id: uri.id }) };
    const session = this.session(this.pin !== undefined);
    const jwk = this.publicJwk(session, sel, undefined);
    return createPublicKey({ key: { ...jwk }, format: 'jwk' });
  }

  /**
   * Makes a key pair on the token: the private key sensitive, not extractable, for signing
   * only; the public key for verifying. Refuses (PKCS11_KEY_EXISTS) a label or id in use.
   */
  async keygen(spec: { label: string; id?: Uint8Array; type: HsmKeyType }): Promise<{ uri: string; id: string; publicKey: KeyObject }> {
    const lib = this.lib;
    if (spec.label === '') throw new BulwarkError('USAGE', 'a key needs a label');
    const session = this.session(true);
    const id = spec.id ?? new Uint8Array(randomBytes(8));
    for (const sel of [{ object: spec.label }, { id }]) {
      const clash = [...this.findObjects(session, this.selectorTemplate(lib.CKO_PRIVATE_KEY, sel), 1), ...this.findObjects(session, this.selectorTemplate(lib.CKO_PUBLIC_KEY, sel), 1)];
      if (clash.length > 0) throw new BulwarkError('PKCS11_KEY_EXISTS', `token ${this.tokenLabel} already has a key ${describe(sel)}`, { token: this.tokenLabel });
    }
    const common = [
      { type: lib.CKA_TOKEN, value: true },
      { type: lib.CKA_LABEL, value: spec.label },
      { type: lib.CKA_ID, value: Buffer.from(id) },
    ];
    const publicTemplate: Pkcs11Js.Template = [...common, { type: lib.CKA_VERIFY, value: true }, { type: lib.CKA_ENCRYPT, value: false }, { type: lib.CKA_WRAP, value: false }];
    const privateTemplate: Pkcs11Js.Template = [
      ...common,
      { type: lib.CKA_PRIVATE, value: true },
      { type: lib.CKA_SENSITIVE, value: true },
      { type: lib.CKA_EXTRACTABLE, value: false },
      { type: lib.CKA_SIGN, value: true },
      { type: lib.CKA_DECRYPT, value: false },
      { type: lib.CKA_UNWRAP, value: false },
    ];
    let mechanism: number;
    switch (spec.type) {
      case 'rsa-2048':
      case 'rsa-3072':
        mechanism = lib.CKM_RSA_PKCS_KEY_PAIR_GEN;
        publicTemplate.push({ type: lib.CKA_MODULUS_BITS, value: spec.type === 'rsa-2048' ? 2048 : 3072 }, { type: lib.CKA_PUBLIC_EXPONENT, value: Buffer.from([1, 0, 1]) });
        break;
      case 'ec-p256':
      case 'ec-p384':
        mechanism = lib.CKM_EC_KEY_PAIR_GEN;
        publicTemplate.push({ type: lib.CKA_EC_PARAMS, value: Buffer.from(ecParamsOf(spec.type === 'ec-p256' ? 'P-256' : 'P-384')) });
        break;
    }
    this.call('C_GenerateKeyPair', () => this.p11.C_GenerateKeyPair(session, { mechanism }, publicTemplate, privateTemplate));
    const publicKey = await this.publicKey({ object: spec.label, id, vendorPath: new Map(), vendorQuery: new Map() });
    return { uri: formatPkcs11Uri({ token: this.tokenLabel, object: spec.label, id, type: 'private' }), id: hexOf(id), publicKey };
  }

  /** The key pairs on the token (each private key, with its public half's type). */
  async list(): Promise<HsmKeyInfo[]> {
    const lib = this.lib;
    const session = this.session(this.pin !== undefined);
    const out: HsmKeyInfo[] = [];
    const seen = new Set<string>();
    for (const cls of [lib.CKO_PRIVATE_KEY, lib.CKO_PUBLIC_KEY]) {
      for (const handle of this.findObjects(session, [{ type: lib.CKA_CLASS, value: cls }], MAX_OBJECTS)) {
        const a = this.attributes(session, handle, [lib.CKA_LABEL, lib.CKA_ID, lib.CKA_KEY_TYPE]);
        const label = (a.get(lib.CKA_LABEL) ?? Buffer.alloc(0)).toString('utf8');
        const id = new Uint8Array(a.get(lib.CKA_ID) ?? Buffer.alloc(0));
        const pairKey = `${label}\u0000${hexOf(id)}`;
        if (seen.has(pairKey)) continue;
        seen.add(pairKey);
        const keyType = ulong(a.get(lib.CKA_KEY_TYPE) ?? Buffer.alloc(0));
        let type: string;
        if (keyType === lib.CKK_EC) {
          const params = this.attributes(session, handle, [lib.CKA_EC_PARAMS]).get(lib.CKA_EC_PARAMS) ?? Buffer.alloc(0);
          try {
            type = curveOfEcParams(params) === 'P-256' ? 'ec-p256' : 'ec-p384';
          } catch {
            type = 'ec-other';
          }
        } else if (keyType === lib.CKK_RSA) {
          const n = this.attributes(session, handle, [lib.CKA_MODULUS]).get(lib.CKA_MODULUS) ?? Buffer.alloc(0);
          type = keyTypeOf({ kty: 'RSA', n: '', e: '' }, rsaBits(n));
        } else type = `ckk-${keyType}`;
        out.push({
          label,
          id: hexOf(id),
          type,
          uri: formatPkcs11Uri({ token: this.tokenLabel, object: label, id, type: cls === lib.CKO_PRIVATE_KEY ? 'private' : 'public' }),
        });
      }
    }
    return out.sort((a, b) => (a.label === b.label ? a.id.localeCompare(b.id) : a.label.localeCompare(b.label)));
  }

  /** Drops this user of the module: the session stays for others; the last close finalizes the module. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.keys.clear();
    this.module.release();
  }
}

function rsaBits(modulus: Buffer): number {
  let i = 0;
  while (i < modulus.length && modulus[i] === 0) i++;
  const first = modulus[i] ?? 0;
  return first === 0 ? 0 : (modulus.length - i - 1) * 8 + (32 - Math.clz32(first));
}

function slotNumber(slot: Buffer): number {
  return slot.length === 8 ? Number(slot.readBigUInt64LE(0)) : slot.readUInt32LE(0);
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}

function pickToken(uri: Pkcs11Uri): Partial<Pkcs11Uri> {
  return {
    ...(uri.token === undefined ? {} : { token: uri.token }),
    ...(uri.serial === undefined ? {} : { serial: uri.serial }),
    ...(uri.model === undefined ? {} : { model: uri.model }),
    ...(uri.manufacturer === undefined ? {} : { manufacturer: uri.manufacturer }),
    ...(uri.slotId === undefined ? {} : { slotId: uri.slotId }),
  };
}

function describe(sel: KeySelector): string {
  const parts = [...(sel.object === undefined ? [] : [`object=${JSON.stringify(sel.object)}`]), ...(sel.id === undefined ? [] : [`id=${hexOf(sel.id)}`])];
  return parts.join(' ');
}

/** Opens the token and key a URI names and returns a signer for it; close the Hsm with the returned close(). */
export async function openPkcs11Signer(uri: string, options: HsmOptions & { scheme?: HsmSignatureScheme; keyid?: string } = {}): Promise<{ signer: Pkcs11Signer; hsm: Hsm }> {
  const hsm = await Hsm.open(uri, options);
  try {
    const signer = await hsm.signer(uri, options);
    return { signer, hsm };
  } catch (err) {
    await hsm.close();
    throw err;
  }
}
