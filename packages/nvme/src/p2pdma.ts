// PCI peer-to-peer distance rules: drivers/pci/p2pdma.c calc_map_type_and_dist,
// pci_p2pdma_distance_many and host_bridge_whitelist, followed in v6.6. Two devices that share an
// upstream bridge (a switch) talk by bus address unless an ACS-redirecting port on the path sends
// the traffic up to the host bridge. Without a common upstream bridge (different root ports, or
// different host bridges) the traffic goes through the host bridge, which is allowed only when
// the CPU supports it (cpu_supports_p2pdma: AMD Zen) or both ends sit behind the same whitelisted
// host bridge; otherwise the map type is NOT_SUPPORTED and a P2P mapping fails with -EREMOTEIO.

export type P2pMapType = 'PCI_P2PDMA_MAP_NOT_SUPPORTED' | 'PCI_P2PDMA_MAP_BUS_ADDR' | 'PCI_P2PDMA_MAP_THRU_HOST_BRIDGE';

/** A node of the scenario's PCI topology: a root port, a switch port or an endpoint. */
export interface PciNode {
  readonly name: string;
  /** The upstream bridge (pci_upstream_bridge); undefined for a root port. */
  readonly upstream?: string;
  /** The host bridge (root complex) this node's root port hangs from. */
  readonly hostBridge: string;
  /** The port redirects P2P requests upstream (pci_bridge_has_acs_redir). */
  readonly acsRedirect?: boolean;
}

export interface PciTopology {
  readonly nodes: ReadonlyMap<string, PciNode>;
  /** Host bridges on host_bridge_whitelist (Intel Xeon E5/Skylake-SP root complexes). */
  readonly whitelistedHostBridges: ReadonlySet<string>;
  /** cpu_supports_p2pdma(): an AMD Zen (family ≥ 0x17) CPU. */
  readonly cpuSupportsP2pdma: boolean;
}

export function pciTopology(nodes: readonly PciNode[], whitelisted: readonly string[] = [], cpuSupportsP2pdma = false): PciTopology {
  const map = new Map<string, PciNode>();
  for (const n of nodes) {
    if (map.has(n.name)) throw new Error(`pci topology: node "${n.name}" named twice`);
    map.set(n.name, n);
  }
  for (const n of nodes) {
    if (n.upstream !== undefined && !map.has(n.upstream)) throw new Error(`pci topology: node "${n.name}" has unknown upstream "${n.upstream}"`);
  }
  return { nodes: map, whitelistedHostBridges: new Set(whitelisted), cpuSupportsP2pdma };
}

function node(topo: PciTopology, name: string): PciNode {
  const n = topo.nodes.get(name);
  if (!n) throw new Error(`pci topology: no device "${name}"`);
  return n;
}

function upstream(topo: PciTopology, n: PciNode): PciNode | undefined {
  return n.upstream === undefined ? undefined : node(topo, n.upstream);
}

/** calc_map_type_and_dist: the map type and the distance (hops to the common upstream bridge). */
export function calc_map_type_and_dist(topo: PciTopology, providerName: string, clientName: string): { map: P2pMapType; dist: number } {
  const provider = node(topo, providerName);
  const client = node(topo, clientName);
  if (provider === client) return { map: 'PCI_P2PDMA_MAP_BUS_ADDR', dist: 0 };
  let acsCnt = 0;
  let distA = 0;
  let common: PciNode | undefined;
  let distB = 0;
  for (let a: PciNode | undefined = provider; a && !common; a = upstream(topo, a)) {
    if (a.acsRedirect) acsCnt++;
    distB = 0;
    for (let bb: PciNode | undefined = client; bb; bb = upstream(topo, bb)) {
      if (bb === a) {
        common = a;
        break;
      }
      distB++;
    }
    if (!common) distA++;
  }
  if (common) {
    for (let bb: PciNode | undefined = client; bb && bb !== common; bb = upstream(topo, bb)) if (bb.acsRedirect) acsCnt++;
    if (acsCnt === 0) return { map: 'PCI_P2PDMA_MAP_BUS_ADDR', dist: distA + distB };
  }
  const dist = common ? distA + distB : distA + distB;
  const sameWhitelisted = provider.hostBridge === client.hostBridge && topo.whitelistedHostBridges.has(provider.hostBridge);
  if (!topo.cpuSupportsP2pdma && !sameWhitelisted) return { map: 'PCI_P2PDMA_MAP_NOT_SUPPORTED', dist };
  return { map: 'PCI_P2PDMA_MAP_THRU_HOST_BRIDGE', dist };
}

/** pci_p2pdma_distance_many: -1 if any client cannot reach the provider, else the summed distance. */
export function pci_p2pdma_distance_many(topo: PciTopology, provider: string, clients: readonly string[]): number {
  let total = 0;
  for (const c of clients) {
    const { map, dist } = calc_map_type_and_dist(topo, provider, c);
    if (map === 'PCI_P2PDMA_MAP_NOT_SUPPORTED') return -1;
    total += dist;
  }
  return total;
}

/** Where a controller sits (a scenario's `slot`). */
export type PciSlot = 'switch' | 'switch-acs' | 'root-port';

/**
 * The machine's PCI tree from its controllers' slots, under one host bridge rc0:
 *   rc0 ── rp0 ── sw-up ─┬─ sw-dp-<id> ── <id>        slot switch (no ACS redirect)
 *                        └─ sw-dp-<id> ── <id>        slot switch-acs (the port redirects P2P upstream)
 *   rc0 ── rp-<id> ── <id>                           slot root-port (a root port of its own)
 */
export function slotTopologyNodes(devices: readonly { id: string; slot: PciSlot }[]): PciNode[] {
  const nodes: PciNode[] = [{ name: 'rp0', hostBridge: 'rc0' }, { name: 'sw-up', upstream: 'rp0', hostBridge: 'rc0' }];
  for (const d of devices) {
    if (d.slot === 'root-port') nodes.push({ name: `rp-${d.id}`, hostBridge: 'rc0' }, { name: d.id, upstream: `rp-${d.id}`, hostBridge: 'rc0' });
    else nodes.push({ name: `sw-dp-${d.id}`, upstream: 'sw-up', hostBridge: 'rc0', acsRedirect: d.slot === 'switch-acs' }, { name: d.id, upstream: `sw-dp-${d.id}`, hostBridge: 'rc0' });
  }
  return nodes;
}
