/**
 * The application catalogue's trust rule: every task group of every app runs only where
 * `${meta.bulwark_trusted} == "true"`. The constraint is injected by the controller, never
 * written by the spec: a spec that mentions bulwark_trusted in any constraint, affinity or
 * spread is refused, so it can neither weaken nor duplicate the rule. Pure.
 */
import type { Static } from '@sinclair/typebox';
import { BulwarkError } from '../errors.js';
import { NOMAD_JOB, type NomadJobSchema } from './jobs.js';
import { toJsonObject, type JsonObject } from './shape.js';

type Job = Static<typeof NomadJobSchema>;

/** The constraint added to every task group, in Nomad's API JSON form. */
export const TRUST_CONSTRAINT = { LTarget: '${meta.bulwark_trusted}', RTarget: 'true', Operand: '=' } as const;

/** The job fields that can place or steer allocations, by the object they appear in. */
const STEERING_FIELDS = {
  job: ['Constraints', 'Affinities', 'Spreads', 'TaskGroups'],
  group: ['Constraints', 'Affinities', 'Spreads', 'Tasks'],
  task: ['Constraints', 'Affinities'],
} as const;

function refuse(path: string, what: string): never {
  throw new BulwarkError('APP_SPEC_OVERRIDES_TRUST', `the job spec sets its own ${what} on bulwark_trusted at ${path}; the controller injects it`, { path });
}

function invalid(path: string, message: string): never {
  throw new BulwarkError('APP_SPEC_INVALID', `the job spec ${message} at ${path}`, { path });
}

/**
 * Nomad decodes job JSON with Go's encoding/json, which matches keys case-insensitively: a
 * "constraints" key would be read as Constraints and could replace the injected one. Only the
 * canonical spelling is accepted for the fields this module checks.
 */
function checkCanonicalKeys(o: object, fields: readonly string[], path: string): void {
  for (const key of Object.keys(o)) {
    const canonical = fields.find((f) => f.toLowerCase() === key.toLowerCase());
    if (canonical !== undefined && canonical !== key) invalid(`${path}/${key}`, `spells ${canonical} as "${key}"`);
  }
}

function mentionsTrust(v: string | null | undefined): boolean {
  return typeof v === 'string' && /bulwark_trusted/i.test(v.replace(/\s+/g, ''));
}

type Steering = Pick<Job, 'Constraints' | 'Affinities'> & Partial<Pick<Job, 'Spreads'>>;

const CONSTRAINT_KEYS = ['LTarget', 'RTarget', 'Operand'] as const;
const SPREAD_KEYS = ['Attribute'] as const;

/** Checks constraints and affinities, and spreads where the schema checked them (jobs and groups: Nomad tasks have none). */
function checkSteering(o: Steering, path: string, spreads: boolean): void {
  const lists = [
    ['Constraints', 'constraint'],
    ['Affinities', 'affinity'],
  ] as const;
  for (const [field, what] of lists) {
    (o[field] ?? []).forEach((c, i) => {
      checkCanonicalKeys(c, CONSTRAINT_KEYS, `${path}/${field}/${i}`);
      if (mentionsTrust(c.LTarget) || mentionsTrust(c.RTarget) || mentionsTrust(c.Operand)) refuse(`${path}/${field}/${i}`, what);
    });
  }
  if (!spreads) return;
  (o.Spreads ?? []).forEach((s, i) => {
    checkCanonicalKeys(s, SPREAD_KEYS, `${path}/Spreads/${i}`);
    if (mentionsTrust(s.Attribute)) refuse(`${path}/Spreads/${i}`, 'spread');
  });
}

/** The job checked against NomadJobSchema; APP_SPEC_INVALID (with the JSON pointer) when it is not a Nomad API job. */
function appJob(job: JsonObject): Job {
  try {
    return NOMAD_JOB.parse(job);
  } catch (err) {
    const path = err instanceof BulwarkError && typeof err.details['path'] === 'string' ? err.details['path'] : '';
    throw new BulwarkError('APP_SPEC_INVALID', `the job spec is not a Nomad API job: ${err instanceof Error ? err.message : String(err)}`, { path }, { cause: err });
  }
}

/**
 * Returns the job with TRUST_CONSTRAINT appended to every task group's constraints (the
 * input is not changed). Refuses with APP_SPEC_OVERRIDES_TRUST a spec that already has a
 * constraint, affinity or spread on meta.bulwark_trusted anywhere (job, group or task level);
 * APP_SPEC_INVALID for a job without task groups or with non-canonical field spellings.
 */
export function injectTrustConstraint(job: JsonObject): JsonObject {
  const parsed = appJob(job);
  if (parsed.TaskGroups.length === 0) invalid('/TaskGroups', 'has no task group');
  checkCanonicalKeys(parsed, STEERING_FIELDS.job, '');
  checkSteering(parsed, '', true);
  parsed.TaskGroups.forEach((g, i) => {
    const path = `/TaskGroups/${i}`;
    checkCanonicalKeys(g, STEERING_FIELDS.group, path);
    checkSteering(g, path, true);
    g.Tasks.forEach((t, j) => {
      checkCanonicalKeys(t, STEERING_FIELDS.task, `${path}/Tasks/${j}`);
      checkSteering(t, `${path}/Tasks/${j}`, false);
    });
  });
  // The spreads keep every field of the spec; the copy is checked to be JSON again.
  return toJsonObject(
    { ...parsed, TaskGroups: parsed.TaskGroups.map((g) => ({ ...g, Constraints: [...(g.Constraints ?? []), { ...TRUST_CONSTRAINT }] })) },
    '',
  );
}

/** Whether every task group of a job carries TRUST_CONSTRAINT (for checks after registration); false for what is not a job. */
export function hasTrustConstraint(job: JsonObject): boolean {
  if (!NOMAD_JOB.check(job)) return false;
  return (
    job.TaskGroups.length > 0 &&
    job.TaskGroups.every((g) =>
      (g.Constraints ?? []).some((c) => c.LTarget === TRUST_CONSTRAINT.LTarget && c.RTarget === TRUST_CONSTRAINT.RTarget && c.Operand === TRUST_CONSTRAINT.Operand),
    )
  );
}
