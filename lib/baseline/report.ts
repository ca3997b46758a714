/**
 * Baseline reports and their TPM-bound chain.
 *
 * A report is shipped and extended as its canonical JSON (keys sorted, no whitespace,
 * UTF-8): the agent extends sha256(bytes) into the baseline PCR's sha256 bank
 * (TPM2_PCR_Extend: new = sha256(old || digest)), so the controller replays the reports of
 * one boot, in order, from the PCR's reset value (32 zero bytes) to the quoted value, as it
 * replays an event log. A report edited, dropped or reordered no longer reaches the quote.
 */
import { createHash } from 'node:crypto';
import { Type } from '@sinclair/typebox';
import { toHex } from '../bytes.js';
import { BulwarkError } from '../errors.js';
import { canonicalJson, defineDocument, literalUnion, parseJsonText } from '../schema/index.js';
import { finding, type Finding } from '../verdict.js';
import { BASELINE_NAME_PATTERNS } from './document.js';
import type { BaselineReport } from './types.js';

/** Largest report accepted (each carries the host's normalised ruleset; a round carries at most 448 KiB of reports, WIRE_LIMITS.baselineChunk). */
export const MAX_REPORT_BYTES = 384 * 1024;

const CODE = 'BASELINE_REPORT_INVALID';
const WHAT = 'baseline report';

const PortRangeSchema = Type.Object(
  { from: Type.Integer({ minimum: 0, maximum: 65535 }), to: Type.Integer({ minimum: 0, maximum: 65535 }) },
  { additionalProperties: false },
);
const ProtocolSchema = literalUnion(['tcp', 'udp']);
const ModeSchema = literalUnion(['enforcing', 'permissive', 'disabled']);

const ExposureSchema = Type.Object(
  {
    tcp: Type.Array(PortRangeSchema, { maxItems: 65536 }),
    udp: Type.Array(PortRangeSchema, { maxItems: 65536 }),
    otherProtocols: Type.Boolean(),
    conditional: Type.Array(Type.Object({ protocol: ProtocolSchema, ports: PortRangeSchema, condition: Type.String({ maxLength: 1000 }) }, { additionalProperties: false }), {
      maxItems: 4096,
    }),
    forwardOpen: Type.Boolean(),
  },
  { additionalProperties: false },
);

const SelinuxStateSchema = Type.Object(
  {
    present: Type.Boolean(),
    mode: ModeSchema,
    configMode: Type.Union([ModeSchema, Type.Null()]),
    policyType: Type.Union([Type.String({ pattern: BASELINE_NAME_PATTERNS.policyType }), Type.Null()]),
    policyVersion: Type.Union([Type.Integer({ minimum: 0, maximum: 9999 }), Type.Null()]),
    policyHash: Type.Union([Type.String({ pattern: '^[0-9a-f]{64}$' }), Type.Null()]),
    booleans: Type.Record(Type.String({ pattern: BASELINE_NAME_PATTERNS.boolean }), Type.Boolean(), { maxProperties: 4096, additionalProperties: false }),
    modules: Type.Array(Type.String({ pattern: BASELINE_NAME_PATTERNS.module }), { maxItems: 4096 }),
  },
  { additionalProperties: false },
);

/** A part the agent could not read. */
const ReportErrorSchema = Type.Object(
  { error: Type.Object({ code: Type.String({ maxLength: 64 }), message: Type.String({ maxLength: 2000 }) }, { additionalProperties: false }) },
  { additionalProperties: false },
);

const EnforcementActionSchema = Type.Object(
  {
    target: literalUnion(['nftables', 'selinux']),
    action: Type.String({ maxLength: 1000 }),
    changed: Type.String({ maxLength: 4000 }),
    ok: Type.Boolean(),
    error: Type.Optional(Type.String({ maxLength: 2000 })),
  },
  { additionalProperties: false },
);

