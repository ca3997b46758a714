/** controller/registrar/: the public surface of this folder. */
export { Registrar, type RegistrarOptions } from './registrar.js';
