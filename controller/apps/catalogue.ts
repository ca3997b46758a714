/**
 * Applications are submitted through the controller, never straight to Nomad: the spec
 * (from the catalogue directory, or given) is parsed by Nomad, refused when it tries to
 * say anything itself about `meta.bulwark_trusted`, gets the trust constraint injected
 * into every task group, is validated and registered; the controller then reports where
 * its allocations landed.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { injectTrustConstraint } from '../../lib/nomad/index.js';
import { BulwarkError } from '../../lib/index.js';
import type { NomadAllocation } from '../../lib/nomad/index.js';
import type { NomadHttpClient } from '../nomad/index.js';

const APP_NAME = /^[a-z0-9][a-z0-9-]{0,62}$/;
const SPEC_SUFFIX = '.nomad.hcl';

export interface AppAllocation {
  readonly id: string;
  readonly nodeId: string;
  readonly nodeName: string;
  readonly taskGroup: string;
  readonly clientStatus: string;
  readonly desiredStatus: string;
}

export interface AppStatusInfo {
  readonly name: string;
  readonly jobId: string;
  readonly status: string;
  readonly allocations: readonly AppAllocation[];
  readonly evalId: string;
}

function allocation(a: NomadAllocation): AppAllocation {
  return { id: a.id, nodeId: a.nodeId, nodeName: a.nodeName, taskGroup: a.taskGroup, clientStatus: a.clientStatus, desiredStatus: a.desiredStatus };
}

export class AppCatalogue {
  private readonly dir: string;
  private readonly nomad: NomadHttpClient | null;
  /** Job ids by app name, of jobs registered through this catalogue. */
  private readonly jobIds = new Map<string, string>();

  constructor(dir: string, nomad: NomadHttpClient | null) {
    this.dir = dir;
    this.nomad = nomad;
  }

  private requireNomad(): NomadHttpClient {
    if (this.nomad === null) throw new BulwarkError('NOMAD_UNAVAILABLE', 'the controller has no Nomad configured (nomadAddr)');
    return this.nomad;
  }

  private static checkName(name: string): string {
    if (!APP_NAME.test(name)) throw new BulwarkError('USAGE', `app name ${JSON.stringify(name.slice(0, 70))} must be lower-case letters, digits and "-"`);
    return name;
  }

  async list(): Promise<{ name: string; file: string }[]> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (err) {
      throw new BulwarkError('IO_FAILED', `cannot read the app catalogue ${this.dir}`, {}, { cause: err });
    }
    return names
      .filter((n) => n.endsWith(SPEC_SUFFIX))
      .sort()
      .map((file) => ({ name: file.slice(0, -SPEC_SUFFIX.length), file }));
  }

  isDeployed(name: string): boolean {
    return this.jobIds.has(name);
  }

  /** Parses, guards, injects the trust constraint, validates and registers an app. */
  async deploy(name: string, hcl?: string): Promise<AppStatusInfo> {
    const nomad = this.requireNomad();
    AppCatalogue.checkName(name);
    const text = hcl !== undefined && hcl !== '' ? hcl : await this.spec(name);
    const job = await nomad.parseJobHcl(text);
    // Refuses specs that mention meta.bulwark_trusted themselves (APP_SPEC_OVERRIDES_TRUST).
    const guarded = injectTrustConstraint(job.json);
    const validation = await nomad.validateJob(guarded);
    if (validation.error !== '' || validation.errors.length > 0) {
      throw new BulwarkError('APP_SPEC_INVALID', `Nomad refuses ${name}: ${[validation.error, ...validation.errors].filter((e) => e !== '').join('; ')}`);
    }
    const registered = await nomad.registerJob(guarded);
    this.jobIds.set(name, job.id);
    return { ...(await this.status(name)), evalId: registered.evalId };
  }

  private async spec(name: string): Promise<string> {
    const path = join(this.dir, `${name}${SPEC_SUFFIX}`);
    try {
      return await readFile(path, 'utf8');
    } catch (err) {
      throw new BulwarkError('NODE_NOT_FOUND', `no app ${name} in the catalogue ${this.dir}`, {}, { cause: err });
    }
  }

  /** The job id of an app: the one it was deployed as, else its catalogue spec's. */
  private async jobId(name: string): Promise<string> {
    const known = this.jobIds.get(name);
    if (known !== undefined) return known;
    const job = await this.requireNomad().parseJobHcl(await this.spec(AppCatalogue.checkName(name)));
    this.jobIds.set(name, job.id);
    return job.id;
  }

  async status(name: string): Promise<AppStatusInfo> {
    const jobId = await this.jobId(name);
    const allocations = (await this.requireNomad().jobAllocations(jobId)).map(allocation);
    const running = allocations.filter((a) => a.clientStatus === 'running').length;
    const status = allocations.length === 0 ? 'pending' : `${running}/${allocations.filter((a) => a.desiredStatus === 'run').length} running`;
    return { name, jobId, status, allocations, evalId: '' };
  }

  async stop(name: string): Promise<AppStatusInfo> {
    const jobId = await this.jobId(name);
    const { evalId } = await this.requireNomad().stopJob(jobId);
    return { ...(await this.status(name)), evalId };
  }
}
