/** cli/: bulwarkctl, run in-process with a captured io (the binary is cli/bulwarkctl.ts). */
export { ctlHelp, runCtl, type CtlIo } from './ctl.js';
export { generateRuntimePolicy, scanRootfs, type GenerateRuntimePolicyOptions, type RootfsScan, type RootfsScanOptions } from './runtime-policy-generator.js';
