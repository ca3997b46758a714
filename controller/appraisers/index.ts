/** controller/appraisers/: the public surface of this folder. */
export { appraisalInputs, resolvePolicy, type AppraisalContext, type AppraisalResult, type Appraiser, type ReplyPatch } from './appraiser.js';
export { createAppraisers, type AppraiserDeps, type Appraisers } from './create.js';
export {
  BASELINE_BUCKET,
  BASELINE_POLICY,
  BaselineAppraiser,
  NO_BASELINE_NOTE,
  StoredBaselineSchema,
  decodeStoredBaseline,
  type BaselineAppraiserOptions,
  type BaselineStatus,
  type KernelSelinuxSource,
  type StoredBaseline,
} from './baseline-appraiser.js';
export { EVENTLOG_BUCKET, EventLogAppraiser, MEASURED_BOOT_POLICY } from './event-log-appraiser.js';
export { IMA_BUCKET, ImaAppraiser, RUNTIME_POLICY, StoredImaSchema, decodeStoredIma, type KernelSelinuxBuffers } from './ima-appraiser.js';
