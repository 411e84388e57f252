// @svmsim/rdma-odp: the RDMA NIC actor (mlx5 with ODP), its remote peer, and their protocols.
export * from './rdma-protocol.js';
export { createRdma, RDMA_MR_KINDS, type MrKindName, type RdmaConfig } from './rdma-actor.js';
export { createPeer, PEER_BASE, PEER_RKEY, type PeerConfig } from './peer.js';
export { DEFAULT_NIC_COSTS, type NicCosts, type NicStats } from './nic.js';
export { DEFAULT_QP_ATTRS, RNR_TIMER_NS } from './ib-wire.js';
export { MLX5_IMR_MTT_SIZE } from './mr.js';
