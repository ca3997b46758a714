/**
 * SELinux state from a recorded or live tree, judged against a baseline, and checked
 * against what the kernel itself measured into IMA. Pure: a reader (the agent's, or
 * bulwarkctl's --selinux-root) fills a SelinuxTree; this file only parses it.
 *
 * The tree: keys are paths relative to the root ("/" in production), of three kinds.
 * - "sys/fs/selinux/enforce": the file's bytes (a reader caps a file at SELINUX_TREE_LIMITS.fileBytes).
 * - "sys/fs/selinux/booleans/" (ends in "/"): a directory listing, the names of its entries
 *   as UTF-8, one per line, in any order.
 * - "sys/fs/selinux/policy#sha256" (ends in "#sha256"): the lower-case hex sha256 of the file
 *   named before "#", which the reader streams: the loaded policy is megabytes and is
 *   never copied into a report.
 * A value is null when the file or directory is absent (or, for a "#sha256" key, unreadable:
 * reading the policy needs the security:read_policy permission).
 *
 * Which paths a parse needs depends on what earlier ones said (the booleans listed, the
 * policy type in /etc/selinux/config, the module priorities): a reader starts with
 * SELINUX_FILES and then reads what `pendingSelinuxPaths(tree)` returns until it returns
 * nothing (at most SELINUX_TREE_LIMITS.rounds rounds).
 *
 * Formats (Linux security/selinux/selinuxfs.c): enforce is "%d" (0 or 1), policyvers "%u",
 * booleans/<name> "%d %d" (current, pending); none ends in a newline, one is tolerated.
 * /etc/selinux/config holds KEY=VALUE lines and # comments (libselinux
 * selinux_config.c); SELINUX= is enforcing, permissive or disabled. Policy modules live in
 * libsemanage's store var/lib/selinux/<type>/active/modules/<priority>/<name>/, priorities
 * three digits ("100" the distribution's, "400" local), and a module is disabled by a file
 * active/modules/disabled/<name>. Anything else found there is BASELINE_REPORT_INVALID,
 * never a guess.
 */
import { toHex } from '../bytes.js';
import { BulwarkError } from '../errors.js';
import { finding, type Finding } from '../verdict.js';
import { BASELINE_NAME_PATTERNS } from './document.js';
import type { SelinuxBaseline, SelinuxState } from './types.js';

/** Files of a SELinux tree, by path relative to the root; null for absent (see the file comment for the key forms). */
export type SelinuxTree = ReadonlyMap<string, Uint8Array | null>;

/** Caps on a tree: checked before anything is built from it. */
export const SELINUX_TREE_LIMITS = {
  /** Booleans (a Fedora policy has about 350) and modules (about 450). */
  booleans: 4096,
  modules: 4096,
  /** A file or listing the reader hands over (config, enforce, a listing of 4096 names). */
  fileBytes: 512 * 1024,
  /** Rounds of pendingSelinuxPaths a reader needs at most. */
  rounds: 4,
} as const;

const SELINUXFS = 'sys/fs/selinux/';
const ENFORCE = `${SELINUXFS}enforce`;
const POLICYVERS = `${SELINUXFS}policyvers`;
const POLICY_SHA256 = `${SELINUXFS}policy#sha256`;
const BOOLEANS = `${SELINUXFS}booleans/`;
const CONFIG = 'etc/selinux/config';

/** The store directory listing the module priorities of a policy type. */
function modulesDir(policyType: string): string {
  return `var/lib/selinux/${policyType}/active/modules/`;
}

/** The paths (relative to the root) a reader supplies first; `pendingSelinuxPaths` names the rest. */
export const SELINUX_FILES: readonly string[] = [ENFORCE, POLICYVERS, POLICY_SHA256, CONFIG, BOOLEANS];

const BOOLEAN_NAME = new RegExp(BASELINE_NAME_PATTERNS.boolean);
const MODULE_NAME = new RegExp(BASELINE_NAME_PATTERNS.module);
const POLICY_TYPE = new RegExp(BASELINE_NAME_PATTERNS.policyType);
const PRIORITY = /^[0-9]{3}$/;

function invalid(message: string, path: string): BulwarkError {
  return new BulwarkError('BASELINE_REPORT_INVALID', `SELinux tree: ${message}`, { path });
}

