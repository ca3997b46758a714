/**
 * `bulwarkctl sign FILE --key URI|PEM -o ENVELOPE`: a DSSE envelope over FILE, signed by a
 * key on a PKCS#11 token (an RFC 7512 `pkcs11:` URI) or by a PEM private key file (for keys
 * kept offline). `--add-to ENVELOPE` adds this key's signature to an envelope others
 * signed (a threshold of key holders, each with their own token): the envelope's payload
 * and type must be FILE's and the one asked, so a signature is never added to something
 * else than what the signer read. A YAML FILE (.yaml/.yml) is signed as the canonical JSON
 * of its document (see payloadOf).
 */
import { readFile } from 'node:fs/promises';
import { openPkcs11Signer, type HsmOptions } from '../daemon/index.js';
import { BulwarkError, EXIT_CODES, bytesEqual, toHex } from '../lib/index.js';
import { encodeEnvelope, keySigner, parseEnvelope, signEnvelope, PAYLOAD_TYPES, type DsseEnvelope, type DsseSigner } from '../lib/dsse/index.js';
import { createHash } from 'node:crypto';
import type { Call } from './command.js';
import { readInput, readTextInput, writeOutput } from './io.js';
import { canonicalJson, documentFormatOf, parseYamlText } from '../lib/schema/index.js';

async function withSigner<T>(call: Call, key: string, fn: (signer: DsseSigner, name: string) => Promise<T>): Promise<T> {
  if (key.startsWith('pkcs11:')) {
    const modulePath = call.string('--module');
    const pinFile = call.string('--pin-file');
    const options: HsmOptions = { env: call.io.env, ...(modulePath === undefined ? {} : { modulePath }), ...(pinFile === undefined ? {} : { pinFile }) };
    const keyid = call.string('--keyid');
    const { signer, hsm } = await openPkcs11Signer(key, { ...options, ...(keyid === undefined ? {} : { keyid }) });
    try {
      return await fn(signer, signer.uri);
    } finally {
      await hsm.close();
    }
  }
  let pem: string;
  try {
    pem = await readFile(key, 'utf8');
  } catch (err) {
    throw new BulwarkError('IO_FAILED', `cannot read the key file ${key}`, {}, { cause: err });
  }
  const keyid = call.string('--keyid');
  return fn(keySigner(pem, keyid === undefined ? {} : { keyid }), key);
}

/**
 * The payload of FILE: its octets, or for a YAML file (.yaml/.yml: a policy written as YAML)
 * the canonical JSON of its strictly parsed document, so the envelope carries what the
 * controller reads (JSON) and a signature does not depend on YAML formatting or comments.
 */
async function payloadOf(file: string): Promise<Uint8Array> {
  const octets = await readInput(file, 'the file to sign');
  if (documentFormatOf(file) !== 'yaml') return octets;
  const value = parseYamlText(octets, 'the YAML document to sign', 'YAML_INVALID', file);
  return new TextEncoder().encode(canonicalJson(value));
}

/** `sign FILE --key URI|PEM [--payload-type T] [--add-to ENVELOPE] -o ENVELOPE`. */
export async function signFile(call: Call): Promise<number> {
  const file = call.arg(0);
  const payload = await payloadOf(file);
  const payloadType = call.string('--payload-type') ?? PAYLOAD_TYPES.inToto;
  const addTo = call.string('--add-to');
  let previous: DsseEnvelope | null = null;
  if (addTo !== undefined) {
    previous = parseEnvelope(await readTextInput(addTo, 'the envelope to add a signature to'), addTo);
    if (previous.payloadType !== payloadType) {
      throw new BulwarkError('PAYLOAD_TYPE_MISMATCH', `${addTo} has payloadType ${previous.payloadType}, not ${payloadType}`);
    }
    if (!bytesEqual(previous.payload, payload)) throw new BulwarkError('USAGE', `${addTo} is not an envelope over ${file}: its payload differs`);
  }
  const { envelope, name } = await withSigner(call, call.required('--key'), async (signer, name) => ({ envelope: await signEnvelope(payloadType, payload, [signer]), name }));
  const out: DsseEnvelope = previous === null ? envelope : { ...envelope, signatures: [...previous.signatures, ...envelope.signatures] };
  await writeOutput(call.io, call.string('--output'), `${encodeEnvelope(out)}\n`);
  const digest = toHex(createHash('sha256').update(payload).digest());
  call.io.err(`signed ${file} (sha256 ${digest}, ${payloadType}) with ${name}; ${out.signatures.length} signature${out.signatures.length === 1 ? '' : 's'}\n`);
  return EXIT_CODES.ok;
}
