// Memory accesses: a CPU load or store by the process (through its page table, faulting as the MMU
// would) and a device's DMA read or write of a frame it got from gup/pin or hmm_range_fault.
// Both are recorded for the data oracle with the translation they used (oracle-events.ts).
import type { Envelope, Message } from '@svmsim/runtime';
import { FAULT_FLAG_WRITE, handle_mm_fault } from './fault.js';
import type { Kernel } from './kernel.js';
import { PTE_DEVICE_EXCLUSIVE, PTE_DIRTY, PTE_KIND_MASK, PTE_PRESENT, PTE_PROTNONE, PTE_WAS_WRITE, PTE_WRITE, PTE_YOUNG } from './page-table.js';
import { EFAULT, EINVAL, ESRCH, PAGE_SIZE, ZERO_PFN, type CpuAccess, type CpuAccessResult, type DmaAccess } from './protocol.js';
import { vmaReadable, vmaWritable } from './vma.js';

/** Faults one access may take before giving up (a page unmapped again each time it is faulted in). */
const FAULTS_PER_ACCESS_MAX = 16;

export function cpu_access(k: Kernel, env: Envelope<Message>, m: CpuAccess): void {
  const p = k.proc(m.pid);
  const reply = (ret: number, value: number, faults: number) => {
    const r: CpuAccessResult = { type: 'cpu_access_result', ret, value, faults };
    k.replyAfter(env, r, faults * k.costs.faultNs);
  };
  if (!p) return reply(ESRCH, 0, 0);
  if (!Number.isInteger(m.addr) || m.addr < 0 || (m.write && !Number.isFinite(m.value))) return reply(EINVAL, 0, 0);
  const vpn = Math.floor(m.addr / PAGE_SIZE);
  let faults = 0;
  const attempt = (): void => {
    const vma = p.vmas.find(vpn);
    if (!vma || (m.write ? !vmaWritable(vma) : !vmaReadable(vma))) return reply(EFAULT, 0, faults); // SIGSEGV
    const f = p.pt.flags(vpn);
    if ((f & PTE_KIND_MASK) === PTE_PRESENT && !(f & PTE_PROTNONE) && (!m.write || f & PTE_WRITE)) {
      const pfn = p.pt.value(vpn);
      const pageAddr = vpn * PAGE_SIZE;
      if (m.write) {
        k.pm.content[pfn] = m.value!;
        p.pt.setFlags(vpn, f | PTE_DIRTY | PTE_YOUNG);
        k.oracle('cpu_store', { pid: p.pid, addr: pageAddr, pfn, value: m.value! });
        return reply(0, m.value!, faults);
      }
      const value = pfn === ZERO_PFN ? 0 : k.pm.content[pfn];
      p.pt.setFlags(vpn, f | PTE_YOUNG);
      k.oracle('cpu_load', { pid: p.pid, addr: pageAddr, pfn, value });
      return reply(0, value, faults);
    }
    if (++faults > FAULTS_PER_ACCESS_MAX) {
      k.ctx.trace('warn', { what: `pid ${p.pid} access at 0x${m.addr.toString(16)} faulted ${FAULTS_PER_ACCESS_MAX} times without progress` });
      return reply(EFAULT, 0, faults);
    }
    handle_mm_fault(k, p, vpn, m.write ? FAULT_FLAG_WRITE : 0, (ret) => (ret < 0 ? reply(ret, 0, faults) : k.bounce(attempt)));
  };
  attempt();
}

/**
 * A DMA access arriving at memory. mm applies it whatever the translation (the device already
 * did it) and records what it observed, for the checker to judge: is the frame still what the
 * process maps at that address, writable, pinned.
 */
export function dma_access(k: Kernel, env: Envelope<Message>, m: DmaAccess): void {
  const pfn = m.pfn;
  if (!(Number.isInteger(pfn) && ((pfn >= 0 && pfn < k.pm.nrFrames) || pfn === ZERO_PFN))) {
    k.ctx.trace('warn', { what: `${m.dev} DMA to frame ${pfn}, which does not exist` });
    if (!m.write) k.ctx.reply(env, { type: 'dma_read_result', ret: EFAULT, value: 0 });
    return;
  }
  const p = k.procs.get(m.pid);
  const vpn = Math.floor(m.addr / PAGE_SIZE);
  const f = p ? p.pt.flags(vpn) : 0;
  // A device-exclusive entry still names the frame: the device that holds it uses it legitimately.
  const kind = f & PTE_KIND_MASK;
  const pte_ok = p !== undefined && p.alive && (kind === PTE_PRESENT || kind === PTE_DEVICE_EXCLUSIVE) && p.pt.value(vpn) === pfn;
  // A NUMA hinting entry still maps the frame; it was writable if PTE_WAS_WRITE says so.
  const writable = pte_ok && (f & (kind === PTE_PRESENT ? (f & PTE_PROTNONE ? PTE_WAS_WRITE : PTE_WRITE) : PTE_WAS_WRITE)) !== 0;
  const real = pfn !== ZERO_PFN;
  const pinned = real && (k.pm.pincount[pfn] > 0 || k.pm.refcount[pfn] > k.pm.mapcount[pfn] + (k.pm.fileId[pfn] !== 0 ? 1 : 0));
  const file = real && k.pm.fileId[pfn] !== 0 ? k.pm.fileId[pfn] : null;
  const idx = file !== null ? k.pm.fileIdx[pfn] : null;
  const tr = m.tr;
  const fields = {
    dev: m.dev, pid: m.pid, addr: vpn * PAGE_SIZE, pfn, value: 0, via: tr.via,
    sub: tr.via === 'mirror' ? tr.sub : null, seq: tr.via === 'mirror' ? tr.seq : null, pte_ok, writable, pinned, file, idx,
    ...(m.bio === true ? { bio: true } : {}),
  };
  if (m.write) {
    if (!Number.isFinite(m.value)) throw new Error(`${m.dev} DMA write without a value`);
    if (real) {
      k.pm.content[pfn] = m.value!;
      // A mirror writes through a writable translation its write fault dirtied; a DMA through a
      // pin dirties nothing the kernel can see: the driver must unpin with make_dirty.
      if (pte_ok && tr.via === 'mirror') p!.pt.setFlags(vpn, f | PTE_DIRTY | PTE_YOUNG);
    }
    k.stats.dmaWrites++;
    fields.value = m.value!;
    k.oracle('dma_write', fields);
    return;
  }
  fields.value = real ? k.pm.content[pfn] : 0;
  k.stats.dmaReads++;
  k.oracle('dma_read', fields);
  k.ctx.reply(env, { type: 'dma_read_result', ret: 0, value: fields.value });
}
