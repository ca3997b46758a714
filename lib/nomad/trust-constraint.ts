/**
 * The application catalogue's trust rule: every task group of every app runs only where
 * `${meta.bulwark_trusted} == "true"`. The constraint is injected by the controller, never
 * written by the spec: a spec that mentions bulwark_trusted in any constraint, affinity or
 * spread is refused, so it can neither weaken nor duplicate the rule. Pure.
 */
import { BulwarkError } from '../errors.js';
import { parseJob } from './jobs.js';
import { isJsonObject, type JsonObject, type JsonValue } from './shape.js';

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
function checkCanonicalKeys(o: JsonObject, fields: readonly string[], path: string): void {
  for (const key of Object.keys(o)) {
    const canonical = fields.find((f) => f.toLowerCase() === key.toLowerCase());
    if (canonical !== undefined && canonical !== key) invalid(`${path}.${key}`, `spells ${canonical} as "${key}"`);
  }
}

function mentionsTrust(v: JsonValue | undefined): boolean {
  return typeof v === 'string' && /bulwark_trusted/i.test(v.replace(/\s+/g, ''));
}

function checkList(v: JsonValue | undefined, path: string, what: string, keys: readonly string[]): void {
  if (v === null || v === undefined) return;
  if (!Array.isArray(v)) return invalid(path, 'has a non-list');
  asList(v).forEach((entry, i) => {
    if (!isJsonObject(entry)) return invalid(`${path}[${i}]`, 'has a non-object');
    checkCanonicalKeys(entry, keys, `${path}[${i}]`);
    for (const k of keys) if (mentionsTrust(entry[k])) refuse(`${path}[${i}]`, what);
  });
}

const CONSTRAINT_KEYS = ['LTarget', 'RTarget', 'Operand'] as const;
const SPREAD_KEYS = ['Attribute'] as const;

function checkSteering(o: JsonObject, path: string, spreads: boolean): void {
  checkList(o['Constraints'], `${path}.Constraints`, 'constraint', CONSTRAINT_KEYS);
  checkList(o['Affinities'], `${path}.Affinities`, 'affinity', CONSTRAINT_KEYS);
  if (spreads) checkList(o['Spreads'], `${path}.Spreads`, 'spread', SPREAD_KEYS);
}

function asList(v: JsonValue | undefined): readonly JsonValue[] {
  return Array.isArray(v) ? v : [];
}

/**
 * Returns the job with TRUST_CONSTRAINT appended to every task group's constraints (the
 * input is not changed). Refuses with APP_SPEC_OVERRIDES_TRUST a spec that already has a
 * constraint, affinity or spread on meta.bulwark_trusted anywhere (job, group or task level);
 * APP_SPEC_INVALID for a job without task groups or with non-canonical field spellings.
 */
export function injectTrustConstraint(job: JsonObject): JsonObject {
  let parsed;
  try {
    parsed = parseJob(job);
  } catch (err) {
    throw new BulwarkError('APP_SPEC_INVALID', `the job spec is not a Nomad API job: ${err instanceof Error ? err.message : String(err)}`, {}, { cause: err });
  }
  if (parsed.taskGroups.length === 0) invalid('job.TaskGroups', 'has no task group');
  checkCanonicalKeys(job, STEERING_FIELDS.job, 'job');
  checkSteering(job, 'job', true);
  const groups = asList(job['TaskGroups']);
  const injected: JsonValue[] = groups.map((g, i) => {
    const path = `job.TaskGroups[${i}]`;
    if (!isJsonObject(g)) return invalid(path, 'has a non-object task group');
    checkCanonicalKeys(g, STEERING_FIELDS.group, path);
    checkSteering(g, path, true);
    asList(g['Tasks']).forEach((t, j) => {
      if (!isJsonObject(t)) invalid(`${path}.Tasks[${j}]`, 'has a non-object task');
      checkCanonicalKeys(t, STEERING_FIELDS.task, `${path}.Tasks[${j}]`);
      checkSteering(t, `${path}.Tasks[${j}]`, false);
    });
    return { ...g, Constraints: [...asList(g['Constraints']), { ...TRUST_CONSTRAINT }] };
  });
  return { ...job, TaskGroups: injected };
}

/** Whether every task group of a job carries TRUST_CONSTRAINT (for checks after registration). */
export function hasTrustConstraint(job: JsonObject): boolean {
  const groups = asList(job['TaskGroups']);
  return (
    groups.length > 0 &&
    groups.every(
      (g) =>
        isJsonObject(g) &&
        asList(g['Constraints']).some(
          (c) => isJsonObject(c) && c['LTarget'] === TRUST_CONSTRAINT.LTarget && c['RTarget'] === TRUST_CONSTRAINT.RTarget && c['Operand'] === TRUST_CONSTRAINT.Operand,
        ),
    )
  );
}
