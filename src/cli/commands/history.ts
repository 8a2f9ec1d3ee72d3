import { loadConfig } from '../../config/index.js';
import { FerryError } from '../../errors/index.js';
import {
  history,
  liveImages,
  loadRuns,
  type RunHistory,
  runHistory,
  statePaths,
} from '../../publish/index.js';
import { lockHeld } from '../../store/store-lock.js';
import { type OutputMode, printJson } from '../output.js';

export const historyHelp = `Usage: ferry history [STREAM] [--output json]

Every publish and deregister run in the state directory (ferry.yaml's
"state", default .ferry beside it), oldest first: its outcome and, per
placement (target/region), each step with its start, end and duration.`;

export const statusHelp = `Usage: ferry status [--output json]

The newest run: running (a publish holds the state lock), interrupted (a
crash or Ctrl-C: the next ferry publish resumes it), done or failed; per
placement, the step it is at and the blocks sent so far.`;

export const imagesHelp = `Usage: ferry images ls [--output json]

A stream x placement matrix: which revision's image is live where, from the
journals (published and not deregistered since).`;

type Flags = Record<string, string | boolean | string[] | undefined>;

const secs = (s: number | null) => (s === null ? '' : `${s.toFixed(1)} s`);
const time = (iso: string | null) => (iso === null ? '…' : iso.slice(11, 19));

function describeRun(h: RunHistory): string {
  const what =
    h.revision === null
      ? `${h.stream} (${h.image ?? 'image'})`
      : `${h.stream}@${h.revision.slice(0, 12)}`;
  const lines = [
    `${h.runId}  ${h.kind} ${what}  ${h.outcome}${h.seconds === null ? '' : ` in ${secs(h.seconds)}`}${h.resumed.length > 0 ? `, resumed ${h.resumed.length}x` : ''}${h.error === null ? '' : `: ${h.error.message} [${h.error.code}]`}`,
  ];
  for (const s of h.steps)
    lines.push(
      `    ${s.step.padEnd(10)} ${s.state.padEnd(8)} ${time(s.started)} → ${time(s.ended)}  ${secs(s.seconds)}`,
    );
  for (const p of h.placements) {
    lines.push(`  ${p.placement}: ${p.state}${p.imageId === null ? '' : `  ${p.imageId}`}`);
    for (const s of p.steps)
      lines.push(
        `    ${s.step.padEnd(10)} ${s.state.padEnd(8)} ${time(s.started)} → ${time(s.ended)}  ${secs(s.seconds)}${s.error === null ? '' : `  ${s.error.message}`}`,
      );
  }
  return lines.join('\n');
}

export async function historyCommand(
  args: string[],
  _flags: Flags,
  mode: OutputMode,
): Promise<number> {
  if (args.length > 1)
    throw new FerryError('FERRY_USAGE', 'Cannot run history: give at most one STREAM');
  const config = await loadConfig();
  const runs = await history(
    statePaths(config.state),
    args[0] === undefined ? {} : { stream: args[0] },
  );
  if (mode === 'json') printJson({ runs });
  else if (runs.length === 0) process.stdout.write('no runs yet\n');
  else process.stdout.write(`${runs.map(describeRun).join('\n\n')}\n`);
  return 0;
}

export async function statusCommand(
  args: string[],
  _flags: Flags,
  mode: OutputMode,
): Promise<number> {
  if (args.length > 0)
    throw new FerryError('FERRY_USAGE', 'Cannot run status: it takes no arguments');
  const config = await loadConfig();
  const state = statePaths(config.state);
  const runs = await loadRuns(state.runs);
  const last = runs.at(-1);
  if (last === undefined) {
    if (mode === 'json') printJson({ run: null });
    else process.stdout.write('no runs yet\n');
    return 0;
  }
  const live = last.outcome === 'unfinished' && (await lockHeld(state.lock));
  const h = runHistory(last, live);
  const progress = Object.fromEntries(
    [...last.checkpoints].map(([key, value]) => [key.replace('\u0000', ':'), value]),
  );
  const status = h.outcome === 'unfinished' ? (live ? 'running' : 'interrupted') : h.outcome;
  if (mode === 'json') printJson({ status, run: h, checkpoints: progress });
  else {
    process.stdout.write(
      `${status}${status === 'interrupted' ? ' (ferry publish resumes it)' : ''}\n${describeRun(h)}\n`,
    );
  }
  return 0;
}

export async function imagesCommand(
  args: string[],
  _flags: Flags,
  mode: OutputMode,
): Promise<number> {
  if (args[0] !== 'ls' || args.length > 1)
    throw new FerryError('FERRY_USAGE', 'Cannot run images: say ferry images ls');
  const config = await loadConfig();
  const live = await liveImages(statePaths(config.state));
  if (mode === 'json') {
    printJson({ images: live });
    return 0;
  }
  if (live.length === 0) {
    process.stdout.write('nothing published yet\n');
    return 0;
  }
  const streams = [...new Set(live.map((l) => l.stream))].sort();
  const placements = [...new Set(live.map((l) => l.placement))].sort();
  const cell = (s: string, p: string) => {
    const here = live.filter((l) => l.stream === s && l.placement === p);
    const newest = here.at(-1);
    return newest === undefined
      ? '-'
      : `${(newest.revision ?? '?').slice(0, 12)} ${newest.imageId}${here.length > 1 ? ` (+${here.length - 1})` : ''}`;
  };
  const rows = [
    ['', ...placements],
    ...streams.map((s) => [s, ...placements.map((p) => cell(s, p))]),
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  process.stdout.write(
    `${rows
      .map((r) =>
        r
          .map((c, i) => c.padEnd(widths[i]!))
          .join('  ')
          .trimEnd(),
      )
      .join('\n')}\n`,
  );
  return 0;
}
