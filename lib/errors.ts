/**
 * The one error family of Bulwark. Every failure that crosses a module boundary is a
 * `BulwarkError` with a stable `code`; codes are defined here only and never renamed
 * once released. `details` carries offsets, PCR indices and names — never PINs or keys.
 */

/** What kind of failure a code is: decides gRPC status and CLI exit code. */
export type ErrorKind =
  /** Input bytes or text that cannot be decoded (hostile or corrupt). */
  | 'malformed'
  /** Input that decodes but is refused by a check (a finding). */
  | 'refused'
  /** A caller used an API or CLI wrongly. */
  | 'usage'
  /** Something we asked for does not exist. */
  | 'not-found'
  /** A dependency (TPM tool, NATS, swtpm, network) failed. */
  | 'unavailable'
  /** A broken invariant inside Bulwark. */
  | 'internal'
  /** A caller without an accepted credential (none, another CA's, expired, revoked). */
  | 'unauthenticated'
  /** A caller whose credential is accepted but whose role or node may not make the call. */
  | 'denied'

  /** A rate or count limit was reached (gRPC RESOURCE_EXHAUSTED); the caller may try again later. */
  | 'exhausted';

/** Every error code with its kind. Append only. */
export const ERROR_CODES = {
  // bytes
  BYTES_TRUNCATED: 'malformed',
  BYTES_TRAILING: 'malformed',
  BYTES_LENGTH_EXCEEDS_CAP: 'malformed',
  BYTES_VALUE_OUT_OF_RANGE: 'malformed',
  HEX_INVALID: 'malformed',
  // TPM structures
  TPM_PUBLIC_MALFORMED: 'malformed',
  TPM_PUBLIC_UNSUPPORTED: 'malformed',
  TPM_ATTEST_MALFORMED: 'malformed',
  TPM_SIGNATURE_MALFORMED: 'malformed',
  TPM_SIGNATURE_UNSUPPORTED: 'malformed',
  TPM_PCRS_MALFORMED: 'malformed',
  TPM_ALG_UNSUPPORTED: 'malformed',
  /** A PCR selection text ("sha256:0-7,10") that does not parse. */
  TPM_PCR_SELECTION_SPEC_INVALID: 'usage',
  // quotes (findings raised as errors where a caller wants an exception)
  QUOTE_MAGIC_INVALID: 'refused',
  QUOTE_TYPE_INVALID: 'refused',
  QUOTE_SIGNATURE_INVALID: 'refused',
  QUOTE_NONCE_MISMATCH: 'refused',
  QUOTE_PCR_SELECTION_MISMATCH: 'refused',
  QUOTE_PCR_DIGEST_MISMATCH: 'refused',
  QUOTE_SIGNATURE_SCHEME_MISMATCH: 'refused',
  // keys and certificates
  KEY_INVALID: 'malformed',
  CERT_MALFORMED: 'malformed',
  EK_CERT_UNTRUSTED: 'refused',
  EK_CERT_KEY_MISMATCH: 'refused',
  EK_CA_BUNDLE_INVALID: 'malformed',
  AK_ATTRIBUTES_INVALID: 'refused',
  CREDENTIAL_MALFORMED: 'malformed',
  CREDENTIAL_SECRET_MISMATCH: 'refused',
  // enrollment and attestation
  ENROLL_UNKNOWN_CHALLENGE: 'refused',
  ENROLL_CHALLENGE_EXPIRED: 'refused',
  NODE_NOT_FOUND: 'not-found',
  NODE_CONFLICT: 'refused',
  NODE_REENROLL_NOT_APPROVED: 'refused',
  /** The EK (the TPM) is bound to another node id: one node per TPM, moved only by an admin. */
  EK_BOUND_TO_OTHER_NODE: 'refused',
  /** enrollment: approve — an unknown EK's enrollment waits for an admin (bulwarkctl enrollments approve). */
  ENROLLMENT_HELD: 'refused',
  /** A per-peer or per-node request rate (token bucket) or a count limit was reached. */
  RATE_LIMITED: 'exhausted',
  STORE_CORRUPT: 'malformed',
  NODE_NOT_ENROLLED: 'refused',
  NONCE_UNKNOWN: 'refused',
  NONCE_EXPIRED: 'refused',
  NONCE_REPLAYED: 'refused',
  EVIDENCE_MALFORMED: 'malformed',
  // IMA runtime integrity (lib/ima)
  /** An IMA measurement list line or record that cannot be decoded; details carry entry index and byte offset. */
  IMA_LOG_MALFORMED: 'malformed',
  /** An IMA measurement list that ends inside an entry. */
  IMA_LOG_TRUNCATED: 'malformed',
  /** An IMA template (or template field) Bulwark does not decode: fail closed. */
  IMA_TEMPLATE_UNSUPPORTED: 'malformed',
  /** A runtime policy (Bulwark or Keylime JSON) that does not validate; details.path is the JSON path. */
  IMA_POLICY_INVALID: 'malformed',
  /** A stored IMA replay state that does not validate. */
  IMA_STATE_INVALID: 'malformed',
  // wire and config
  WIRE_MALFORMED: 'malformed',
  CONFIG_INVALID: 'usage',
  USAGE: 'usage',
  // adapters
  TPM_TOOL_FAILED: 'unavailable',
  TPM_TOOL_TIMEOUT: 'unavailable',
  /** tpm2-tools printed or wrote something its pure parser does not accept. */
  TPM_TOOL_OUTPUT_MALFORMED: 'malformed',
  /** A persistent handle holds an object that is not the EK or AK the agent expects there. */
  TPM_OBJECT_UNEXPECTED: 'usage',
  /** The TPM has no allocated PCR bank (or PCR) that a selection asks for. */
  TPM_PCR_BANK_UNAVAILABLE: 'unavailable',
  NATS_FAILED: 'unavailable',
  NATS_SERVER_FAILED: 'unavailable',
  STORE_CONFLICT: 'unavailable',
  RPC_FAILED: 'unavailable',
  IO_FAILED: 'unavailable',
  INTERNAL: 'internal',
  // Nomad
  /** Nomad answered a request with an error status (the request reached it). */
  NOMAD_FAILED: 'unavailable',
  /** Nomad could not be reached, or did not answer in time. */
  NOMAD_UNAVAILABLE: 'unavailable',
  /** Nomad answered with JSON (or an event stream) whose shape this version does not accept. */
  NOMAD_RESPONSE_MALFORMED: 'malformed',
  /** Two Bulwark nodes claim one Nomad node, or one Bulwark node maps to several Nomad nodes. */
  NOMAD_NODE_MAPPING_CONFLICT: 'refused',
  // application catalogue
  /** A job spec that is not a Nomad job as /v1/jobs/parse returns it. */
  APP_SPEC_INVALID: 'malformed',
  /** A job spec that sets its own constraint, affinity or spread on meta.bulwark_trusted. */
  APP_SPEC_OVERRIDES_TRUST: 'refused',
  // event log and measured-boot policy
  /** The event log ends inside an event (a cut-off log). */
  EVENTLOG_TRUNCATED: 'malformed',
  /** The event log is not a TCG crypto-agile log, or a structure in it does not fit (sizes, counts, algorithms). */
  EVENTLOG_MALFORMED: 'malformed',
  /** A measured-boot policy document that is not valid JSON or not of the schema (details.path says where). */
  MEASURED_BOOT_POLICY_INVALID: 'malformed',
  /** A measured-boot policy that checks nothing and is not marked "acceptAll": refused. */
  MEASURED_BOOT_POLICY_CHECKS_NOTHING: 'usage',
  // NATS identities and permissions (lib/nats-auth, controller/nats-auth)
  /** A node id that may not appear in a NATS subject or server config (empty, too long, or outside [A-Za-z0-9_-]). */
  NATS_AUTH_NODE_ID_INVALID: 'malformed',
  /** A subject that is not one of the node-scoped subjects it is read as (details.subject is cut to 200 characters). */
  NATS_AUTH_SUBJECT_INVALID: 'malformed',
  /** A message body names another node than the subject it arrived on: refused. */
  NATS_AUTH_NODE_MISMATCH: 'refused',
  /** A nats-server config that cannot be rendered from its spec (paths, duplicate users, limits). */
  NATS_AUTH_CONFIG_INVALID: 'usage',
  /** An nkey public key, seed or seed file, or a password, that is not of the expected form. */
  NATS_AUTH_CREDENTIAL_INVALID: 'malformed',
  /** nats-server did not apply a new config (it reported a reload error, exited, or did not answer in time). */
  NATS_AUTH_RELOAD_FAILED: 'unavailable',
  // the controller's certificate authority (lib/pki, controller/pki)
  /** A certificate request Bulwark cannot write faithfully (names, serial, validity, SANs, extensions). */
  PKI_TEMPLATE_INVALID: 'usage',
  /** A client certificate that names no person or node, or more than one, or one that is not valid. */
  PKI_IDENTITY_INVALID: 'refused',
  /** A CA certificate that is not a self-signed CA with keyCertSign, or has expired, or whose files are incomplete. */
  PKI_CA_INVALID: 'refused',
  /** A private key that does not belong to the certificate beside it. */
  PKI_KEY_MISMATCH: 'refused',
  /** A private key file others than its owner may read or write. */
  PKI_KEY_PERMISSIONS: 'refused',
  /** A credential directory that already holds files: never overwritten. */
  PKI_CREDENTIALS_EXIST: 'usage',
  /** Text that is not a certificate serial number in hex. */
  PKI_SERIAL_INVALID: 'usage',
  /** A revocation list at its entry cap. */
  PKI_REVOCATION_LIST_FULL: 'refused',
  /** A client certificate whose serial is on the revocation list. */
  PKI_CERT_REVOKED: 'refused',
  // gRPC access (controller/api): who may call what
  /** A call that needs a client certificate of the controller's CA, valid now, and got none that is. */
  AUTH_CERTIFICATE_REQUIRED: 'unauthenticated',
  /** A client certificate of the controller's CA whose serial is revoked. */
  AUTH_CERTIFICATE_REVOKED: 'unauthenticated',
  /** A caller whose role (or node) the authorization table does not allow this call. */
  AUTH_PERMISSION_DENIED: 'denied',
  /** credentials revoke named no credential issued through the API, and no serial. */
  CREDENTIAL_NOT_FOUND: 'not-found',
  /** bulwarkctl found no credential set (ca.pem, cert.pem, key.pem) where it looked. */
  AUTH_CREDENTIALS_MISSING: 'usage',
  // the audit log's Merkle tree, signed notes, checkpoints and proofs (lib/merkle)
  /** A Merkle proof that cannot be checked: a hash not 32 bytes, a length wrong for its sizes, an index past the size. */
  MERKLE_PROOF_MALFORMED: 'malformed',
  /** A well-formed inclusion or consistency proof that does not lead to the root it claims. */
  MERKLE_PROOF_INVALID: 'refused',
  /** A tree size or leaf index the in-memory tree does not have (or a tree at its size cap). */
  MERKLE_TREE_SIZE_INVALID: 'usage',
  /** A signed note (C2SP signed-note) that does not follow the format: lines, dashes, base64, caps. */
  NOTE_MALFORMED: 'malformed',
  /** A note verifier key (name+keyid+base64) or signing key that is not of a supported form. */
  NOTE_KEY_INVALID: 'malformed',
  /** A note signature by a trusted key that does not verify: the whole note is refused. */
  NOTE_SIGNATURE_INVALID: 'refused',
  /** A note with no verified signature by a trusted key. */
  NOTE_UNTRUSTED: 'refused',
  /** A checkpoint note text (C2SP tlog-checkpoint) that does not follow the format. */
  CHECKPOINT_MALFORMED: 'malformed',
  /** A tlog proof (C2SP tlog-proof) that does not follow the format. */
  TLOG_PROOF_MALFORMED: 'malformed',
  /** An audit bundle that is not valid JSON of its schema, or whose parts do not fit together. */
  AUDIT_BUNDLE_INVALID: 'malformed',
  // DSSE envelopes (lib/dsse): signed policies, baselines, app specs, key sets and in-toto statements
  /** A DSSE envelope that is not JSON of the envelope's shape, or whose payload or a signature is not base64. */
  ENVELOPE_MALFORMED: 'malformed',
  /** No signature of the envelope verifies with any trusted key (unsigned, altered, or signed by an untrusted key). */
  SIGNATURE_INVALID: 'refused',
  /** Fewer distinct trusted keys verified the envelope than its threshold asks (details.verified, details.threshold). */
  SIGNATURE_THRESHOLD_NOT_MET: 'refused',
  /** The envelope's payloadType is not the one the reader expects: refused before any signature is looked at. */
  PAYLOAD_TYPE_MISMATCH: 'refused',
  /** A signer (node:crypto key, HSM) failed to make a signature. */
  SIGNING_FAILED: 'unavailable',
  /** An in-toto Statement v1 that does not validate, or a subject digest that is not sha256 hex. */
  STATEMENT_MALFORMED: 'malformed',
  // host baselines (lib/baseline)
  /** A baseline document that is not valid JSON or not of the schema (details.path says where). */
  BASELINE_INVALID: 'malformed',
  /** A baseline report, or a part of it (a SELinux tree, an `nft -j list ruleset` document: truncated, too deep, too big, of an unknown json_schema_version or shape), that cannot be read or parsed. */
  BASELINE_REPORT_INVALID: 'malformed',
  /** A baseline's nftables part that cannot be written as nft text (names, ports, addresses). */
  BASELINE_NFT_UNRENDERABLE: 'usage',
  // host baselines, the agent's adapters (agent/baseline)
  /** nft exited with a failure status (a ruleset that does not parse, no permission, a missing table). */
  NFT_TOOL_FAILED: 'unavailable',
  NFT_TOOL_TIMEOUT: 'unavailable',
  /** nft printed more than the adapter's cap. */
  NFT_TOOL_OUTPUT_TOO_LARGE: 'malformed',
  // PKCS#11 keys (lib/pkcs11, daemon/pkcs11): details name CKR_* codes, tokens and labels, never a PIN
  /** A PKCS#11 URI (RFC 7512) that does not parse: bad syntax, bad percent-encoding, a repeated attribute, a bad value. */
  PKCS11_URI_INVALID: 'malformed',
  /** No PKCS#11 module: none named (URI module-path, BULWARK_PKCS11_MODULE), or the file is missing or does not load. */
  PKCS11_MODULE_MISSING: 'unavailable',
  /** No token with the label (or serial, model, manufacturer) the URI names is present. */
  PKCS11_TOKEN_MISSING: 'not-found',
  /** No PIN was given (URI pin-value or pin-source, BULWARK_PKCS11_PIN, a PIN file), or the PIN file cannot be read. */
  PKCS11_PIN_MISSING: 'usage',
  /** The token refused the PIN (CKR_PIN_INCORRECT, CKR_PIN_LEN_RANGE) or has locked it (CKR_PIN_LOCKED). */
  PKCS11_PIN_INCORRECT: 'refused',
  /** No key on the token matches the URI (object label, id, type), or more than one does. */
  PKCS11_KEY_NOT_FOUND: 'not-found',
  /** A key whose type or curve Bulwark does not sign with, or a key type keygen does not make. */
  PKCS11_KEY_UNSUPPORTED: 'usage',
  /** keygen was asked for a label or id that a key on the token already has. */
  PKCS11_KEY_EXISTS: 'usage',
  /** The token went away under an open session (CKR_DEVICE_REMOVED, CKR_TOKEN_NOT_PRESENT, CKR_SESSION_HANDLE_INVALID...). */
  PKCS11_TOKEN_REMOVED: 'unavailable',
  /** Any other PKCS#11 failure; details.ckr names the return value. */
  PKCS11_FAILED: 'unavailable',
  // the controller's audit log (controller/audit)
  /** The audit stream no longer holds what the last signed checkpoint covers (a record edited, deleted, reordered or aged out): nothing more is signed. */
  AUDIT_LOG_REWRITTEN: 'refused',
  /** No signed audit checkpoint exists yet (or not the one of the size asked for). */
  AUDIT_CHECKPOINT_MISSING: 'not-found',
  /** The checkpoint signing key cannot be loaded, created or used. */
  AUDIT_SIGNER_FAILED: 'unavailable',
  // attestation-bound signatures (lib/dsse/attested.ts, controller/signing, bulwark-agent sign)
  /** The controller refused a signing statement: the node is not trusted, its last quote is not fresh, or it is unknown (details.reasons: finding codes). */
  SIGN_STATEMENT_REFUSED: 'refused',
  /** A signing request or reply that is not JSON of its schema. */
  SIGN_REQUEST_MALFORMED: 'malformed',
  /** An attested envelope whose parts do not fit together: digests differ, the host key is not the one the statement names, or the signing time is outside the statement's validity (details.check). */
  ATTESTATION_INVALID: 'refused',
  // signed documents at runtime: trusted key sets (lib/dsse/keyset.ts), signed policies and app specs
  /** A key set document that is not valid JSON of its schema, or whose keys cannot be used (details.path). */
  KEYSET_INVALID: 'malformed',
  /** A key set whose serial is not above the current one of its kind (a rollback or a replay). */
  KEYSET_ROLLBACK: 'refused',
  /** No trusted key set for a kind: signed documents of that kind cannot be verified, so none is accepted. */
  KEYSET_MISSING: 'refused',
  /** A first key set (keys init) for a kind that already has one: rotate it instead. */
  KEYSET_EXISTS: 'refused',
  /** A key set past its `expires` time: it verifies nothing. */
  KEYSET_EXPIRED: 'refused',
  /** An unsigned document where a DSSE envelope is required (sign it first). */
  ENVELOPE_REQUIRED: 'refused',
  /** An app spec in the catalogue that differs from the signed one (edited after signing), or a signed spec for another app. */
  APP_SPEC_NOT_SIGNED: 'refused',
  /** A YAML document the strict reader refuses (tags, duplicate or non-string keys, alias bombs, several documents), where no kind's own code applies. */
  YAML_INVALID: 'malformed',
  // upgrades: the data format of the stored state (controller/upgrade)
  /** A stored record (or the data-format marker) newer than this version reads (details.bucket, key, version, supported): the controller refuses to start rather than misread or overwrite it. */
  STORE_VERSION_NEWER: 'refused',
  /** gRPC health asked about a service this server does not have. */
  SERVICE_NOT_FOUND: 'not-found',
  /** systemd's measurement log (/run/log/systemd/tpm2-measure.log) is not a JSON text sequence of systemd's CEL-JSON records, is cut off, or is past a cap. */
  SYSTEMD_LOG_MALFORMED: 'malformed',
  /** An audit export over several requests kept straddling newly signed checkpoints (try again, or with --to). */
  AUDIT_EXPORT_UNSTABLE: 'unavailable',
} as const satisfies Record<string, ErrorKind>;

