/**
 * Node ids as they may appear in NATS subjects and in a nats-server config. A subject token
 * must not hold `.` (token separator), `*` or `>` (wildcards), whitespace or control
 * characters (protocol delimiters); a config string must not hold quotes or backslashes.
 * One strict alphabet rules all of them out at once.
 */
import { BulwarkError } from '../index.js';

/** Longest node id accepted; the same cap as the wire's node id field. */
export const NATS_NODE_ID_MAX_LENGTH = 128;

/** Letters, digits, `_` and `-`, starting with a letter or digit. Stricter than the wire's node ids: no `.`. */
export const NATS_NODE_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_-]*$/;

declare const natsNodeIdBrand: unique symbol;

/** A node id checked against NATS_NODE_ID_PATTERN: safe as one subject token and inside a config string. */
export type NatsNodeId = string & { readonly [natsNodeIdBrand]: true };

function isNatsNodeId(value: string): value is NatsNodeId {
  return value.length > 0 && value.length <= NATS_NODE_ID_MAX_LENGTH && NATS_NODE_ID_PATTERN.test(value);
}

/** Checks an untrusted node id; throws NATS_AUTH_NODE_ID_INVALID unless it is safe in a subject and a config. */
export function parseNatsNodeId(value: unknown): NatsNodeId {
  if (typeof value !== 'string') throw new BulwarkError('NATS_AUTH_NODE_ID_INVALID', 'node id is not a string');
  if (!isNatsNodeId(value)) {
    throw new BulwarkError(
      'NATS_AUTH_NODE_ID_INVALID',
      `node id ${JSON.stringify(value.slice(0, 64))} is not 1-${NATS_NODE_ID_MAX_LENGTH} characters of [A-Za-z0-9_-] starting with a letter or digit`,
      { length: value.length },
    );
  }
  return value;
}
