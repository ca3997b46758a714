/**
 * RFC 7512 PKCS #11 URIs: the RFC's own examples (section 3) parse to what they say,
 * malformed ones are PKCS11_URI_INVALID, and formatPkcs11Uri never writes pin-value.
 */
import t from 'tap';
import { BulwarkError } from '../../../lib/errors.js';
import { formatPkcs11Uri, parsePkcs11Uri, PKCS11_URI_MAX_LENGTH } from '../../../lib/pkcs11/index.js';

t.test('the examples of RFC 7512 section 3', async (t) => {
  t.same(parsePkcs11Uri('pkcs11:'), { vendorPath: new Map(), vendorQuery: new Map() }, 'the empty URI matches everything');

  const pub = parsePkcs11Uri('pkcs11:object=my-pubkey;type=public');
  t.equal(pub.object, 'my-pubkey');
  t.equal(pub.type, 'public');

  const withSource = parsePkcs11Uri('pkcs11:object=my-key;type=private?pin-source=file:/etc/token');
  t.equal(withSource.pinSource, '/etc/token', 'a file: URI names its path');
  t.equal(withSource.type, 'private');

  const cert = parsePkcs11Uri(
    'pkcs11:token=The%20Software%20PKCS%2311%20Softtoken;manufacturer=Snake%20Oil,%20Inc.;model=1.0;object=my-certificate;type=cert;id=%69%95%3E%5C%F4%BD%EC%91;serial=?pin-source=file:/etc/token_pin',
  );
  t.equal(cert.token, 'The Software PKCS#11 Softtoken');
  t.equal(cert.manufacturer, 'Snake Oil, Inc.');
  t.equal(cert.model, '1.0');
  t.equal(cert.serial, '', 'an empty value is a value');
  t.same([...(cert.id ?? [])], [0x69, 0x95, 0x3e, 0x5c, 0xf4, 0xbd, 0xec, 0x91], 'id stays bytes');
  t.equal(cert.pinSource, '/etc/token_pin');

  t.equal(parsePkcs11Uri('pkcs11:object=my-sign-key;type=private?module-name=mypkcs11').moduleName, 'mypkcs11');
  t.equal(parsePkcs11Uri('pkcs11:object=my-sign-key;type=private?module-path=/mnt/libmypkcs11.so.1').modulePath, '/mnt/libmypkcs11.so.1');

  const pinValue = parsePkcs11Uri('pkcs11:token=Software%20PKCS%2311%20softtoken;manufacturer=Snake%20Oil,%20Inc.?pin-value=the-pin');
  t.equal(pinValue.pinValue, 'the-pin');
  t.equal(pinValue.token, 'Software PKCS#11 softtoken');

  t.equal(parsePkcs11Uri('pkcs11:slot-description=Sun%20Metaslot').slotDescription, 'Sun Metaslot');
  const lib = parsePkcs11Uri('pkcs11:library-manufacturer=Snake%20Oil,%20Inc.;library-description=Soft%20Token%20Library;library-version=1.23');
  t.equal(lib.libraryManufacturer, 'Snake Oil, Inc.');
  t.equal(lib.libraryDescription, 'Soft Token Library');
  t.equal(lib.libraryVersion, '1.23');

  t.equal(parsePkcs11Uri('pkcs11:token=A%20name%20with%20a%20substring%20%25%3B;object=my-certificate;type=cert').token, 'A name with a substring %;');
  t.equal(parsePkcs11Uri('pkcs11:token=Name%20with%20a%20small%20A%20with%20acute:%20%C3%A1;object=my-certificate;type=cert').token, 'Name with a small A with acute: á');

  const vendor = parsePkcs11Uri('pkcs11:token=my-token;object=my-certificate;type=cert;vendor-aaa=value-a?pin-source=file:/etc/token_pin&vendor-bbb=value-b');
  t.same([...vendor.vendorPath], [['vendor-aaa', 'value-a']], 'an unknown path attribute is kept (a consumer then matches nothing)');
  t.same([...vendor.vendorQuery], [['vendor-bbb', 'value-b']], 'an unknown query attribute is kept and ignored');
  t.equal(vendor.pinSource, '/etc/token_pin');
});

