/**
 * Named policies of each kind (measured-boot, runtime, ...) in JetStream KV
 * `bulwark_policies`, and which policy applies to which node: a node's own assignment,
 * else the kind's default. A document is checked by its kind's parser before it is
 * stored, and read back through the same parser, so nothing unchecked reaches an
 * appraiser.
 *
 * Signed policies: with a key set store (the controller's default, `requireSignedPolicies`),
 * a push of a kind with a key set must be a DSSE envelope verified against that kind's set
 * and threshold; no set for the kind refuses the push (KEYSET_MISSING, fail closed). What is
 * stored is the envelope text with the serial of the key set it was accepted under; every
 * read (cached by the stored bytes' digest) parses the envelope again and re-verifies it
 * under that set (kept in `bulwark_keysets`), so a stored record edited behind the
 * controller's back, or one without an envelope, fails closed. Refusals are audited
 * (`policy.refused`, with the code).
 */
import { createHash } from 'node:crypto';
import { Type, type Static } from '@sinclair/typebox';
import { StorageType, type JetStreamClient, type KV } from 'nats';
import { BulwarkError, toBulwarkError } from '../../lib/index.js';
import { defineDocument, parseJsonText } from '../../lib/schema/index.js';
import { PAYLOAD_TYPE_OF_KIND, isKeySetKind, verifyWithKeySet, type KeySetKind } from '../../lib/signing/index.js';
import { STREAM_LIMITS, enforceStreamLimits, kvLimits } from '../state/index.js';
import type { KeySetStore } from './keyset-store.js';

export const POLICY_BUCKET = 'bulwark_policies' as const;

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const KIND = /^[a-z][a-z-]{0,31}$/;
/** Target of a default assignment (node ids cannot start with "_"). */
const DEFAULT_TARGET = '_default';
/** Prefix of group targets ("_group.<name>"; node ids cannot start with "_"). */
const GROUP_PREFIX = '_group.';
const GROUP = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;
const MAX_DOCUMENT = 8 * 1024 * 1024;

const enc = new TextEncoder();
const dec = new TextDecoder();

/** How a kind of policy is checked; `parse` throws a BulwarkError naming what is wrong. `K`: the kind's literal name. */
export interface PolicyKind<T, K extends string = string> {
  readonly kind: K;
  parse(document: unknown): T;
  /** Documents this kind already parsed, by sha256 of their stored bytes (bounded by the store). */
  readonly parsed: Map<string, T>;
  /** True for a policy that accepts everything of its kind (measured-boot `acceptAll`): storing or assigning one is audited as such. */
  acceptsAll?(policy: T): boolean;
}

/** Where policy pushes and assignments are audited (controller/state's AdminAudit). */
export interface PolicyAuditSink {
  record(action: 'policy.put' | 'policy.assign' | 'policy.refused', subject: string, details: Readonly<Record<string, string | number | boolean>>): Promise<unknown>;
}

/** A stored policy: its name, digest and the parsed document. */
export interface StoredPolicy<T> {
  readonly kind: string;
  readonly name: string;
  readonly sha256: string;
  readonly revision: number;
  readonly updatedAt: string;
  readonly policy: T;
  /** The DSSE envelope (JSON text) the policy was pushed as (re-verified on this read); absent for a store without signing. */
  readonly envelope?: string;
}

export interface PolicySummary {
  readonly kind: string;
  readonly name: string;
  readonly sha256: string;
  readonly revision: number;
  readonly updatedAt: string;
  /** Node ids assigned to it; "*" when it is the kind's default. */
  readonly assignedTo: readonly string[];
}

function checkName(name: string): string {
  if (!NAME.test(name)) throw new BulwarkError('USAGE', `policy name ${JSON.stringify(name.slice(0, 70))} must be 1-64 characters of [A-Za-z0-9._-]`);
  return name;
}

function checkGroup(group: string): string {
  if (!GROUP.test(group)) throw new BulwarkError('USAGE', `group name ${JSON.stringify(group.slice(0, 70))} must be 1-64 characters of [A-Za-z0-9_-]`);
  return group;
}

function checkKind(kind: string, kinds: ReadonlyMap<string, PolicyKind<unknown>>): string {
  if (!KIND.test(kind) || !kinds.has(kind)) {
    throw new BulwarkError('USAGE', `unknown policy kind ${JSON.stringify(kind.slice(0, 40))}; known: ${[...kinds.keys()].join(', ') || 'none'}`);
  }
  return kind;
}

