/** controller/registrar/: the public surface of this folder. */
export { HeldEnrollmentSchema, PendingEnrollmentSchema, Registrar, decodePendingEnrollment, type HeldEnrollment, type RegistrarOptions } from './registrar.js';
export { EK_BINDING_BUCKET, EkBindingSchema, EkBindings, type EkBinding } from './ek-bindings.js';
