/**
 * Nomad job answers: `POST /v1/jobs/parse` (a job in Nomad's JSON form), `POST
 * /v1/validate/job`, `POST /v1/jobs` (register), `GET /v1/job/:id/allocations` and
 * `/v1/node/:id/allocations`, `DELETE /v1/job/:id`. Pure parsers with shape checks.
 */
import { arr, arrOrNull, malformed, obj, str, strOrEmpty, toJsonObject, uint, type JsonObject } from './shape.js';

/** A job in Nomad's API JSON form: every field kept (it is sent back to Nomad as it is). */
export interface NomadJob {
  readonly id: string;
  readonly name: string;
  readonly type: string;
  /** Task group names, in order. */
  readonly taskGroups: readonly string[];
  readonly json: JsonObject;
}

function checkConstraintList(v: unknown, path: string): void {
  arrOrNull(v, path).forEach((c, i) => {
    const o = obj(c, `${path}[${i}]`);
    for (const k of ['LTarget', 'RTarget', 'Operand']) strOrEmpty(o, k, `${path}[${i}]`);
  });
}

function checkSpreadList(v: unknown, path: string): void {
  arrOrNull(v, path).forEach((c, i) => {
    strOrEmpty(obj(c, `${path}[${i}]`), 'Attribute', `${path}[${i}]`);
  });
}

/**
 * Checks the parts of a job Bulwark reads or changes (ID, task groups and their tasks,
 * constraints, affinities, spreads) and keeps the whole job as JSON.
 */
export function parseJob(v: unknown, path = 'job'): NomadJob {
  const o = obj(v, path);
  const json = toJsonObject(o, path);
  const id = str(o, 'ID', path);
  if (id === '') malformed(`${path}.ID`, 'a non-empty string');
  checkConstraintList(o['Constraints'], `${path}.Constraints`);
  checkConstraintList(o['Affinities'], `${path}.Affinities`);
  checkSpreadList(o['Spreads'], `${path}.Spreads`);
  const groups = arr(o['TaskGroups'], `${path}.TaskGroups`);
  const names = groups.map((g, i) => {
    const gp = `${path}.TaskGroups[${i}]`;
    const go = obj(g, gp);
    checkConstraintList(go['Constraints'], `${gp}.Constraints`);
    checkConstraintList(go['Affinities'], `${gp}.Affinities`);
    checkSpreadList(go['Spreads'], `${gp}.Spreads`);
    arr(go['Tasks'], `${gp}.Tasks`).forEach((t, j) => {
      const tp = `${gp}.Tasks[${j}]`;
      const to = obj(t, tp);
      str(to, 'Name', tp);
      str(to, 'Driver', tp);
      checkConstraintList(to['Constraints'], `${tp}.Constraints`);
      checkConstraintList(to['Affinities'], `${tp}.Affinities`);
    });
    return str(go, 'Name', gp);
  });
  return { id, name: strOrEmpty(o, 'Name', path), type: strOrEmpty(o, 'Type', path), taskGroups: names, json };
}

/** The answer of `POST /v1/validate/job`. */
export interface NomadJobValidation {
  readonly driverConfigValidated: boolean;
  readonly errors: readonly string[];
  readonly error: string;
  readonly warnings: string;
}

/** Parses `POST /v1/validate/job`: a job is valid when `errors` is empty and `error` is "". */
export function parseJobValidateResponse(v: unknown): NomadJobValidation {
  const o = obj(v, 'validate');
  const d = o['DriverConfigValidated'];
  if (typeof d !== 'boolean') malformed('validate.DriverConfigValidated', 'a boolean');
  const errors = arrOrNull(o['ValidationErrors'], 'validate.ValidationErrors').map((x, i) =>
    typeof x === 'string' ? x : malformed(`validate.ValidationErrors[${i}]`, 'a string'),
  );
  return { driverConfigValidated: d, errors, error: strOrEmpty(o, 'Error', 'validate'), warnings: strOrEmpty(o, 'Warnings', 'validate') };
}

/** The answer of `POST /v1/jobs` (register). */
export interface NomadJobRegistration {
  readonly evalId: string;
  readonly jobModifyIndex: number;
  readonly warnings: string;
}

/** Parses the answer to a job registration. */
export function parseJobRegisterResponse(v: unknown): NomadJobRegistration {
  const o = obj(v, 'register');
  return { evalId: strOrEmpty(o, 'EvalID', 'register'), jobModifyIndex: uint(o, 'JobModifyIndex', 'register'), warnings: strOrEmpty(o, 'Warnings', 'register') };
}

/** Parses the answer to `DELETE /v1/job/:id`: the evaluation it created. */
export function parseJobDeregisterResponse(v: unknown): { readonly evalId: string; readonly jobModifyIndex: number } {
  const o = obj(v, 'deregister');
  return { evalId: strOrEmpty(o, 'EvalID', 'deregister'), jobModifyIndex: uint(o, 'JobModifyIndex', 'deregister') };
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

function allocation(v: unknown, path: string): NomadAllocation {
  const o = obj(v, path);
  const t = (k: string): number => {
    const x = o[k];
    return typeof x === 'number' && Number.isFinite(x) && x >= 0 ? x : malformed(`${path}.${k}`, 'a non-negative number');
  };
  return {
    id: str(o, 'ID', path),
    jobId: str(o, 'JobID', path),
    taskGroup: str(o, 'TaskGroup', path),
    nodeId: str(o, 'NodeID', path),
    nodeName: strOrEmpty(o, 'NodeName', path),
    desiredStatus: str(o, 'DesiredStatus', path),
    clientStatus: str(o, 'ClientStatus', path),
    createIndex: uint(o, 'CreateIndex', path),
    modifyIndex: uint(o, 'ModifyIndex', path),
    createTime: t('CreateTime'),
    modifyTime: t('ModifyTime'),
  };
}

/** Parses a list of allocations (job or node allocations). */
export function parseAllocationList(v: unknown): NomadAllocation[] {
  return arrOrNull(v, 'allocations').map((x, i) => allocation(x, `allocations[${i}]`));
}

/** Whether an allocation still occupies its node (not finished on the client). */
export function isLiveAllocation(a: NomadAllocation): boolean {
  return a.clientStatus === 'pending' || a.clientStatus === 'running' || a.clientStatus === 'unknown';
}
