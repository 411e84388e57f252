// adev->notifier_lock: the runtime's actor mutex (see @svmsim/runtime mutex.ts).
export { Mutex } from '@svmsim/runtime';
