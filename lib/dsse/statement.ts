/**
 * What Bulwark signs, by payload type (DSSE protocol.md: PAYLOAD_TYPE says how to interpret
 * the payload, encoding and schema both, and SHOULD be an application-specific media type),
 * and in-toto Statement v1 (https://github.com/in-toto/attestation/blob/main/spec/v1/statement.md)
 * for artifacts.
 */
import { Type, type Static } from '@sinclair/typebox';
import { BulwarkError } from '../errors.js';
import { defineDocument } from '../schema/index.js';

/**
 * Every payload type Bulwark signs or verifies. One table: a reader asks verifyEnvelope for
 * exactly one of these, so a document of one kind can never be taken for another.
 *
 * | name     | payloadType                            | payload                                   |
 * | -------- | -------------------------------------- | ----------------------------------------- |
 * | inToto   | application/vnd.in-toto+json           | in-toto Statement v1 (artifacts)          |
 * | policy   | application/vnd.bulwark.policy+json    | a runtime or measured-boot policy         |
 * | baseline | application/vnd.bulwark.baseline+json  | a node's reference baseline               |
 * | app      | application/vnd.bulwark.app+json       | an application (Nomad job) spec           |
 * | keyset   | application/vnd.bulwark.keyset+json    | a trusted key set (TUF-style rotation)    |
 */
export const PAYLOAD_TYPES = {
  inToto: 'application/vnd.in-toto+json',
  policy: 'application/vnd.bulwark.policy+json',
  baseline: 'application/vnd.bulwark.baseline+json',
  app: 'application/vnd.bulwark.app+json',
  keyset: 'application/vnd.bulwark.keyset+json',
} as const;
export type PayloadTypeName = keyof typeof PAYLOAD_TYPES;

/** The `_type` of an in-toto Statement v1. */
export const IN_TOTO_STATEMENT_TYPE = 'https://in-toto.io/Statement/v1';

const SHA256_HEX = '^[0-9a-f]{64}$';

/** in-toto Statement v1 as Bulwark writes and reads it: subjects named with a sha256 digest. */
export const InTotoStatementSchema = Type.Object(
  {
    _type: Type.Literal(IN_TOTO_STATEMENT_TYPE),
    subject: Type.Array(
      Type.Object({
        name: Type.String({ maxLength: 4096 }),
        digest: Type.Object({ sha256: Type.String({ pattern: SHA256_HEX }) }),
      }),
      { minItems: 1, maxItems: 10000 },
    ),
    predicateType: Type.String({ minLength: 1, maxLength: 1024 }),
    predicate: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
  },
  { $id: 'https://bulwark.invalid/schemas/in-toto-statement-v1.json', title: 'in-toto Statement v1' },
);
export type InTotoStatement = Static<typeof InTotoStatementSchema>;

const STATEMENT = defineDocument(InTotoStatementSchema, 'in-toto statement', 'STATEMENT_MALFORMED');

/** A statement ready to sign: payloadType application/vnd.in-toto+json and the payload bytes. */
export interface StatementPayload {
  readonly payloadType: typeof PAYLOAD_TYPES.inToto;
  readonly payload: Uint8Array;
  readonly statement: InTotoStatement;
}

/** Builds an in-toto Statement v1 for subjects with sha256 digests (lowercase hex); anything else is STATEMENT_MALFORMED. */
export function statement(subjects: readonly { name: string; digest: { sha256: string } }[], predicateType: string, predicate: Readonly<Record<string, unknown>>): StatementPayload {
  const value = STATEMENT.parse({
    _type: IN_TOTO_STATEMENT_TYPE,
    subject: subjects.map((s) => ({ name: s.name, digest: { sha256: s.digest.sha256 } })),
    predicateType,
    predicate,
  });
  let text: string;
  try {
    text = JSON.stringify(value);
  } catch (err) {
    throw new BulwarkError('STATEMENT_MALFORMED', 'the predicate is not JSON-serializable', {}, { cause: err });
  }
  return { payloadType: PAYLOAD_TYPES.inToto, payload: new TextEncoder().encode(text), statement: value };
}

/** Parses a verified envelope's payload as an in-toto Statement v1 (STATEMENT_MALFORMED otherwise). */
export function parseStatement(payload: Uint8Array): InTotoStatement {
  return STATEMENT.parseJson(payload);
}
