/**
 * Secure Boot state from the PCR 7 events of a replayed log (TCG PC Client PFP "PCR[7]" usage and
 * 10.4.4; UEFI 2.10 32.4 for the signature databases): whether SecureBoot was on, what
 * PK, KEK, db and dbx held, and which authorities (db entries, shim's vendor certificate)
 * verified boot applications. Only events whose digest is over their data are read
 * (checkEventDataDigest); anything else in PCR 7 is reported as a problem, not believed.
 * Rules follow go-attestation's ParseSecurebootState, relaxed where newer shims measure
 * SbatLevel and MokListTrusted after the separator.
 */
import { createHash, X509Certificate } from 'node:crypto';
import { ByteReader, toHex } from '../bytes.js';
import { isBulwarkError } from '../errors.js';
import { finding, type Finding } from '../verdict.js';
import { EFI_ACTION, EFI_GUID, TCG_EVENT_TYPE } from './constants.js';
import { decodeEventData, type UefiVariableData } from './event-data.js';
import type { FirmwareQuirkId } from './quirks.js';
import { checkEventDataDigest, isPcrProven, type ReplayedEvent, type ReplayedEventLog } from './replay.js';
import { decodeEfiGuid, decodeEfiSignatureLists, latin1 } from './uefi.js';

/** What kind of entry a signature database holds, after EFI_SIGNATURE_LIST.SignatureType (UEFI 2.10 32.4.1). */
export type SignatureKind = 'x509' | 'sha256' | 'sha1' | 'sha384' | 'sha512' | 'x509-sha256' | 'rsa2048' | 'unknown';

const KIND_BY_TYPE: ReadonlyMap<string, SignatureKind> = new Map([
  [EFI_GUID.EFI_CERT_X509_GUID, 'x509'],
  [EFI_GUID.EFI_CERT_SHA256_GUID, 'sha256'],
  [EFI_GUID.EFI_CERT_SHA1_GUID, 'sha1'],
  [EFI_GUID.EFI_CERT_SHA384_GUID, 'sha384'],
  [EFI_GUID.EFI_CERT_SHA512_GUID, 'sha512'],
  [EFI_GUID.EFI_CERT_X509_SHA256_GUID, 'x509-sha256'],
  [EFI_GUID.EFI_CERT_RSA2048_GUID, 'rsa2048'],
]);

/** One entry of PK, KEK, db, dbx or an authority. */
export interface SignatureEntry {
  readonly kind: SignatureKind;
  readonly signatureType: string;
  /** SignatureOwner GUID; empty for a bare certificate (shim's vendor certificate). */
  readonly owner: string;
  /**
   * How policies name the entry, lower-case hex: the SHA-256 of the DER certificate for
   * x509, the hash itself for hash entries (for x509-sha256, the TBS hash without the
   * revocation time), the SHA-256 of the data for anything else.
   */
  readonly fingerprint: string;
  readonly data: Uint8Array;
  /** Subject and issuer of an x509 entry, when asked for and the certificate parses. */
  readonly subject?: string;
  readonly issuer?: string;
}

/** An EV_EFI_VARIABLE_AUTHORITY event: the entry that verified a boot application. */
export interface SecureBootAuthority {
  readonly sequence: number;
  /** The variable the entry came from: "db", or shim's "Shim" / "MokList". */
  readonly variable: string;
  readonly vendorGuid: string;
  readonly entry: SignatureEntry;
  readonly beforeSeparator: boolean;
  /**
   * A hint, not evidence: the next boot application in log order. Order across PCRs is not
   * proven by replay, and firmware logs each authority only on its first use.
   */
  readonly bootApplication?: { readonly sequence: number; readonly devicePath: string };
  readonly quirk?: FirmwareQuirkId;
}

/** Secure Boot as the PCR 7 events tell it. */
export interface SecureBootState {
  /** Whether the log was replayed against a quote. */
  readonly quoted: boolean;
  /** Whether PCR 7 is proven in the bank read; when false nothing else is set. */
  readonly proven: boolean;
  /** The SecureBoot variable: true (1), false (0 or not set), null (not measured). */
  readonly enabled: boolean | null;
  readonly pk: readonly SignatureEntry[] | null;
  readonly kek: readonly SignatureEntry[] | null;
  readonly db: readonly SignatureEntry[] | null;
  readonly dbx: readonly SignatureEntry[] | null;
  readonly authorities: readonly SecureBootAuthority[];
  /** Other variables measured into PCR 7, as "GUID/Name". */
  readonly otherVariables: readonly string[];
  /** A UEFI debugger was attached ("UEFI Debug Mode" EV_EFI_ACTION). */
  readonly debuggerPresent: boolean;
  /** SECURE_BOOT_STATE_INVALID and EVENTLOG_EVENT_DATA_MISMATCH findings about PCR 7. */
  readonly problems: readonly Finding[];
}

