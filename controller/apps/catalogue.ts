/**
 * Applications are submitted through the controller, never straight to Nomad: the spec
 * (from the catalogue directory, or given) is parsed by Nomad, refused when it tries to
 * say anything itself about `meta.bulwark_trusted`, gets the trust constraint injected
 * into every task group, is validated and registered; the controller then reports where
 * its allocations landed.
 *
 * Signed specs: with a key set store (the controller's default), a deploy takes the app's
 * DSSE envelope (application/vnd.bulwark.app+json), verified against the `app` key set;
 * what is deployed is the signed HCL, and a catalogue file (or a given spec) that differs
 * from it (edited after signing) is refused with APP_SPEC_NOT_SIGNED. Refusals are audited
 * (`app.refused`, with the code) before Nomad is asked anything.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { injectTrustConstraint } from '../../lib/nomad/index.js';
import { BulwarkError } from '../../lib/index.js';
import type { NomadAllocation } from '../../lib/nomad/index.js';
import { parseAppSpecDocument, verifyWithKeySet } from '../../lib/signing/index.js';
import type { NomadHttpClient } from '../nomad/index.js';
import type { KeySetStore } from '../policies/index.js';
import type { AdminAudit } from '../state/index.js';

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

  private readonly signing: { readonly keysets: KeySetStore; readonly audit: AdminAudit | null } | null;

  /** `signing`: the key sets deploys are verified with (null: unsigned specs, `requireSignedPolicies: false`). */
  constructor(dir: string, nomad: NomadHttpClient | null, signing: { readonly keysets: KeySetStore; readonly audit: AdminAudit | null } | null = null) {
    this.dir = dir;
    this.nomad = nomad;
    this.signing = signing;
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

  /**
   * The HCL to deploy: with signing, the verified envelope's, which a given spec or the
   * catalogue file must equal; refusals audited.
   */
  private async signedSpec(name: string, hcl: string, envelope: string): Promise<string> {
    const signing = this.signing;
    if (signing === null) return hcl !== '' ? hcl : this.spec(name);
    try {
      if (envelope === '') {
        throw new BulwarkError('ENVELOPE_REQUIRED', `app specs must be signed: sign the spec of ${name} (bulwarkctl sign --payload-type application/vnd.bulwark.app+json) and deploy with --envelope`);
      }
      const { keyset } = await signing.keysets.require('app');
      const verified = verifyWithKeySet(envelope, keyset, Date.now());
      const doc = parseAppSpecDocument(verified.payload, `signed spec of ${name}`);
      if (doc.name !== name) throw new BulwarkError('APP_SPEC_NOT_SIGNED', `the envelope signs the spec of ${doc.name}, not ${name}`);
      const other = hcl !== '' ? hcl : await this.catalogueSpec(name);
      if (other !== null && other !== doc.hcl) {
        throw new BulwarkError('APP_SPEC_NOT_SIGNED', `the spec of ${name} ${hcl !== '' ? 'given' : 'in the catalogue'} differs from the signed one (edited after signing?)`);
      }
      return doc.hcl;
    } catch (err) {
      const e = err instanceof BulwarkError ? err : new BulwarkError('INTERNAL', 'the signed app spec could not be checked', {}, { cause: err });
      await signing.audit?.record('app.refused', name, { name, code: e.code, message: e.message.slice(0, 1000) });
      throw e;
    }
  }

  /** The catalogue file of an app, or null when it has none. */
  private async catalogueSpec(name: string): Promise<string | null> {
    try {
      return await readFile(join(this.dir, `${name}${SPEC_SUFFIX}`), 'utf8');
    } catch (err) {
      if (err instanceof Error && 'code' in err && err.code === 'ENOENT') return null;
      throw new BulwarkError('IO_FAILED', `cannot read the spec of ${name} in ${this.dir}`, {}, { cause: err });
    }
  }

  /** Verifies (signed specs), parses, guards, injects the trust constraint, validates and registers an app. */
  async deploy(name: string, hcl = '', envelope = ''): Promise<AppStatusInfo> {
    AppCatalogue.checkName(name);
    const text = await this.signedSpec(name, hcl, envelope);
    const nomad = this.requireNomad();
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
