import { describe, expect, it } from 'vitest';
import { IntervalTree, type IntervalNode } from '@svmsim/kernel-mm/interval-tree';

// Deterministic test PRNG (mulberry32), independent of the tree's own generator.
function prng(seed: number): (n: number) => number {
  let a = seed >>> 0;
  return (n) => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * n);
  };
}

function overlaps<T>(tree: IntervalTree<T>, start: number, last: number): T[] {
  const out: T[] = [];
  tree.forEachOverlap(start, last, (n) => out.push(n.value));
  return out;
}

describe('IntervalTree', () => {
  it('matches a brute-force list over random insert/remove/query operations', () => {
    const rand = prng(12345);
    const tree = new IntervalTree<number>();
    // Brute force: kept in (start, insertion) order, the order the tree must report.
    let list: { start: number; last: number; id: number; node: IntervalNode<number> }[] = [];
    let nextId = 0;
    let queries = 0;
    let nonEmpty = 0;
    for (let op = 0; op < 5000; op++) {
      const r = rand(10);
      if (r < 4 || list.length === 0) {
        let start: number, last: number;
        if (list.length > 0 && rand(8) === 0) {
          const twin = list[rand(list.length)]; // an identical interval
          start = twin.start;
          last = twin.last;
        } else {
          start = rand(300);
          last = start + (rand(4) === 0 ? rand(100) : rand(8));
        }
        const id = nextId++;
        const node = tree.insert(start, last, id);
        expect([node.start, node.last, node.value]).toEqual([start, last, id]);
        list.push({ start, last, id, node });
        list.sort((a, b) => a.start - b.start || a.id - b.id);
        tree.assertInvariants();
      } else if (r < 7) {
        const victim = list[rand(list.length)];
        tree.remove(victim.node);
        list = list.filter((e) => e !== victim);
        tree.assertInvariants();
      } else {
        const start = rand(420) - 10;
        const last = start + rand(rand(3) === 0 ? 120 : 6);
        const expected = list.filter((e) => e.start <= last && e.last >= start).map((e) => e.id);
        expect(overlaps(tree, start, last)).toEqual(expected);
        const first = tree.firstOverlap(start, last);
        expect(first?.value).toBe(expected[0]);
        queries++;
        if (expected.length > 0) nonEmpty++;
      }
      expect(tree.size).toBe(list.length);
    }
    expect([...tree].map((n) => n.value)).toEqual(list.map((e) => e.id));
    // The run exercised both outcomes and a tree of real size.
    expect(queries).toBeGreaterThan(1000);
    expect(nonEmpty).toBeGreaterThan(300);
    expect(queries - nonEmpty).toBeGreaterThan(50);
    expect(nextId).toBeGreaterThan(1500);
  });

  it('treats intervals as closed', () => {
    const tree = new IntervalTree<string>();
    tree.insert(0, 4, 'a');
    tree.insert(5, 5, 'point');
    tree.insert(6, 9, 'b');
    expect(overlaps(tree, 4, 4)).toEqual(['a']);
    expect(overlaps(tree, 5, 5)).toEqual(['point']);
    expect(overlaps(tree, 4, 5)).toEqual(['a', 'point']); // touching endpoints overlap
    expect(overlaps(tree, 5, 6)).toEqual(['point', 'b']);
    expect(overlaps(tree, 9, 100)).toEqual(['b']);
    expect(overlaps(tree, 10, 100)).toEqual([]);
    expect(overlaps(tree, -3, -1)).toEqual([]);
    expect(tree.firstOverlap(5, 100)?.value).toBe('point');
    expect(tree.firstOverlap(10, 10)).toBeUndefined();
  });

  it('keeps duplicates and identical intervals in insertion order', () => {
    const tree = new IntervalTree<number>();
    const nodes = [0, 1, 2, 3].map((i) => tree.insert(7, 7, i));
    tree.insert(7, 20, 4);
    tree.assertInvariants();
    expect(overlaps(tree, 7, 7)).toEqual([0, 1, 2, 3, 4]);
    tree.remove(nodes[1]);
    tree.assertInvariants();
    expect(overlaps(tree, 0, 100)).toEqual([0, 2, 3, 4]);
    expect(tree.size).toBe(4);
  });

  it('rejects removing a node twice or from another tree', () => {
    const tree = new IntervalTree<number>();
    const other = new IntervalTree<number>();
    const n = tree.insert(1, 2, 0);
    const m = other.insert(1, 2, 0);
    expect(() => tree.remove(m)).toThrow(/not in this tree/);
    tree.remove(n);
    expect(() => tree.remove(n)).toThrow(/not in this tree/);
    expect(() => tree.remove({ start: 1, last: 2, value: 0 })).toThrow(/not in this tree/);
    expect(tree.size).toBe(0);
    expect(other.size).toBe(1);
  });

  it('validates intervals', () => {
    const tree = new IntervalTree<number>();
    expect(() => tree.insert(5, 4, 0)).toThrow(RangeError);
    expect(() => tree.insert(1.5, 4, 0)).toThrow(RangeError);
    expect(() => tree.insert(0, NaN, 0)).toThrow(RangeError);
    expect(() => tree.insert(0, Infinity, 0)).toThrow(RangeError);
    expect(() => tree.insert(0, 2 ** 53, 0)).toThrow(RangeError);
    expect(() => tree.forEachOverlap(3, 2, () => {})).toThrow(RangeError);
    expect(() => tree.firstOverlap(3, 2)).toThrow(RangeError);
    expect(tree.size).toBe(0);
    tree.insert(0, 2 ** 53 - 1, 0);
    expect(tree.size).toBe(1);
  });

  it('refuses mutation from inside forEachOverlap', () => {
    const tree = new IntervalTree<number>();
    const n = tree.insert(0, 10, 0);
    expect(() => tree.forEachOverlap(0, 10, () => tree.remove(n))).toThrow(/must not change/);
    expect(() => tree.forEachOverlap(0, 10, () => tree.insert(1, 1, 1))).toThrow(/must not change/);
    tree.assertInvariants();
    tree.remove(n); // allowed again once the walk is over
    expect(tree.size).toBe(0);
  });

  it('visits O(log n + k) nodes for a query over 100,000 disjoint intervals', () => {
    const tree = new IntervalTree<number>();
    const N = 100_000;
    for (let i = 0; i < N; i++) tree.insert(i * 10, i * 10 + 4, i); // [0,4] [10,14] ...
    tree.assertInvariants();
    // [50_003, 50_021] overlaps [50_000,50_004], [50_010,50_014], [50_020,50_024].
    expect(overlaps(tree, 50_003, 50_021)).toEqual([5000, 5001, 5002]);
    expect(tree.lastVisited).toBeGreaterThan(0);
    expect(tree.lastVisited).toBeLessThan(200);
    expect(tree.firstOverlap(50_003, 50_021)?.value).toBe(5000);
    expect(tree.lastVisited).toBeLessThan(100);
    // The counter is real: a query over everything visits every node.
    expect(overlaps(tree, 0, N * 10).length).toBe(N);
    expect(tree.lastVisited).toBeGreaterThanOrEqual(N);
  });

  it('builds the same tree run to run', () => {
    const shape = (): number[] => {
      const tree = new IntervalTree<number>();
      const rand = prng(7);
      for (let i = 0; i < 2000; i++) tree.insert(rand(5000), 5000 + rand(10), i);
      const visits: number[] = [];
      for (let q = 0; q < 5000; q += 97) {
        tree.forEachOverlap(q, q, () => {});
        visits.push(tree.lastVisited);
      }
      return visits;
    };
    expect(shape()).toEqual(shape());
  });
});