export type ErrorCode = keyof typeof ERROR_CODES;

/** Details attached to an error: plain values only, never secrets. */
export type ErrorDetails = Readonly<Record<string, string | number | boolean | readonly number[] | undefined>>;

/** The error of Bulwark: a stable machine-readable `code`, a message for people, details and cause. */
export class BulwarkError extends Error {
  override readonly name = 'BulwarkError';
  readonly code: ErrorCode;
  readonly details: ErrorDetails;

  constructor(code: ErrorCode, message: string, details: ErrorDetails = {}, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.details = details;
  }

  get kind(): ErrorKind {
    return ERROR_CODES[this.code];
  }

  toJSON(): { code: ErrorCode; message: string; details: ErrorDetails } {
    return { code: this.code, message: this.message, details: this.details };
  }
}

export function isBulwarkError(value: unknown): value is BulwarkError {
  return value instanceof BulwarkError;
}

export function isErrorCode(value: string): value is ErrorCode {
  return Object.prototype.hasOwnProperty.call(ERROR_CODES, value);
}

/**
 * gRPC status numbers (grpc/status.h) for each kind. Kept here as numbers so `lib/` does
 * not import grpc.
 */
const GRPC_STATUS_BY_KIND: Readonly<Record<ErrorKind, number>> = {
  malformed: 3, // INVALID_ARGUMENT
  refused: 9, // FAILED_PRECONDITION
  usage: 3, // INVALID_ARGUMENT
  'not-found': 5, // NOT_FOUND
  unavailable: 14, // UNAVAILABLE
  internal: 13, // INTERNAL
  unauthenticated: 16, // UNAUTHENTICATED
  denied: 7, // PERMISSION_DENIED
  exhausted: 8, // RESOURCE_EXHAUSTED
};

