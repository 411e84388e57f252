// Errors a run can end with. Each names the actor concerned and says what happened in one line;
// the stack of the actor's own exception is kept in `detail` for --debug.

/** An actor threw, or its worker thread exited, or it stopped answering the scheduler. */
export class ActorDiedError extends Error {
  constructor(
    readonly actor: string,
    readonly why: string,
    /** The message type it was handling, when known. */
    readonly during?: string,
    readonly detail?: string,
  ) {
    super(`actor ${actor} died${during ? ` while handling '${during}'` : ''}: ${why}`);
    this.name = 'ActorDiedError';
  }
}

/** A run could not be set up: bad actor specs, a module that does not load, a bad option. */
export class RunSetupError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RunSetupError';
  }
}

export function describeError(e: unknown): { message: string; stack?: string } {
  if (e instanceof Error) return { message: e.message, stack: e.stack };
  return { message: String(e) };
}
