// @svmsim/nvme: the NVMe controller (drivers/nvme/host/pci.c, core.c), the O_DIRECT pin path
// (block/bio.c, fs/iomap/direct-io.c) and PCI P2P DMA (drivers/pci/p2pdma.c). See README.md.
export * from './protocol.js';
export * from './cost.js';
export * from './prp.js';
export * from './queues.js';
export * from './namespace.js';
export * from './timeout.js';
export * from './reset.js';
export * from './direct-io.js';
export * from './dma-checker.js';
export * from './dio.js';
export * from './p2pdma.js';
export * from './cmb.js';
export { NvmeController, DEFAULT_NVME_CONFIG, type NvmeConfig, type NvmeFailure, type NvmeStats, type HostTransfer } from './controller.js';
export const PACKAGE = 'nvme';
export { createNvme, latencyFigures, NVME_ACTOR_NAMESPACE_BLOCKS, type NvmeActorConfig } from './nvme-actor.js';
export * from './migration-meets-pins.js';
export * from './scenarios.js';
export * from './blkdev-dio.js';
export * from './dio-protocol.js';
export * from './nvmet-protocol.js';
export * from './nvmet-rdma.js';
