/**
 * `bulwarkctl hsm keygen|list|pubkey`: keys on a PKCS #11 token through daemon/pkcs11.
 * The module is the URI's module-path, else --module, else $BULWARK_PKCS11_MODULE; the PIN
 * the URI's, else $BULWARK_PKCS11_PIN, else --pin-file. Nothing printed carries the PIN.
 */
import { Hsm, HSM_KEY_TYPES, type HsmKeyType, type HsmOptions } from '../daemon/index.js';
import { BulwarkError, EXIT_CODES, fromHex } from '../lib/index.js';
import type { Pkcs11Uri } from '../lib/pkcs11/index.js';
import type { Call } from './command.js';
import { printJson } from './io.js';
import { formatTable } from './table.js';

function options(call: Call): HsmOptions {
  const modulePath = call.string('--module');
  const pinFile = call.string('--pin-file');
  return { env: call.io.env, ...(modulePath === undefined ? {} : { modulePath }), ...(pinFile === undefined ? {} : { pinFile }) };
}

function tokenUri(label: string): Pkcs11Uri {
  return { token: label, vendorPath: new Map(), vendorQuery: new Map() };
}

function isKeyType(value: string): value is HsmKeyType {
  return HSM_KEY_TYPES.some((t) => t === value);
}

async function withHsm<T>(uri: string | Pkcs11Uri, call: Call, fn: (hsm: Hsm) => Promise<T>): Promise<T> {
  const hsm = await Hsm.open(uri, options(call));
  try {
    return await fn(hsm);
  } finally {
    await hsm.close();
  }
}

/** `hsm keygen --token LABEL --label NAME --type TYPE [--id HEX]`. */
export async function hsmKeygen(call: Call): Promise<number> {
  const type = call.required('--type');
  if (!isKeyType(type)) throw new BulwarkError('USAGE', `--type ${type} is not one of ${HSM_KEY_TYPES.join(', ')}`);
  const idHex = call.string('--id');
  let id: Uint8Array | undefined;
  if (idHex !== undefined) {
    if (!/^(?:[0-9a-fA-F]{2}){1,64}$/.test(idHex)) throw new BulwarkError('USAGE', '--id must be 1 to 64 bytes in hex');
    id = fromHex(idHex);
  }
  const label = call.required('--label');
  const made = await withHsm(tokenUri(call.required('--token')), call, (hsm) => hsm.keygen({ label, type, ...(id === undefined ? {} : { id }) }));
  const pem = made.publicKey.export({ format: 'pem', type: 'spki' }).toString();
  if (call.json) printJson(call.io, { uri: made.uri, label, id: made.id, type, publicKey: pem });
  else call.io.out(`${made.uri}\n`);
  return EXIT_CODES.ok;
}

/** `hsm list --token LABEL`. */
export async function hsmList(call: Call): Promise<number> {
  const keys = await withHsm(tokenUri(call.required('--token')), call, (hsm) => hsm.list());
  if (call.json) printJson(call.io, keys);
  else call.io.out(formatTable(['LABEL', 'ID', 'TYPE', 'URI'], keys.map((k) => [k.label, k.id, k.type, k.uri])));
  return EXIT_CODES.ok;
}

/** `hsm pubkey URI`: PEM (SubjectPublicKeyInfo) on stdout. */
export async function hsmPubkey(call: Call): Promise<number> {
  const uri = call.arg(0);
  const key = await withHsm(uri, call, (hsm) => hsm.publicKey(uri));
  call.io.out(key.export({ format: 'pem', type: 'spki' }).toString());
  return EXIT_CODES.ok;
}
