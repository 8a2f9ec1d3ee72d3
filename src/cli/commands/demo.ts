import { mkdir, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  compareImages,
  convertImage,
  imageInfo,
  openImage,
  WRITABLE_FORMATS,
} from '../../disk/index.js';
import { writeSampleImage } from '../../disk/sample-image.js';
import { formatBytes, type OutputMode, printJson } from '../output.js';

export const demoHelp = `Usage: ferry demo [DIR] [--output json]

The main job on the embedded default, until publishing lands: makes a 64 MiB
sample disk (MBR, data, holes and zero runs), converts it to every format
ferry writes, reads each back and checks it is identical to the original.`;

export async function demoCommand(
  args: string[],
  _flags: unknown,
  mode: OutputMode,
  signal: AbortSignal,
): Promise<number> {
  const dir = args[0] ?? (await mkdtemp(join(tmpdir(), 'ferry-demo-')));
  await mkdir(dir, { recursive: true });
  const sample = join(dir, 'sample.img');
  await writeSampleImage(sample, 64 * 1024 * 1024);
  const rows: Array<{
    format: string;
    path: string;
    fileSize: number;
    allocatedBytes: number;
    identical: boolean;
    seconds: number;
  }> = [];
  for (const to of WRITABLE_FORMATS) {
    const out = join(dir, `converted.${to}`);
    const r = await convertImage(sample, out, { to, overwrite: true, signal });
    const a = await openImage(sample);
    const b = await openImage(out);
    try {
      const info = await imageInfo(b);
      const cmp = await compareImages(a, b, { signal });
      rows.push({
        format: to,
        path: out,
        fileSize: r.fileSize,
        allocatedBytes: info.allocatedBytes,
        identical: cmp.identical,
        seconds: r.seconds,
      });
    } finally {
      await a.close();
      await b.close();
    }
  }
  const ok = rows.every((r) => r.identical);
  if (mode === 'json') printJson({ dir, sample, results: rows, ok });
  else {
    process.stdout.write(`sample disk: ${sample}\n`);
    for (const r of rows) {
      process.stdout.write(
        `  ${r.format.padEnd(6)} ${formatBytes(r.fileSize).padStart(10)}  ${r.identical ? 'identical' : 'DIFFERENT'}  ${r.seconds.toFixed(2)} s  ${r.path}\n`,
      );
    }
    process.stdout.write(
      ok ? 'every format round-tripped identically\n' : 'some formats did not round-trip\n',
    );
  }
  return ok ? 0 : 1;
}
