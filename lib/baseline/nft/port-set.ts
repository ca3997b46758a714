/**
 * Sets of ports as sorted, disjoint, non-adjacent inclusive ranges: what the evaluator
 * carries through a chain instead of one packet per port. Pure values.
 */
import type { PortRange } from '../types.js';

/** Sorted, disjoint, merged ranges within 0..65535. */
export type PortSet = readonly PortRange[];

export const MAX_PORT = 65535;
export const ALL_PORTS: PortSet = [{ from: 0, to: MAX_PORT }];
export const NO_PORTS: PortSet = [];

/** A set from ranges in any order, overlapping or adjacent (merged); bounds are clamped to 0..65535. */
export function portSet(ranges: readonly PortRange[]): PortSet {
  const sorted = ranges
    .map((r) => ({ from: Math.max(0, r.from), to: Math.min(MAX_PORT, r.to) }))
    .filter((r) => r.from <= r.to)
    .sort((a, b) => a.from - b.from);
  const out: PortRange[] = [];
  for (const r of sorted) {
    const last = out[out.length - 1];
    if (last !== undefined && r.from <= last.to + 1) {
      if (r.to > last.to) out[out.length - 1] = { from: last.from, to: r.to };
    } else out.push(r);
  }
  return out;
}

/** Merges two sets in one pass (both are sorted already). */
export function union(a: PortSet, b: PortSet): PortSet {
  if (a.length === 0) return b;
  if (b.length === 0) return a;
  const out: PortRange[] = [];
  let i = 0;
  let j = 0;
  for (;;) {
    const x = a[i];
    const y = b[j];
    const next = x === undefined ? y : y === undefined ? x : x.from <= y.from ? x : y;
    if (next === undefined) return out;
    if (next === x) i++;
    else j++;
    const last = out[out.length - 1];
    if (last !== undefined && next.from <= last.to + 1) {
      if (next.to > last.to) out[out.length - 1] = { from: last.from, to: next.to };
    } else out.push(next);
  }
}

export function intersect(a: PortSet, b: PortSet): PortSet {
  const out: PortRange[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    const x = a[i];
    const y = b[j];
    if (x === undefined || y === undefined) break;
    const from = Math.max(x.from, y.from);
    const to = Math.min(x.to, y.to);
    if (from <= to) out.push({ from, to });
    if (x.to < y.to) i++;
    else j++;
  }
  return out;
}

export function complement(a: PortSet): PortSet {
  const out: PortRange[] = [];
  let next = 0;
  for (const r of a) {
    if (r.from > next) out.push({ from: next, to: r.from - 1 });
    next = r.to + 1;
  }
  if (next <= MAX_PORT) out.push({ from: next, to: MAX_PORT });
  return out;
}

export function subtract(a: PortSet, b: PortSet): PortSet {
  if (a.length === 0 || b.length === 0) return a;
  return intersect(a, complement(b));
}

export function isEmpty(a: PortSet): boolean {
  return a.length === 0;
}

export function contains(a: PortSet, port: number): boolean {
  return a.some((r) => r.from <= port && port <= r.to);
}

export function samePorts(a: PortSet, b: PortSet): boolean {
  return a.length === b.length && a.every((r, i) => r.from === b[i]?.from && r.to === b[i]?.to);
}

/** "22", "8000-8100". */
export function formatRange(r: PortRange): string {
  return r.from === r.to ? String(r.from) : `${r.from}-${r.to}`;
}