function text(bytes: Uint8Array, path: string): string {
  if (bytes.length > SELINUX_TREE_LIMITS.fileBytes) throw invalid(`${path} is larger than ${SELINUX_TREE_LIMITS.fileBytes} bytes`, path);
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw invalid(`${path} is not UTF-8`, path);
  }
}

/** A one-line selinuxfs value without its optional newline. */
function value(bytes: Uint8Array, path: string): string {
  const t = text(bytes, path);
  return t.endsWith('\n') ? t.slice(0, -1) : t;
}

/** The names of a listing, checked against `pattern` and capped. */
function listing(bytes: Uint8Array, path: string, pattern: RegExp, cap: number): string[] {
  const names = text(bytes, path)
    .split('\n')
    .filter((n) => n !== '');
  if (names.length > cap) throw invalid(`${path} lists more than ${cap} entries`, path);
  for (const n of names) if (!pattern.test(n)) throw invalid(`${path} lists ${JSON.stringify(n.slice(0, 80))}, not a valid name`, path);
  return names;
}

/** Reads one key: undefined when the tree lacks it (the reader has not been asked yet). */
function lookup(tree: SelinuxTree, path: string): Uint8Array | null | undefined {
  return tree.has(path) ? (tree.get(path) ?? null) : undefined;
}

type Mode = 'enforcing' | 'permissive' | 'disabled';

/** /etc/selinux/config: SELINUX= and SELINUXTYPE=, each at most once. */
function parseConfig(bytes: Uint8Array): { mode: Mode | null; policyType: string | null } {
  let mode: Mode | null = null;
  let policyType: string | null = null;
  const seen = new Set<string>();
  text(bytes, CONFIG)
    .split('\n')
    .forEach((raw, i) => {
      const line = raw.trim();
      if (line === '' || line.startsWith('#')) return;
      const eq = line.indexOf('=');
      if (eq <= 0) throw invalid(`${CONFIG} line ${i + 1} is not KEY=VALUE`, CONFIG);
      const key = line.slice(0, eq).trim();
      const v = line.slice(eq + 1).trim();
      if (key !== 'SELINUX' && key !== 'SELINUXTYPE') return; // SETLOCALDEFS, REQUIREUSERS, AUTORELABEL: not judged
      if (seen.has(key)) throw invalid(`${CONFIG} sets ${key} twice`, CONFIG);
      seen.add(key);
      if (key === 'SELINUX') {
        // libselinux compares these case-insensitively (selinux_getenforcemode).
        const m = v.toLowerCase();
        if (m !== 'enforcing' && m !== 'permissive' && m !== 'disabled') throw invalid(`${CONFIG}: SELINUX=${JSON.stringify(v.slice(0, 40))} is none of enforcing, permissive, disabled`, CONFIG);
        mode = m;
      } else {
        if (!POLICY_TYPE.test(v)) throw invalid(`${CONFIG}: SELINUXTYPE=${JSON.stringify(v.slice(0, 40))} is not a policy type name`, CONFIG);
        policyType = v;
      }
    });
  return { mode, policyType };
}

