/**
 * Nomad node answers: `GET /v1/nodes` (stubs), `GET /v1/node/:id`, the node inside a Node
 * event, `POST /v1/node/:id/eligibility|drain` and `/v1/client/metadata`. Pure parsers with
 * shape checks; Nomad's answer is input like any other.
 */
import { arrOrNull, bool, malformed, obj, str, strMap, strOrEmpty, uint } from './shape.js';

/** Whether the scheduler may place new allocations on a node (Nomad's SchedulingEligibility). */
export type NomadEligibility = 'eligible' | 'ineligible';

/** The node fields Bulwark acts on, common to the list stub and the full node. */
export interface NomadNodeStub {
  readonly id: string;
  readonly name: string;
  readonly datacenter: string;
  /** `initializing`, `ready`, `down`, `disconnected`; unknown values are kept as they are. */
  readonly status: string;
  readonly eligibility: NomadEligibility;
  /** True while a drain strategy is set. */
  readonly drain: boolean;
  readonly createIndex: number;
  readonly modifyIndex: number;
}

/** An active drain: its deadline in nanoseconds (negative: forced), as Nomad reports it. */
export interface NomadDrainStrategy {
  readonly deadlineNs: number;
  readonly ignoreSystemJobs: boolean;
  readonly forceDeadline: string;
  readonly startedAt: string;
}

/** A full node: the stub plus the scheduling metadata and the drain strategy. */
export interface NomadNode extends NomadNodeStub {
  /** Merged static and dynamic node metadata as the servers see it (what constraints read). */
  readonly meta: Readonly<Record<string, string>>;
  readonly drainStrategy: NomadDrainStrategy | null;
}

function eligibility(o: Readonly<Record<string, unknown>>, path: string): NomadEligibility {
  const v = o['SchedulingEligibility'];
  if (v === 'eligible' || v === 'ineligible') return v;
  return malformed(`${path}.SchedulingEligibility`, '"eligible" or "ineligible"');
}

// Nomad's Go nanosecond durations are int64: JSON numbers that can be negative.
function int(o: Readonly<Record<string, unknown>>, key: string, path: string): number {
  const v = o[key];
  return typeof v === 'number' && Number.isSafeInteger(v) ? v : malformed(`${path}.${key}`, 'an integer');
}

function stubFields(o: Readonly<Record<string, unknown>>, path: string): NomadNodeStub {
  const id = str(o, 'ID', path);
  if (id === '') malformed(`${path}.ID`, 'a non-empty string');
  return {
    id,
    name: str(o, 'Name', path),
    datacenter: strOrEmpty(o, 'Datacenter', path),
    status: str(o, 'Status', path),
    eligibility: eligibility(o, path),
    drain: bool(o, 'Drain', path),
    createIndex: uint(o, 'CreateIndex', path),
    modifyIndex: uint(o, 'ModifyIndex', path),
  };
}

/** Parses `GET /v1/nodes`: an array of node stubs. */
export function parseNodeList(v: unknown): NomadNodeStub[] {
  return arrOrNull(v, 'nodes').map((x, i) => stubFields(obj(x, `nodes[${i}]`), `nodes[${i}]`));
}

function drainStrategy(v: unknown, path: string): NomadDrainStrategy | null {
  if (v === null || v === undefined) return null;
  const o = obj(v, path);
  return {
    deadlineNs: int(o, 'Deadline', path),
    ignoreSystemJobs: bool(o, 'IgnoreSystemJobs', path),
    forceDeadline: strOrEmpty(o, 'ForceDeadline', path),
    startedAt: strOrEmpty(o, 'StartedAt', path),
  };
}

/** Parses a full node (`GET /v1/node/:id`, or the `Node` of a Node event payload). */
export function parseNode(v: unknown, path = 'node'): NomadNode {
  const o = obj(v, path);
  const stub = stubFields(o, path);
  const strategy = drainStrategy(o['DrainStrategy'], `${path}.DrainStrategy`);
  // Drain is derived from DrainStrategy by Nomad; a node that disagrees is malformed.
  if (stub.drain !== (strategy !== null)) malformed(`${path}.Drain`, 'consistent with DrainStrategy');
  return { ...stub, meta: strMap(o['Meta'], `${path}.Meta`), drainStrategy: strategy };
}

/** What `POST /v1/node/:id/eligibility` and `/drain` answer. */
export interface NomadNodeUpdate {
  readonly evalIds: readonly string[];
  readonly nodeModifyIndex: number;
  readonly index: number;
}

/** Parses the answer to an eligibility or drain update. */
export function parseNodeUpdateResponse(v: unknown): NomadNodeUpdate {
  const o = obj(v, 'nodeUpdate');
  const evalIds = arrOrNull(o['EvalIDs'], 'nodeUpdate.EvalIDs').map((x, i) =>
    typeof x === 'string' ? x : malformed(`nodeUpdate.EvalIDs[${i}]`, 'a string'),
  );
  return { evalIds, nodeModifyIndex: uint(o, 'NodeModifyIndex', 'nodeUpdate'), index: uint(o, 'Index', 'nodeUpdate') };
}

/** The client's metadata as `/v1/client/metadata` reports it (the client's own view, not yet the servers'). */
export interface NomadNodeMeta {
  readonly meta: Readonly<Record<string, string>>;
  /** Keys set through the API; null marks a static key that was unset. */
  readonly dynamic: Readonly<Record<string, string | null>>;
  readonly static: Readonly<Record<string, string>>;
}

/** Parses the answer of `GET` or `POST /v1/client/metadata`. */
export function parseNodeMetaResponse(v: unknown): NomadNodeMeta {
  const o = obj(v, 'nodeMeta');
  const dynamic: Record<string, string | null> = {};
  const d = o['Dynamic'];
  if (d !== null && d !== undefined) {
    for (const [k, x] of Object.entries(obj(d, 'nodeMeta.Dynamic'))) {
      if (x !== null && typeof x !== 'string') malformed(`nodeMeta.Dynamic.${k}`, 'a string or null');
      dynamic[k] = x;
    }
  }
  return { meta: strMap(o['Meta'], 'nodeMeta.Meta'), dynamic, static: strMap(o['Static'], 'nodeMeta.Static') };
}
