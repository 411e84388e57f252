// The interval tree behind mmu_interval_notifier: a model of include/linux/interval_tree_generic.h
// (as instantiated in lib/interval_tree.c) and of how mm/mmu_notifier.c uses it.
//
//   kernel                                        here
//   interval_tree_insert(node, root)              tree.insert(start, last, value) -> handle
//   interval_tree_remove(node, root)              tree.remove(handle)
//   interval_tree_iter_first(root, start, last)   tree.firstOverlap(start, last)
//   interval_tree_iter_first / _iter_next loop    tree.forEachOverlap(start, last, fn)
//
// mmu_interval_notifier_insert() adds a subscription with interval_tree_insert(); an invalidation
// (mn_itree_inv_start_range / mn_itree_inv_next) walks every subscription overlapping the range with
// interval_tree_iter_first/next; mmu_interval_notifier_remove() calls interval_tree_remove().
//
// Intervals are CLOSED, [start, last], as in struct interval_tree_node: [a, b] and [c, d] overlap
// iff a <= d && c <= b, so [0, 5] and [5, 9] overlap and [5, 5] is a single point. Duplicate starts
// and identical intervals are allowed; nodes with equal starts are ordered by insertion, as the
// kernel's insert sends an equal start to the right.
//
// Invariant (the augmentation): every node holds `max`, the largest `last` in its subtree
// (the kernel's ITSUBTREE / __subtree_last). It is recomputed bottom-up on every path a mutation
// touches, so a query can skip any subtree whose max < start, and any right subtree once a node's
// start > last.
//
// Why balanced: every CPU page-table change that invalidates a range walks this tree, so that walk
// must cost O(log n + overlapping subscriptions), not O(n) in the number of subscriptions, and
// insert/remove must be O(log n). The kernel balances with a red-black tree; this model uses a treap
// (BST by (start, insertion order), max-heap by priority) whose priorities come from a fixed-seed
// xorshift32, so the shape is identical run to run. Expected height is O(log n).
//
// Cost of a query: O(log n) search paths plus the ancestors of the reported nodes. That is
// O(log n + k) when the overlapping intervals are contiguous in start order (disjoint ranges, the
// usual case); with long intervals interleaved among short ones it is O((k + 1) log n) at worst,
// the same bound as the kernel's iter_first/iter_next loop. `lastVisited` exposes the count.

export interface IntervalNode<T> {
  readonly start: number;
  readonly last: number;
  readonly value: T;
}

class Node<T> implements IntervalNode<T> {
  left: Node<T> | null = null;
  right: Node<T> | null = null;
  max: number;
  constructor(
    readonly start: number,
    readonly last: number,
    readonly value: T,
    readonly seq: number, // insertion order: breaks ties between equal starts
    readonly prio: number,
    public owner: IntervalTree<T> | null,
  ) {
    this.max = last;
  }
}

type Link<T> = Node<T> | null;

function before<T>(a: Node<T>, b: Node<T>): boolean {
  return a.start < b.start || (a.start === b.start && a.seq < b.seq);
}

function pull<T>(n: Node<T>): void {
  let m = n.last;
  if (n.left && n.left.max > m) m = n.left.max;
  if (n.right && n.right.max > m) m = n.right.max;
  n.max = m;
}

function checkRange(what: string, start: number, last: number): void {
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(last)) {
    throw new RangeError(`IntervalTree.${what}: start and last must be integers below 2^53 (got [${start}, ${last}])`);
  }
  if (start > last) {
    throw new RangeError(`IntervalTree.${what}: start must be <= last for a closed interval (got [${start}, ${last}])`);
  }
}

export class IntervalTree<T> {
  private root: Link<T> = null;
  private count = 0;
  private seq = 0;
  private rng: number;
  private walking = 0; // > 0 while forEachOverlap is calling back
  /** Nodes examined by the last forEachOverlap / firstOverlap call. */
  lastVisited = 0;

  constructor(seed = 0x2545f491) {
    this.rng = seed >>> 0 || 1;
  }

  get size(): number {
    return this.count;
  }

  private nextPriority(): number {
    let x = this.rng; // xorshift32 (Marsaglia)
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.rng = x >>> 0;
    return this.rng;
  }

  private checkNotWalking(what: string): void {
    if (this.walking > 0) throw new Error(`IntervalTree.${what}: the tree must not change during forEachOverlap`);
  }

  insert(start: number, last: number, value: T): IntervalNode<T> {
    checkRange('insert', start, last);
    this.checkNotWalking('insert');
    const n = new Node(start, last, value, this.seq++, this.nextPriority(), this);
    this.root = this.insertAt(this.root, n);
    this.count++;
    return n;
  }

