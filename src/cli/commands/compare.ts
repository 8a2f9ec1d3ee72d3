import { compareImages, isFormatName, openImage } from '../../disk/index.js';
import { FerryError } from '../../errors/index.js';
import { type OutputMode, printJson } from '../output.js';

export const compareHelp = `Usage: ferry compare A B [--from-a FORMAT] [--from-b FORMAT] [--output json]

Compares the virtual disks of two images of any formats, as qemu-img compare
does. Exit 0 when identical, 1 when they differ (with the first differing
offset), 2 on a usage error.`;

export async function compareCommand(
  args: string[],
  flags: Record<string, string | boolean | undefined>,
  mode: OutputMode,
  signal: AbortSignal,
): Promise<number> {
  const [pa, pb] = args;
  if (pa === undefined || pb === undefined || args.length > 2)
    throw new FerryError('FERRY_USAGE', 'Cannot run compare: give A and B');
  const fmt = (v: string | boolean | undefined) => {
    if (v === undefined) return {};
    if (typeof v !== 'string' || !isFormatName(v))
      throw new FerryError('FERRY_USAGE', `Cannot run compare: unknown format "${String(v)}"`);
    return { format: v };
  };
  const a = await openImage(pa, { ...fmt(flags['from-a']), signal });
  try {
    const b = await openImage(pb, { ...fmt(flags['from-b']), signal });
    try {
      const r = await compareImages(a, b, { signal });
      if (mode === 'json') printJson({ a: pa, b: pb, ...r });
      else if (r.identical) process.stdout.write('Images are identical.\n');
      else process.stdout.write(`Content mismatch at offset ${r.firstDifference}!\n`);
      return r.identical ? 0 : 1;
    } finally {
      await b.close();
    }
  } finally {
    await a.close();
  }
}