/** A stored policy (KV `bulwark_policies`, key policy.<kind>.<name>); written without `version` before it existed. */
export const PolicyEnvelopeSchema = Type.Object(
  {
    version: Type.Optional(Type.Literal(1)),
    kind: Type.String({ pattern: KIND.source }),
    name: Type.String({ pattern: NAME.source }),
    updatedAt: Type.String({ maxLength: 64 }),
    /** The policy document itself, checked by its kind's parser on every read. */
    document: Type.Unknown(),
    /** The DSSE envelope (JSON text) the document is the signed payload of; absent for a store without signing. */
    envelope: Type.Optional(Type.String({ maxLength: 2 * MAX_DOCUMENT })),
    /** The serial of the key set the envelope was accepted under (re-verified under it on read). */
    keysetSerial: Type.Optional(Type.Integer({ minimum: 1 })),
  },
  { additionalProperties: false },
);

export type PolicyEnvelope = Static<typeof PolicyEnvelopeSchema>;

const POLICY_ENVELOPE = defineDocument(PolicyEnvelopeSchema, 'stored policy', 'STORE_CORRUPT');

/** Decodes a stored policy envelope (the document inside is checked by its kind's parser): STORE_CORRUPT naming the JSON path. */
export function decodeStoredPolicy(bytes: Uint8Array, key: string): PolicyEnvelope {
  return POLICY_ENVELOPE.parseJson(bytes, `${POLICY_BUCKET}/${key}`);
}

export class PolicyStore {
  private readonly kv: KV;
  private readonly kinds = new Map<string, PolicyKind<unknown>>();
  private readonly audit: PolicyAuditSink | null;
  private readonly keysets: KeySetStore | null;
  private readonly listeners: Array<(kind: string) => Promise<unknown>> = [];

  private constructor(kv: KV, audit: PolicyAuditSink | null, keysets: KeySetStore | null) {
    this.kv = kv;
    this.audit = audit;
    this.keysets = keysets;
  }

  /**
   * `audit`: where every push and assignment is recorded (none: not audited, for unit tests of the store alone).
   * `keysets`: the trusted key sets signed pushes are verified with (none: unsigned documents, for unit tests and `requireSignedPolicies: false`).
   */
  static async open(js: JetStreamClient, audit: PolicyAuditSink | null = null, keysets: KeySetStore | null = null): Promise<PolicyStore> {
    try {
      const kv = await js.views.kv(POLICY_BUCKET, { history: 10, storage: StorageType.File, maxValueSize: MAX_DOCUMENT, ...kvLimits(POLICY_BUCKET) });
      await enforceStreamLimits(await js.jetstreamManager(), `KV_${POLICY_BUCKET}`, STREAM_LIMITS[POLICY_BUCKET]);
      return new PolicyStore(kv, audit, keysets);
    } catch (err) {
      throw toBulwarkError(err, 'NATS_FAILED', 'cannot open the policy bucket');
    }
  }

  /**
   * Runs `listener` after every push or assignment of a policy has taken effect (the
   * verifier judges nodes again under it). It runs in the background: the push does not
   * wait for it, and its failure (logged by the listener) does not undo the push.
   */
  onChange(listener: (kind: string) => Promise<unknown>): void {
    this.listeners.push(listener);
  }

  private changed(kind: string): void {
    for (const l of this.listeners) void l(kind).catch(() => undefined);
  }

  /** Makes a kind of policy known (appraisers register theirs at start). */
  register<T>(kind: PolicyKind<T>): void {
    this.kinds.set(kind.kind, kind);
  }

  get knownKinds(): string[] {
    return [...this.kinds.keys()];
  }

  /** Whether pushes of `kind` must be signed. */
  private signed(kind: string): kind is KeySetKind {
    return this.keysets !== null && isKeySetKind(kind);
  }

  /**
   * The document of a push: with signing, the verified payload of the envelope `text` and
   * the serial of the key set it verified under; refusals audited as `policy.refused`.
   */
  private async verifiedDocument(kind: string, name: string, text: string, now: number): Promise<{ document: unknown; envelope?: string; keysetSerial?: number }> {
    const keysets = this.keysets;
    if (keysets === null || !isKeySetKind(kind)) return { document: parseJsonText(text, `policy ${name}`, 'CONFIG_INVALID') };
    try {
      const value = parseJsonText(text, `envelope of policy ${name}`, 'ENVELOPE_MALFORMED');
      if (typeof value !== 'object' || value === null || !('payloadType' in value) || !('signatures' in value)) {
        throw new BulwarkError(
          'ENVELOPE_REQUIRED',
          `${kind} policies must be signed: this is an unsigned document; sign it (bulwarkctl sign FILE --key URI --payload-type ${PAYLOAD_TYPE_OF_KIND[kind]} -o ENVELOPE) and push the envelope`,
          { kind },
        );
      }
      const { keyset } = await keysets.require(kind);
      const verified = verifyWithKeySet(text, keyset, now);
      const document = parseJsonText(verified.payload, `signed policy ${name}`, 'CONFIG_INVALID');
      // The kind's parser runs here too, so a signed but invalid document is refused (and audited) before anything is stored.
      this.kinds.get(kind)?.parse(document);
      return { document, envelope: text, keysetSerial: keyset.document.serial };
    } catch (err) {
      const e = toBulwarkError(err, 'INTERNAL', 'the signed policy could not be checked');
      await this.audit?.record('policy.refused', `${kind}/${name}`, { kind, name, code: e.code, message: e.message.slice(0, 1000) });
      throw e;
    }
  }

