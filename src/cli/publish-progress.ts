import type { PublishEvent } from '../publish/index.js';
import { formatBytes, type OutputMode } from './output.js';

/**
 * Publish events for people or programs: with --output json, one JSON line
 * per event on stdout (the result follows as the last line); on a TTY, one
 * progress line per placement on stderr, redrawn at most ten times a second;
 * otherwise nothing until the summary.
 */
export function publishProgress(
  mode: OutputMode,
  tty: boolean,
): { onEvent: (e: PublishEvent) => void; done: () => void } {
  if (mode === 'json')
    return {
      onEvent: (e) =>
        process.stdout.write(`${JSON.stringify({ t: new Date().toISOString(), ...e })}\n`),
      done: () => {},
    };
  if (!tty) return { onEvent: () => {}, done: () => {} };
  const rows = new Map<string, string>();
  /** When each placement's first block event came: its rate is its own. */
  const began = new Map<string, number>();
  let drawn = 0;
  let last = 0;
  const draw = (force: boolean) => {
    const now = performance.now();
    if (!force && now - last < 100) return;
    last = now;
    const lines = [...rows].map(([k, v]) => `${k.padEnd(28)} ${v}`);
    if (drawn > 0) process.stderr.write(`\x1b[${drawn}A`);
    for (const l of lines) process.stderr.write(`\x1b[2K${l}\n`);
    drawn = lines.length;
  };
  return {
    onEvent(e) {
      if (e.type === 'blocks') {
        const frac = e.total === 0 ? 1 : (e.sent + e.skipped) / e.total;
        const width = 24;
        const filled = Math.round(frac * width);
        const t0 = began.get(e.placement) ?? performance.now();
        began.set(e.placement, t0);
        const secs = Math.max(0.001, (performance.now() - t0) / 1000);
        rows.set(
          e.placement,
          `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${(frac * 100).toFixed(0).padStart(3)}% ${formatBytes(e.bytes)} sent, ${(e.sent / secs).toFixed(0)} blocks/s`,
        );
      } else if (e.type === 'step')
        rows.set(
          e.placement,
          `${e.step} ${e.state}${e.detail === undefined ? '' : `: ${e.detail}`}`,
        );
      else if (e.type === 'import')
        rows.set(e.placement, `import ${e.status} ${e.progress ?? ''}% ${e.message ?? ''}`);
      else if (e.type === 'throttled')
        rows.set(e.placement, `throttled: ${e.concurrency} in flight`);
      draw(false);
    },
    done() {
      if (rows.size > 0) draw(true);
      rows.clear();
      drawn = 0;
    },
  };
}
