/**
 * encodeImaSignature: the signature_v2_hdr evmctl ima_sign writes (a captured xattr made by
 * `evmctl ima_sign --key k.pem -a sha256`, ima-evm-utils 1.4, re-encoded byte for byte), and
 * out-of-range inputs refused.
 */
import t from 'tap';
import { fromHex, toHex } from '../../../lib/bytes.js';
import { decodeImaSignature, encodeImaSignature, HASH_ALGO } from '../../../lib/ima/index.js';

// security.ima of a file signed by evmctl 1.4 with an RSA-2048 key (keyid 993c06d5).
const EVMCTL_XATTR =
  '030204993c06d501004948705623d9360613714318e5cc94b5632051baeb616f4f3854b2d000508828b6038db4a2dd26b4cb168110375f78fd677bcbe85e8de183e52a612b2047f093889c0281b4d2ebfce25ea50ea0d3a9dcd496b78769824ef92932ad2ac9181917781536bb878de8e370ba6bc3eedaeb774a27705b9555b3693bf72cd17880051c1c3068914725e219a9551697f96a37cd2c12bf559f477f2887b30b89f03a12901b5a07b4300f4daea2c4cfe69f9f7c230e7dd05f35e97d4229292b07a271fa1a55f5788410ded7f6295ff5cc68fa1998770f9f036d4ca8e7f4d008cc0215e14d0633ec267051d337dc0a468f9fefce48c51f39328d5e10d1e197538fd543d445';

t.test('re-encodes what evmctl wrote', async (t) => {
  const decoded = decodeImaSignature(fromHex(EVMCTL_XATTR));
  t.equal(decoded.hashAlgo, HASH_ALGO.SHA256);
  t.equal(decoded.keyId, 0x993c06d5);
  t.equal(toHex(encodeImaSignature(decoded.hashAlgo, decoded.keyId, decoded.signature)), EVMCTL_XATTR);
});

t.test('out-of-range inputs are refused', async (t) => {
  t.throws(() => encodeImaSignature(99, 1, Uint8Array.of(1)), { code: 'IMA_LOG_MALFORMED' }, 'unknown hash_algo');
  t.throws(() => encodeImaSignature(4, 2 ** 32, Uint8Array.of(1)), { code: 'IMA_LOG_MALFORMED' }, 'keyid over u32');
  t.throws(() => encodeImaSignature(4, 1, new Uint8Array(0)), { code: 'IMA_LOG_MALFORMED' }, 'empty signature');
  t.throws(() => encodeImaSignature(4, 1, new Uint8Array(0x10000)), { code: 'IMA_LOG_MALFORMED' }, 'longer than sig_size');
});
