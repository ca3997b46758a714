/**
 * The appraisers a controller runs after every verified quote, in order, and the policy
 * kinds they register.
 */
import type { Appraiser } from './appraiser.js';
import { EventLogAppraiser } from './event-log-appraiser.js';
import { ImaAppraiser } from './ima-appraiser.js';
import type { ControllerConfig } from '../config/index.js';
import type { Logger } from '../../daemon/index.js';
import type { PolicyStore } from '../policies/index.js';
import type { ControllerStore } from '../state/index.js';

export interface AppraiserDeps {
  readonly store: ControllerStore;
  readonly policies: PolicyStore;
  readonly config: ControllerConfig;
  readonly log: Logger;
}

export async function createAppraisers(deps: AppraiserDeps): Promise<Appraiser[]> {
  const js = deps.store.nc.jetstream();
  return [await EventLogAppraiser.open(js, deps.policies, deps.log), await ImaAppraiser.open(js, deps.policies, deps.log)];
}
