// What the `nvme` actor accepts from other actors, checked before acting (runtime validate.ts):
// mm's bios (kernel-mm protocol.ts BioSubmit), the process's O_DIRECT requests and peers' DMA into
// the CMB (dio-protocol.ts), an exporter's move_notify (gpu-driver dma-buf-protocol.ts), mm's
// p2pmem_alloc_mmap of the CMB and the frees of its pages (kernel-mm protocol.ts P2pmemAlloc, P2pdmaPageFree), a remote
// host's NVMe-oF commands (nvmet-protocol.ts). A message
// that does not fit is answered in its own reply type or bad_message (-EINVAL, one line naming the
// field) and nothing is queued.
import type { MessageShape } from '@svmsim/runtime';

const op = (v: unknown) => (v === 'read' || v === 'write' ? undefined : `${JSON.stringify(v)} is not one of read, write`);

/** The optional P2P / dma-buf buffer of an O_DIRECT request: an object with a provider or exporter and pages. */
const buffer = (v: unknown) =>
  v === undefined || (typeof v === 'object' && v !== null && Number.isInteger((v as { page?: unknown }).page) && Number.isInteger((v as { nlb?: unknown }).nlb))
    ? undefined
    : `${JSON.stringify(v)} is not a buffer {page, nlb, …}`;

export const NVME_SHAPES = {
  bio_submit: { fields: { op, dev: 'str', block: 'id', value: 'num?' }, reply: { type: 'bio_done', value: 0 } },
  nvme_dio: { fields: { op, pid: 'id', addr: 'addr', pfns: 'f64s', slba: 'int', p2p: buffer, dmabuf: buffer }, reply: { type: 'nvme_dio_result' } },
  p2pmem_write: { fields: { dev: 'str', page: 'int', values: 'f64s' } },
  p2pmem_read: { fields: { dev: 'str', page: 'int', nlb: 'count' }, reply: { type: 'p2pmem_read_result', values: new Float64Array(0) } },
  dma_buf_move_notify: { fields: { attachment: 'id' } },
  p2pmem_alloc: { fields: { nr_pages: 'count' }, reply: { type: 'p2pmem_alloc_result', page: 0 } },
  p2pdma_page_free: { fields: { page: 'id' } },
  nvmet_rdma_cmd: { fields: { op, slba: 'int', nlb: 'count', values: 'f64s?' }, reply: { type: 'nvmet_rdma_result' } },
  nvme_drain: { fields: {}, reply: { type: 'nvme_drain_done' } },
} satisfies Record<'bio_submit' | 'nvme_dio' | 'p2pmem_write' | 'p2pmem_read' | 'dma_buf_move_notify' | 'p2pmem_alloc' | 'p2pdma_page_free' | 'nvmet_rdma_cmd' | 'nvme_drain', MessageShape>;
