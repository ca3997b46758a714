/**
 * One node per TPM: the index EK name → node id (KV `bulwark_ek`). A binding is created
 * once, when an EK first completes enrollment (or an admin pre-approves it), with a
 * revision-checked create, so two replicas enrolling one EK under two ids cannot both
 * win. It changes only by an admin's audited move.
 */
import { Type, type Static } from '@sinclair/typebox';
import { StorageType, type JetStreamClient, type KV } from 'nats';
import { BulwarkError, toBulwarkError } from '../../lib/index.js';
import { defineDocument, literalUnion } from '../../lib/schema/index.js';
import { bucketKeys, kvLimits } from '../state/index.js';

export const EK_BINDING_BUCKET = 'bulwark_ek';

/** An EK's node (KV `bulwark_ek`, key: the EK's TPM Name in hex). */
export const EkBindingSchema = Type.Object(
  {
    version: Type.Literal(1),
    nodeId: Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$' }),
    /** `bound`: the EK enrolled as this node; `approved`: an admin let it enroll as this node (enrollment: approve). */
    status: literalUnion(['bound', 'approved']),
    at: Type.String({ maxLength: 64 }),
  },
  { additionalProperties: false },
);

export type EkBinding = Static<typeof EkBindingSchema>;

const EK_BINDING = defineDocument(EkBindingSchema, 'EK binding', 'STORE_CORRUPT');

const enc = new TextEncoder();
const EK_NAME = /^[0-9a-f]{4,256}$/;

function isConflict(err: unknown): boolean {
  const msg = err instanceof Error ? err.message : String(err);
  return /wrong last sequence|key exists|10071|10164/i.test(msg);
}

/** The EK → node index. Every read is validated; a corrupt binding refuses (STORE_CORRUPT), never rebinds. */
export class EkBindings {
  private readonly kv: KV;
  private readonly js: JetStreamClient;

  private constructor(kv: KV, js: JetStreamClient) {
    this.kv = kv;
    this.js = js;
  }

  static async open(js: JetStreamClient): Promise<EkBindings> {
    try {
      return new EkBindings(await js.views.kv(EK_BINDING_BUCKET, { history: 5, storage: StorageType.File, maxValueSize: 1024, ...kvLimits('bulwark_ek') }), js);
    } catch (err) {
      throw toBulwarkError(err, 'NATS_FAILED', 'cannot open the EK binding bucket');
    }
  }

  /** The binding of an EK (by its Name in hex) and its revision; null when it has none. */
  async get(ekName: string): Promise<{ readonly binding: EkBinding; readonly revision: number } | null> {
    if (!EK_NAME.test(ekName)) throw new BulwarkError('USAGE', 'an EK name is the hex of its TPM Name');
    const entry = await this.kv.get(ekName);
    if (entry === null || entry.operation !== 'PUT') return null;
    return { binding: EK_BINDING.parseJson(entry.value, `${EK_BINDING_BUCKET}/${ekName}`), revision: entry.revision };
  }

  /**
   * Binds an EK to `nodeId` unless it is bound to another node (EK_BOUND_TO_OTHER_NODE);
   * an `approved` binding for this node becomes `bound`. Revision-checked: a racing
   * replica's binding is read back and honoured.
   */
  async bind(ekName: string, nodeId: string, now: number): Promise<void> {
    for (let attempt = 0; attempt < 3; attempt++) {
      const current = await this.get(ekName);
      if (current !== null && current.binding.nodeId !== nodeId) throw boundElsewhere(ekName, current.binding.nodeId, nodeId);
      if (current !== null && current.binding.status === 'bound') return;
      const value = enc.encode(JSON.stringify({ version: 1, nodeId, status: 'bound', at: new Date(now).toISOString() } satisfies EkBinding));
      try {
        if (current === null) await this.kv.create(ekName, value);
        else await this.kv.update(ekName, value, current.revision);
        return;
      } catch (err) {
        if (!isConflict(err)) throw toBulwarkError(err, 'NATS_FAILED', 'cannot store the EK binding');
      }
    }
    throw new BulwarkError('STORE_CONFLICT', `the binding of EK ${ekName.slice(0, 16)}... kept changing`);
  }

  /** Writes an admin's decision (approve or move), checked against the revision it was read at (0: must not exist). */
  async put(ekName: string, binding: EkBinding, revision: number): Promise<void> {
    const value = enc.encode(JSON.stringify(binding));
    try {
      if (revision === 0) await this.kv.create(ekName, value);
      else await this.kv.update(ekName, value, revision);
    } catch (err) {
      if (isConflict(err)) throw new BulwarkError('STORE_CONFLICT', 'the EK binding changed meanwhile; try again');
      throw toBulwarkError(err, 'NATS_FAILED', 'cannot store the EK binding');
    }
  }

  /** The EK bound to a node id, if any (a scan: bindings are few and this is an admin path). */
  async ekOf(nodeId: string): Promise<string | null> {
    for (const key of await bucketKeys(await this.js.jetstreamManager(false), EK_BINDING_BUCKET)) {
      const b = await this.get(key).catch(() => null);
      if (b !== null && b.binding.nodeId === nodeId) return key;
    }
    return null;
  }
}

/** The refusal for an EK enrolling under another id than its own. */
export function boundElsewhere(ekName: string, boundTo: string, asked: string): BulwarkError {
  return new BulwarkError(
    'EK_BOUND_TO_OTHER_NODE',
    `this TPM (EK ${ekName.slice(0, 16)}...) is node ${boundTo}; it cannot enroll as ${asked} unless an admin moves it (bulwarkctl move ${boundTo} --to ${asked})`,
    { ekName, boundTo, nodeId: asked },
  );
}
