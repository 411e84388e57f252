// A scenario's headline figure and which policy wins on it: what `compare --profile a,b` prints
// under its per-profile tables, so a reader sees whether the verdict moves with the costs.
//
// The headline is the first column of the scenario's `report:` list (its story first; the default
// columns without one) that is a single number with a direction. Only runs the checker passed
// (verdict ok) compete: a faster policy that loses data wins nothing. Equal figures tie.
import type { RunReport } from '../run/run-scenario.js';
import { formatDuration } from '../scenario/units.js';
import { DEFAULT_COLUMNS, gpuOf, verdict } from './table.js';

export interface HeadlineFigure {
  /** What the figure is, as the line prints it. */
  title: string;
  better: 'lower' | 'higher';
  /** The figure of one run; undefined when the run has none (no GPU, no NIC). */
  value: (r: RunReport) => number | undefined;
  format: (x: number) => string;
}

const gpuFigure = (key: string) => (r: RunReport): number | undefined => {
  const g = gpuOf(r);
  return g && typeof g[key] === 'number' ? (g[key] as number) : undefined;
};
const perSecond = (x: number): string => `${x === 0 ? 0 : x >= 100 ? Math.round(x) : Number(x.toPrecision(3))}/s`;

/** The report columns that can be a headline, by their id in table.ts COLUMNS. */
export const HEADLINE_FIGURES: Record<string, HeadlineFigure> = {
  'submit-latency': { title: 'submit p50', better: 'lower', value: gpuFigure('submitLatencyP50Ns'), format: formatDuration },
  'fault-latency': { title: 'device fault p50', better: 'lower', value: gpuFigure('faultLatencyP50Ns'), format: formatDuration },
  'job-stretch': { title: 'job time/duration max', better: 'lower', value: gpuFigure('jobStretchMax'), format: (x) => `${x.toPrecision(3)}×` },
  'gpu-invalidations-per-page-s': {
    title: 'invalidated/page/s',
    better: 'lower',
    value: (r) => {
      const g = gpuOf(r);
      if (!g) return undefined;
      const pages = Math.max(1, typeof g.boPagesCreated === 'number' ? g.boPagesCreated : 0);
      return (typeof g.pagesInvalidated === 'number' ? g.pagesInvalidated : 0) / pages / (Math.max(r.simNs, 1) / 1e9);
    },
    format: perSecond,
  },
  'kswapd-blocked': { title: 'kswapd blocked', better: 'lower', value: (r) => r.mm.kswapdBlockedNs, format: formatDuration },
  'notifier-wait': { title: 'notifier wait p50', better: 'lower', value: (r) => r.mm.notifierWaitNsP50, format: formatDuration },
  invalidations: { title: 'invalidations', better: 'lower', value: (r) => r.mm.invalidations, format: String },
};

/** The headline of a scenario's runs: its first report column that is a headline figure. */
export function headlineOf(rows: RunReport[]): { id: string; figure: HeadlineFigure } | undefined {
  const ids = rows.find((r) => r.columns !== undefined)?.columns ?? DEFAULT_COLUMNS;
  const id = ids.find((c) => HEADLINE_FIGURES[c] !== undefined && rows.some((r) => HEADLINE_FIGURES[c].value(r) !== undefined));
  return id === undefined ? undefined : { id, figure: HEADLINE_FIGURES[id] };
}

export interface Winner {
  /** The policies with the best figure (more than one on a tie); empty when no run passed the checker. */
  policies: string[];
  value: number | undefined;
}

/** Which policy wins on `figure` among `rows` (the runs of one scenario under one profile). */
export function winnerOf(rows: RunReport[], figure: HeadlineFigure): Winner {
  const scored = rows
    .filter((r) => verdict(r) === 'ok')
    .map((r) => ({ policy: Object.values(r.policies).join(','), v: figure.value(r) }))
    .filter((x): x is { policy: string; v: number } => x.v !== undefined && Number.isFinite(x.v));
  if (scored.length === 0) return { policies: [], value: undefined };
  const best = figure.better === 'lower' ? Math.min(...scored.map((x) => x.v)) : Math.max(...scored.map((x) => x.v));
  return { policies: scored.filter((x) => x.v === best).map((x) => x.policy), value: best };
}

/**
 * One line per scenario: its headline figure and the winner under each profile, and whether the
 * winner moved. `byProfile` holds the scenario's runs under each profile, in the order given.
 */
export function verdictLine(scenario: string, byProfile: { profile: string; rows: RunReport[] }[]): string {
  const all = byProfile.flatMap((p) => p.rows);
  const h = headlineOf(all);
  if (!h) return `${scenario}: no headline figure to compare (its report columns have none with a direction)`;
  const winners = byProfile.map((p) => ({ profile: p.profile, w: winnerOf(p.rows, h.figure) }));
  const parts = winners.map(({ profile, w }) => `${profile}: ${w.policies.length === 0 ? 'no run passed the checker' : `${w.policies.join(' = ')} (${h.figure.format(w.value!)})`}`);
  const keys = new Set(winners.map(({ w }) => w.policies.join(',')));
  const moved = keys.size > 1 ? 'the winner moves' : 'the same winner under every profile';
  return `${scenario} — ${h.figure.title}, ${h.figure.better} wins: ${parts.join(' · ')} — ${moved}`;
}
