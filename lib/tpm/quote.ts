/**
 * Verification of a TPM2_Quote (TCG TPM 2.0 Library Part 3, 18.4) as tpm2-tools delivers
 * it: the TPMS_ATTEST (`-m`), the TPMT_SIGNATURE (`-s`, tss format) and the PCR values
 * (`-o FILE -F serialized`). This is the controller's hot path: one decode of each input,
 * one signature verification, one hash over the PCR values, no hex strings.
 */
import { constants, timingSafeEqual, verify, type KeyObject } from 'node:crypto';
import { BulwarkError, isBulwarkError } from '../errors.js';
import { finding, type Finding } from '../verdict.js';
import { decodeQuoteAttest, pcrSelectionsEqual } from './attest.js';
import { concatPcrValues, decodeSerializedPcrFile, formatPcrSelectionSpec, hashWithTpmAlg } from './pcrs.js';
import { decodeTpmtSignature } from './signature.js';
import { HASH_ALGS, TPM_ALG, TPM_GENERATED_VALUE, type PcrSelection, type QuoteAttest, type QuotedPcrs, type TpmtSignature } from './types.js';

/** What the verifier expects of a quote beyond the nonce. Trusted: the controller's own policy. */
export interface QuoteExpectations {
  /** The selection the quote must cover, banks in this order (e.g. parsePcrSelectionSpec("sha256:0-7,10")). */
  readonly selection?: readonly PcrSelection[];
}

/**
 * The outcome of verifyQuote. Trusted when `ok: true`: it carries the PCR values proven by the quote. On
 * `ok: false`, `attest` is present only when the AK's signature over it held (nothing
 * unsigned is handed out) and it decoded as a quote.
 */
export type QuoteResult =
  | { readonly ok: true; readonly pcrs: QuotedPcrs; readonly attest: QuoteAttest }
  | { readonly ok: false; readonly findings: Finding[]; readonly attest?: QuoteAttest };

/** What the AK KeyObject can verify, worked out once per key (asymmetricKeyDetails is not free). */
interface AkInfo {
  readonly family: 'rsa' | 'ec' | 'other';
  /** Octets of one ECDSA scalar (r or s) on the key's curve; 0 for non-EC keys or unknown curves. */
  readonly ecScalarSize: number;
}

/** Octets of r and s on the curves a TPM uses (Part 2, 6.4 TPM_ECC_CURVE; FIPS 186-4). */
const EC_SCALAR_SIZE: ReadonlyMap<string, number> = new Map([
  ['prime256v1', 32],
  ['secp384r1', 48],
  ['secp521r1', 66],
]);

const akInfoCache = new WeakMap<KeyObject, AkInfo>();

function akInfo(ak: KeyObject): AkInfo {
  const cached = akInfoCache.get(ak);
  if (cached !== undefined) return cached;
  const type = ak.asymmetricKeyType;
  let info: AkInfo;
  if (type === 'rsa' || type === 'rsa-pss') info = { family: 'rsa', ecScalarSize: 0 };
  else if (type === 'ec') info = { family: 'ec', ecScalarSize: EC_SCALAR_SIZE.get(ak.asymmetricKeyDetails?.namedCurve ?? '') ?? 0 };
  else info = { family: 'other', ecScalarSize: 0 };
  akInfoCache.set(ak, info);
  return info;
}

/** Why a signature cannot be checked with this key, or undefined when scheme and key fit. */
function schemeMismatch(sig: TpmtSignature, ak: KeyObject, info: AkInfo): string | undefined {
  if (sig.sigAlg === TPM_ALG.ECDSA) {
    if (info.family !== 'ec') return `an ECDSA signature cannot be made by a ${ak.asymmetricKeyType ?? 'unknown'} key`;
    if (info.ecScalarSize === 0) return `the AK's curve ${ak.asymmetricKeyDetails?.namedCurve ?? 'unknown'} is not supported`;
    return undefined;
  }
  if (info.family !== 'rsa') return `an RSA signature cannot be made by a ${ak.asymmetricKeyType ?? 'unknown'} key`;
  // A key whose SubjectPublicKeyInfo says RSASSA-PSS cannot have made a PKCS#1 v1.5 signature.
  if (sig.sigAlg === TPM_ALG.RSASSA && ak.asymmetricKeyType === 'rsa-pss') return 'an RSASSA signature cannot be made by an RSA-PSS-only key';
  return undefined;
}

/**
 * r and s of a TPMS_SIGNATURE_ECC (Part 2, 11.3.2) as IEEE P1363 r||s, each left-padded to
 * the curve's scalar size (a TPM2B_ECC_PARAMETER may drop leading zero octets). Returns
 * undefined when either is longer than the curve allows: no valid signature looks so.
 */
