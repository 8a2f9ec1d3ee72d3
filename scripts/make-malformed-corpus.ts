/**
 * Writes the malformed-image corpus (built in code by test/corpus/*.ts) to a
 * directory, one folder per case, with a manifest of the expected codes, so
 * that other tools (qemu-img, a fuzzer) can be pointed at the same inputs.
 * Usage: node dist/scripts/make-malformed-corpus.js [DIR]   (default .cache/malformed)
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MALFORMED } from '../test/corpus/index.js';

const dir = process.argv[2] ?? '.cache/malformed';
const manifest: Array<{
  format: string;
  name: string;
  files: string[];
  expect: string | readonly string[];
}> = [];
for (const [format, cases] of Object.entries(MALFORMED)) {
  for (const c of cases) {
    const caseDir = join(dir, format, c.name);
    await mkdir(caseDir, { recursive: true });
    for (const [name, bytes] of Object.entries(c.files))
      await writeFile(join(caseDir, name), bytes);
    manifest.push({ format, name: c.name, files: Object.keys(c.files), expect: c.expect });
  }
}
await writeFile(join(dir, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
process.stdout.write(`${manifest.length} malformed images written to ${dir}\n`);
