// Ctrl-C for the commands that own worker threads (sweeps, thread-mode runs, queue workers): the
// first SIGINT (or SIGTERM, as Slurm and Kubernetes send before SIGKILL) aborts `signal`, and the
// command stops its workers, prints what it has and exits 130; a second one exits at once.
// Deterministic runs need none of this: they own no thread, and the default action ends them.

/** The exit status of a command stopped by Ctrl-C: 128 + SIGINT, as a shell reports it. */
export const EXIT_INTERRUPTED = 130;

export interface Interrupt {
  readonly signal: AbortSignal;
  /** Put the default handlers back (the command is done). */
  dispose(): void;
}

export function onInterrupt(): Interrupt {
  const controller = new AbortController();
  const handler = (sig: NodeJS.Signals) => {
    if (controller.signal.aborted) process.exit(EXIT_INTERRUPTED);
    process.stderr.write(`\nsvmsim: ${sig === 'SIGINT' ? 'interrupted' : sig}: stopping the workers (again to quit at once)\n`);
    controller.abort();
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return {
    signal: controller.signal,
    dispose: () => {
      process.off('SIGINT', handler);
      process.off('SIGTERM', handler);
    },
  };
}