  /** Re-verifies a stored envelope under the key set it was accepted with: the signed document, or a fail-closed error. */
  private async reverified(kind: KeySetKind, env: PolicyEnvelope, key: string): Promise<unknown> {
    const keysets = this.keysets;
    if (keysets === null) return env.document;
    if (env.envelope === undefined || env.keysetSerial === undefined) {
      throw new BulwarkError('ENVELOPE_REQUIRED', `${POLICY_BUCKET}/${key} holds no signed envelope: push the policy again, signed`, { key });
    }
    const keyset = await keysets.bySerial(kind, env.keysetSerial);
    if (keyset === null) throw new BulwarkError('KEYSET_MISSING', `${POLICY_BUCKET}/${key} was accepted under ${kind} key set ${env.keysetSerial}, which is not stored`, { key });
    // Verified as of the key set itself (not now): a set that expired later does not void what it accepted.
    const verified = verifyWithKeySet(env.envelope, keyset, keyset.expiresAt === null ? Date.now() : Math.min(Date.now(), keyset.expiresAt - 1));
    return parseJsonText(verified.payload, `signed policy ${key}`, 'STORE_CORRUPT');
  }

  /** Checks and stores a policy document (JSON text, or with signing a DSSE envelope of it); returns its digest and revision. */
  async put(kind: string, name: string, documentText: string, now = Date.now()): Promise<PolicySummary> {
    checkKind(kind, this.kinds);
    checkName(name);
    if (documentText.length > MAX_DOCUMENT) throw new BulwarkError('USAGE', `policy documents are limited to ${MAX_DOCUMENT} bytes`);
    const { document, ...signed } = await this.verifiedDocument(kind, name, documentText, now);
    const acceptAll = this.acceptsAll(kind, document);
    const updatedAt = new Date(now).toISOString();
    const bytes = enc.encode(JSON.stringify({ version: 1, kind, name, updatedAt, document, ...signed } satisfies PolicyEnvelope));
    // Audited before it takes effect: a push that cannot be recorded is not made.
    await this.audit?.record('policy.put', `${kind}/${name}`, {
      kind,
      name,
      acceptAll,
      sha256: createHash('sha256').update(bytes).digest('hex'),
      ...(signed.keysetSerial === undefined ? {} : { keysetSerial: signed.keysetSerial }),
    });
    const revision = await this.kv.put(`policy.${kind}.${name}`, bytes);
    this.changed(kind);
    return { kind, name, sha256: createHash('sha256').update(bytes).digest('hex'), revision, updatedAt, assignedTo: await this.assignedTo(kind, name) };
  }

  /** Parses a document by its kind (refusing a bad one) and says whether it accepts everything. */
  private acceptsAll(kind: string, document: unknown): boolean {
    const k = this.kinds.get(kind);
    if (k === undefined) return false;
    const policy = k.parse(document);
    return k.acceptsAll?.(policy) ?? false;
  }

  /** A stored policy, parsed by its kind; null when there is none by that name. */
  async get<T>(kind: PolicyKind<T>, name: string): Promise<StoredPolicy<T> | null> {
    const entry = await this.kv.get(`policy.${kind.kind}.${checkName(name)}`);
    if (entry === null || entry.operation !== 'PUT') return null;
    const sha256 = createHash('sha256').update(entry.value).digest('hex');
    const env = decodeStoredPolicy(entry.value, entry.key);
    let policy = kind.parsed.get(sha256);
    if (policy === undefined) {
      policy = kind.parse(this.signed(kind.kind) && isKeySetKind(kind.kind) ? await this.reverified(kind.kind, env, entry.key) : env.document);
      if (kind.parsed.size > 256) kind.parsed.clear();
      kind.parsed.set(sha256, policy);
    }
    return { kind: kind.kind, name: env.name, sha256, revision: entry.revision, updatedAt: env.updatedAt, policy, ...(env.envelope === undefined ? {} : { envelope: env.envelope }) };
  }

