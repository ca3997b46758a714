/** controller/appraisers/: the public surface of this folder. */
export { appraisalInputs, resolvePolicy, type AppraisalContext, type AppraisalResult, type Appraiser, type ReplyPatch } from './appraiser.js';
export { createAppraisers, type AppraiserDeps } from './create.js';
export { EVENTLOG_BUCKET, EventLogAppraiser, MEASURED_BOOT_POLICY } from './event-log-appraiser.js';
export { IMA_BUCKET, ImaAppraiser, RUNTIME_POLICY, StoredImaSchema, decodeStoredIma } from './ima-appraiser.js';