function ecdsaP1363(r: Uint8Array, s: Uint8Array, size: number): Uint8Array | undefined {
  if (r.length > size || s.length > size) return undefined;
  const out = new Uint8Array(2 * size);
  out.set(r, size - r.length);
  out.set(s, 2 * size - s.length);
  return out;
}

/** Verifies the AK's signature over the attest bytes with the scheme and hash the TPMT_SIGNATURE names. */
function signatureHolds(ak: KeyObject, info: AkInfo, attest: Uint8Array, sig: TpmtSignature): boolean {
  const hash = HASH_ALGS.get(sig.hashAlg);
  if (hash === undefined) return false; // decodeTpmtSignature admits only HASH_ALGS; kept fail-closed
  try {
    if (sig.sigAlg === TPM_ALG.ECDSA) {
      const p1363 = ecdsaP1363(sig.r, sig.s, info.ecScalarSize);
      return p1363 !== undefined && verify(hash.name, attest, { key: ak, dsaEncoding: 'ieee-p1363' }, p1363);
    }
    if (sig.sigAlg === TPM_ALG.RSAPSS) {
      // The TPM picks the salt length (hash size, or the largest that fits in FIPS mode): accept any.
      return verify(hash.name, attest, { key: ak, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_AUTO }, sig.sig);
    }
    return verify(hash.name, attest, { key: ak, padding: constants.RSA_PKCS1_PADDING }, sig.sig);
  } catch {
    // OpenSSL refuses some hostile inputs (a signature longer than the modulus) by throwing.
    return false;
  }
}

/** Constant-time equality of two byte strings; their lengths are not secret. */
function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * The one place a QuotedPcrs is made: views into `composite`, the fresh copy of the values
 * that was hashed and matched pcrDigest, so what was proven cannot change when the caller
 * reuses its buffer. The brand is a claim about provenance only this module may make, hence
 * the single cast.
 */
function toQuotedPcrs(selection: readonly PcrSelection[], composite: Uint8Array): QuotedPcrs {
  const out = new Map<number, ReadonlyMap<number, Uint8Array>>();
  let at = 0;
  for (const sel of selection) {
    const size = HASH_ALGS.get(sel.hashAlg)?.size ?? 0;
    const bank = new Map<number, Uint8Array>();
    for (const pcr of sel.pcrs) {
      bank.set(pcr, composite.subarray(at, at + size));
      at += size;
    }
    out.set(sel.hashAlg, bank);
  }
  if (at !== composite.length) throw new BulwarkError('INTERNAL', 'PCR composite does not match its selection', { at, length: composite.length });
  return out as unknown as QuotedPcrs;
}

/**
 * Verifies a quote and, when every check holds, returns the PCR values it proves.
 *
 * Malformed `attest`, `signature` or `pcrs` bytes throw a BulwarkError (TPM_ATTEST_MALFORMED,
 * TPM_SIGNATURE_MALFORMED/UNSUPPORTED, TPM_PCRS_MALFORMED, BYTES_*) for the caller to turn
 * into a finding; a non-public `ak` throws KEY_INVALID and an empty nonce USAGE. Checks
 * come back as findings, in this order, signature first because nothing unsigned is believed:
 *
 * 1. QUOTE_SIGNATURE_SCHEME_MISMATCH: the signature's scheme cannot come from this key type;
 *    QUOTE_SIGNATURE_INVALID: the AK did not sign these attest bytes (RSASSA PKCS#1 v1.5,
 *    RSAPSS with any salt length, ECDSA) with the hash the signature names. Either stops here.
 * 2. QUOTE_MAGIC_INVALID (not TPM_GENERATED_VALUE: the TPM did not produce the structure,
 *    it signed outside data) and QUOTE_TYPE_INVALID (not TPM_ST_ATTEST_QUOTE). Either stops here.
 * 3. QUOTE_NONCE_MISMATCH: extraData is not `expectedNonce` (constant-time).
 *    QUOTE_PCR_SELECTION_MISMATCH: the quoted selection is not `expected.selection`, or the
 *    PCR file's selection is not the quoted one.
 *    QUOTE_PCR_DIGEST_MISMATCH: the hash (with the signature's hash, Part 3, 18.4) of the
 *    supplied values is not pcrDigest; only checked when the file's selection is the quoted one.
 *
 * Trust: the inputs are untrusted; `ak` must be the node's enrolled AK. A result with
 * `ok: true` is the only source of QuotedPcrs.
 */
