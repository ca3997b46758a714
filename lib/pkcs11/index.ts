/** PKCS #11, pure: RFC 7512 URIs, and key and signature encodings between PKCS #11 and node:crypto. The module itself is driven by daemon/pkcs11. */
export {
  formatPkcs11Uri,
  parsePkcs11Uri,
  PKCS11_OBJECT_TYPES,
  PKCS11_URI_MAX_LENGTH,
  type Pkcs11ObjectType,
  type Pkcs11Uri,
  type Pkcs11UriParts,
} from './uri.js';
export {
  curveOfEcParams,
  ecdsaDerToRaw,
  ecdsaRawToDer,
  ecParamsOf,
  ecPublicJwk,
  PKCS11_EC_CURVES,
  rsaPublicJwk,
  type Pkcs11EcCurve,
  type PublicJwk,
} from './keys.js';