/** What the tree says so far, reading only keys it has; `pending` collects keys it lacks. */
function walk(tree: SelinuxTree, pending: string[] | null): SelinuxState {
  const get = (path: string): Uint8Array | null => {
    const v = lookup(tree, path);
    if (v !== undefined) return v;
    if (pending === null) throw invalid(`the reader did not supply ${path}`, path);
    pending.push(path);
    return null;
  };

  const enforce = get(ENFORCE);
  let mode: Mode = 'disabled';
  if (enforce !== null) {
    const v = value(enforce, ENFORCE);
    if (v !== '0' && v !== '1') throw invalid(`${ENFORCE} is ${JSON.stringify(v.slice(0, 40))}, not 0 or 1`, ENFORCE);
    mode = v === '1' ? 'enforcing' : 'permissive';
  }
  const present = enforce !== null;

  const vers = get(POLICYVERS);
  let policyVersion: number | null = null;
  if (vers !== null) {
    const v = value(vers, POLICYVERS);
    if (!/^[0-9]{1,4}$/.test(v)) throw invalid(`${POLICYVERS} is ${JSON.stringify(v.slice(0, 40))}, not a version number`, POLICYVERS);
    policyVersion = Number(v);
  }

  const hash = get(POLICY_SHA256);
  let policyHash: string | null = null;
  if (hash !== null) {
    const v = value(hash, POLICY_SHA256);
    if (!/^[0-9a-f]{64}$/.test(v)) throw invalid(`${POLICY_SHA256} is not 64 lower-case hex digits`, POLICY_SHA256);
    policyHash = v;
  }

  const config = get(CONFIG);
  const { mode: configMode, policyType } = config === null ? { mode: null, policyType: null } : parseConfig(config);

  const booleans: Record<string, boolean> = {};
  const listed = get(BOOLEANS);
  if (listed !== null) {
    for (const name of listing(listed, BOOLEANS, BOOLEAN_NAME, SELINUX_TREE_LIMITS.booleans)) {
      const path = `${BOOLEANS}${name}`;
      const file = get(path);
      if (file === null) {
        if (pending !== null) continue;
        throw invalid(`${path} is listed but absent`, path);
      }
      const m = /^([01]) ([01])$/.exec(value(file, path));
      if (m === null) throw invalid(`${path} is not "current pending" (0 or 1 each)`, path);
      booleans[name] = m[1] === '1';
    }
  }

  const modules = new Set<string>();
  if (policyType !== null) {
    const dir = modulesDir(policyType);
    const entries = get(dir);
    if (entries !== null) {
      const disabled = new Set<string>();
      const names = listing(entries, dir, /^([0-9]{3}|disabled)$/, 1000);
      for (const entry of names) {
        const sub = `${dir}${entry}/`;
        const l = get(sub);
        if (l === null) continue;
        const subNames = listing(l, sub, MODULE_NAME, SELINUX_TREE_LIMITS.modules);
        if (entry === 'disabled') for (const n of subNames) disabled.add(n);
        else if (PRIORITY.test(entry)) for (const n of subNames) modules.add(n);
      }
      for (const n of disabled) modules.delete(n);
      if (modules.size > SELINUX_TREE_LIMITS.modules) throw invalid(`${dir} holds more than ${SELINUX_TREE_LIMITS.modules} modules`, dir);
    }
  }

  return { present, mode, configMode, policyType, policyVersion, policyHash, booleans, modules: [...modules].sort() };
}

/** The paths a reader must still supply for `tree` to parse (empty: it is complete). */
export function pendingSelinuxPaths(tree: SelinuxTree): string[] {
  const pending: string[] = [];
  walk(tree, pending);
  return [...new Set(pending)];
}

/** Parses a tree into a state; garbage values give a BulwarkError (BASELINE_REPORT_INVALID, never a guess). Untrusted: what the host says. */
export function parseSelinuxTree(tree: SelinuxTree): SelinuxState {
  return walk(tree, null);
}

const onOff = (b: boolean): string => (b ? 'on' : 'off');

