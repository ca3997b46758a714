/** controller/apps/: the public surface of this folder. */
export { AppCatalogue, type AppAllocation, type AppStatusInfo } from './catalogue.js';
