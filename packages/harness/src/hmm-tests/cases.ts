// The tests of the kernel's tools/testing/selftests/mm/hmm-tests.c, in the order the kselftest
// harness runs them (fixture, then variant, then TEST_F order), each with the built-in scenario
// that states it (packages/harness/scenarios/hmm-tests/<test>.yaml) or the reason it is not
// modelled. Read: hmm-tests.c of the torvalds/linux tree at 0eaed89c (2025; v6.15's tests and the
// THP ones added after), on lib/test_hmm.c as of v6.15.
//
// The device-coherent variants skip as the kernel test does on a machine without
// DEVICE_COHERENT memory ("DEVICE_COHERENT not available": FIXTURE_SETUP's SKIP).

export interface HmmTest {
  fixture: 'hmm' | 'hmm2';
  name: string;
  /** Why the test does not map onto svmsim; absent: scenarios/hmm-tests/<name>.yaml states it. */
  skip?: string;
}

const THP = 'THP (MADV_HUGEPAGE, PMD-sized device pages) is not modelled';
const HUGETLB = 'hugetlbfs is not modelled';

/** TEST_F(hmm, …) in file order. */
const HMM: HmmTest[] = [
  { fixture: 'hmm', name: 'open_close' },
  { fixture: 'hmm', name: 'anon_read' },
  { fixture: 'hmm', name: 'anon_read_prot' },
  { fixture: 'hmm', name: 'anon_write' },
  { fixture: 'hmm', name: 'anon_write_prot' },
  { fixture: 'hmm', name: 'anon_write_child' },
  { fixture: 'hmm', name: 'anon_write_child_shared' },
  { fixture: 'hmm', name: 'anon_write_huge', skip: THP },
  { fixture: 'hmm', name: 'anon_write_hugetlbfs', skip: HUGETLB },
  { fixture: 'hmm', name: 'file_read' },
  { fixture: 'hmm', name: 'file_write' },
  { fixture: 'hmm', name: 'migrate' },
  { fixture: 'hmm', name: 'migrate_file_private' },
  { fixture: 'hmm', name: 'migrate_fault' },
  { fixture: 'hmm', name: 'migrate_release' },
  { fixture: 'hmm', name: 'migrate_shared' },
  { fixture: 'hmm', name: 'migrate_multiple' },
  { fixture: 'hmm', name: 'anon_read_multiple' },
  { fixture: 'hmm', name: 'anon_teardown' },
  { fixture: 'hmm', name: 'mixedmap', skip: "the driver's own mmap (dmirror_fops_mmap, a VM_MIXEDMAP mapping of driver pages) is not modelled" },
  { fixture: 'hmm', name: 'compound', skip: HUGETLB },
  { fixture: 'hmm', name: 'exclusive' },
  { fixture: 'hmm', name: 'exclusive_mprotect' },
  { fixture: 'hmm', name: 'exclusive_cow' },
  { fixture: 'hmm', name: 'hmm_gup_test' },
  { fixture: 'hmm', name: 'hmm_cow_in_device' },
  { fixture: 'hmm', name: 'migrate_anon_huge_empty', skip: THP },
  { fixture: 'hmm', name: 'migrate_anon_huge_zero', skip: THP },
  { fixture: 'hmm', name: 'migrate_anon_huge_free', skip: THP },
  { fixture: 'hmm', name: 'migrate_anon_huge_fault', skip: `${THP} (MADV_COLLAPSE)` },
  { fixture: 'hmm', name: 'migrate_partial_unmap_fault' },
  { fixture: 'hmm', name: 'migrate_remap_fault' },
  { fixture: 'hmm', name: 'migrate_anon_huge_err', skip: `${THP} (HMM_DMIRROR_FLAGS)` },
  { fixture: 'hmm', name: 'migrate_anon_huge_zero_err', skip: `${THP} (HMM_DMIRROR_FLAGS)` },
  { fixture: 'hmm', name: 'benchmark_thp_migration', skip: 'a wall-clock benchmark of THP migration' },
];

/** TEST_F(hmm2, …) in file order. */
const HMM2: HmmTest[] = [
  { fixture: 'hmm2', name: 'migrate_mixed' },
  { fixture: 'hmm2', name: 'snapshot' },
  { fixture: 'hmm2', name: 'double_map' },
];

/** One line of the run: `<fixture>.<variant>.<test>`, and the test (undefined: the variant's skip). */
export interface HmmTestRun {
  id: string;
  test: HmmTest;
  variantSkip?: string;
}

/** Every test of every variant, in the kselftest harness's order. */
export function hmmTestRuns(): HmmTestRun[] {
  const out: HmmTestRun[] = [];
  for (const [fixture, tests] of [['hmm', HMM], ['hmm2', HMM2]] as const) {
    for (const variant of ['device_private', 'device_coherent'] as const) {
      for (const test of tests) {
        out.push({ id: `${fixture}.${fixture}_${variant}.${test.name}`, test, ...(variant === 'device_coherent' && { variantSkip: 'DEVICE_COHERENT not available' }) });
      }
    }
  }
  return out;
}

/** The tests a scenario states (device-private variant). */
export const MAPPED_HMM_TESTS: readonly HmmTest[] = [...HMM, ...HMM2].filter((t) => t.skip === undefined);
