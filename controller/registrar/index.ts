/** controller/registrar/: the public surface of this folder. */
export { PendingEnrollmentSchema, Registrar, decodePendingEnrollment, type RegistrarOptions } from './registrar.js';
