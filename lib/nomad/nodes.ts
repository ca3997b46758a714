/**
 * Nomad node answers: `GET /v1/nodes` (stubs), `GET /v1/node/:id`, the node inside a Node
 * event, `POST /v1/node/:id/eligibility|drain` and `/v1/client/metadata`. Pure parsers over
 * TypeBox schemas of the fields Bulwark reads; Nomad's answer is input like any other.
 */
import { Type, type Static } from '@sinclair/typebox';
import { literalUnion } from '../schema/index.js';
import { malformed, nomadDocument, NomadIndex, nullableList, OptionalString, StringMap } from './shape.js';

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

/** The node fields Bulwark reads, common to the list stub and the full node (other fields pass). */
const NODE_STUB_FIELDS = {
  ID: Type.String({ minLength: 1 }),
  Name: Type.String(),
  Datacenter: OptionalString,
  /** `initializing`, `ready`, `down`, `disconnected`; unknown values are kept as they are. */
  Status: Type.String(),
  SchedulingEligibility: literalUnion<NomadEligibility>(['eligible', 'ineligible']),
  Drain: Type.Boolean(),
  CreateIndex: NomadIndex,
  ModifyIndex: NomadIndex,
};

/** A node stub of `GET /v1/nodes`. */
export const NomadNodeStubSchema = Type.Object(NODE_STUB_FIELDS);

/** A full node (`GET /v1/node/:id`, the `Node` of a Node event). */
export const NomadNodeSchema = Type.Object({
  ...NODE_STUB_FIELDS,
  Meta: StringMap,
  DrainStrategy: Type.Optional(
    Type.Union([
      Type.Object({
        // Nomad's Go nanosecond durations are int64: JSON numbers that can be negative.
        Deadline: Type.Integer({ minimum: Number.MIN_SAFE_INTEGER, maximum: Number.MAX_SAFE_INTEGER }),
        IgnoreSystemJobs: Type.Boolean(),
        ForceDeadline: OptionalString,
        StartedAt: OptionalString,
      }),
      Type.Null(),
    ]),
  ),
});

const NODE_LIST = nomadDocument(nullableList(NomadNodeStubSchema), 'node list');
/** The node document, for parts of other answers (the Node of a Node event). */
export const NODE = nomadDocument(NomadNodeSchema, 'node');

function stubFields(o: Static<typeof NomadNodeStubSchema>): NomadNodeStub {
  return {
    id: o.ID,
    name: o.Name,
    datacenter: o.Datacenter ?? '',
    status: o.Status,
    eligibility: o.SchedulingEligibility,
    drain: o.Drain,
    createIndex: o.CreateIndex,
    modifyIndex: o.ModifyIndex,
  };
}

/** Parses `GET /v1/nodes`: an array of node stubs. */
export function parseNodeList(v: unknown): NomadNodeStub[] {
  return (NODE_LIST.parse(v) ?? []).map(stubFields);
}

/** A full node from its checked JSON; Drain must agree with DrainStrategy. */
export function nodeFromJson(o: Static<typeof NomadNodeSchema>, path = ''): NomadNode {
  const stub = stubFields(o);
  const d = o.DrainStrategy ?? null;
  const strategy: NomadDrainStrategy | null =
    d === null ? null : { deadlineNs: d.Deadline, ignoreSystemJobs: d.IgnoreSystemJobs, forceDeadline: d.ForceDeadline ?? '', startedAt: d.StartedAt ?? '' };
  // Drain is derived from DrainStrategy by Nomad; a node that disagrees is malformed.
  if (stub.drain !== (strategy !== null)) malformed('node', `${path}/Drain`, 'consistent with DrainStrategy');
  return { ...stub, meta: o.Meta ?? {}, drainStrategy: strategy };
}

/** Parses a full node (`GET /v1/node/:id`). */
export function parseNode(v: unknown): NomadNode {
  return nodeFromJson(NODE.parse(v));
}

/** What `POST /v1/node/:id/eligibility` and `/drain` answer. */
export interface NomadNodeUpdate {
  readonly evalIds: readonly string[];
  readonly nodeModifyIndex: number;
  readonly index: number;
}

const NODE_UPDATE = nomadDocument(
  Type.Object({ EvalIDs: Type.Optional(nullableList(Type.String())), NodeModifyIndex: NomadIndex, Index: NomadIndex }),
  'node update answer',
);

/** Parses the answer to an eligibility or drain update. */
export function parseNodeUpdateResponse(v: unknown): NomadNodeUpdate {
  const o = NODE_UPDATE.parse(v);
  return { evalIds: o.EvalIDs ?? [], nodeModifyIndex: o.NodeModifyIndex, index: o.Index };
}

/** The client's metadata as `/v1/client/metadata` reports it (the client's own view, not yet the servers'). */
export interface NomadNodeMeta {
  readonly meta: Readonly<Record<string, string>>;
  /** Keys set through the API; null marks a static key that was unset. */
  readonly dynamic: Readonly<Record<string, string | null>>;
  readonly static: Readonly<Record<string, string>>;
}

const NODE_META = nomadDocument(
  Type.Object({
    Meta: StringMap,
    Dynamic: Type.Optional(Type.Union([Type.Record(Type.String(), Type.Union([Type.String(), Type.Null()])), Type.Null()])),
    Static: StringMap,
  }),
  'client metadata answer',
);

/** Parses the answer of `GET` or `POST /v1/client/metadata`. */
export function parseNodeMetaResponse(v: unknown): NomadNodeMeta {
  const o = NODE_META.parse(v);
  return { meta: o.Meta ?? {}, dynamic: o.Dynamic ?? {}, static: o.Static ?? {} };
}
