/** controller/verifier/: the public surface of this folder. */
export { Verifier, type VerifierOptions } from './verifier.js';
