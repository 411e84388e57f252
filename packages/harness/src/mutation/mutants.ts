// The mutants of `npm run mutate`: each flips one protocol rule a safe driver or mm keeps, in the
// compiled JavaScript the runs load (packages/*/dist), and names what must then fail — a sweep the
// checker judges, or a test. A mutant whose text no longer occurs in its file is an error, not a
// skip: the table must follow the code.

/** What kills a mutant: a command that exits 0 on the real code and must not on the mutant. */
export interface Killer {
  id: string;
  /** argv after `node`, from the repository root. */
  argv: string[];
}

export interface Mutant {
  name: string;
  /** The rule it breaks, as the kernel states it. */
  rule: string;
  /** The compiled file (from the repository root) and the source it comes from. */
  file: string;
  source: string;
  edits: Edit[];
  killers: string[];
}

export interface Edit {
  search: string;
  replace: string;
  /** Replace every occurrence (else exactly one must exist). */
  all?: boolean;
}

const CLI = 'packages/harness/dist/cli.js';
const VITEST = 'node_modules/vitest/vitest.mjs';

export const KILLERS: Killer[] = [
  { id: 'sweep mirror-race', argv: [CLI, 'sweep', 'mirror-race', '--seeds', '1..30', '--jobs', '2'] },
  // skip-set-seq-mirror fails every seed of mirror-race (1..30 when chosen), but each of its runs
  // takes seconds (the real code's: 0.1 s), so 30 seeds ran into KILLER_TIMEOUT_MS on a loaded
  // machine. Four seeds kill it: a seeded run is deterministic, so the same four always do.
  { id: 'sweep mirror-race 1..4', argv: [CLI, 'sweep', 'mirror-race', '--seeds', '1..4', '--jobs', '2'] },
  { id: 'sweep svm-race', argv: [CLI, 'sweep', 'packages/harness/test/fixtures/svm-race.yaml', '--seeds', '1..12', '--jobs', '2'] },
  { id: 'sweep kfd-svm-race', argv: [CLI, 'sweep', 'packages/harness/test/fixtures/kfd-svm-race.yaml', '--seeds', '1..12', '--jobs', '2'] },
  { id: 'sweep gup-vs-readonly pin', argv: [CLI, 'sweep', 'gup-vs-readonly', '--policy', 'gpu0=pin', '--seeds', '1..2', '--jobs', '2'] },
  { id: 'sweep odp-vs-reclaim', argv: [CLI, 'sweep', 'odp-vs-reclaim', '--seeds', '1..8', '--jobs', '2'] },
  { id: 'test gpu pin', argv: [VITEST, 'run', 'packages/gpu-driver/test/gpu.test.ts', '-t', 'pin'] },
  { id: 'test kernel-mm pressure', argv: [VITEST, 'run', 'packages/kernel-mm/test/mm-pressure.test.ts'] },
];

