/** cli/commands/: one file per command group; each adds its commands to the program. */
export { addAppsCommands } from './apps.js';
export { addAuditCommands } from './audit.js';
export { addBaselineCheckCommand } from './baseline-check.js';
export { addBaselineCommands } from './baseline.js';
export { addCredentialsCommands } from './credentials.js';
export { addEventlogCommands } from './eventlog.js';
export { addHsmCommands } from './hsm.js';
export { addImaCommands } from './ima.js';
export { addKeysCommands } from './keys.js';
export { addNodeCommands } from './nodes.js';
export { addPolicyCommands } from './policy.js';
export { addQuoteCommands } from './quote.js';
export { addSignCommands } from './sign.js';
export { addVerifyCommands } from './verify.js';
export { addStatusCommand } from './status.js';
