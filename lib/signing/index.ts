/**
 * Signed documents at runtime (pure): trusted key sets per kind, their TUF-style rotation,
 * and verification of signed documents against them.
 */
export {
  acceptKeySet,
  acceptKeySetChain,
  pinnedKeySet,
  isKeySetKind,
  parseKeySetDocument,
  trustKeySet,
  verifyWithKeySet,
  KEYSET_KINDS,
  KeySetDocumentSchema,
  MAX_KEYSET_KEYS,
  PAYLOAD_TYPE_OF_KIND,
  type KeySet,
  type KeySetChainResult,
  type KeySetDocument,
  type KeySetKind,
} from './keyset.js';
export { verifyBaselineEnvelope } from './baseline.js';
export { AppSpecDocumentSchema, parseAppSpecDocument, type AppSpecDocument } from './app.js';