/**
 * bulwarkctl exit codes: 0 ok, 1 verified as failing, 2 usage, 3 malformed input, 4 unavailable,
 * 5 refused by the controller (permission denied, or the credential is not accepted).
 */
export const EXIT_CODES = { ok: 0, finding: 1, usage: 2, malformed: 3, unavailable: 4, denied: 5 } as const;

const EXIT_BY_KIND: Readonly<Record<ErrorKind, number>> = {
  malformed: EXIT_CODES.malformed,
  refused: EXIT_CODES.finding,
  usage: EXIT_CODES.usage,
  'not-found': EXIT_CODES.finding,
  unavailable: EXIT_CODES.unavailable,
  internal: EXIT_CODES.unavailable,
  unauthenticated: EXIT_CODES.denied,
  denied: EXIT_CODES.denied,
  exhausted: EXIT_CODES.unavailable,
};

export function grpcStatusFor(code: ErrorCode): number {
  return GRPC_STATUS_BY_KIND[ERROR_CODES[code]];
}

export function exitCodeFor(code: ErrorCode): number {
  return EXIT_BY_KIND[ERROR_CODES[code]];
}

/** Wraps any thrown value as a BulwarkError, keeping an existing one as it is. */
export function toBulwarkError(value: unknown, code: ErrorCode, message: string): BulwarkError {
  if (value instanceof BulwarkError) return value;
  const reason = value instanceof Error ? value.message : String(value);
  return new BulwarkError(code, `${message}: ${reason}`, {}, { cause: value });
}
