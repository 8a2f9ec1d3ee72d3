import { imageInfo, isFormatName, openImage } from '../../disk/index.js';
import { FerryError } from '../../errors/index.js';
import { formatBytes, type OutputMode, printJson } from '../output.js';

export const infoHelp = `Usage: ferry info IMAGE [--from FORMAT] [--allow-flat-extents] [--output json]

Shows an image's format, virtual size, file size, allocated bytes and format
details, from its metadata only. The format is detected from the bytes; a
declared --from that disagrees is an error.`;

export async function infoCommand(
  args: string[],
  flags: Record<string, string | boolean | undefined>,
  mode: OutputMode,
): Promise<number> {
  const path = args[0];
  if (path === undefined || args.length > 1)
    throw new FerryError('FERRY_USAGE', 'Cannot run info: give exactly one IMAGE');
  const from = flags.from;
  if (typeof from === 'string' && !isFormatName(from)) {
    throw new FerryError('FERRY_USAGE', `Cannot run info: unknown format "${from}"`);
  }
  const image = await openImage(path, {
    ...(typeof from === 'string' && isFormatName(from) ? { format: from } : {}),
    allowFlatExtents: flags['allow-flat-extents'] === true,
  });
  try {
    const info = await imageInfo(image);
    if (mode === 'json') {
      printJson({ path, ...info });
      return 0;
    }
    const lines = [
      `image:           ${path}`,
      `format:          ${info.format}`,
      `virtual size:    ${formatBytes(info.virtualSize)} (${info.virtualSize} bytes)`,
      `file size:       ${formatBytes(info.fileSize)} (${info.fileSize} bytes)`,
      `allocated:       ${formatBytes(info.allocatedBytes)} (${info.allocatedBytes} bytes)`,
    ];
    for (const [k, v] of Object.entries(info.details)) {
      lines.push(`${`${k}:`.padEnd(17)}${typeof v === 'object' ? JSON.stringify(v) : String(v)}`);
    }
    for (const w of info.warnings) lines.push(`warning:         ${w.message} [${w.code}]`);
    process.stdout.write(`${lines.join('\n')}\n`);
    return 0;
  } finally {
    await image.close();
  }
}
