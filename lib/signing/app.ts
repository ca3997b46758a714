/**
 * An application spec as it is signed (payloadType application/vnd.bulwark.app+json): the
 * app's name and its Nomad job spec (HCL) byte for byte, so the spec deployed is exactly the
 * one signed.
 */
import { Type, type Static } from '@sinclair/typebox';
import { defineDocument } from '../schema/index.js';

export const AppSpecDocumentSchema = Type.Object(
  {
    version: Type.Literal(1),
    name: Type.String({ pattern: '^[a-z0-9][a-z0-9-]{0,62}$' }),
    hcl: Type.String({ minLength: 1, maxLength: 1024 * 1024 }),
  },
  { additionalProperties: false },
);

export type AppSpecDocument = Static<typeof AppSpecDocumentSchema>;

const APP_SPEC = defineDocument(AppSpecDocumentSchema, 'signed app spec', 'APP_SPEC_INVALID');

/** Parses the payload of a verified app envelope: APP_SPEC_INVALID naming the JSON path. Trust: as the bytes given. */
export function parseAppSpecDocument(bytes: Uint8Array | string, source?: string): AppSpecDocument {
  return APP_SPEC.parseJson(bytes, source);
}
