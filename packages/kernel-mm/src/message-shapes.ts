// What `mm` accepts from other actors, field by field (protocol.ts has the meaning of each): the
// table mm-actor.ts checks every request and notification against before acting on it
// (runtime validate.ts). A message that does not fit is answered `bad_message` (-EINVAL, one line
// naming the field) and changes nothing. These are the checks of the boundary only — types,
// ranges, arithmetic that would wrap: whether an address is inside a VMA, a subscription exists or
// a range is aligned where the kernel requires it is mm's own answer (-EFAULT, -ENOENT, -EINVAL),
// as the kernel function it models gives it.
import { ADDR_LIMIT, spanCheck, type MessageShape } from '@svmsim/runtime';
import type { Kernel } from './kernel.js';
import { ZERO_PFN, type MmRequest, type UnpinUserPages } from './protocol.js';

const pid = 'id' as const;
const tr = (v: unknown): string | undefined => {
  const t = v as { via?: unknown; sub?: unknown; seq?: unknown } | undefined;
  if (t === null || typeof t !== 'object') return `${String(v)} is not a translation ({via: 'pin'} or {via: 'mirror', sub, seq})`;
  if (t.via === 'pin') return undefined;
  if (t.via === 'mirror' && Number.isSafeInteger(t.sub) && Number.isSafeInteger(t.seq)) return undefined;
  return `not a translation: expected {via: 'pin'} or {via: 'mirror', sub, seq}`;
};
/** [start, end): end after start, and start + the length below 2^52 (end itself is checked as an address bound). */
const range = (m: Record<string, unknown>): string | undefined => {
  const s = m.start as number;
  const e = m.end as number;
  if (e < s) return `end ${e} is below start ${s}`;
  if (e > ADDR_LIMIT) return `end ${e} passes 2^52, the end of the address space`;
  return undefined;
};

const SYSCALL_RESULT = { type: 'syscall_result' };
const OP_RESULT = { type: 'op_result' };

