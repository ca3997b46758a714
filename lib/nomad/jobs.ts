/**
 * Nomad job answers: `POST /v1/jobs/parse` (a job in Nomad's JSON form), `POST
 * /v1/validate/job`, `POST /v1/jobs` (register), `GET /v1/job/:id/allocations` and
 * `/v1/node/:id/allocations`, `DELETE /v1/job/:id`. Pure parsers over TypeBox schemas that
 * check the fields Bulwark reads and let Nomad's other fields through.
 */
import { Type, type TSchema } from '@sinclair/typebox';
import { nomadDocument, NomadIndex, nullableList, OptionalString, toJsonObject, type JsonObject } from './shape.js';

/** A job in Nomad's API JSON form: every field kept (it is sent back to Nomad as it is). */
export interface NomadJob {
  readonly id: string;
  readonly name: string;
  readonly type: string;
  /** Task group names, in order. */
  readonly taskGroups: readonly string[];
  readonly json: JsonObject;
}

/** A list a job may leave out or write as null. */
const optionalList = <T extends TSchema>(item: T) => Type.Optional(nullableList(item));

/** A constraint or affinity: the fields the trust rule reads. */
const Constraint = Type.Object({ LTarget: OptionalString, RTarget: OptionalString, Operand: OptionalString });
const Spread = Type.Object({ Attribute: OptionalString });

/**
 * The parts of a job Bulwark reads or changes (ID, task groups and their tasks, constraints,
 * affinities, spreads); every other field passes and is kept.
 */
export const NomadJobSchema = Type.Object({
  ID: Type.String({ minLength: 1 }),
  Name: OptionalString,
  Type: OptionalString,
  Constraints: optionalList(Constraint),
  Affinities: optionalList(Constraint),
  Spreads: optionalList(Spread),
  TaskGroups: Type.Array(
    Type.Object({
      Name: Type.String(),
      Constraints: optionalList(Constraint),
      Affinities: optionalList(Constraint),
      Spreads: optionalList(Spread),
      Tasks: Type.Array(
        Type.Object({
          Name: Type.String(),
          Driver: Type.String(),
          Constraints: optionalList(Constraint),
          Affinities: optionalList(Constraint),
        }),
      ),
    }),
  ),
});

/** The job document (also read by trust-constraint.ts). */
export const NOMAD_JOB = nomadDocument(NomadJobSchema, 'job');

/** Checks the parts of a job Bulwark reads or changes and keeps the whole job as JSON. */
export function parseJob(v: unknown): NomadJob {
  const o = NOMAD_JOB.parse(v);
  return { id: o.ID, name: o.Name ?? '', type: o.Type ?? '', taskGroups: o.TaskGroups.map((g) => g.Name), json: toJsonObject(v, '') };
}

/** The answer of `POST /v1/validate/job`. */
export interface NomadJobValidation {
  readonly driverConfigValidated: boolean;
  readonly errors: readonly string[];
  readonly error: string;
  readonly warnings: string;
}

const VALIDATE = nomadDocument(
  Type.Object({ DriverConfigValidated: Type.Boolean(), ValidationErrors: optionalList(Type.String()), Error: OptionalString, Warnings: OptionalString }),
  'job validation answer',
);

/** Parses `POST /v1/validate/job`: a job is valid when `errors` is empty and `error` is "". */
export function parseJobValidateResponse(v: unknown): NomadJobValidation {
  const o = VALIDATE.parse(v);
  return { driverConfigValidated: o.DriverConfigValidated, errors: o.ValidationErrors ?? [], error: o.Error ?? '', warnings: o.Warnings ?? '' };
}

/** The answer of `POST /v1/jobs` (register). */
export interface NomadJobRegistration {
  readonly evalId: string;
  readonly jobModifyIndex: number;
  readonly warnings: string;
}

const REGISTER = nomadDocument(Type.Object({ EvalID: OptionalString, JobModifyIndex: NomadIndex, Warnings: OptionalString }), 'job registration answer');
const DEREGISTER = nomadDocument(Type.Object({ EvalID: OptionalString, JobModifyIndex: NomadIndex }), 'job deregistration answer');

/** Parses the answer to a job registration. */
export function parseJobRegisterResponse(v: unknown): NomadJobRegistration {
  const o = REGISTER.parse(v);
  return { evalId: o.EvalID ?? '', jobModifyIndex: o.JobModifyIndex, warnings: o.Warnings ?? '' };
}

/** Parses the answer to `DELETE /v1/job/:id`: the evaluation it created. */
export function parseJobDeregisterResponse(v: unknown): { readonly evalId: string; readonly jobModifyIndex: number } {
  const o = DEREGISTER.parse(v);
  return { evalId: o.EvalID ?? '', jobModifyIndex: o.JobModifyIndex };
}

/** One allocation stub. */
export interface NomadAllocation {
  readonly id: string;
  readonly jobId: string;
  readonly taskGroup: string;
  readonly nodeId: string;
  readonly nodeName: string;
  /** What the servers want: `run`, `stop`, `evict`. */
  readonly desiredStatus: string;
  /** What the client reports: `pending`, `running`, `complete`, `failed`, `lost`, `unknown`. */
  readonly clientStatus: string;
  readonly createIndex: number;
  readonly modifyIndex: number;
  /** Nanoseconds since the epoch, as Nomad reports them. */
  readonly createTime: number;
  readonly modifyTime: number;
}

/** Nanoseconds since the epoch, as Nomad reports them. */
const NomadTime = Type.Number({ minimum: 0 });

const ALLOCATIONS = nomadDocument(
  nullableList(
    Type.Object({
      ID: Type.String(),
      JobID: Type.String(),
      TaskGroup: Type.String(),
      NodeID: Type.String(),
      NodeName: OptionalString,
      DesiredStatus: Type.String(),
      ClientStatus: Type.String(),
      CreateIndex: NomadIndex,
      ModifyIndex: NomadIndex,
      CreateTime: NomadTime,
      ModifyTime: NomadTime,
    }),
  ),
  'allocation list',
);

/** Parses a list of allocations (job or node allocations). */
export function parseAllocationList(v: unknown): NomadAllocation[] {
  return (ALLOCATIONS.parse(v) ?? []).map((o) => ({
    id: o.ID,
    jobId: o.JobID,
    taskGroup: o.TaskGroup,
    nodeId: o.NodeID,
    nodeName: o.NodeName ?? '',
    desiredStatus: o.DesiredStatus,
    clientStatus: o.ClientStatus,
    createIndex: o.CreateIndex,
    modifyIndex: o.ModifyIndex,
    createTime: o.CreateTime,
    modifyTime: o.ModifyTime,
  }));
}

/** Whether an allocation still occupies its node (not finished on the client). */
export function isLiveAllocation(a: NomadAllocation): boolean {
  return a.clientStatus === 'pending' || a.clientStatus === 'running' || a.clientStatus === 'unknown';
}
