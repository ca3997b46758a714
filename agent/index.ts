/** bulwark-agent: the attestation loop and its adapters. */
export { Agent, EnrollmentSchema, type AgentDeps, type Enrollment, type RoundResult } from './agent.js';
export { AGENT_CONFIG_DEFAULTS, AGENT_CONFIG_ENV, AgentConfigSchema, DEFAULT_AGENT_CONFIG_PATH, loadAgentConfig, parseAgentConfig, type AgentConfig } from './config.js';
export { collectHostFacts, collectHostFactsReport } from './facts.js';
export { Tpm2ToolsTpm, EK_PERSISTENT_HANDLES, EK_CERT_NV_INDICES, DEFAULT_AK_HANDLE, type Tpm2ToolsTpmOptions } from './tpm2-tools-tpm.js';
export type { Tpm, TpmKeys, TpmKeyAlgorithm, QuoteOutput } from './tpm.js';
export { EventLogSource, readCapped } from './event-log-source.js';
export { evidenceSources } from './sources.js';
export type { EvidenceSource, SourceFields } from './evidence-source.js';
export { nodeCredentialPaths, nodeTls, readControllerCa, readNodeCredential } from './node-credentials.js';
export { BaselineSource, BaselineEnforcer, Nftables, ReportLog, runBaselineApply, type BaselineSourceOptions, type EnforcementPlan, type HostState } from './baseline/index.js';
export type { RoundContext } from './evidence-source.js';
