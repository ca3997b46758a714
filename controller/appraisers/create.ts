/**
 * The appraisers a controller runs after every verified quote, in order, and the policy
 * kinds they register.
 */
import type { Appraiser } from './appraiser.js';
import { BaselineAppraiser } from './baseline-appraiser.js';
import { EventLogAppraiser } from './event-log-appraiser.js';
import { ImaAppraiser } from './ima-appraiser.js';
import type { ControllerConfig } from '../config/index.js';
import type { Logger } from '../../daemon/index.js';
import type { KeySetStore, PolicyStore } from '../policies/index.js';
import type { AdminAudit, ControllerStore } from '../state/index.js';

export interface AppraiserDeps {
  readonly store: ControllerStore;
  readonly policies: PolicyStore;
  readonly config: ControllerConfig;
  readonly log: Logger;
  /** Where the baseline corrections agents report are recorded. */
  readonly adminAudit: AdminAudit | null;
  /** The trusted key sets (signed policies): baseline key set rotations travel to agents with their evidence replies. */
  readonly keysets?: KeySetStore | null;
}

/** The appraisers in the order they run, and the baseline appraiser again (the API reads node baselines from it). */
export interface Appraisers {
  readonly list: Appraiser[];
  readonly baselines: BaselineAppraiser;
}

export async function createAppraisers(deps: AppraiserDeps): Promise<Appraisers> {
  const js = deps.store.nc.jetstream();
  const ima = await ImaAppraiser.open(js, deps.policies, deps.log);
  // After the IMA appraiser: it has verified this round's entries (the kernel's SELinux measurements) by then.
  const baselines = await BaselineAppraiser.open(js, deps.policies, {
    pcr: deps.config.baselinePcr,
    requireBaseline: deps.config.requireBaseline,
    kernel: ima,
    audit: deps.adminAudit,
    keysets: deps.keysets ?? null,
    log: deps.log,
  });
  return { list: [await EventLogAppraiser.open(js, deps.policies, deps.log, deps.config.baselinePcr), ima, baselines], baselines };
}
