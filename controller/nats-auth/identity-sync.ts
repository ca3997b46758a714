/**
 * Keeps a nats-server's users in line with the node records in KV: every node whose record
 * holds an nkey public key may connect (limited to its own subjects); a node whose record is
 * removed, replaced with another key, or unreadable loses its access at the next reload.
 * The set comes from the shared KV, never from one replica's memory, so every replica (and
 * whoever runs an external server) renders the same users.
 */
import { parseNatsNodeId, checkNkeyUserPublicKey, type NodeNatsIdentity } from '../../lib/nats-auth/index.js';
import { errorFields, type Logger } from '../../daemon/index.js';

/**
 * The node records' NATS keys as they change: (node id, key; null when the node has none or
 * is gone; undefined when its record cannot be read, which keeps the key known before).
 */
export type NodeKeyWatch = (onChange: (nodeId: string, publicKey: string | null | undefined) => void, onCaughtUp: () => void) => () => void;

/**
 * Follows `watch` and calls `apply` with the full identity list whenever it changes (after
 * the initial catch-up), one call at a time; a change during a call is applied after it.
 */
export class NatsIdentitySync {
  private readonly keys = new Map<string, string>();
  private readonly apply: (nodes: readonly NodeNatsIdentity[]) => Promise<void>;
  private readonly log: Logger;
  private readonly watch: NodeKeyWatch;
  private stopWatch: (() => void) | null = null;
  private caughtUp = false;
  private applying: Promise<void> | null = null;
  private dirty = false;
  private appliedText = '';
  /** Number of applied changes (tests wait on it). */
  applied = 0;

  constructor(opts: { readonly watch: NodeKeyWatch; readonly apply: (nodes: readonly NodeNatsIdentity[]) => Promise<void>; readonly log: Logger }) {
    this.watch = opts.watch;
    this.apply = opts.apply;
    this.log = opts.log;
  }

  /** Starts following; resolves once the current records are applied. */
  async start(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.stopWatch = this.watch(
        (nodeId, key) => {
          if (key === undefined) return;
          if (key === null) this.keys.delete(nodeId);
          else this.keys.set(nodeId, key);
          if (this.caughtUp) void this.schedule();
        },
        () => {
          this.caughtUp = true;
          void this.schedule().then(resolve);
        },
      );
    });
  }

  /** The identities to render: valid ids and keys only, each key once (a duplicate is left out for both nodes). */
  private identities(): NodeNatsIdentity[] {
    const byKey = new Map<string, string[]>();
    for (const [nodeId, key] of this.keys) byKey.set(key, [...(byKey.get(key) ?? []), nodeId]);
    const out: NodeNatsIdentity[] = [];
    for (const [key, ids] of byKey) {
      const only = ids.length === 1 ? ids[0] : undefined;
      if (only === undefined) {
        this.log.warn({ nodes: ids }, 'nodes share one NATS key: none of them may connect');
        continue;
      }
      try {
        out.push({ nodeId: parseNatsNodeId(only), publicKey: checkNkeyUserPublicKey(key) });
      } catch (err) {
        this.log.warn({ node: only, ...errorFields(err) }, 'node has no usable NATS identity');
      }
    }
    return out.sort((a, b) => (a.nodeId < b.nodeId ? -1 : a.nodeId > b.nodeId ? 1 : 0));
  }

  private async schedule(): Promise<void> {
    this.dirty = true;
    if (this.applying !== null) return this.applying;
    this.applying = (async () => {
      while (this.dirty) {
        this.dirty = false;
        const nodes = this.identities();
        const text = JSON.stringify(nodes);
        if (text === this.appliedText) continue;
        try {
          await this.apply(nodes);
          this.appliedText = text;
          this.applied++;
          this.log.info({ nodes: nodes.length }, 'NATS node identities applied');
        } catch (err) {
          this.log.error(errorFields(err), 'cannot apply NATS node identities: the server keeps its previous users');
        }
      }
    })().finally(() => {
      this.applying = null;
    });
    return this.applying;
  }

  stop(): void {
    this.stopWatch?.();
    this.stopWatch = null;
  }
}
