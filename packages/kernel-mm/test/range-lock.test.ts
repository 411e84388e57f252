import { describe, expect, it } from 'vitest';
import { RangeLocks } from '@svmsim/kernel-mm/range-lock';

describe('RangeLocks', () => {
  it('grants overlapping waiters in order, never two holders of one page', () => {
    const l = new RangeLocks();
    const order: string[] = [];
    const h = l.tryLock(5, 8, 'H');
    l.lock(5, 6, 'A', (id) => {
      order.push('A');
      l.unlock(id); // a fault that finishes at once
    });
    l.lock(7, 8, 'B', () => order.push('B'));
    l.lock(0, 10, 'C', () => order.push('C'));
    l.unlock(h);
    // B still holds page 7: C, which overlaps it and queued after it, must wait.
    expect(order).toEqual(['A', 'B']);
    expect(l.holders()).toEqual(['B [7, 8)']);
  });

  it('refuses a trylock over a held or awaited range', () => {
    const l = new RangeLocks();
    const a = l.tryLock(0, 4, 'a');
    expect(l.tryLock(3, 5, 'b')).toBe(-1);
    l.lock(4, 6, 'c', () => {});
    expect(l.tryLock(5, 6, 'd')).toBe(-1); // held by c
    l.unlock(a);
    expect(l.tryLock(0, 4, 'e')).toBeGreaterThan(0);
  });
});
