/** SELinux state from a recorded or live tree, judged against a baseline. (Contract; implemented here.) */
import type { Finding } from '../verdict.js';
import type { SelinuxBaseline, SelinuxState } from './types.js';

/** Files of a SELinux tree, by path relative to the root ("sys/fs/selinux/enforce", "etc/selinux/config", ...); null for absent. */
export type SelinuxTree = ReadonlyMap<string, Uint8Array | null>;

/** The paths (relative to the root) a reader must supply; directories are listed by `listedDirectories`. */
export const SELINUX_FILES: readonly string[] = [];

/** Parses a tree into a state; garbage values give a BulwarkError (never a guess). */
export function parseSelinuxTree(tree: SelinuxTree): SelinuxState {
  void tree;
  throw new Error('not implemented');
}

/** SELINUX_NOT_ENFORCING, SELINUX_POLICY_MISMATCH, SELINUX_BOOLEAN_MISMATCH findings. */
export function judgeSelinux(baseline: SelinuxBaseline, state: SelinuxState): Finding[] {
  void baseline;
  void state;
  throw new Error('not implemented');
}
