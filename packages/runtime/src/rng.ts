// Seeded pseudo-random numbers: sfc32 (Chris Doty-Humphrey's small fast counter), 32-bit state
// words, period about 2^128. Seeds are spread with a 32-bit finaliser so that neighbouring seeds
// (1, 2, 3 … in a sweep) give unrelated streams.
import type { Rng } from './types.js';

function mix32(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x7feb352d);
  x = Math.imul(x ^ (x >>> 15), 0x846ca68b);
  return (x ^ (x >>> 16)) >>> 0;
}

/** FNV-1a of a string: turns an actor id into a seed component. */
export function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

export class Sfc32 implements Rng {
  private a: number;
  private b: number;
  private c: number;
  private d = 1;

  constructor(seed: number, stream = 0) {
    if (!Number.isSafeInteger(seed)) throw new RangeError(`seed must be a safe integer, got ${seed}`);
    const lo = seed >>> 0;
    const hi = Math.floor(seed / 0x1_0000_0000) >>> 0;
    this.a = mix32(lo ^ 0x9e3779b9);
    this.b = mix32(hi ^ 0x85ebca6b ^ mix32(stream));
    this.c = mix32(stream ^ 0xc2b2ae35);
    for (let i = 0; i < 12; i++) this.u32(); // discard the warm-up outputs
  }

  u32(): number {
    const t = (((this.a + this.b) >>> 0) + this.d) >>> 0;
    this.d = (this.d + 1) >>> 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) >>> 0;
    this.c = ((this.c << 21) | (this.c >>> 11)) >>> 0;
    this.c = (this.c + t) >>> 0;
    return t;
  }

  next(): number {
    return this.u32() / 0x1_0000_0000;
  }

  int(n: number): number {
    if (!(n > 0) || !Number.isInteger(n)) throw new RangeError(`rng.int needs a positive integer, got ${n}`);
    return Math.floor(this.next() * n);
  }
}

/** The stream an actor's `ctx.rng` draws from: depends on the run's seed and the actor's id only. */
export function actorRng(seed: number, actor: string): Sfc32 {
  return new Sfc32(seed, hashString(actor));
}
