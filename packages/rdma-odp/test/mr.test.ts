// Memory regions: what each kind maps when, and RLIMIT_MEMLOCK against pinned MRs (ib_umem_get),
// with mm, the NIC and its peer under LocalScheduler; the checker judges every run.
import { describe, expect, it } from 'vitest';
import { EINVAL, ENOMEM, EPERM, MADV_PAGEOUT, PAGE_SIZE } from '@svmsim/kernel-mm';
import { formatViolation } from '@svmsim/kernel-mm/checker';
import { ret, type Step } from '@svmsim/kernel-mm/testing/mm-harness';
import { IBV_ACCESS_LOCAL_WRITE, IBV_ACCESS_ON_DEMAND, IBV_ACCESS_REMOTE_READ, IBV_ACCESS_REMOTE_WRITE, SIZE_MAX } from '@svmsim/rdma-odp';
import { A, B, PID, create, createQp, deregLast, load, mmapAt, nic, of, peerOp, peerWrite, regMr, run, store } from './rdma-steps.js';

const regs = (results: { type: string }[]) => of<{ ret: number }>(results as never, 'ibv_reg_mr_result').map((r) => r.ret);
const pageout = (addr: number, pages: number): Step => ({ msg: { type: 'madvise', pid: PID, addr, length: pages * PAGE_SIZE, advice: MADV_PAGEOUT } as never });

describe('pinned MR and RLIMIT_MEMLOCK (ib_umem_get)', () => {
  const populated = (pages: number): Step[] => [create, mmapAt(A, pages), ...Array.from({ length: pages }, (_, i) => store(A + i * PAGE_SIZE, i + 1))];

  it('within the limit: every page pinned and charged to pinned_vm; dereg unpins and gives the charge back', async () => {
    const { results, nic, check } = await run([...populated(16), regMr('pinned', A, 16, undefined, 16), deregLast, regMr('pinned', A, 16, undefined, 16), deregLast]);
    expect(regs(results)).toEqual([0, 0]);
    expect(nic.pagesPinned).toBe(32);
    expect(nic.pagesUnpinned).toBe(32);
    expect(nic.pinnedVmMaxPages).toBe(16);
    expect(check!.violations.map(formatViolation)).toEqual([]);
  });

  it('over the limit: -ENOMEM and nothing pinned (reclaim can swap every page out afterwards)', async () => {
    const { results, nic, mm } = await run([...populated(16), regMr('pinned', A, 16, undefined, 15), pageout(A, 16)]);
    expect(regs(results)).toEqual([ENOMEM]);
    expect(nic.pagesPinned).toBe(0);
    expect(nic.regErrors).toEqual({ ENOMEM: 1 });
    expect(mm.swapOuts).toBe(16);
  });

  it('the charge is per process and adds up: a second MR past the limit fails; CAP_IPC_LOCK lifts the limit', async () => {
    const { results } = await run([...populated(16), regMr('pinned', A, 10, undefined, 16), regMr('pinned', A, 10, undefined, 16), regMr('pinned', A, 10, undefined, 16, true)]);
    expect(regs(results)).toEqual([0, ENOMEM, 0]);
  });

  it('RLIMIT_MEMLOCK 0 without CAP_IPC_LOCK: -EPERM (can_do_mlock)', async () => {
    const { results } = await run([...populated(2), regMr('pinned', A, 2, undefined, 0), regMr('pinned', A, 2, undefined, 0, true)]);
    expect(regs(results)).toEqual([EPERM, 0]);
  });

  it('a range that is not all mapped: the pages pinned so far are released and the charge undone', async () => {
    // 600 pages from A: the first batch of 512 pins, the second runs off the end of the VMA.
    const { results, nic, mm } = await run([...populated(520), regMr('pinned', A, 600, undefined, 1000), pageout(A, 520)], { mm: { frames: 1024, swapPages: 1024 } });
    expect(regs(results)).toEqual([-14]);
    expect(nic.pagesPinned).toBe(0);
    expect(mm.swapOuts).toBe(520);
  });
});

