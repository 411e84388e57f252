// A progress bar on a terminal, nothing elsewhere (CI logs and pipes stay clean).
import cliProgress from 'cli-progress';

export interface Progress {
  tick(label?: string): void;
  done(): void;
}

export function progressBar(total: number, unit: string): Progress {
  if (!process.stderr.isTTY || total <= 1) return { tick: () => {}, done: () => {} };
  const bar = new cliProgress.SingleBar(
    { stream: process.stderr, format: `{bar} {value}/{total} ${unit}  {label}`, hideCursor: true, clearOnComplete: true },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total, 0, { label: '' });
  return {
    tick: (label = '') => bar.increment(1, { label }),
    done: () => bar.stop(),
  };
}
