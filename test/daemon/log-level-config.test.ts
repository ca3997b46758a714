/**
 * Both daemons take their log level from the config key `logLevel` or BULWARK_LOG_LEVEL
 * (the environment wins, as for every key), and refuse a level that does not exist.
 */
import t from 'tap';
import { parseAgentConfig } from '../../agent/config.js';
import { parseControllerConfig } from '../../controller/config/index.js';

t.test('agent: info by default, the file, then BULWARK_LOG_LEVEL', async (t) => {
  t.equal(parseAgentConfig([], {}).logLevel, 'info');
  t.equal(parseAgentConfig([{ logLevel: 'debug' }], {}).logLevel, 'debug');
  t.equal(parseAgentConfig([{ logLevel: 'debug' }], { BULWARK_LOG_LEVEL: 'trace' }).logLevel, 'trace');
  t.throws(() => parseAgentConfig([{ logLevel: 'verbose' }], {}), { code: 'CONFIG_INVALID' });
  t.throws(() => parseAgentConfig([], { BULWARK_LOG_LEVEL: 'WARN' }), { code: 'CONFIG_INVALID' });
});

t.test('controller: info by default, the file, then BULWARK_LOG_LEVEL', async (t) => {
  t.equal(parseControllerConfig([], {}).logLevel, 'info');
  t.equal(parseControllerConfig([{ logLevel: 'warn' }], {}).logLevel, 'warn');
  t.equal(parseControllerConfig([{ logLevel: 'warn' }], { BULWARK_LOG_LEVEL: 'debug' }).logLevel, 'debug');
  t.throws(() => parseControllerConfig([{ logLevel: 'silent' }], {}), { code: 'CONFIG_INVALID' });
  t.throws(() => parseControllerConfig([], { BULWARK_LOG_LEVEL: 'loud' }), { code: 'CONFIG_INVALID' });
});