export const MUTANTS: Mutant[] = [
  {
    name: 'ack-before-dma-drains',
    rule: 'an ODP invalidation acks only after the DMA in flight through the zapped entries drains (mlx5 ZAP UMR + wait)',
    file: 'packages/rdma-odp/dist/umr.js',
    source: 'packages/rdma-odp/src/umr.ts umrZap',
    edits: [{ search: 'if (unsafe) {', replace: 'if (true) {' }],
    killers: ['sweep odp-vs-reclaim'],
  },
  {
    name: 'skip-read-retry',
    rule: 'mmu_interval_read_retry under the driver lock before programming the device table (dmirror_range_fault)',
    file: 'packages/kernel-mm/dist/dmirror.js',
    source: 'packages/kernel-mm/src/dmirror.ts',
    edits: [{ search: 'if (mmu_interval_read_retry(n, seq)) {', replace: 'if (false) {' }],
    killers: ['sweep mirror-race'],
  },
  {
    name: 'skip-read-retry-gpu',
    rule: 'mmu_interval_read_retry under the notifier lock before writing GPUVM (nouveau_range_fault)',
    file: 'packages/gpu-driver/dist/svm-fault-handler.js',
    source: 'packages/gpu-driver/src/svm-fault-handler.ts rangeFault',
    edits: [{ search: 'if (mmu_interval_read_retry(n, seq)) {', replace: 'if (false) {' }],
    killers: ['sweep svm-race'],
  },
  {
    name: 'reclaim-frees-pinned',
    rule: 'reclaim never frees a folio gup holds: folio_maybe_dma_pinned in shrink_folio_list, the refcount freeze in __remove_mapping',
    file: 'packages/kernel-mm/dist/reclaim.js',
    source: 'packages/kernel-mm/src/reclaim.ts',
    edits: [{ search: 'pm.maybeDmaPinned(pfn)', replace: 'false', all: true }, { search: 'pm.extraRefs(pfn)', replace: '0', all: true }],
    killers: ['test gpu pin', 'test kernel-mm pressure', 'sweep gup-vs-readonly pin'],
  },
  {
    name: 'forget-unpin',
    rule: 'a pin BO unpins its pages (unpin_user_pages_dirty_lock) when it is freed',
    file: 'packages/gpu-driver/dist/policy-pin.js',
    source: 'packages/gpu-driver/src/policy-pin.ts freeBo',
    edits: [{ search: "host.send({ type: 'unpin_user_pages', pfns: bo.pinned, make_dirty: !bo.readonly, pin: true });", replace: '' }],
    killers: ['sweep gup-vs-readonly pin'],
  },
  {
    name: 'skip-set-seq',
    rule: 'the invalidate callback calls mmu_interval_set_seq before it returns (svm-fault, nouveau_svmm_invalidate)',
    file: 'packages/gpu-driver/dist/policy-svm-fault.js',
    source: 'packages/gpu-driver/src/policy-svm-fault.ts invalidate',
    edits: [{ search: 'mmu_interval_set_seq(host.ctx, env.from, n, m.cur_seq);', replace: '' }],
    killers: ['sweep svm-race', 'sweep kfd-svm-race'],
  },
  {
    name: 'skip-set-seq-mirror',
    rule: 'the invalidate callback calls mmu_interval_set_seq before it returns (dmirror_interval_invalidate)',
    file: 'packages/kernel-mm/dist/dmirror.js',
    source: 'packages/kernel-mm/src/dmirror.ts invalidate',
    edits: [{ search: 'mmu_interval_set_seq(this.ctx, env.from, n, m.cur_seq);', replace: '', all: true }],
    killers: ['sweep mirror-race 1..4'],
  },
  {
    name: 'map-after-unlock',
    rule: 'the device table is programmed under the lock read_retry was checked under (nouveau svmm->mutex)',
    file: 'packages/gpu-driver/dist/svm-fault-handler.js',
    source: 'packages/gpu-driver/src/svm-fault-handler.ts rangeFault',
    // The PTE writes take time (faultPerPageNs): this mutant drops the lock and then writes them.
    edits: [{ search: 'const mapped = map(bo, ws, res, n.sub, seq);\n                        lock.unlock();', replace: 'lock.unlock();\n                        return host.sleep((we - ws) * host.costs.faultPerPageNs, () => { const mapped = map(bo, ws, res, n.sub, seq); if (mapped < 0) return done(mapped); s.pagesFaulted += we - ws; done(0); });\n                        const mapped = 0;' }],
    killers: ['sweep svm-race'],
  },
  {
    name: 'skip-tlb-flush',
    rule: 'the invalidate callback flushes the GPU TLB after zapping before it acks (nouveau, amdgpu_gmc_flush_gpu_tlb)',
    file: 'packages/gpu-driver/dist/policy-svm-fault.js',
    source: 'packages/gpu-driver/src/policy-svm-fault.ts invalidate',
    edits: [{ search: 'return host.flushTlb(zapped, finish);', replace: 'return finish();' }],
    killers: ['sweep svm-race'],
  },
];