  remove(handle: IntervalNode<T>): void {
    this.checkNotWalking('remove');
    const n = handle as Node<T>;
    if (!(n instanceof Node) || n.owner !== this) {
      throw new Error(`IntervalTree.remove: node [${handle.start}, ${handle.last}] is not in this tree`);
    }
    this.root = this.removeAt(this.root, n);
    n.owner = null;
    n.left = n.right = null;
    this.count--;
  }

  /** The overlapping node with the lowest start (interval_tree_iter_first), or undefined. */
  firstOverlap(start: number, last: number): IntervalNode<T> | undefined {
    checkRange('firstOverlap', start, last);
    let visited = 0;
    let n = this.root;
    let found: Node<T> | undefined;
    // interval_tree_subtree_search: go left while the left subtree can still overlap.
    while (n && n.max >= start) {
      visited++;
      if (n.left && n.left.max >= start) { n = n.left; continue; }
      if (n.start > last) break;
      if (n.last >= start) { found = n; break; }
      n = n.right;
    }
    this.lastVisited = visited;
    return found;
  }

  /** Calls fn for every node with node.start <= last && node.last >= start, in increasing start order. */
  forEachOverlap(start: number, last: number, fn: (node: IntervalNode<T>) => void): void {
    checkRange('forEachOverlap', start, last);
    let visited = 0;
    const walk = (n: Link<T>): void => {
      if (!n) return;
      visited++;
      if (n.max < start) return; // nothing in this subtree reaches start
      walk(n.left);
      if (n.start > last) return; // this node and everything to its right start after last
      if (n.last >= start) fn(n);
      walk(n.right);
    };
    this.walking++;
    try {
      walk(this.root);
    } finally {
      this.walking--;
      this.lastVisited = visited;
    }
  }

  /** All nodes in (start, insertion) order. */
  *[Symbol.iterator](): Generator<IntervalNode<T>> {
    const stack: Node<T>[] = [];
    let n = this.root;
    while (n || stack.length > 0) {
      while (n) { stack.push(n); n = n.left; }
      const top = stack.pop()!;
      yield top;
      n = top.right;
    }
  }

  /** @internal Checks BST order, heap order of priorities, the max augmentation and the size. */
  assertInvariants(): void {
    let seen = 0;
    let prev: Node<T> | null = null;
    const check = (n: Link<T>, parentPrio: number): number => {
      if (!n) return -Infinity;
      if (n.owner !== this) throw new Error(`interval tree: node [${n.start}, ${n.last}] has a wrong owner`);
      if (n.prio > parentPrio) throw new Error(`interval tree: heap order broken at [${n.start}, ${n.last}]`);
      const lmax = check(n.left, n.prio);
      if (prev && !before(prev, n)) throw new Error(`interval tree: BST order broken at [${n.start}, ${n.last}]`);
      prev = n;
      seen++;
      const rmax = check(n.right, n.prio);
      const max = Math.max(n.last, lmax, rmax);
      if (n.max !== max) throw new Error(`interval tree: max is ${n.max}, expected ${max} at [${n.start}, ${n.last}]`);
      return max;
    };
    check(this.root, Infinity);
    if (seen !== this.count) throw new Error(`interval tree: size is ${this.count} but ${seen} nodes are linked`);
  }

  // ---- treap internals (recursion depth is the tree height, O(log n) expected) ----

  private insertAt(t: Link<T>, n: Node<T>): Node<T> {
    if (!t) return n;
    if (n.prio > t.prio) {
      [n.left, n.right] = this.split(t, n);
      pull(n);
      return n;
    }
    if (before(n, t)) t.left = this.insertAt(t.left, n);
    else t.right = this.insertAt(t.right, n);
    pull(t);
    return t;
  }

  /** Splits t into (nodes before k, the rest). */
  private split(t: Link<T>, k: Node<T>): [Link<T>, Link<T>] {
    if (!t) return [null, null];
    if (before(t, k)) {
      const [l, r] = this.split(t.right, k);
      t.right = l;
      pull(t);
      return [t, r];
    }
    const [l, r] = this.split(t.left, k);
    t.left = r;
    pull(t);
    return [l, t];
  }

  /** Joins a and b, every node of a being before every node of b. */
  private merge(a: Link<T>, b: Link<T>): Link<T> {
    if (!a) return b;
    if (!b) return a;
    if (a.prio >= b.prio) {
      a.right = this.merge(a.right, b);
      pull(a);
      return a;
    }
    b.left = this.merge(a, b.left);
    pull(b);
    return b;
  }

  private removeAt(t: Link<T>, n: Node<T>): Link<T> {
    if (!t) throw new Error('interval tree: owned node not found (corrupt tree)');
    if (t === n) return this.merge(t.left, t.right);
    if (before(n, t)) t.left = this.removeAt(t.left, n);
    else t.right = this.removeAt(t.right, n);
    pull(t);
    return t;
  }
}
