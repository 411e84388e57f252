export * from './types.js';
export { ActorDiedError, RunSetupError } from './errors.js';
export { LocalScheduler, LOCAL_TRACE_FILE, type LocalActor, type LocalRunOptions } from './local-scheduler.js';
export { ThreadScheduler, threadTraceFile, type ThreadRunOptions } from './thread-scheduler.js';
export { Sfc32, actorRng } from './rng.js';
export { readTrace, type TraceLine } from './read-trace.js';
export { Mutex } from './mutex.js';
export { Continuations } from './continuations.js';
