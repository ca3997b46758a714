/**
 * TPMT_SIGNATURE (TCG TPM 2.0 Library Part 2, 11.3.4) as `tpm2_quote -s` writes it by
 * default ("tss" format: the structure marshaled big-endian, exactly as the TPM returned it).
 */
import { ByteReader, ByteWriter } from '../bytes.js';
import { BulwarkError } from '../errors.js';
import { HASH_ALGS, TPM_ALG, type TpmtSignature } from './types.js';

/** MAX_RSA_KEY_BYTES (Part 2, 11.2.4.5 TPM2B_PUBLIC_KEY_RSA): a 4096-bit modulus. */
const MAX_RSA_SIGNATURE_SIZE = 512;
/** MAX_ECC_KEY_BYTES (Part 2, 11.2.5.1 TPM2B_ECC_PARAMETER): a NIST P-521 coordinate. */
const MAX_ECC_PARAMETER_SIZE = 66;

/**
 * Decodes a TPMT_SIGNATURE (Part 2, 11.3.4):
 *
 *   sigAlg  u16 TPMI_ALG_SIG_SCHEME
 *   RSASSA, RSAPSS (11.3.1 TPMS_SIGNATURE_RSA): hash u16, sig TPM2B_PUBLIC_KEY_RSA
 *   ECDSA (11.3.2 TPMS_SIGNATURE_ECC): hash u16, signatureR TPM2B_ECC_PARAMETER, signatureS TPM2B_ECC_PARAMETER
 *
 * Other schemes (ECDAA, SM2, ECSCHNORR, HMAC, NULL) and hash algorithms outside HASH_ALGS
 * raise TPM_SIGNATURE_UNSUPPORTED; trailing bytes are refused. Untrusted input: the result
 * is decoded, not verified.
 */
export function decodeTpmtSignature(bytes: Uint8Array): TpmtSignature {
  const r = new ByteReader(bytes, 'TPM_SIGNATURE_MALFORMED');
  const sigAlg = r.u16be('TPMT_SIGNATURE.sigAlg');
  if (sigAlg !== TPM_ALG.RSASSA && sigAlg !== TPM_ALG.RSAPSS && sigAlg !== TPM_ALG.ECDSA) {
    throw new BulwarkError('TPM_SIGNATURE_UNSUPPORTED', `signature scheme 0x${sigAlg.toString(16).padStart(4, '0')} is not RSASSA, RSAPSS or ECDSA`, {
      offset: 0,
      sigAlg,
    });
  }
  const hashAlg = r.u16be('TPMT_SIGNATURE.hash');
  if (!HASH_ALGS.has(hashAlg)) {
    throw new BulwarkError('TPM_SIGNATURE_UNSUPPORTED', `signature hash algorithm 0x${hashAlg.toString(16).padStart(4, '0')} is not supported`, {
      offset: 2,
      hashAlg,
    });
  }
  let signature: TpmtSignature;
  if (sigAlg === TPM_ALG.ECDSA) {
    const r1 = r.tpm2b('TPMS_SIGNATURE_ECC.signatureR', MAX_ECC_PARAMETER_SIZE);
    const s1 = r.tpm2b('TPMS_SIGNATURE_ECC.signatureS', MAX_ECC_PARAMETER_SIZE);
    signature = { sigAlg: TPM_ALG.ECDSA, hashAlg, r: r1, s: s1 };
  } else {
    const sig = r.tpm2b('TPMS_SIGNATURE_RSA.sig', MAX_RSA_SIGNATURE_SIZE);
    signature = sigAlg === TPM_ALG.RSASSA ? { sigAlg: TPM_ALG.RSASSA, hashAlg, sig } : { sigAlg: TPM_ALG.RSAPSS, hashAlg, sig };
  }
  r.expectEnd('TPMT_SIGNATURE');
  return signature;
}

/** Encodes a TPMT_SIGNATURE (Part 2, 11.3.4) in the TSS marshaling; for tests and tools. Trusted input. */
export function encodeTpmtSignature(signature: TpmtSignature): Uint8Array {
  const w = new ByteWriter(16 + ('sig' in signature ? signature.sig.length : signature.r.length + signature.s.length));
  w.u16be(signature.sigAlg).u16be(signature.hashAlg);
  if (signature.sigAlg === TPM_ALG.ECDSA) w.tpm2b(signature.r).tpm2b(signature.s);
  else w.tpm2b(signature.sig);
  return w.finish();
}
