import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { describe, it } from 'node:test';
import { renderErrorsDoc } from '../../scripts/gen-errors-doc.js';
import { ERROR_CODES, FerryError, isFerryError } from '../../src/errors/index.js';

describe('error codes', () => {
  it('docs/errors.md lists exactly the codes in src/errors/codes.ts', async () => {
    const doc = await readFile(new URL('../../../docs/errors.md', import.meta.url), 'utf8');
    assert.equal(doc, renderErrorsDoc(), 'regenerate with: node dist/scripts/gen-errors-doc.js');
  });

  it('every code is FERRY_ and upper snake case, with a meaning', () => {
    for (const [code, meaning] of Object.entries(ERROR_CODES)) {
      assert.match(code, /^FERRY_[A-Z0-9_]+$/);
      assert.ok(meaning.length > 10, code);
    }
  });

  it('every code raised in src/ is declared', async () => {
    const { readdir } = await import('node:fs/promises');
    const { join } = await import('node:path');
    const root = new URL('../../../src/', import.meta.url).pathname;
    const files: string[] = [];
    const walk = async (d: string): Promise<void> => {
      for (const e of await readdir(d, { withFileTypes: true })) {
        if (e.isDirectory()) await walk(join(d, e.name));
        else if (e.name.endsWith('.ts')) files.push(join(d, e.name));
      }
    };
    await walk(root);
    for (const f of files) {
      const text = await readFile(f, 'utf8');
      for (const m of text.matchAll(/'(FERRY_[A-Z0-9_]+)'/g)) {
        assert.ok(m[1]! in ERROR_CODES, `${f} uses undeclared ${m[1]}`);
      }
    }
  });

  it('serialises code, message, details and hint', () => {
    const e = new FerryError('FERRY_IO', 'Cannot read x: EIO', {
      details: { path: 'x' },
      hint: 'retry',
    });
    assert.deepEqual(JSON.parse(JSON.stringify(e)), {
      code: 'FERRY_IO',
      message: 'Cannot read x: EIO',
      details: { path: 'x' },
      hint: 'retry',
    });
    assert.ok(isFerryError(e, 'FERRY_IO'));
    assert.ok(!isFerryError(e, 'FERRY_USAGE'));
    assert.ok(!isFerryError(new Error('x')));
  });
});
