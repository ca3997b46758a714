/** The schema layer (pure): document kinds defined once, parsed and validated in one call. */
export { defineDocument, literalUnion, parseJsonText, MAX_DOCUMENT_BYTES, MAX_DOCUMENT_DEPTH, type DocumentSchema, type SchemaIssue } from './validate.js';
export { keyOfTable } from './literal-union.js';
export { canonicalJson, type CanonicalJsonOptions } from './canonical.js';
export { MAX_YAML_ALIAS_COUNT, documentFormatOf, parseDocumentText, parseYamlText, type DocumentFormat } from './yaml.js';
