// A binary min-heap of envelopes ordered by due time `t`, ties broken by insertion order so that
// equal-time timers fire in the order they were set (a requirement for byte-identical traces).
import type { Envelope } from './types.js';

export class TimerHeap {
  private items: Envelope[] = [];
  private seqs: number[] = [];
  private nextSeq = 0;

  get size(): number {
    return this.items.length;
  }

  /** Due time of the earliest entry; +Infinity when empty. */
  peekT(): number {
    return this.items.length === 0 ? Infinity : this.items[0].t;
  }

  push(env: Envelope): void {
    const items = this.items;
    const seqs = this.seqs;
    const seq = this.nextSeq++;
    let i = items.length;
    items.push(env);
    seqs.push(seq);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.less(env.t, seq, items[parent].t, seqs[parent])) break;
      items[i] = items[parent];
      seqs[i] = seqs[parent];
      i = parent;
    }
    items[i] = env;
    seqs[i] = seq;
  }

  pop(): Envelope | undefined {
    const items = this.items;
    const seqs = this.seqs;
    if (items.length === 0) return undefined;
    const top = items[0];
    const last = items.pop()!;
    const lastSeq = seqs.pop()!;
    const n = items.length;
    if (n > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= n) break;
        const r = l + 1;
        const c = r < n && this.less(items[r].t, seqs[r], items[l].t, seqs[l]) ? r : l;
        if (!this.less(items[c].t, seqs[c], last.t, lastSeq)) break;
        items[i] = items[c];
        seqs[i] = seqs[c];
        i = c;
      }
      items[i] = last;
      seqs[i] = lastSeq;
    }
    return top;
  }

  private less(t1: number, s1: number, t2: number, s2: number): boolean {
    return t1 < t2 || (t1 === t2 && s1 < s2);
  }
}
