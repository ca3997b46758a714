/** The evidence sources an agent runs, from its configuration. */
import { createPublicKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BulwarkError } from '../lib/index.js';
import { trustedKeySet, type TrustedKeySet } from '../lib/dsse/index.js';
import { trustKeySet, type KeySet } from '../lib/signing/index.js';
import type { Logger } from '../daemon/index.js';
import { BaselineSource, Nftables } from './baseline/index.js';
import type { AgentConfig } from './config.js';
import { EventLogSource } from './event-log-source.js';
import type { EvidenceSource } from './evidence-source.js';
import { ImaSource } from './ima-source.js';
import { SystemdLogSource } from './systemd-log-source.js';
import type { Tpm } from './tpm.js';

const PEM_PUBLIC_KEY = /-----BEGIN PUBLIC KEY-----[\s\S]*?-----END PUBLIC KEY-----/g;

/**
 * The keys of config baselineKeys (a PEM file of one or more public keys), checked as
 * lib/dsse trusts them; CONFIG_INVALID for a file that cannot be read, holds no key, a
 * key that does not parse or is not trusted, or fewer keys than baselineKeyThreshold.
 */
export function loadBaselineKeys(path: string, threshold: number): TrustedKeySet {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new BulwarkError('CONFIG_INVALID', `baselineKeys: cannot read ${path}: ${err instanceof Error ? err.message : String(err)}`, { key: 'baselineKeys', path });
  }
  const blocks = text.match(PEM_PUBLIC_KEY) ?? [];
  if (blocks.length === 0) throw new BulwarkError('CONFIG_INVALID', `baselineKeys: ${path} holds no PEM public key`, { key: 'baselineKeys', path });
  let keys: TrustedKeySet;
  try {
    keys = trustedKeySet(blocks.map((pem) => createPublicKey(pem)));
  } catch (err) {
    throw new BulwarkError('CONFIG_INVALID', `baselineKeys: ${path}: ${err instanceof Error ? err.message : String(err)}`, { key: 'baselineKeys', path });
  }
  if (threshold > keys.prepared.length) {
    throw new BulwarkError('CONFIG_INVALID', `baselineKeyThreshold ${threshold} can never be met by the ${keys.prepared.length} key(s) of ${path}`, { key: 'baselineKeyThreshold', path });
  }
  return keys;
}

/**
 * The pinned root of config baselineKeySet: a baseline key set envelope, self-signed to its
 * threshold (lib/signing trustKeySet); CONFIG_INVALID for one that cannot be read or does
 * not verify, and when baselineKeys is set too (one trust anchor).
 */
export function loadBaselineKeySet(config: Pick<AgentConfig, 'baselineKeySet' | 'baselineKeys'>): KeySet | null {
  const path = config.baselineKeySet;
  if (path === null) return null;
  if (config.baselineKeys !== null) {
    throw new BulwarkError('CONFIG_INVALID', 'baselineKeySet and baselineKeys are both set: pin the key set envelope (baselineKeySet) and remove baselineKeys', { key: 'baselineKeySet' });
  }
  try {
    return trustKeySet('baseline', readFileSync(path));
  } catch (err) {
    throw new BulwarkError('CONFIG_INVALID', `baselineKeySet: ${path}: ${err instanceof Error ? err.message : String(err)}`, { key: 'baselineKeySet', path }, { cause: err });
  }
}

/** The sources of `config`; the baseline source (config `baseline`, on by default) needs the TPM it extends and a logger. */
export function evidenceSources(config: AgentConfig, opts: { imaPollMs?: number; tpm?: Tpm; log?: Logger } = {}): EvidenceSource[] {
  const sources: EvidenceSource[] = [];
  const bootId = async (): Promise<string> => (await readFile(config.bootIdPath, 'utf8')).trim();
  if (config.eventLogPath !== null) sources.push(new EventLogSource(config.eventLogPath));
  if (config.systemdLogPath !== null) {
    sources.push(new SystemdLogSource({ path: config.systemdLogPath, firmwareLogPath: config.eventLogPath, baselinePcr: config.baseline ? config.baselinePcr : null }));
  }
  if (config.imaLogPath !== null) {
    sources.push(
      new ImaSource({
        path: config.imaLogPath,
        format: config.imaFormat,
        statePath: join(config.dataDir, 'ima-position.json'),
        bootId,
        ...(opts.imaPollMs === undefined ? {} : { pollMs: opts.imaPollMs }),
      }),
    );
  }
  if (config.baseline) {
    if (opts.tpm === undefined || opts.log === undefined) throw new BulwarkError('USAGE', 'the baseline source needs the TPM and a logger (or set baseline: false)');
    sources.push(
      new BaselineSource({
        tpm: opts.tpm,
        nft: new Nftables({ command: config.nftCommand, timeoutMs: config.toolTimeoutMs }),
        selinuxRoot: config.selinuxRoot,
        dataDir: config.dataDir,
        pcr: config.baselinePcr,
        bootId,
        log: opts.log,
        baselineKeys: config.baselineKeys === null ? null : loadBaselineKeys(config.baselineKeys, config.baselineKeyThreshold),
        baselineKeyThreshold: config.baselineKeyThreshold,
        baselineKeySet: loadBaselineKeySet(config),
      }),
    );
  }
  return sources;
}
