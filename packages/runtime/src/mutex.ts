// A sleeping mutex for an actor: a driver's update lock (test_hmm.c's dmirror->mutex, amdgpu's
// notifier_lock). An actor's state changes atomically between messages, so a lock matters only
// when its holder waits across turns (a DMA copy waiting for replies, an invalidate callback
// waiting for fences). `lock(fn)` runs fn once the mutex is the caller's (now, or when the holder
// unlocks, in FIFO order); the holder calls unlock().
export class Mutex {
  private held = false;
  private readonly waiters: (() => void)[] = [];

  constructor(private readonly name: string) {}

  get locked(): boolean {
    return this.held;
  }

  lock(fn: () => void): void {
    if (this.held) {
      this.waiters.push(fn);
      return;
    }
    this.held = true;
    fn();
  }

  /** mutex_trylock: never waits (a non-blockable invalidation). */
  trylock(): boolean {
    if (this.held) return false;
    this.held = true;
    return true;
  }

  unlock(): void {
    if (!this.held) throw new Error(`${this.name}: unlock of a mutex that is not held`);
    const next = this.waiters.shift();
    if (next) next();
    else this.held = false;
  }
}
