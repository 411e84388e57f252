// What nvme_timeout (drivers/nvme/host/pci.c, v6.6) decides for a request whose timer fired.
// In order: a fatal controller status (CSTS.CFS, or NSSRO after a subsystem reset) resets at once;
// a poll of the CQ may find a completion whose interrupt was missed (BLK_EH_DONE); a timeout while
// CONNECTING removes the controller, while RESETTING only re-arms; a timeout of an admin command,
// or of one already aborted, resets; past the abort limit the timer just re-arms; otherwise an
// Abort admin command is sent and the timer re-armed for the full timeout (so an unresponsive
// controller is reset at about 2 × io_timeout).

/** nvme_io_timeout (NVME_IO_TIMEOUT, 30 s), admin_timeout (60 s), shutdown_timeout (5 s). */
export const NVME_IO_TIMEOUT_NS = 30_000_000_000;
export const NVME_ADMIN_TIMEOUT_NS = 60_000_000_000;
export const NVME_SHUTDOWN_TIMEOUT_NS = 5_000_000_000;
/** ctrl->abort_limit = id->acl + 1; ACL 3 is the common value (4 outstanding aborts). */
export const NVME_ABORT_LIMIT_DEFAULT = 4;

export type CtrlState = 'LIVE' | 'RESETTING' | 'CONNECTING' | 'DELETING' | 'DEAD';

export interface TimeoutContext {
  readonly csts_fatal: boolean;
  /** The CQ holds this request's completion (its interrupt was lost). */
  readonly completionPosted: boolean;
  readonly ctrlState: CtrlState;
  readonly qid: number;
  readonly aborted: boolean;
  readonly abortsOutstanding: number;
  readonly abortLimit: number;
}

export type TimeoutAction = 'RESET' | 'POLLED_DONE' | 'REMOVE' | 'RESET_TIMER' | 'ABORT';

export function nvme_timeout(ctx: TimeoutContext): TimeoutAction {
  if (ctx.csts_fatal) return 'RESET';
  if (ctx.completionPosted) return 'POLLED_DONE';
  if (ctx.ctrlState === 'CONNECTING' || ctx.ctrlState === 'DELETING') return 'REMOVE';
  if (ctx.ctrlState === 'RESETTING') return 'RESET_TIMER';
  if (ctx.qid === 0 || ctx.aborted) return 'RESET';
  if (ctx.abortsOutstanding >= ctx.abortLimit) return 'RESET_TIMER';
  return 'ABORT';
}
