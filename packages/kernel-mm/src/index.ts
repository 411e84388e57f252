// @svmsim/kernel-mm: the memory manager actor `mm` and its protocol. Drivers import protocol.ts only.
export * from './protocol.js';
export { createMm } from './mm-actor.js';
export { createRamdisk } from './ramdisk.js';
export type { MmConfig, MmCosts } from './kernel.js';
export type * from './oracle-events.js';
// For drivers' unsafe twins: which of their accesses the checker must call stale (no mm state).
export { AckedInvalidations } from './acked-invalidations.js';