t.test('slot-id, file: URI forms and a plain pin-source path', async (t) => {
  t.equal(parsePkcs11Uri('pkcs11:slot-id=1234').slotId, 1234);
  t.equal(parsePkcs11Uri('pkcs11:?pin-source=file:///run/pin').pinSource, '/run/pin');
  t.equal(parsePkcs11Uri('pkcs11:?pin-source=file://localhost/run/pin').pinSource, '/run/pin');
  t.equal(parsePkcs11Uri('pkcs11:?pin-source=/run/pin').pinSource, '/run/pin');
  t.equal(parsePkcs11Uri('PKCS11:token=x').token, 'x', 'the scheme is case-insensitive');
});

const MALFORMED: ReadonlyArray<readonly [string, string]> = [
  ['http://example.com/', 'another scheme'],
  ['pkcs11', 'no colon'],
  ['pkcs11:token=a;token=b', 'a repeated path attribute'],
  ['pkcs11:?pin-value=a&pin-value=b', 'a repeated query attribute'],
  ['pkcs11:token', 'an attribute without a value'],
  ['pkcs11:=x', 'a value without a name'],
  ['pkcs11:tok en=x', 'a space in a name'],
  ['pkcs11:token=a b', 'an unescaped space'],
  ['pkcs11:object=a/b', 'an unescaped / in the path'],
  ['pkcs11:token=%4', 'a cut percent-escape'],
  ['pkcs11:token=%zz', 'a bad percent-escape'],
  ['pkcs11:token=%FF', 'a value that is not UTF-8'],
  ['pkcs11:type=secret', 'an unknown type'],
  ['pkcs11:slot-id=-1', 'a negative slot-id'],
  ['pkcs11:slot-id=1x', 'a slot-id that is not a number'],
  ['pkcs11:library-version=one', 'a library-version that is not M.N'],
  ['pkcs11:token=x#frag', 'a fragment'],
  ['pkcs11:?pin-source=file:/p&pin-value=1234', 'both pin-source and pin-value'],
  ['pkcs11:?pin-source=file://otherhost/p', 'a pin file on another host'],
  ['pkcs11:?module-path=', 'an empty module-path'],
  [`pkcs11:token=${'a'.repeat(PKCS11_URI_MAX_LENGTH)}`, 'a URI over the cap'],
];

t.test('malformed URIs are PKCS11_URI_INVALID', async (t) => {
  for (const [uri, what] of MALFORMED) {
    t.throws(() => parsePkcs11Uri(uri), { code: 'PKCS11_URI_INVALID' }, what);
  }
});

t.test('a malformed pin-value does not show up in the error', async (t) => {
  for (const query of ['pin-value=S3cr%FFt-pin', 'pin-value=S3cr&3t-pin', 'pin-value=S3cr&=3t-pin', 'pin-value=S3cr&3t pin=x', 'pin-value=S3cr 3t', 'pin-value=S3cr;3t&pin-value=S3cr']) {
    try {
      parsePkcs11Uri(`pkcs11:token=x?${query}`);
      t.fail(`accepted ${query}`);
    } catch (e) {
      t.ok(e instanceof BulwarkError && e.code === 'PKCS11_URI_INVALID');
      const text = e instanceof Error ? `${e.message} ${e.stack ?? ''} ${JSON.stringify(e)}` : '';
      t.notOk(/S3cr|3t/.test(text), 'no part of the PIN in the error');
    }
  }
});

t.test('formatPkcs11Uri round-trips and never writes pin-value', async (t) => {
  const uri = parsePkcs11Uri('pkcs11:token=My%20Token;object=signer;id=%01%A0;type=private?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-value=1234-secret');
  const text = formatPkcs11Uri(uri);
  t.equal(text, 'pkcs11:token=My%20Token;object=signer;id=%01%A0;type=private?module-path=/usr/lib/softhsm/libsofthsm2.so');
  t.notOk(text.includes('1234-secret'));
  const again = parsePkcs11Uri(text);
  t.equal(again.token, 'My Token');
  t.same([...(again.id ?? [])], [0x01, 0xa0]);
  t.equal(again.pinValue, undefined);
  t.equal(formatPkcs11Uri({ token: 'a;b=c/d', pinValue: 'x' }), 'pkcs11:token=a%3Bb%3Dc%2Fd', 'reserved characters are escaped; pin-value dropped');
  const withSource = formatPkcs11Uri(parsePkcs11Uri('pkcs11:token=t?pin-source=file:/run/pin'));
  t.equal(parsePkcs11Uri(withSource).pinSource, '/run/pin');
});
