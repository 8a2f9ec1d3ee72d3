import type { DiskEvent } from '../disk/index.js';
import { formatBytes } from './output.js';

/**
 * Renders progress events as a bar on stderr when it is a TTY; elsewhere
 * (pipes, CI) it prints nothing, so machine output stays clean.
 */
export function progressRenderer(enabled = process.stderr.isTTY === true): {
  onEvent: (event: DiskEvent) => void;
  done: () => void;
} {
  let last = 0;
  let drawn = false;
  const started = performance.now();
  return {
    onEvent(event) {
      if (!enabled || event.type !== 'progress') return;
      const now = performance.now();
      if (now - last < 100 && event.done < event.total) return;
      last = now;
      const frac = event.total === 0 ? 1 : event.done / event.total;
      const width = 30;
      const filled = Math.round(frac * width);
      const rate = event.done / Math.max(0.001, (now - started) / 1000);
      process.stderr.write(
        `\r${event.operation} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${(frac * 100).toFixed(0).padStart(3)}% ${formatBytes(event.done)} of ${formatBytes(event.total)} (${formatBytes(rate)}/s)  `,
      );
      drawn = true;
    },
    done() {
      if (drawn) process.stderr.write('\n');
    },
  };
}
