// GPUVM's TLB (gpuvm.ts): a cleared entry is still used until a flush completes; a written entry
// drops its cached copy.
import { describe, expect, it } from 'vitest';
import { PAGE_SIZE } from '@svmsim/kernel-mm';
import { GpuVm, type GpuPte } from '@svmsim/gpu-driver/gpuvm';

const pte = (pfn: number): GpuPte => ({ pfn, writable: true, tr: { via: 'pin' } as never });
const A = 16 * PAGE_SIZE;

describe('GpuVm TLB', () => {
  it('a DMA after a zap and before the flush uses the old frame; after the flush it faults', () => {
    const vm = new GpuVm();
    vm.set(1, A / PAGE_SIZE, pte(7));
    expect(vm.translate(1, A)?.pfn).toBe(7); // the walk fills the TLB
    expect(vm.clear(1, A, A + PAGE_SIZE)).toBe(1);
    expect(vm.lookup(1, A)).toBeUndefined();
    expect(vm.translate(1, A)?.pfn).toBe(7); // still cached
    expect(vm.staleTlbHits).toBe(1);
    vm.flushTlb();
    expect(vm.translate(1, A)).toBeUndefined();
    expect(vm.tlbFlushes).toBe(1);
  });

  it('writing an entry drops its cached copy: the next DMA walks to the new frame', () => {
    const vm = new GpuVm();
    vm.set(1, A / PAGE_SIZE, pte(7));
    vm.translate(1, A);
    vm.set(1, A / PAGE_SIZE, pte(9));
    expect(vm.translate(1, A)?.pfn).toBe(9);
    expect(vm.staleTlbHits).toBe(0);
    vm.flushTlb(false);
    expect(vm.tlbFlushes).toBe(0);
  });
});
