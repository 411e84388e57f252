// A sleeping mutex for an actor (amdgpu's adev->notifier_lock). An actor's state changes atomically
// between messages, so a lock only matters when its holder waits across turns (the invalidate
// callback waiting for fences). `lock(fn)` runs fn once the mutex is ours; the holder calls unlock().
export class Mutex {
  private held = false;
  private readonly waiters: (() => void)[] = [];
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
  trylock(): boolean {
    if (this.held) return false;
    this.held = true;
    return true;
  }
  unlock(): void {
    if (!this.held) throw new Error('gpu: unlock of a mutex that is not held');
    const next = this.waiters.shift();
    if (next) next();
    else this.held = false;
  }
}