/** Every type mm takes from another actor (MmRequest), with its fields: a new request without a shape does not compile. */
export const MM_SHAPES = {
  process_create: { fields: { comm: 'str?' }, reply: SYSCALL_RESULT },
  mmap: { fields: { pid, addr: 'addr', length: 'len', prot: 'int', flags: 'int', file: 'int?', offset: 'int?', p2pmem: 'str?' }, check: spanCheck('addr', 'length'), reply: SYSCALL_RESULT },
  munmap: { fields: { pid, addr: 'addr', length: 'len' }, check: spanCheck('addr', 'length'), reply: SYSCALL_RESULT },
  mprotect: { fields: { pid, addr: 'addr', length: 'len', prot: 'int' }, check: spanCheck('addr', 'length'), reply: SYSCALL_RESULT },
  madvise: { fields: { pid, addr: 'addr', length: 'len', advice: 'int' }, check: spanCheck('addr', 'length'), reply: SYSCALL_RESULT },
  mremap: { fields: { pid, addr: 'addr', old_len: 'len', new_len: 'len', flags: 'int', new_addr: 'addr?' }, check: spanCheck('addr', 'old_len'), reply: SYSCALL_RESULT },
  fork: { fields: { pid }, reply: SYSCALL_RESULT },
  exit: { fields: { pid }, reply: SYSCALL_RESULT },
  cpu_access: { fields: { pid, addr: 'addr', write: 'bool', value: 'num?' }, reply: { type: 'cpu_access_result', value: 0, faults: 0 } },
  file_create: { fields: { name: 'str', pages: 'count' }, reply: SYSCALL_RESULT },
  mmu_interval_notifier_insert: { fields: { pid, start: 'addr', length: 'len', multipass: 'bool?' }, check: spanCheck('start', 'length'), reply: { type: 'mmu_interval_notifier_insert_result', sub: 0 } },
  mmu_interval_notifier_remove: { fields: { sub: 'id' }, reply: SYSCALL_RESULT },
  mmu_interval_read_begin: { fields: { sub: 'id' }, reply: { type: 'read_begin_result', seq: 0 } },
  mmu_interval_set_seq: { fields: { sub: 'id', cur_seq: 'int' } },
  hmm_range_fault: {
    fields: { sub: 'id', notifier_seq: 'int', start: 'addr', end: 'len', default_flags: 'int', pfn_flags_mask: 'int', flags_in: 'u8s?', dev_private_owner: 'str|null' },
    reply: { type: 'hmm_range_fault_result', pfns: new Float64Array(0), flags: new Uint8Array(0) },
    check: (m) => range(m) ?? (m.flags_in !== undefined && (m.flags_in as ArrayLike<number>).length !== Math.ceil(((m.end as number) - (m.start as number)) / 4096) ? `flags_in has ${(m.flags_in as ArrayLike<number>).length} entries for a range of ${Math.ceil(((m.end as number) - (m.start as number)) / 4096)} pages` : undefined),
  },
  vma_lookup: { fields: { pid, addr: 'addr' }, reply: { type: 'vma_lookup_result', file: false, prot: 0, start: 0, end: 0 } },
  mmap_read_lock: { fields: { pid }, reply: SYSCALL_RESULT },
  mmap_read_unlock: { fields: { pid }, reply: SYSCALL_RESULT },
  mmap_write_lock: { fields: { pid }, reply: SYSCALL_RESULT },
  mmap_write_downgrade: { fields: { pid }, reply: SYSCALL_RESULT },
  mmap_write_unlock: { fields: { pid }, reply: SYSCALL_RESULT },
  get_user_pages: { fields: { pid, start: 'addr', nr_pages: 'count', gup_flags: 'int', pin: 'bool', fast: 'bool?' }, check: (m) => ((m.start as number) + (m.nr_pages as number) * 4096 > ADDR_LIMIT ? `start + nr_pages pages passes 2^52, the end of the address space` : undefined), reply: { type: 'get_user_pages_result', pfns: new Float64Array(0) } },
  unpin_user_pages: { fields: { pfns: 'f64s', make_dirty: 'bool', pin: 'bool' } },
  dma_access: { fields: { dev: 'str', pid, addr: 'addr', pfn: 'int', write: 'bool', value: 'num?', tr }, reply: { type: 'dma_read_result', value: 0 } },
  migrate_vma_setup: { fields: { pid, start: 'addr', end: 'len', flags: 'int', pgmap_owner: 'str' }, check: range, reply: { type: 'migrate_vma_setup_result', migration: 0, src_flags: new Uint8Array(0), src_data: new Float64Array(0), cpages: 0 } },
  migrate_vma_finalize: { fields: { migration: 'id', dst_pfns: 'f64s', dst_data: 'f64s?' }, reply: { type: 'migrate_vma_finalize_result', migrated: 0 } },
  make_device_exclusive: { fields: { pid, start: 'addr', end: 'len', owner: 'str' }, check: range, reply: { type: 'make_device_exclusive_result', pfns: new Float64Array(0) } },
  memremap_pages: { fields: { nr_pages: 'count' }, reply: { type: 'memremap_pages_result', base: 0 } },
  reclaim: { fields: { nr_pages: 'count' }, reply: OP_RESULT },
  migrate_pages: { fields: { pid, addr: 'addr', nr_pages: 'count' }, reply: OP_RESULT },
  ksm_scan: { fields: {}, reply: OP_RESULT },
  writeback: { fields: {}, reply: OP_RESULT },
  dump: { fields: {}, reply: { type: 'dump_result', pages: [] } },
  clear_refs: { fields: { pid, value: 'str' }, reply: SYSCALL_RESULT },
  pagemap_read: { fields: { pid, addr: 'addr', nr_pages: 'count' }, check: (m) => ((m.addr as number) + (m.nr_pages as number) * 4096 > ADDR_LIMIT ? `addr + nr_pages pages passes 2^52, the end of the address space` : undefined), reply: { type: 'pagemap_result', entries: new Uint8Array(0), pfns: new Float64Array(0) } },
  mmu_notifier_register: { fields: { pid, clear_flush_young: 'bool', clear_young: 'bool', test_young: 'bool' }, reply: { type: 'mmu_notifier_register_result', id: 0 } },
  mmu_notifier_unregister: { fields: { id: 'id' }, reply: SYSCALL_RESULT },
  numa_scan: { fields: { pid }, reply: OP_RESULT },
} satisfies Record<MmRequest['type'], MessageShape>;

/**
 * The check that needs mm's state: unpin_user_pages / put_page of a frame that holds no pin (or no
 * gup reference) would make its count negative (the kernel's WARN in gup_put_folio / a
 * use-after-free): refused whole, before any frame is touched.
 */
export function checkWithState(k: Kernel, m: { type: string }): string | undefined {
  if (m.type !== 'unpin_user_pages') return undefined;
  const u = m as UnpinUserPages;
  const taken = new Map<number, number>();
  for (let i = 0; i < u.pfns.length; i++) {
    const pfn = u.pfns[i];
    if (pfn === ZERO_PFN) continue;
    if (k.devicePages.isPciP2pdma(pfn)) {
      const n = (taken.get(pfn) ?? 0) + 1;
      taken.set(pfn, n);
      if (u.pin && n > k.devicePages.refs(pfn)) return `pfns[${i}]: p2pdma page ${pfn} holds fewer pins than this releases`;
      continue;
    }
    if (!(Number.isInteger(pfn) && pfn >= 0 && pfn < k.pm.nrFrames)) return `pfns[${i}]: ${pfn} is not a frame of this machine (0 to ${k.pm.nrFrames - 1})`;
    const n = (taken.get(pfn) ?? 0) + 1;
    taken.set(pfn, n);
    const held = u.pin ? k.pm.pincount[pfn] : k.pm.refcount[pfn] - k.pm.mapcount[pfn];
    if (n > held) return `pfns[${i}]: frame ${pfn} holds ${held} ${u.pin ? 'pin' : 'gup reference'}${held === 1 ? '' : 's'}, fewer than this releases`;
  }
  return undefined;
}
