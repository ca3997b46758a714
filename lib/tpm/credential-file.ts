import { ByteReader, ByteWriter } from '../bytes.js';
import { BulwarkError } from '../errors.js';

/** The magic tpm2-tools writes at the start of a credential file (tpm2_makecredential -o). */
const TPM2_TOOLS_CREDENTIAL_MAGIC = 0xbadcc0de;
const TPM2_TOOLS_CREDENTIAL_VERSION = 1;

/** The two halves of a MakeCredential result, as TPM2B contents without size prefixes. */
export interface CredentialBlob {
  /** TPM2B_ID_OBJECT.credential: integrityHMAC (TPM2B) followed by encIdentity. */
  readonly idObject: Uint8Array;
  /** TPM2B_ENCRYPTED_SECRET.secret: the seed encrypted to the EK. */
  readonly encryptedSecret: Uint8Array;
}

/**
 * Encodes the file tpm2_activatecredential -i reads: magic, version (u32 big-endian),
 * then TPM2B_ID_OBJECT and TPM2B_ENCRYPTED_SECRET.
 */
export function encodeTpm2ToolsCredential(blob: CredentialBlob): Uint8Array {
  return new ByteWriter(blob.idObject.length + blob.encryptedSecret.length + 12)
    .u32be(TPM2_TOOLS_CREDENTIAL_MAGIC)
    .u32be(TPM2_TOOLS_CREDENTIAL_VERSION)
    .tpm2b(blob.idObject)
    .tpm2b(blob.encryptedSecret)
    .finish();
}

/** Decodes a tpm2-tools credential file (tpm2_makecredential -o). Untrusted input. */
export function decodeTpm2ToolsCredential(bytes: Uint8Array): CredentialBlob {
  const r = new ByteReader(bytes, 'CREDENTIAL_MALFORMED');
  const magic = r.u32be('magic');
  if (magic !== TPM2_TOOLS_CREDENTIAL_MAGIC) {
    throw new BulwarkError('CREDENTIAL_MALFORMED', `credential file magic is 0x${magic.toString(16)}, not 0xbadcc0de`, { offset: 0 });
  }
  const version = r.u32be('version');
  if (version !== TPM2_TOOLS_CREDENTIAL_VERSION) {
    throw new BulwarkError('CREDENTIAL_MALFORMED', `credential file version ${version} is not 1`, { offset: 4 });
  }
  const idObject = r.tpm2b('TPM2B_ID_OBJECT');
  const encryptedSecret = r.tpm2b('TPM2B_ENCRYPTED_SECRET');
  r.expectEnd('credential file');
  return { idObject, encryptedSecret };
}