  /** The raw stored document (for `bulwarkctl policy show`). */
  async document(kind: string, name: string): Promise<unknown> {
    checkKind(kind, this.kinds);
    const entry = await this.kv.get(`policy.${kind}.${checkName(name)}`);
    if (entry === null || entry.operation !== 'PUT') throw new BulwarkError('NODE_NOT_FOUND', `no ${kind} policy named ${name}`);
    const env = decodeStoredPolicy(entry.value, entry.key);
    return this.signed(kind) && isKeySetKind(kind) ? this.reverified(kind, env, entry.key) : env.document;
  }

  /**
   * Assigns a policy to a node, to a node group ({ group }), or (null) makes it the kind's
   * default; name null removes the assignment.
   */
  async assign(kind: string, name: string | null, target: string | { readonly group: string } | null): Promise<void> {
    checkKind(kind, this.kinds);
    const targetName = target === null ? DEFAULT_TARGET : typeof target === 'string' ? target : `${GROUP_PREFIX}${checkGroup(target.group)}`;
    const key = `assign.${kind}.${targetName}`;
    const shownTarget = target === null ? 'default' : typeof target === 'string' ? `node:${target}` : `group:${target.group}`;
    if (name === null) {
      await this.audit?.record('policy.assign', `${kind}/-`, { kind, target: shownTarget, removed: true });
      await this.kv.delete(key);
      this.changed(kind);
      return;
    }
    checkName(name);
    const exists = await this.kv.get(`policy.${kind}.${name}`);
    if (exists === null || exists.operation !== 'PUT') throw new BulwarkError('NODE_NOT_FOUND', `no ${kind} policy named ${name}`);
    const acceptAll = this.acceptsAll(kind, decodeStoredPolicy(exists.value, exists.key).document);
    await this.audit?.record('policy.assign', `${kind}/${name}`, { kind, name, target: shownTarget, acceptAll });
    await this.kv.put(key, enc.encode(name));
    this.changed(kind);
  }

  /** Puts a node in a group (an operator's decision; a host cannot choose its own), or out of any (null). */
  async setGroup(nodeId: string, group: string | null): Promise<void> {
    if (group === null) await this.kv.delete(`group.${nodeId}`);
    else await this.kv.put(`group.${nodeId}`, enc.encode(checkGroup(group)));
  }

  async groupOf(nodeId: string): Promise<string | null> {
    const entry = await this.kv.get(`group.${nodeId}`);
    return entry === null || entry.operation !== 'PUT' || entry.value.length === 0 ? null : dec.decode(entry.value);
  }

  /** The policy that applies to a node: its own assignment, else its group's, else the kind's default, else null. */
  async resolve<T>(kind: PolicyKind<T>, nodeId: string): Promise<StoredPolicy<T> | null> {
    const group = await this.groupOf(nodeId);
    for (const target of [nodeId, ...(group === null ? [] : [`${GROUP_PREFIX}${group}`]), DEFAULT_TARGET]) {
      const entry = await this.kv.get(`assign.${kind.kind}.${target}`);
      if (entry !== null && entry.operation === 'PUT' && entry.value.length > 0) {
        const policy = await this.get(kind, dec.decode(entry.value));
        // An assignment to a policy that was deleted applies nothing; the caller fails closed.
        return policy;
      }
    }
    return null;
  }

  /** Every key matching `filter`, collected before any other KV call (nested iteration loses keys). */
  private async keys(filter: string): Promise<string[]> {
    const keys: string[] = [];
    for await (const key of await this.kv.keys(filter)) keys.push(key);
    return keys.sort();
  }

  private async assignedTo(kind: string, name: string): Promise<string[]> {
    const out: string[] = [];
    for (const key of await this.keys(`assign.${kind}.>`)) {
      const entry = await this.kv.get(key);
      if (entry === null || entry.operation !== 'PUT' || dec.decode(entry.value) !== name) continue;
      const target = key.slice(`assign.${kind}.`.length);
      out.push(target === DEFAULT_TARGET ? '*' : target.startsWith(GROUP_PREFIX) ? `group:${target.slice(GROUP_PREFIX.length)}` : target);
    }
    return out.sort();
  }

  async list(kind?: string): Promise<PolicySummary[]> {
    const out: PolicySummary[] = [];
    const filter = kind === undefined ? 'policy.>' : `policy.${checkKind(kind, this.kinds)}.>`;
    for (const key of await this.keys(filter)) {
      const entry = await this.kv.get(key);
      if (entry === null || entry.operation !== 'PUT') continue;
      const env = decodeStoredPolicy(entry.value, key);
      out.push({
        kind: env.kind,
        name: env.name,
        sha256: createHash('sha256').update(entry.value).digest('hex'),
        revision: entry.revision,
        updatedAt: env.updatedAt,
        assignedTo: await this.assignedTo(env.kind, env.name),
      });
    }
    return out.sort((a, b) => `${a.kind}/${a.name}`.localeCompare(`${b.kind}/${b.name}`));
  }
}
