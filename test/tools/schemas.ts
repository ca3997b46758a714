/**
 * The published JSON Schemas (policies/<kind>/schema.json) and the validator schemas they are
 * generated from. `write-schemas.ts` writes them; `test/tools/schemas.test.ts` fails when a
 * committed file differs from what its schema generates. Dev tooling, not shipped code.
 */
import type { TSchema } from '@sinclair/typebox';
import { fileURLToPath } from 'node:url';
import { BaselineDocumentSchema } from '../../lib/baseline/index.js';
import { MeasuredBootPolicyDocumentSchema } from '../../lib/eventlog/index.js';
import { RuntimePolicyDocumentSchema } from '../../lib/ima/index.js';

/** The repository root (this file runs from dist/test/tools/). */
export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** Each published schema: where it lives (relative to the repository root) and its source. */
export const PUBLISHED_SCHEMAS: readonly { readonly file: string; readonly schema: TSchema }[] = [
  { file: 'policies/measured-boot/schema.json', schema: MeasuredBootPolicyDocumentSchema },
  { file: 'policies/runtime/schema.json', schema: RuntimePolicyDocumentSchema },
  { file: 'policies/baselines/schema.json', schema: BaselineDocumentSchema },
];

/** The text of a published schema: JSON with two-space indents and a final newline (TypeBox's symbol keys drop out). */
export function schemaText(schema: TSchema): string {
  return `${JSON.stringify(schema, null, 2)}\n`;
}
