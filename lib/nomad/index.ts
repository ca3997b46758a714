/** Pure Nomad support (no I/O): shape-checked parsers for Nomad's answers, the placement decision, the node mapping. */
export { isJsonObject, parseJsonText, toJsonObject, toJsonValue, type JsonObject, type JsonValue } from './shape.js';
export {
  parseNode,
  parseNodeList,
  parseNodeMetaResponse,
  parseNodeUpdateResponse,
  NomadNodeSchema,
  NomadNodeStubSchema,
  type NomadDrainStrategy,
  type NomadEligibility,
  type NomadNode,
  type NomadNodeMeta,
  type NomadNodeStub,
  type NomadNodeUpdate,
} from './nodes.js';
export { MAX_EVENT_LINE_BYTES, NdjsonLineSplitter, parseEventFrame, parseEventLine, type NomadEvent, type NomadEventFrame } from './events.js';
export {
  isLiveAllocation,
  parseAllocationList,
  parseJob,
  parseJobDeregisterResponse,
  parseJobRegisterResponse,
  parseJobValidateResponse,
  NomadJobSchema,
  type NomadAllocation,
  type NomadJob,
  type NomadJobRegistration,
  type NomadJobValidation,
} from './jobs.js';
export {
  desiredNodeState,
  judgePlacement,
  needsAllocationCount,
  planNodeActions,
  TRUST_META,
  type DecideOptions,
  type DesiredNodeState,
  type GateNodeView,
  type NodeAction,
  type PlacementJudgement,
} from './decide.js';
export { NodeMapping, type MappableNomadNode, type MappedNode } from './mapping.js';
export { injectTrustConstraint, hasTrustConstraint, TRUST_CONSTRAINT } from './trust-constraint.js';
