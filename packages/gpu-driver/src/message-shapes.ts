// What the GPU actor accepts from other actors, field by field: the app's ioctls (gpu-protocol.ts),
// mm's invalidate / migrate_to_ram / device_page_free (kernel-mm protocol.ts) and an importer's
// dma-buf calls (dma-buf-protocol.ts). gpu-actor.ts checks each message against it before acting
// (runtime validate.ts): a message that does not fit is answered bad_message (-EINVAL, one line
// naming the field) and changes nothing. A handle, job or attachment that does not exist is the
// driver's own answer (-ENOENT, -EINVAL), as amdgpu's ioctls give it.
import { ADDR_LIMIT, rangeCheck, type MessageShape } from '@svmsim/runtime';
import { MMU_NOTIFY_EVENTS } from '@svmsim/kernel-mm';
import type { DmaBufRequest } from './dma-buf-protocol.js';
import type { GpuRequest } from './gpu-protocol.js';

/** The most BOs one submission names (amdgpu's BO list is bounded too: AMDGPU_BO_LIST_MAX_PRIORITY aside, by the ioctl's size). */
export const SUBMIT_BOS_MAX = 4096;
/** A job's duration: at most 100 days of simulated time (the simulator's clock is exact to 104). */
export const JOB_DURATION_NS_MAX = 100 * 86_400e9;

const bos = (v: unknown): string | undefined => {
  if (!Array.isArray(v)) return `${JSON.stringify(v)} is not a list of BO handles`;
  if (v.length === 0 || v.length > SUBMIT_BOS_MAX) return `${v.length} handles; expected 1 to ${SUBMIT_BOS_MAX}`;
  const i = v.findIndex((h) => !Number.isSafeInteger(h) || h < 0);
  return i < 0 ? undefined : `element ${i}: ${JSON.stringify(v[i])} is not a BO handle`;
};
const pattern = (v: unknown): string | undefined => {
  const p = v as { touch?: unknown; write?: unknown; value?: unknown; shift?: unknown; atomic?: unknown } | null;
  if (p === null || typeof p !== 'object') return `${JSON.stringify(v)} is not an access pattern {touch, write}`;
  if (typeof p.touch !== 'number' || !(p.touch > 0 && p.touch <= 1)) return `touch: ${JSON.stringify(p.touch)} is not a fraction in (0, 1]`;
  if (typeof p.write !== 'boolean') return `write: ${JSON.stringify(p.write)} is not true or false`;
  if (p.value !== undefined && (typeof p.value !== 'number' || !Number.isFinite(p.value))) return `value: ${JSON.stringify(p.value)} is not a finite number`;
  if (p.shift !== undefined && (typeof p.shift !== 'number' || !(p.shift >= 0 && p.shift < 1))) return `shift: ${JSON.stringify(p.shift)} is not a fraction in [0, 1)`;
  if (p.atomic !== undefined && typeof p.atomic !== 'boolean') return `atomic: ${JSON.stringify(p.atomic)} is not a boolean`;
  return undefined;
};
const duration = (v: unknown) => (typeof v === 'number' && v >= 0 && v <= JOB_DURATION_NS_MAX ? undefined : `${JSON.stringify(v)} is not a duration from 0 to ${JOB_DURATION_NS_MAX} ns`);
const queue = (v: unknown) => (v === 'gfx' || v === 'compute' ? undefined : `${JSON.stringify(v)} is not one of gfx, compute`);
const event = (v: unknown) => ((MMU_NOTIFY_EVENTS as readonly unknown[]).includes(v) ? undefined : `${JSON.stringify(v)} is not an mmu_notifier_event (${MMU_NOTIFY_EVENTS.join(', ')})`);

/** The messages from mm a device driver takes (shared with the NIC: rdma-odp's shapes reuse it). */
export const INVALIDATE_SHAPE: MessageShape = {
  fields: { sub: 'id', pid: 'id', start: 'addr', end: 'len', event, blockable: 'bool', owner: 'str|null', cur_seq: 'int' },
  check: rangeCheck('start', 'end'),
};

export const GPU_SHAPES = {
  gpu_bo_create: {
    fields: { pid: 'id', addr: 'addr', pages: 'count', readonly: 'bool?', vram: 'bool?' },
    check: (m) => ((m.pages as number) === 0 ? 'pages: a BO of 0 pages' : (m.addr as number) + (m.pages as number) * 4096 > ADDR_LIMIT ? 'addr + pages pages passes 2^52, the end of the address space' : undefined),
    reply: { type: 'gpu_bo_create_result', handle: 0 },
  },
  gpu_submit: { fields: { bos, pattern, durationNs: duration, queue, hang: 'bool?' }, reply: { type: 'gpu_submit_result', job: 0, pagesWalked: 0, resubmissions: 0 } },
  gpu_wait: { fields: { job: 'id' }, reply: { type: 'gpu_wait_result', job: 0, value: 0 } },
  gpu_bo_free: { fields: { handle: 'id' }, reply: { type: 'gpu_bo_free_result' } },
  gpu_devmem_read: { fields: { dev_pfns: 'f64s' }, reply: { type: 'gpu_devmem_result', values: [] } },
  dma_buf_export: { fields: { handle: 'id' }, reply: { type: 'dma_buf_export_result', fd: 0, pages: 0 } },
  dma_buf_attach: { fields: { fd: 'id', dynamic: 'bool', allow_peer2peer: 'bool' }, reply: { type: 'dma_buf_attach_result', attachment: 0, pages: 0 } },
  dma_buf_detach: { fields: { attachment: 'id' }, reply: { type: 'dma_buf_result' } },
  dma_buf_map_attachment: { fields: { attachment: 'id' }, reply: { type: 'dma_buf_map_result', generation: 0, pinned: false } },
  dma_buf_unmap_attachment: { fields: { attachment: 'id' }, reply: { type: 'dma_buf_result' } },
  dma_buf_access: { fields: { dev: 'str', attachment: 'id', generation: 'int', page: 'count', write: 'bool', value: 'num?' }, reply: { type: 'dma_buf_access_result', value: 0 } },
  invalidate: INVALIDATE_SHAPE,
  invalidate_multipass: INVALIDATE_SHAPE,
  invalidate_pass: { fields: { sub: 'id', pass: 'id', cur_seq: 'int' } },
  migrate_to_ram: { fields: { pid: 'id', addr: 'addr', dev_pfn: 'int' }, reply: { type: 'migrate_to_ram_result', value: 0 } },
  device_page_free: { fields: { dev_pfn: 'int' } },
} satisfies Record<GpuRequest['type'] | DmaBufRequest['type'] | 'invalidate' | 'invalidate_multipass' | 'invalidate_pass' | 'migrate_to_ram' | 'device_page_free', MessageShape>;
