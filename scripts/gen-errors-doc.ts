/**
 * Writes docs/errors.md from src/errors/codes.ts. A test fails when the
 * committed file differs, so the documented list is always the real one.
 * Usage: node dist/scripts/gen-errors-doc.js [--check]
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { ERROR_CODES } from '../src/errors/codes.js';

export function renderErrorsDoc(): string {
  const rows = Object.entries(ERROR_CODES).map(([code, meaning]) => `| \`${code}\` | ${meaning} |`);
  return `# Error codes

Every error ferry raises is a \`FerryError\` with a stable \`code\`. Match on the
code, never on the message text: messages are for people and may be reworded.
Messages read "Cannot <action>: <reason>"; \`details\` carries structured
context (offsets, sizes, names) and \`hint\` a suggestion where one exists.
With \`--output json\` the CLI prints \`{"error": {"code", "message", "details", "hint"}}\`.

Exit codes: 0 success, 1 failure (\`compare\`: the images differ), 2 usage error
(\`FERRY_USAGE\`).

This file is generated from \`src/errors/codes.ts\` by
\`node dist/scripts/gen-errors-doc.js\`; a test keeps the two in step.

| code | meaning |
| --- | --- |
${rows.join('\n')}
`;
}

if (process.argv[1]?.endsWith('gen-errors-doc.js')) {
  const path = new URL('../../docs/errors.md', import.meta.url);
  const text = renderErrorsDoc();
  if (process.argv.includes('--check')) {
    if (readFileSync(path, 'utf8') !== text) {
      process.stderr.write(
        'docs/errors.md is out of date: run node dist/scripts/gen-errors-doc.js\n',
      );
      process.exit(1);
    }
  } else writeFileSync(path, text);
}