export interface SecureBootOptions {
  /** Decode subject and issuer of certificates (for display; costs a certificate parse each). */
  readonly subjects?: boolean;
}

const sha256Hex = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

function looksLikeDer(b: Uint8Array): boolean {
  return b.length > 4 && b[0] === 0x30 && (b[1] === 0x82 || b[1] === 0x81);
}

function withSubject(entry: SignatureEntry, subjects: boolean): SignatureEntry {
  if (!subjects || entry.kind !== 'x509') return entry;
  try {
    const cert = new X509Certificate(entry.data);
    return { ...entry, subject: cert.subject.replace(/\n/g, ', '), issuer: cert.issuer.replace(/\n/g, ', ') };
  } catch {
    return entry;
  }
}

/** A signature database entry as policies name it (see SignatureEntry.fingerprint). */
export function signatureEntry(signatureType: string, owner: string, data: Uint8Array, subjects = false): SignatureEntry {
  const kind = KIND_BY_TYPE.get(signatureType) ?? 'unknown';
  let fingerprint: string;
  if (kind === 'x509' || kind === 'rsa2048' || kind === 'unknown') fingerprint = sha256Hex(data);
  else if (kind === 'x509-sha256') fingerprint = toHex(data.subarray(0, 32));
  else fingerprint = toHex(data);
  return withSubject({ kind, signatureType, owner, fingerprint, data }, subjects);
}

/**
 * The entry an authority event names: an EFI_SIGNATURE_DATA (owner GUID + certificate or
 * hash) as firmware logs it for db, or a bare DER certificate as shim logs its vendor
 * certificate and MokList entries.
 */
function authorityEntry(v: UefiVariableData, subjects: boolean): SignatureEntry {
  const d = v.variableData;
  if (looksLikeDer(d)) return signatureEntry(EFI_GUID.EFI_CERT_X509_GUID, '', d, subjects);
  if (d.length > 16) {
    const owner = decodeEfiGuid(new ByteReader(d.subarray(0, 16), 'EVENTLOG_MALFORMED'));
    const rest = d.subarray(16);
    if (looksLikeDer(rest)) return signatureEntry(EFI_GUID.EFI_CERT_X509_GUID, owner, rest, subjects);
    if (rest.length === 32) return signatureEntry(EFI_GUID.EFI_CERT_SHA256_GUID, owner, rest, subjects);
    return signatureEntry('', owner, rest, subjects);
  }
  return signatureEntry('', '', d, subjects);
}

const SECURE_BOOT_VARIABLES: ReadonlyMap<string, { guid: string; key: 'SecureBoot' | 'pk' | 'kek' | 'db' | 'dbx' }> = new Map([
  ['SecureBoot', { guid: EFI_GUID.EFI_GLOBAL_VARIABLE, key: 'SecureBoot' }],
  ['PK', { guid: EFI_GUID.EFI_GLOBAL_VARIABLE, key: 'pk' }],
  ['KEK', { guid: EFI_GUID.EFI_GLOBAL_VARIABLE, key: 'kek' }],
  ['db', { guid: EFI_GUID.EFI_IMAGE_SECURITY_DATABASE_GUID, key: 'db' }],
  ['dbx', { guid: EFI_GUID.EFI_IMAGE_SECURITY_DATABASE_GUID, key: 'dbx' }],
]);

/**
 * Reads the Secure Boot state from PCR 7 of a replayed log, with digests checked in
 * `hashAlg` (and every other bank PCR 7 is proven in). A quoted log gives evidence; an
 * unquoted one (quoted: false) a forensic view. Problems are findings, never exceptions.
 */