describe('ODP MRs', () => {
  it('explicit: nothing mapped at registration over fresh memory; the first access faults', async () => {
    const { results, nic, check } = await run([create, mmapAt(A, 4), regMr('odp', A, 4), createQp(), peerWrite(A, [1, 2, 3, 4]), peerWrite(A, [5, 6, 7, 8])]);
    expect(regs(results)).toEqual([0]);
    expect(of(results, 'peer_wc').map((w) => w.status)).toEqual(['IBV_WC_SUCCESS', 'IBV_WC_SUCCESS']);
    expect(nic.odpFaults).toBe(1);
    expect(nic.odpFaultPages).toBe(4);
    expect(check!.violations.map(formatViolation)).toEqual([]);
  });

  it('explicit: the registration snapshot maps the pages already present (mlx5_ib_init_odp_mr): no fault', async () => {
    const steps: Step[] = [create, mmapAt(A, 4), ...[0, 1, 2, 3].map((i) => store(A + i * PAGE_SIZE, 10 + i)), regMr('odp', A, 4), createQp(), peerOp('IBV_WR_RDMA_READ', A, 4), peerWrite(A, [1, 2, 3, 4])];
    const { results, nic, check } = await run(steps);
    expect(of(results, 'peer_wc').map((w) => [w.status, w.values])).toEqual([['IBV_WC_SUCCESS', [10, 11, 12, 13]], ['IBV_WC_SUCCESS', undefined]]);
    expect(nic.odpFaults).toBe(0);
    expect(check!.violations.map(formatViolation)).toEqual([]);
  });

  it('implicit: a child MR per MLX5_IMR_MTT_SIZE chunk, made at the first fault in it', async () => {
    const GiB = 2 ** 30;
    const steps: Step[] = [create, mmapAt(A, 4), mmapAt(GiB + A, 4), regMr('implicit', 0, 0), createQp(), peerWrite(A, [1]), peerWrite(A + PAGE_SIZE, [2]), peerWrite(GiB + A, [3]), load(GiB + A)];
    const { results, nic, check } = await run(steps);
    expect(of(results, 'peer_wc').map((w) => w.status)).toEqual(['IBV_WC_SUCCESS', 'IBV_WC_SUCCESS', 'IBV_WC_SUCCESS']);
    expect(of(results, 'cpu_access_result').slice(-1).map((r) => r.value)).toEqual([3]);
    expect(nic.implicitChildrenCreated).toBe(2);
    expect(nic.odpFaults).toBe(3);
    expect(check!.violations.map(formatViolation)).toEqual([]);
  });
});

describe('registration errors (ib_check_mr_access, mlx5_ib_reg_user_mr)', () => {
  it('remote write without local write, unknown flags, an implicit MR without ON_DEMAND, a bad range, a second dereg', async () => {
    const reg = (addr: number, length: number, access: number) => nic({ type: 'ibv_reg_mr', pid: PID, addr, length, access, memlock_limit_pages: 2048, cap_ipc_lock: false });
    const steps: Step[] = [
      create, mmapAt(A, 2), mmapAt(B, 2),
      reg(A, 2 * PAGE_SIZE, IBV_ACCESS_REMOTE_WRITE),
      reg(A, 2 * PAGE_SIZE, 1 << 20),
      reg(0, SIZE_MAX, IBV_ACCESS_LOCAL_WRITE),
      reg(A, 0, IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_ON_DEMAND),
      reg(A, -1, IBV_ACCESS_LOCAL_WRITE),
      reg(B, 2 * PAGE_SIZE, IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_READ | IBV_ACCESS_ON_DEMAND),
      deregLast, deregLast,
    ];
    const { results } = await run(steps);
    expect(regs(results)).toEqual([EINVAL, EINVAL, EINVAL, EINVAL, EINVAL, 0]);
    expect(of(results, 'ibv_result').map(ret)).toEqual([0, EINVAL]);
  });

  it('a malformed verb gets an errno, never a crash: unknown QP, bad SGE, RDMA on UD', async () => {
    const steps: Step[] = [
      create, mmapAt(A, 2), regMr('odp', A, 2),
      nic({ type: 'ibv_post_send', qpn: 999, wr: { opcode: 'IBV_WR_SEND', sge: { addr: A, length: 4096, lkey: 256 } } }),
      createQp({}, 'UD'),
      (r) => nic({ type: 'ibv_post_send', qpn: (r.filter((x) => x.type === 'ibv_create_qp_result').pop() as never as { qpn: number }).qpn, wr: { opcode: 'IBV_WR_RDMA_WRITE', sge: { addr: A, length: 4096, lkey: 256 }, remote_addr: 0, rkey: 1 } }),
      (r) => nic({ type: 'ibv_post_recv', qpn: (r.filter((x) => x.type === 'ibv_create_qp_result').pop() as never as { qpn: number }).qpn, sge: { addr: A, length: -5, lkey: 256 } }),
      nic({ type: 'ibv_create_qp', pid: PID, qp_type: 'RC', rnr_retry: 9, min_rnr_timer: 0, retry_cnt: 0, timeout: 0 }),
      nic({ type: 'ibv_advise_mr', pid: PID, advice: 7, flags: 0, sg_list: [] }),
    ];
    const { results } = await run(steps);
    expect(of(results, 'ibv_wc').map(ret)).toEqual([-2, EINVAL, EINVAL]);
    expect(of(results, 'ibv_create_qp_result').map(ret)).toEqual([0, EINVAL]);
    expect(of(results, 'ibv_result').map(ret)).toEqual([-95]);
  });
});
