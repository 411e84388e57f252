import { describe, expect, it } from 'vitest';
import { MmuNotifierSubscriptions, type Subscription } from '@svmsim/kernel-mm/interval-notifier';

const mkSub = (id: number, start: number, last: number): Subscription => ({
  id, pid: 1, start, last, owner: 'dev', multipass: false, invalidate_seq: 0, node: undefined, deferredInsert: false, deferredRemove: false, removed: false,
});

describe('mmu_interval_notifier sequence protocol (mm/mmu_notifier.c)', () => {
  it('starts even at 2; an idle insert gives the subscription an odd seq that read_begin returns at once', () => {
    const mn = new MmuNotifierSubscriptions();
    expect(mn.invalidate_seq).toBe(2);
    const s = mkSub(1, 0, 4095);
    mn.insert(s);
    expect(s.invalidate_seq).toBe(1);
    let got = -1;
    expect(mn.readBegin(s, (seq) => (got = seq))).toBe(false);
    expect(got).toBe(1);
  });

  it('makes the seq odd only for an overlapping invalidation, and read_begin waits for the end of the epoch', () => {
    const mn = new MmuNotifierSubscriptions();
    const s = mkSub(1, 0, 4095);
    mn.insert(s);
    const miss = mn.invStartRange(8192, 12288);
    expect(miss.subs).toEqual([]);
    expect(mn.invalidate_seq).toBe(2);
    mn.invEnd();
    const hit = mn.invStartRange(0, 4096);
    expect(hit.subs.map((x) => x.id)).toEqual([1]);
    expect(hit.cur_seq).toBe(3);
    // The driver's mmu_interval_set_seq (its mmu_interval_set_seq message; mm never stores cur_seq itself).
    expect(s.invalidate_seq).toBe(1);
    s.invalidate_seq = hit.cur_seq;
    let got = -1;
    expect(mn.readBegin(s, (seq) => (got = seq))).toBe(true);
    expect(got).toBe(-1);
    mn.invEnd();
    expect(mn.invalidate_seq).toBe(4);
    expect(got).toBe(3); // the value read before sleeping; read_retry(3) then passes
  });

  it('keeps one odd epoch across overlapping invalidations until the last one ends', () => {
    const mn = new MmuNotifierSubscriptions();
    const s = mkSub(1, 0, 1 << 20);
    mn.insert(s);
    mn.invStartRange(0, 4096);
    mn.invStartRange(4096, 8192);
    expect(mn.invalidate_seq).toBe(3);
    mn.invEnd();
    expect(mn.invalidate_seq).toBe(3);
    expect(mn.isInvalidating()).toBe(true);
    mn.invEnd();
    expect(mn.invalidate_seq).toBe(4);
  });

  it('defers an insert during an odd epoch: the new subscription is not called, and its first read_begin waits', () => {
    const mn = new MmuNotifierSubscriptions();
    mn.insert(mkSub(1, 0, 4095));
    mn.invStartRange(0, 4096);
    const late = mkSub(2, 0, 4095);
    mn.insert(late);
    expect(late.deferredInsert).toBe(true);
    expect(late.invalidate_seq).toBe(mn.invalidate_seq);
    expect(mn.invStartRange(0, 4096).subs.map((x) => x.id)).toEqual([1]);
    let got = -1;
    mn.readBegin(late, (seq) => (got = seq));
    mn.invEnd();
    expect(got).toBe(-1);
    mn.invEnd();
    expect(got).toBe(3);
    expect(mn.invStartRange(0, 4096).subs.map((x) => x.id).sort()).toEqual([1, 2]);
  });

  it('conservatively makes the seq odd for an insert while only non-overlapping invalidations run', () => {
    const mn = new MmuNotifierSubscriptions();
    mn.invStartRange(0, 4096);
    expect(mn.invalidate_seq).toBe(2);
    const s = mkSub(1, 0, 4095);
    mn.insert(s);
    expect(mn.invalidate_seq).toBe(3);
    expect(s.invalidate_seq).toBe(3);
    mn.invEnd();
    expect(mn.invalidate_seq).toBe(4);
  });

  it('removes at once when idle, and only at the end of the epoch while invalidating', () => {
    const mn = new MmuNotifierSubscriptions();
    const a = mkSub(1, 0, 4095);
    const b = mkSub(2, 0, 4095);
    mn.insert(a);
    mn.insert(b);
    let removedA = false;
    mn.remove(a, () => (removedA = true));
    expect(removedA).toBe(true);
    mn.invStartRange(0, 4096);
    let removedB = false;
    mn.remove(b, () => (removedB = true));
    expect(removedB).toBe(false);
    mn.invEnd();
    expect(removedB).toBe(true);
    expect(mn.itree.size).toBe(0);
    expect(() => mn.remove(b, () => {})).toThrow(/removed twice/);
  });
});
