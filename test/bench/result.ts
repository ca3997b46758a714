/**
 * The shape every Bulwark benchmark returns, and a table printer for it. Test code.
 */

/** One measured figure, optionally next to the baseline it is judged against. */
export interface BenchResult {
  readonly name: string;
  readonly value: number;
  readonly unit: string;
  readonly baseline?: { readonly name: string; readonly value: number };
  /** value / baseline.value. */
  readonly ratio?: number;
  /** The goal as text, e.g. "≥ 0.5" for a ratio. */
  readonly target?: string;
}

/** Whether a result meets a "≥ N" / ">= N" ratio target; undefined when it states none. */
export function meetsTarget(result: BenchResult): boolean | undefined {
  const m = /^(?:≥|>=)\s*([0-9.]+)/.exec(result.target ?? '');
  if (m === null || result.ratio === undefined) return undefined;
  return result.ratio >= Number(m[1]);
}

function formatNumber(v: number): string {
  if (v >= 100) return Math.round(v).toLocaleString('en-US');
  return v.toPrecision(3);
}

/** Formats results as an aligned text table (one row per result). */
export function formatResults(results: readonly BenchResult[]): string {
  const header = ['benchmark', 'value', 'unit', 'baseline', 'ratio', 'target', 'status'];
  const rows = results.map((r) => {
    const ok = meetsTarget(r);
    return [
      r.name,
      formatNumber(r.value),
      r.unit,
      r.baseline === undefined ? '' : `${r.baseline.name} = ${formatNumber(r.baseline.value)}`,
      r.ratio === undefined ? '' : r.ratio.toFixed(2),
      r.target ?? '',
      ok === undefined ? '' : ok ? 'ok' : 'BELOW TARGET',
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => (i === 1 || i === 4 ? c.padStart(widths[i] ?? 0) : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

/** Prints results as a table on stdout. */
export function printResults(results: readonly BenchResult[]): void {
  process.stdout.write(`${formatResults(results)}\n`);
}
