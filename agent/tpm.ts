/**
 * What the agent loop needs from a TPM, as an interface so the loop does not depend on
 * how the TPM is reached (tpm2-tools today: agent/tpm2-tools-tpm.ts).
 */
import type { CredentialBlob } from '../lib/tpm/index.js';
import type { PcrBanks } from '../lib/tpm/index.js';

/** Key algorithm of an EK or AK. */
export type TpmKeyAlgorithm = 'rsa' | 'ecc';

/** The EK and AK of this TPM, as read back from the TPM itself (the agent's own view, unverified by anyone). */
export interface TpmKeys {
  readonly ekType: TpmKeyAlgorithm;
  /** Persistent handle of the EK (0x81010001 RSA, 0x81010016 ECC). */
  readonly ekHandle: number;
  /** TPMT_PUBLIC of the EK, without the TPM2B size prefix. */
  readonly ekPublic: Uint8Array;
  /**
   * The EK certificate (DER, NV padding removed) whose public key is this EK's, or null
   * when the TPM holds none for it.
   */
  readonly ekCertificate: Uint8Array | null;
  /** Persistent handle of the AK. */
  readonly akHandle: number;
  /** TPMT_PUBLIC of the AK, without the TPM2B size prefix. */
  readonly akPublic: Uint8Array;
  /** The AK's Name (nameAlg u16 followed by the nameAlg digest of akPublic). */
  readonly akName: Uint8Array;
}

/** The three outputs of TPM2_Quote, exactly as tpm2_quote wrote them (untrusted until verified by the controller). */
export interface QuoteOutput {
  /** TPMS_ATTEST bytes that were signed (tpm2_quote -m). */
  readonly attest: Uint8Array;
  /** TPMT_SIGNATURE (tpm2_quote -s). */
  readonly signature: Uint8Array;
  /** PCR values in tpm2-tools' serialized format (tpm2_quote -o -F serialized). */
  readonly pcrs: Uint8Array;
}

/** The TPM operations the attestation loop uses; implementations serialize their own commands. */
export interface Tpm {
  /** Makes sure an EK and a persisted AK exist (creating them when missing) and reads them back. */
  ensureKeys(opts: { readonly ekType: TpmKeyAlgorithm; readonly akHandle: number }): Promise<TpmKeys>;
  /** TPM2_ActivateCredential with the EK and AK of `keys`; returns the secret the controller sealed. */
  activateCredential(blob: CredentialBlob, keys: TpmKeys): Promise<Uint8Array>;
  /** TPM2_Quote by the AK at `akHandle` over a tpm2-tools PCR selection ("sha256:0,1,2,3,4,5,6,7,10"). */
  quote(nonce: Uint8Array, selection: string, akHandle: number): Promise<QuoteOutput>;
  /** TPM2_PCR_Extend of one sha256 PCR with a 32-byte digest: PCR := sha256(PCR || digest). */
  extendPcr(pcr: number, sha256: Uint8Array): Promise<void>;
  /** Current PCR values of a selection, as the TPM reports them (unverified). */
  readPcrs(selection: string): Promise<PcrBanks>;
  /** Persistent object handles present in the TPM. */
  getPersistentHandles(): Promise<number[]>;
  /** Releases what the implementation holds (temporary files); later calls fail. */
  close(): Promise<void>;
}