/** SELINUX_NOT_ENFORCING, SELINUX_POLICY_MISMATCH, SELINUX_BOOLEAN_MISMATCH findings of one state against a baseline. */
export function judgeSelinux(baseline: SelinuxBaseline, state: SelinuxState): Finding[] {
  const out: Finding[] = [];
  const nowWrong = state.mode !== baseline.mode;
  const bootWrong = state.configMode !== baseline.mode;
  if (nowWrong || bootWrong) {
    const parts: string[] = [];
    if (nowWrong) parts.push(`is ${state.mode} now`);
    if (bootWrong) parts.push(state.configMode === null ? 'has no mode at next boot (no /etc/selinux/config SELINUX=)' : `will be ${state.configMode} at next boot (/etc/selinux/config)`);
    out.push(
      finding('SELINUX_NOT_ENFORCING', `SELinux ${parts.join(' and ')}; the baseline requires ${baseline.mode}`, {
        expected: baseline.mode,
        mode: state.mode,
        configMode: state.configMode ?? 'none',
      }),
    );
  }
  if (state.policyType !== baseline.policyType) {
    out.push(
      finding('SELINUX_POLICY_MISMATCH', `SELinux policy type is ${state.policyType ?? 'not set'}; the baseline requires ${baseline.policyType}`, {
        item: 'policyType',
        expected: baseline.policyType,
        actual: state.policyType ?? 'none',
      }),
    );
  }
  if (state.present && baseline.policyHash !== undefined && state.policyHash !== baseline.policyHash) {
    out.push(
      finding('SELINUX_POLICY_MISMATCH', `the loaded SELinux policy's sha256 is ${state.policyHash ?? 'unknown (unreadable)'}; the baseline pins ${baseline.policyHash}`, {
        item: 'policyHash',
        expected: baseline.policyHash,
        actual: state.policyHash ?? 'none',
      }),
    );
  }
  const installed = new Set(state.modules);
  for (const m of baseline.requiredModules) {
    if (!installed.has(m)) out.push(finding('SELINUX_POLICY_MISMATCH', `required SELinux module ${m} is not installed (or disabled)`, { item: 'module', module: m, expected: 'installed' }));
  }
  for (const m of baseline.forbiddenModules) {
    if (installed.has(m)) out.push(finding('SELINUX_POLICY_MISMATCH', `forbidden SELinux module ${m} is installed`, { item: 'module', module: m, expected: 'absent' }));
  }
  if (state.present) {
    for (const name of Object.keys(baseline.booleans).sort()) {
      const expected = baseline.booleans[name];
      if (expected === undefined) continue;
      const actual = Object.prototype.hasOwnProperty.call(state.booleans, name) ? state.booleans[name] : undefined;
      if (actual === expected) continue;
      out.push(
        finding(
          'SELINUX_BOOLEAN_MISMATCH',
          actual === undefined ? `SELinux boolean ${name} is not defined by the loaded policy; the baseline pins it ${onOff(expected)}` : `SELinux boolean ${name} is ${onOff(actual)}; the baseline pins it ${onOff(expected)}`,
          { boolean: name, expected: onOff(expected), actual: actual === undefined ? 'undefined' : onOff(actual) },
        ),
      );
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// What the kernel measured (IMA critical data, Linux security/selinux/ima.c)

/** SELinux as the kernel measured it; null where it measured nothing (or nothing Bulwark can compare). */
export interface KernelSelinux {
  readonly enforcing: boolean | null;
  /** sha256 hex of the loaded policy. */
  readonly policyHash: string | null;
}

/** The ima-buf event names of security/selinux/ima.c (selinux_ima_measure_state_locked). */
export const SELINUX_IMA_EVENTS = { state: 'selinux-state', policyHash: 'selinux-policy-hash' } as const;

/** The largest selinux-state buffer read: the fixed text plus one "name=0;" per policy capability (fewer than 64). */
const MAX_STATE_BUFFER = 4096;

/**
 * Reads the kernel's `selinux-state` buffer: "initialized=%d;enforcing=%d;checkreqprot=%d;"
 * then "<policy capability>=%d;" for each (selinux_ima_collect_state). A policy not yet
 * loaded (initialized=0) enforces nothing: enforcing false.
 */
function kernelEnforcing(data: Uint8Array): boolean {
  const fail = (why: string): BulwarkError => new BulwarkError('IMA_LOG_MALFORMED', `ima-buf ${SELINUX_IMA_EVENTS.state}: ${why}`, { name: SELINUX_IMA_EVENTS.state });
  if (data.length > MAX_STATE_BUFFER) throw fail(`longer than ${MAX_STATE_BUFFER} bytes`);
  let s: string;
  try {
    s = new TextDecoder('ascii', { fatal: true }).decode(data);
  } catch {
    throw fail('not text');
  }
  if (!/^([a-z0-9_]+=[01];)+$/.test(s)) throw fail('not "name=0|1;" pairs');
  const fields = new Map<string, string>();
  for (const pair of s.slice(0, -1).split(';')) {
    const [k, v] = pair.split('=');
    if (k === undefined || v === undefined) throw fail('not "name=0|1;" pairs');
    if (fields.has(k)) throw fail(`${k} given twice`);
    fields.set(k, v);
  }
  const initialized = fields.get('initialized');
  const enforcing = fields.get('enforcing');
  if (initialized === undefined || enforcing === undefined) throw fail('lacks initialized= or enforcing=');
  return initialized === '1' && enforcing === '1';
}

/**
 * SELinux as the kernel measured it, from ima-buf entries of replayed (verified) IMA
 * entries: `selinux-state` and `selinux-policy-hash`, the last of each name winning (the
 * kernel measures again on every policy load and setenforce). The policy hash entry's buffer
 * is the policy's digest in IMA's hash algorithm (ima_measure_critical_data with hash=true);
 * only a 32-byte one (sha256, Debian's CONFIG_IMA_DEFAULT_HASH) is compared: another size
 * gives null. A selinux-state buffer not in the kernel's format is IMA_LOG_MALFORMED.
 */
export function kernelSelinuxFromImaBuf(entries: readonly { readonly name: string; readonly data: Uint8Array }[]): KernelSelinux {
  let state: Uint8Array | null = null;
  let hash: Uint8Array | null = null;
  for (const e of entries) {
    if (e.name === SELINUX_IMA_EVENTS.state) state = e.data;
    else if (e.name === SELINUX_IMA_EVENTS.policyHash) hash = e.data;
  }
  return {
    enforcing: state === null ? null : kernelEnforcing(state),
    policyHash: hash === null || hash.length !== 32 ? null : toHex(hash),
  };
}

/** SELINUX_REPORT_CONTRADICTS_KERNEL findings: where the agent's report says otherwise than the kernel's own measurement. */
export function selinuxContradictions(kernel: KernelSelinux, reported: SelinuxState): Finding[] {
  const out: Finding[] = [];
  if (kernel.enforcing !== null && kernel.enforcing !== (reported.mode === 'enforcing')) {
    out.push(
      finding('SELINUX_REPORT_CONTRADICTS_KERNEL', `the kernel measured SELinux ${kernel.enforcing ? 'enforcing' : 'not enforcing'}; the agent reported ${reported.mode}`, {
        item: 'mode',
        kernel: kernel.enforcing ? 'enforcing' : 'not enforcing',
        reported: reported.mode,
      }),
    );
  }
  if (kernel.policyHash !== null && reported.policyHash !== null && kernel.policyHash !== reported.policyHash) {
    out.push(
      finding('SELINUX_REPORT_CONTRADICTS_KERNEL', `the kernel measured SELinux policy sha256 ${kernel.policyHash}; the agent reported ${reported.policyHash}`, {
        item: 'policyHash',
        kernel: kernel.policyHash,
        reported: reported.policyHash,
      }),
    );
  }
  return out;
}

/** The state to judge when the kernel measured SELinux: its mode and policy hash win over the agent's. */
export function withKernelSelinux(reported: SelinuxState, kernel: KernelSelinux): SelinuxState {
  let mode = reported.mode;
  if (kernel.enforcing === true) mode = 'enforcing';
  else if (kernel.enforcing === false && mode === 'enforcing') mode = 'permissive';
  return { ...reported, present: reported.present || kernel.enforcing !== null, mode, policyHash: kernel.policyHash ?? reported.policyHash };
}

/** Human-readable changes between two SELinux states (for a report's `changes`). */
export function describeSelinuxChanges(previous: SelinuxState, current: SelinuxState): string[] {
  const out: string[] = [];
  const changed = (what: string, a: string | number | null, b: string | number | null): void => {
    if (a !== b) out.push(`SELinux ${what}: ${a ?? 'none'} -> ${b ?? 'none'}`);
  };
  changed('mode', previous.mode, current.mode);
  changed('mode at next boot', previous.configMode, current.configMode);
  changed('policy type', previous.policyType, current.policyType);
  changed('policy version', previous.policyVersion, current.policyVersion);
  changed('policy sha256', previous.policyHash, current.policyHash);
  const names = new Set([...Object.keys(previous.booleans), ...Object.keys(current.booleans)]);
  for (const name of [...names].sort()) {
    const has = (s: SelinuxState): boolean => Object.prototype.hasOwnProperty.call(s.booleans, name);
    const a = has(previous) ? previous.booleans[name] : undefined;
    const b = has(current) ? current.booleans[name] : undefined;
    if (a === b) continue;
    if (a === undefined) out.push(`SELinux boolean ${name} added (${onOff(b === true)})`);
    else if (b === undefined) out.push(`SELinux boolean ${name} removed`);
    else out.push(`SELinux boolean ${name}: ${onOff(a)} -> ${onOff(b)}`);
  }
  const before = new Set(previous.modules);
  const after = new Set(current.modules);
  for (const m of current.modules) if (!before.has(m)) out.push(`SELinux module ${m} installed`);
  for (const m of previous.modules) if (!after.has(m)) out.push(`SELinux module ${m} removed`);
  return out;
}
