/** The controller's Nomad adapter: the HTTP client and the placement-gate reconciler. */
export { NomadHttpClient, type DrainOptions, type EventStreamOptions, type NomadApi, type NomadClientOptions } from './client.js';
export {
  NomadReconciler,
  type AppliedAction,
  type NomadReconcilerOptions,
  type ReconcileReport,
  type ReconcileTrigger,
  type ReconcilerLease,
  type TrustSource,
} from './reconciler.js';
