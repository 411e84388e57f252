// A process's open files on dmirror devices. Setup opens one per (process, device); a fork's child
// has none (test_hmm.c binds a file to the mm of the opener, so hmm-tests' children open their own):
// it opens one when its first dmirror step runs and closes it before it exits.
import type { DmirrorClose, DmirrorOpen } from '@svmsim/kernel-mm/dmirror';
import type { App, Proc } from './state.js';

/** `then(fd)` with the process's file on `device`, opened now if need be; `then(undefined, ret)` if the open failed. */
export function ensureOpen(app: App, proc: Proc, device: string, then: (fd: number | undefined, ret: number) => void): void {
  const fd = proc.files.get(device);
  if (fd !== undefined) return then(fd, 0);
  app.io.call(device, { type: 'dmirror_open', pid: proc.pid } satisfies DmirrorOpen, (r) => {
    if (r.ret < 0) return then(undefined, r.ret);
    proc.files.set(device, r.ret);
    then(r.ret, 0);
  });
}

/** Close every file the process has open, one after another; then `done`. */
export function closeAll(app: App, proc: Proc, done: () => void): void {
  const open = [...proc.files];
  const next = (i: number): void => {
    if (i === open.length) return done();
    const [device, fd] = open[i];
    proc.files.delete(device);
    app.io.call(device, { type: 'dmirror_close', fd } satisfies DmirrorClose, () => next(i + 1));
  };
  next(0);
}