/** One baseline report as shipped (types.ts BaselineReport); `ruleset` is left to the nftables parser. */
export const BaselineReportSchema = Type.Object(
  {
    version: Type.Literal(1),
    node: Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$' }),
    bootId: Type.String({ pattern: '^[A-Za-z0-9._:-]{1,128}$' }),
    seq: Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }),
    time: Type.String({ pattern: '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+(Z|[+-][0-9]{2}:[0-9]{2})$', maxLength: 40 }),
    baseline: Type.Union([
      Type.Object({ name: Type.String({ pattern: BASELINE_NAME_PATTERNS.baseline }), sha256: Type.String({ pattern: '^[0-9a-f]{64}$' }) }, { additionalProperties: false }),
      Type.Null(),
    ]),
    selinux: Type.Union([Type.Object({ state: SelinuxStateSchema }, { additionalProperties: false }), ReportErrorSchema]),
    nftables: Type.Union([
      Type.Object({ ruleset: Type.Unknown(), digest: Type.String({ pattern: '^[0-9a-f]{64}$' }), exposure: ExposureSchema }, { additionalProperties: false }),
      ReportErrorSchema,
    ]),
    changes: Type.Array(Type.String({ maxLength: 1000 }), { maxItems: 1000 }),
    enforcement: Type.Array(EnforcementActionSchema, { maxItems: 256 }),
  },
  { additionalProperties: false },
);

const DOCUMENT = defineDocument(BaselineReportSchema, WHAT, CODE);

/** The deepest a report nests (the schema layer's document cap). */
const MAX_DEPTH = 64;


/** The bytes of a report as extended and shipped (canonical JSON, UTF-8); a report that would not decode is refused here. */
export function encodeReport(report: BaselineReport): Uint8Array {
  DOCUMENT.parse(report);
  const bytes = new TextEncoder().encode(canonicalJson(report, { what: WHAT, code: CODE, maxDepth: MAX_DEPTH }));
  if (bytes.length > MAX_REPORT_BYTES) throw new BulwarkError(CODE, `${WHAT} is larger than ${MAX_REPORT_BYTES} bytes`, { size: bytes.length });
  return bytes;
}

/** Parses shipped report bytes; a BulwarkError (BASELINE_REPORT_INVALID) for anything malformed. Untrusted until its chain replays to a quote. */
export function decodeReport(bytes: Uint8Array): BaselineReport {
  const report = DOCUMENT.parse(parseJsonText(bytes, WHAT, CODE, undefined, MAX_REPORT_BYTES));
  if (report.nftables !== undefined && 'exposure' in report.nftables) {
    const e = report.nftables.exposure;
    const ranges = [...e.tcp, ...e.udp, ...e.conditional.map((c) => c.ports)];
    for (const r of ranges) if (r.from > r.to) throw new BulwarkError(CODE, `${WHAT}: exposure range ${r.from}-${r.to} runs backwards`, { path: '/nftables/exposure' });
  }
  return report;
}

function sha256(...parts: readonly Uint8Array[]): Uint8Array {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
}

/** The PCR value after extending `report` (sha256 bank): sha256(pcr || sha256(report)), as TPM2_PCR_Extend. */
export function extendReport(pcr: Uint8Array, report: Uint8Array): Uint8Array {
  if (pcr.length !== 32) throw new BulwarkError('INTERNAL', `a sha256 PCR has 32 bytes, not ${pcr.length}`);
  return sha256(pcr, sha256(report));
}

/** The result of a chain replay: the value reached, or the BASELINE_REPLAY_MISMATCH finding. */
export type ReportChainReplay = { readonly ok: true; readonly value: Uint8Array } | { readonly ok: false; readonly value: Uint8Array; readonly finding: Finding };

/**
 * Extends `reports` (encoded, in chain order) onto `start` (32 zero bytes at a boot's first
 * report, else the value the controller last verified) and compares with the quoted PCR.
 */
export function replayReportChain(start: Uint8Array, reports: readonly Uint8Array[], quoted: Uint8Array): ReportChainReplay {
  let value = start;
  for (const r of reports) value = extendReport(value, r);
  if (value.length === quoted.length && value.every((b, i) => b === quoted[i])) return { ok: true, value };
  return {
    ok: false,
    value,
    finding: finding('BASELINE_REPLAY_MISMATCH', `${reports.length} baseline reports replay to ${toHex(value)}, the quote says ${toHex(quoted)}`, {
      reports: reports.length,
      replayed: toHex(value),
      quoted: toHex(quoted),
    }),
  };
}
