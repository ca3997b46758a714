/** controller/signing: attestations for attestation-bound artifact signatures (see statement-issuer.ts). */
export { loadStatementKey, StatementIssuer, STATEMENT_KEY_FILES, type StatementIssuerOptions, type StatementKey } from './statement-issuer.js';