export function verifyQuote(
  ak: KeyObject,
  attest: Uint8Array,
  signature: Uint8Array,
  pcrs: Uint8Array,
  expectedNonce: Uint8Array,
  expected?: QuoteExpectations,
): QuoteResult {
  if (ak.type !== 'public') throw new BulwarkError('KEY_INVALID', `the AK must be a public key, not a ${ak.type} key`);
  if (expectedNonce.length === 0) throw new BulwarkError('USAGE', 'an empty nonce proves no freshness');

  // 1. Parse everything; malformed input throws.
  const sig = decodeTpmtSignature(signature);
  const file = decodeSerializedPcrFile(pcrs);
  let quote: QuoteAttest | undefined;
  let notAQuote: BulwarkError | undefined;
  try {
    quote = decodeQuoteAttest(attest);
  } catch (err) {
    // A well-formed attestation of another type is a refusal, reported once it is known to be signed.
    if (isBulwarkError(err) && err.code === 'QUOTE_TYPE_INVALID') notAQuote = err;
    else throw err;
  }

  // 2. The signature, before anything in the attest bytes is believed.
  const info = akInfo(ak);
  const mismatch = schemeMismatch(sig, ak, info);
  if (mismatch !== undefined) {
    return { ok: false, findings: [finding('QUOTE_SIGNATURE_SCHEME_MISMATCH', mismatch, { sigAlg: sig.sigAlg, keyType: ak.asymmetricKeyType ?? 'unknown' })] };
  }
  if (!signatureHolds(ak, info, attest, sig)) {
    return { ok: false, findings: [finding('QUOTE_SIGNATURE_INVALID', 'the quote is not signed by the AK', { sigAlg: sig.sigAlg, hashAlg: sig.hashAlg })] };
  }

  // 3. What the TPM produced: magic and type.
  if (quote === undefined) {
    const findings: Finding[] = [];
    const magic = notAQuote?.details['magic'];
    if (magic !== TPM_GENERATED_VALUE) {
      findings.push(finding('QUOTE_MAGIC_INVALID', 'the signed structure was not generated by the TPM', { magic: typeof magic === 'number' ? magic : -1 }));
    }
    const type = notAQuote?.details['type'];
    findings.push(finding('QUOTE_TYPE_INVALID', notAQuote?.message ?? 'not a quote', { type: typeof type === 'number' ? type : -1 }));
    return { ok: false, findings };
  }
  if (quote.magic !== TPM_GENERATED_VALUE) {
    return {
      ok: false,
      findings: [finding('QUOTE_MAGIC_INVALID', `magic is 0x${quote.magic.toString(16)}, not TPM_GENERATED_VALUE: the TPM did not generate these bytes`, { magic: quote.magic })],
      attest: quote,
    };
  }

  // 4. Freshness, coverage and the values.
  const findings: Finding[] = [];
  if (!sameBytes(quote.extraData, expectedNonce)) {
    findings.push(finding('QUOTE_NONCE_MISMATCH', 'the quote does not carry the nonce of this challenge', { length: quote.extraData.length }));
  }
  if (expected?.selection !== undefined && !pcrSelectionsEqual(quote.pcrSelect, expected.selection)) {
    findings.push(
      finding('QUOTE_PCR_SELECTION_MISMATCH', 'the quote does not cover the expected PCRs', {
        quoted: describeSelection(quote.pcrSelect),
        expected: describeSelection(expected.selection),
      }),
    );
  }
  let composite: Uint8Array | undefined;
  if (!pcrSelectionsEqual(file.selection, quote.pcrSelect)) {
    findings.push(
      finding('QUOTE_PCR_SELECTION_MISMATCH', 'the PCR values supplied are not for the quoted selection', {
        quoted: describeSelection(quote.pcrSelect),
        supplied: describeSelection(file.selection),
      }),
    );
  } else {
    // One copy of the values in quote order: hashed here, and the storage of the QuotedPcrs.
    composite = concatPcrValues(quote.pcrSelect, file.banks);
    if (!sameBytes(hashWithTpmAlg(sig.hashAlg, composite), quote.pcrDigest)) {
      findings.push(finding('QUOTE_PCR_DIGEST_MISMATCH', 'the PCR values supplied do not hash to the quoted pcrDigest', { hashAlg: sig.hashAlg }));
    }
  }
  if (findings.length > 0 || composite === undefined) return { ok: false, findings, attest: quote };
  return { ok: true, pcrs: toQuotedPcrs(quote.pcrSelect, composite), attest: quote };
}

/** A selection as text for a finding's details (only on the failure path). */
function describeSelection(selection: readonly PcrSelection[]): string {
  try {
    return formatPcrSelectionSpec(selection);
  } catch {
    return selection.map((s) => `0x${s.hashAlg.toString(16)}:${s.pcrs.join(',')}`).join('+');
  }
}