export function readSecureBootState(log: ReplayedEventLog, hashAlg: number, options: SecureBootOptions = {}): SecureBootState {
  const subjects = options.subjects === true;
  const empty: SecureBootState = {
    quoted: log.quoted,
    proven: false,
    enabled: null,
    pk: null,
    kek: null,
    db: null,
    dbx: null,
    authorities: [],
    otherVariables: [],
    debuggerPresent: false,
    problems: [],
  };
  if (!isPcrProven(log, hashAlg, 7)) return empty;
  const banks = [...log.provenPcrs].filter(([, pcrs]) => pcrs.includes(7)).map(([alg]) => alg);
  const problems: Finding[] = [];
  const invalid = (e: ReplayedEvent, why: string): void => {
    problems.push(finding('SECURE_BOOT_STATE_INVALID', `event ${e.sequence} (PCR 7): ${why}`, { sequence: e.sequence, pcr: 7 }));
  };

  let enabled: boolean | null = null;
  const lists: Record<'pk' | 'kek' | 'db' | 'dbx', SignatureEntry[] | null> = { pk: null, kek: null, db: null, dbx: null };
  const authorities: SecureBootAuthority[] = [];
  const otherVariables: string[] = [];
  const seen = new Set<string>();
  let separator = false;
  let debuggerPresent = false;

  for (const e of log.events) {
    if (e.pcrIndex !== 7) continue;
    const T = TCG_EVENT_TYPE;
    if (e.eventType !== T.EV_SEPARATOR && e.eventType !== T.EV_EFI_ACTION && e.eventType !== T.EV_EFI_VARIABLE_DRIVER_CONFIG && e.eventType !== T.EV_EFI_VARIABLE_AUTHORITY) {
      invalid(e, `unexpected event type 0x${e.eventType.toString(16)} in PCR 7`);
      continue;
    }
    const check = checkEventDataDigest(e, banks);
    if (check.status !== 'matches') {
      problems.push(
        finding('EVENTLOG_EVENT_DATA_MISMATCH', `event ${e.sequence} (PCR 7): ${check.status === 'mismatch' ? check.reason : 'no digest covers the data'}, so its data is not evidence`, {
          sequence: e.sequence,
          pcr: 7,
        }),
      );
      continue;
    }
    if (e.eventType === T.EV_SEPARATOR) {
      if (separator) invalid(e, 'a second separator');
      separator = true;
      continue;
    }
    if (e.eventType === T.EV_EFI_ACTION) {
      if (latin1(check.payload) === EFI_ACTION.FIRMWARE_DEBUGGER_EVENT) debuggerPresent = true;
      continue;
    }
    const decoded = decodeEventData(e.eventType, check.payload, log.uintnSize);
    if (decoded.kind !== 'uefi-variable') {
      invalid(e, `the UEFI_VARIABLE_DATA does not decode${decoded.kind === 'undecodable' ? `: ${decoded.reason}` : ''}`);
      continue;
    }
    const id = `${decoded.variableName}/${decoded.unicodeName}`;
    if (e.eventType === T.EV_EFI_VARIABLE_AUTHORITY) {
      authorities.push({
        sequence: e.sequence,
        variable: decoded.unicodeName,
        vendorGuid: decoded.variableName,
        entry: authorityEntry(decoded, subjects),
        beforeSeparator: !separator,
        ...(check.quirk === undefined ? {} : { quirk: check.quirk }),
      });
      continue;
    }
    const known = SECURE_BOOT_VARIABLES.get(decoded.unicodeName);
    if (known === undefined || known.guid !== decoded.variableName) {
      otherVariables.push(id);
      continue;
    }
    if (seen.has(id)) {
      invalid(e, `${decoded.unicodeName} is measured twice`);
      continue;
    }
    seen.add(id);
    if (separator) {
      invalid(e, `${decoded.unicodeName} is measured after the separator`);
      continue;
    }
    if (known.key === 'SecureBoot') {
      const v = decoded.variableData;
      if (v.length === 0) enabled = false;
      else if (v.length === 1 && (v[0] === 0 || v[0] === 1)) enabled = v[0] === 1;
      else invalid(e, `SecureBoot holds ${v.length} octets (${toHex(v.subarray(0, 8))}), not one octet 0 or 1`);
      continue;
    }
    try {
      lists[known.key] = decodeEfiSignatureLists(decoded.variableData).map((s) => signatureEntry(s.signatureType, s.signatureOwner, s.signatureData, subjects));
    } catch (err) {
      if (!isBulwarkError(err)) throw err;
      invalid(e, `${decoded.unicodeName} is not a list of EFI_SIGNATURE_LISTs: ${err.message}`);
    }
  }

  // Hints: the next boot application (in any PCR) after each authority, in log order.
  const apps = log.events.filter((e) => e.eventType === TCG_EVENT_TYPE.EV_EFI_BOOT_SERVICES_APPLICATION);
  const hinted = authorities.map((a): SecureBootAuthority => {
    const app = apps.find((x) => x.sequence > a.sequence);
    if (app === undefined) return a;
    const d = decodeEventData(app.eventType, app.data, log.uintnSize);
    return { ...a, bootApplication: { sequence: app.sequence, devicePath: d.kind === 'image-load' ? d.devicePath.text : '' } };
  });

  if (debuggerPresent) problems.push(finding('SECURE_BOOT_STATE_INVALID', 'a UEFI debugger was present during boot ("UEFI Debug Mode")', { pcr: 7 }));
  if (enabled === true) {
    if (authorities.length === 0) problems.push(finding('SECURE_BOOT_STATE_INVALID', 'Secure Boot was on but no authority verified a boot application', { pcr: 7 }));
    for (const key of ['pk', 'kek', 'db'] as const) {
      if ((lists[key]?.length ?? 0) === 0) problems.push(finding('SECURE_BOOT_STATE_INVALID', `Secure Boot was on but ${key.toUpperCase()} was not measured or empty`, { pcr: 7 }));
    }
  }
  return {
    quoted: log.quoted,
    proven: true,
    enabled,
    pk: lists.pk,
    kek: lists.kek,
    db: lists.db,
    dbx: lists.dbx,
    authorities: hinted,
    otherVariables,
    debuggerPresent,
    problems,
  };
}
