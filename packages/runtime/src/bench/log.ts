// Progress lines for the bench: stderr only, since stdout carries nothing but the JSON report.
const t0 = performance.now();

export function progress(line: string): void {
  process.stderr.write(`[bench ${((performance.now() - t0) / 1e3).toFixed(1)}s] ${line}\n`);
}
