/**
 * Revocation as a value: the set of certificate serials the controller's CA has revoked,
 * with pure functions to add, look up, merge and prune. The controller stores it and
 * replicas merge what they see (a grow-only set, so merging in any order gives the same
 * list); an entry can go once the certificate it names has expired, as TLS refuses that
 * certificate anyway.
 */
import { BulwarkError } from '../errors.js';
import type { ClientIdentity } from './identity.js';

/** Most entries one list holds: revocations of long-expired certificates must be pruned. */
export const MAX_REVOKED = 100_000;

/** One revoked certificate. */
export interface RevokedCertificate {
  /** Lowercase hex magnitude, as `normalizeSerial` spells it. */
  readonly serial: string;
  /** When it was revoked (epoch ms). */
  readonly revokedAt: number;
  /** The certificate's notAfter (epoch ms): after it the entry may be pruned. */
  readonly notAfter: number;
  /** Whom the certificate named (a user name or node id), for listings and audit. */
  readonly subject: string;
}

/** The revoked serials, keyed by serial. Trust: as trusted as the store it was read from. */
export interface RevocationList {
  readonly entries: ReadonlyMap<string, RevokedCertificate>;
}

export function emptyRevocationList(): RevocationList {
  return { entries: new Map() };
}

/**
 * A serial in Bulwark's spelling: lowercase hex without leading zero octets. Accepts
 * upper case and colon-separated octets (as `openssl x509 -serial` and
 * X509Certificate.serialNumber print it); PKI_SERIAL_INVALID otherwise.
 */
export function normalizeSerial(text: string): string {
  const hex = text.replace(/:/g, '').toLowerCase();
  if (hex.length === 0 || hex.length > 42 || !/^[0-9a-f]+$/.test(hex)) throw new BulwarkError('PKI_SERIAL_INVALID', `"${text.slice(0, 60)}" is not a certificate serial number in hex`);
  const even = hex.length % 2 === 0 ? hex : `0${hex}`;
  let start = 0;
  while (start < even.length - 2 && even.startsWith('00', start)) start += 2;
  const out = even.slice(start);
  if (/^0+$/.test(out)) throw new BulwarkError('PKI_SERIAL_INVALID', 'a certificate serial number is positive');
  return out;
}

/** The list with `entry` added; revoking again keeps the first revocation time. */
export function revokeCertificate(list: RevocationList, entry: RevokedCertificate): RevocationList {
  const serial = normalizeSerial(entry.serial);
  const existing = list.entries.get(serial);
  if (existing !== undefined && existing.revokedAt <= entry.revokedAt) return list;
  if (existing === undefined && list.entries.size >= MAX_REVOKED) {
    throw new BulwarkError('PKI_REVOCATION_LIST_FULL', `the revocation list holds ${MAX_REVOKED} entries; prune expired ones first`, { size: list.entries.size });
  }
  const entries = new Map(list.entries);
  entries.set(serial, { ...entry, serial });
  return { entries };
}

/** Whether the certificate with this serial is revoked. */
export function isRevoked(list: RevocationList, serial: string): boolean {
  return list.entries.has(normalizeSerial(serial));
}

/** Throws PKI_CERT_REVOKED when the identity's certificate is revoked. */
export function checkNotRevoked(list: RevocationList, identity: ClientIdentity): void {
  if (isRevoked(list, identity.serial)) {
    const who = identity.kind === 'person' ? identity.name : identity.nodeId;
    throw new BulwarkError('PKI_CERT_REVOKED', `the certificate ${identity.serial} of ${who} is revoked`, { serial: identity.serial });
  }
}

/** The union of two lists (replicas merge what each saw); for a serial in both, the earlier revocation. */
export function mergeRevocationLists(a: RevocationList, b: RevocationList): RevocationList {
  const entries = new Map(a.entries);
  for (const entry of b.entries.values()) {
    const serial = normalizeSerial(entry.serial);
    const existing = entries.get(serial);
    if (existing === undefined || entry.revokedAt < existing.revokedAt) entries.set(serial, { ...entry, serial });
  }
  if (entries.size > MAX_REVOKED) {
    throw new BulwarkError('PKI_REVOCATION_LIST_FULL', `the merged revocation list would hold ${entries.size} entries, more than ${MAX_REVOKED}`, { size: entries.size });
  }
  return { entries };
}

/** The list without entries whose certificate expired before `now`. */
export function pruneRevocationList(list: RevocationList, now: Date): RevocationList {
  const at = now.getTime();
  const kept = [...list.entries.values()].filter((e) => e.notAfter >= at);
  if (kept.length === list.entries.size) return list;
  return { entries: new Map(kept.map((e) => [e.serial, e])) };
}
