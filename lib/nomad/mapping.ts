/**
 * Which Bulwark node a Nomad node is. By default a Nomad node's name is the Bulwark node id;
 * an explicit map (Bulwark node id → Nomad node name or ID) overrides that for the ids it
 * names. Ambiguity fails closed: a Nomad node claimed by two Bulwark nodes, or two live Nomad
 * nodes claiming one Bulwark node (a second host registering under a trusted node's name),
 * map to nothing and are kept ineligible. Pure.
 */
import { BulwarkError } from '../errors.js';

/** The Nomad node fields the mapping reads. */
export interface MappableNomadNode {
  readonly id: string;
  readonly name: string;
  readonly status: string;
}

/** The Bulwark node a Nomad node is, or why it is none. */
export type MappedNode = { readonly bulwarkId: string } | { readonly bulwarkId: null; readonly conflict: string | null };

/** The agent-id ↔ Nomad node mapping. */
export class NodeMapping {
  private readonly explicit: ReadonlyMap<string, string>;

  private constructor(explicit: ReadonlyMap<string, string>) {
    this.explicit = explicit;
  }

  /**
   * Builds the mapping from an explicit map (Bulwark node id → Nomad node name or ID). Two ids
   * mapped to one Nomad node, or an empty target, is NOMAD_NODE_MAPPING_CONFLICT.
   */
  static create(explicit: Readonly<Record<string, string>> = {}): NodeMapping {
    const map = new Map<string, string>();
    const owner = new Map<string, string>();
    for (const [bulwarkId, target] of Object.entries(explicit)) {
      if (bulwarkId === '' || target === '') {
        throw new BulwarkError('NOMAD_NODE_MAPPING_CONFLICT', 'a node mapping entry has an empty Bulwark id or Nomad node', { bulwarkId, target });
      }
      const other = owner.get(target);
      if (other !== undefined) {
        throw new BulwarkError('NOMAD_NODE_MAPPING_CONFLICT', `Bulwark nodes ${other} and ${bulwarkId} both map to Nomad node ${target}`, { target });
      }
      owner.set(target, bulwarkId);
      map.set(bulwarkId, target);
    }
    return new NodeMapping(map);
  }

  /**
   * The Bulwark ids that claim a Nomad node: explicit entries naming its ID or name; its name
   * (the default) when no explicit entry claims it, or when a Bulwark node of that id exists
   * (then both claim it: a conflict). An id with an explicit entry never claims by name.
   */
  private claims(node: MappableNomadNode, known: ReadonlySet<string>): string[] {
    const out: string[] = [];
    for (const [bulwarkId, target] of this.explicit) {
      if (target === node.id || target === node.name) out.push(bulwarkId);
    }
    const byName = node.name;
    if (byName !== '' && !this.explicit.has(byName) && !out.includes(byName) && (out.length === 0 || known.has(byName))) out.push(byName);
    return out;
  }

  /**
   * Maps every Nomad node to its Bulwark node id, or to null with the conflict that prevents it.
   * `known` are the Bulwark node ids that exist (records in the store).
   */
  resolve(nodes: readonly MappableNomadNode[], known: ReadonlySet<string> = new Set()): Map<string, MappedNode> {
    const out = new Map<string, MappedNode>();
    const byBulwarkId = new Map<string, MappableNomadNode[]>();
    for (const node of nodes) {
      const claims = this.claims(node, known);
      if (claims.length > 1) {
        out.set(node.id, { bulwarkId: null, conflict: `Nomad node ${node.name} (${node.id}) is claimed by Bulwark nodes ${claims.join(', ')}` });
        continue;
      }
      const claim = claims[0];
      if (claim === undefined) {
        out.set(node.id, { bulwarkId: null, conflict: null });
        continue;
      }
      const list = byBulwarkId.get(claim) ?? [];
      list.push(node);
      byBulwarkId.set(claim, list);
    }
    for (const [bulwarkId, list] of byBulwarkId) {
      // A node that is down for good (reinstalled host, new Nomad node ID) does not block its successor.
      const live = list.filter((n) => n.status !== 'down');
      if (live.length > 1) {
        const names = live.map((n) => `${n.name} (${n.id})`).join(', ');
        for (const n of list) out.set(n.id, { bulwarkId: null, conflict: `Bulwark node ${bulwarkId} is claimed by several live Nomad nodes: ${names}` });
        continue;
      }
      const chosen = live[0] ?? (list.length === 1 ? list[0] : undefined);
      for (const n of list) {
        if (n === chosen) out.set(n.id, { bulwarkId });
        else out.set(n.id, { bulwarkId: null, conflict: `Nomad node ${n.name} (${n.id}) is down and another node claims Bulwark node ${bulwarkId}` });
      }
    }
    return out;
  }

  /** Whether a Nomad node could be the given Bulwark node (used to find nodes when a record changes). */
  couldBe(bulwarkId: string, node: MappableNomadNode, known: ReadonlySet<string> = new Set([bulwarkId])): boolean {
    return this.claims(node, known).includes(bulwarkId);
  }
}
