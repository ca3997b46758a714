/**
 * A TPM played in software for unit tests of the verifier core: an RSA-2048 AK with the
 * attributes tpm2_createak gives it (its TPMT_PUBLIC as the registrar stores it), sha256
 * PCRs that extend as a TPM's do, and the clock counters a TPM signs into every quote.
 * `quote` writes a real TPMS_ATTEST, TPMT_SIGNATURE (RSASSA-SHA256) and tpm2-tools
 * serialized PCR file, so everything downstream runs the real verifyQuote. The same
 * chain on a real TPM is proven by the swtpm tests. Test code only.
 */
import { createHash, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { toHex } from '../../lib/bytes.js';
import { computeName, decodeTpmtPublic } from '../../lib/tpm/public.js';
import { encodeTpmtSignature } from '../../lib/tpm/signature.js';
import { TPM_ALG } from '../../lib/tpm/types.js';
import { buildQuoteAttest, buildSerializedPcrs } from '../lib/tpm/quote-builders.js';
import { AK_ATTRIBUTES, writeRsaPublic } from '../lib/tpm/tpmt-builder.js';

/** The controller's default selection (controller/config): boot PCRs 0-9 and 14, IMA's PCR 10. */
export const QUOTED_PCRS: readonly number[] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 14];
export const QUOTED_SPEC = 'sha256:0,1,2,3,4,5,6,7,8,9,10,14';

/** The three files tpm2_quote writes. */
export interface SoftQuote {
  readonly attest: Uint8Array;
  readonly signature: Uint8Array;
  readonly pcrs: Uint8Array;
}

export interface SoftTpmOptions {
  readonly resetCount?: number;
  readonly restartCount?: number;
  readonly clock?: bigint;
}

export class SoftTpm {
  /** TPMT_PUBLIC of the AK, as the agent sends it at enrollment. */
  readonly akPublic: Uint8Array;
  /** The AK's TPM Name (nameAlg sha256). */
  readonly akName: Uint8Array;
  readonly akKey: KeyObject;
  private readonly akPrivate: KeyObject;
  /** sha256 bank, PCR 0-23. */
  private readonly bank: Uint8Array[];
  resetCount: number;
  restartCount: number;
  clock: bigint;

  constructor(opts: SoftTpmOptions = {}) {
    const pair = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const n = pair.publicKey.export({ format: 'jwk' }).n ?? '';
    this.akPublic = writeRsaPublic({
      nameAlg: TPM_ALG.SHA256,
      objectAttributes: AK_ATTRIBUTES,
      authPolicy: new Uint8Array(0),
      symmetric: null,
      scheme: { scheme: TPM_ALG.RSASSA, hashAlg: TPM_ALG.SHA256 },
      keyBits: 2048,
      exponent: 0,
      modulus: new Uint8Array(Buffer.from(n, 'base64url')),
    });
    this.akName = computeName(decodeTpmtPublic(this.akPublic));
    this.akKey = pair.publicKey;
    this.akPrivate = pair.privateKey;
    this.bank = Array.from({ length: 24 }, () => new Uint8Array(32));
    this.resetCount = opts.resetCount ?? 5;
    this.restartCount = opts.restartCount ?? 0;
    this.clock = opts.clock ?? 100_000n;
  }

  get akPublicHex(): string {
    return toHex(this.akPublic);
  }

  /** TPM2_PCR_Extend on the sha256 bank: PCR := sha256(PCR || digest). */
  extend(pcr: number, digest: Uint8Array): void {
    const old = this.bank[pcr];
    if (old === undefined) throw new Error(`no PCR ${pcr}`);
    this.bank[pcr] = new Uint8Array(createHash('sha256').update(old).update(digest).digest());
  }

  /** Measures `text` into a PCR, as firmware or a boot loader would. */
  measure(pcr: number, text: string): void {
    this.extend(pcr, createHash('sha256').update(text).digest());
  }

  /**
   * Sets a PCR to the value a sequence of measurements gave it (a recorded boot whose
   * replayed values are known, e.g. an event log fixture's NAME.json).
   */
  load(pcr: number, value: Uint8Array): void {
    if (this.bank[pcr] === undefined || value.length !== 32) throw new Error(`cannot load PCR ${pcr} with ${value.length} octets`);
    this.bank[pcr] = new Uint8Array(value);
  }

  pcr(index: number): Uint8Array {
    const v = this.bank[index];
    if (v === undefined) throw new Error(`no PCR ${index}`);
    return v;
  }

  /** A TPM reset (reboot): resetCount grows, restartCount starts over, PCRs are zero again. */
  reboot(): void {
    this.resetCount++;
    this.restartCount = 0;
    this.clock += 1000n;
    for (let i = 0; i < this.bank.length; i++) this.bank[i] = new Uint8Array(32);
  }

  /** Time passes on the TPM's clock. */
  tick(ms = 1000): void {
    this.clock += BigInt(ms);
  }

  /**
   * TPM2_Quote over QUOTED_PCRS of the sha256 bank with `nonce` as qualifying data, signed by the AK.
   * `clock` overrides the counters written into this one quote (a TPM whose state was replaced).
   */
  quote(nonce: Uint8Array, clock: SoftTpmOptions = {}): SoftQuote {
    const values = QUOTED_PCRS.map((i) => this.pcr(i));
    const pcrDigest = createHash('sha256').update(Buffer.concat(values)).digest();
    const attest = buildQuoteAttest({
      qualifiedSigner: new Uint8Array([0x00, 0x0b, ...createHash('sha256').update(this.akName).digest()]),
      extraData: nonce,
      clock: clock.clock ?? this.clock,
      resetCount: clock.resetCount ?? this.resetCount,
      restartCount: clock.restartCount ?? this.restartCount,
      selections: [{ hash: TPM_ALG.SHA256, sizeofSelect: 3, bitmap: [0xff, 0x47, 0x00] }], // pcrSelect octets: 0-7; 8, 9, 10, 14
      pcrDigest,
    });
    const signature = encodeTpmtSignature({ sigAlg: TPM_ALG.RSASSA, hashAlg: TPM_ALG.SHA256, sig: sign('sha256', attest, this.akPrivate) });
    // tpm2-tools writes PCRs 0-7 in its first TPML_DIGEST (8 at most), the rest in the second.
    const pcrs = buildSerializedPcrs({ selections: [{ hash: TPM_ALG.SHA256, sizeofSelect: 3, bitmap: [0xff, 0x47, 0x00] }], lists: [values.slice(0, 8), values.slice(8)] });
    this.tick(10);
    return { attest, signature, pcrs };
  }
}
