/**
 * An external NATS is used over TLS with a pinned CA and exactly one controller identity;
 * the config refuses anything less (CONFIG_INVALID naming the key).
 */
import t from 'tap';
import { parseControllerConfig } from '../../controller/config/config.js';

const url = { natsUrl: 'tls://nats.example:4222' };

t.test('an external NATS needs a CA and exactly one identity', async (t) => {
  t.throws(() => parseControllerConfig([{ ...url, natsNkeySeedFile: '/etc/bulwark/nats.nk' }], {}), { code: 'CONFIG_INVALID', details: { key: 'natsCaFile' } }, 'no CA');
  t.throws(() => parseControllerConfig([{ ...url, natsCaFile: '/etc/bulwark/ca.pem' }], {}), { code: 'CONFIG_INVALID', details: { key: 'natsNkeySeedFile' } }, 'no identity');
  t.throws(
    () => parseControllerConfig([{ ...url, natsCaFile: '/ca.pem', natsNkeySeedFile: '/a.nk', natsCredsFile: '/a.creds' }], {}),
    { code: 'CONFIG_INVALID', details: { key: 'natsNkeySeedFile' } },
    'two identities',
  );
  t.throws(() => parseControllerConfig([{ ...url, natsCaFile: '/ca.pem', natsUser: 'bulwark' }], {}), { code: 'CONFIG_INVALID', details: { key: 'natsPasswordFile' } }, 'a user without a password file');
  t.throws(
    () => parseControllerConfig([{ ...url, natsCaFile: '/ca.pem', natsNkeySeedFile: '/a.nk', natsCertFile: '/c.pem' }], {}),
    { code: 'CONFIG_INVALID', details: { key: 'natsKeyFile' } },
    'a client certificate without its key',
  );
  const ok = parseControllerConfig([{ ...url }], { BULWARK_NATS_CA_FILE: '/ca.pem', BULWARK_NATS_USER: 'bulwark', BULWARK_NATS_PASSWORD_FILE: '/pw' });
  t.same([ok.natsCaFile, ok.natsUser, ok.natsPasswordFile], ['/ca.pem', 'bulwark', '/pw'], 'set from the environment');
  t.equal(parseControllerConfig([], {}).natsCaFile, null, 'the embedded server needs none of them');
});
