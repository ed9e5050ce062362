import { afterEach, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { readLines } from '../../src/ingest/index.js';
import { cleanup, tempDir } from '../helpers/system.js';

afterEach(cleanup);

/** The lines of a text as the replay reads them: split on `\n`, no empty line after a final newline. */
function linesOf(text: string): string[] {
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return lines;
}

async function readAll(file: string): Promise<string[]> {
  const out: string[] = [];
  for await (const batch of readLines(file)) for (const line of batch) out.push(line);
  return out;
}

describe('readLines', () => {
  it('reads every line of files that mix ASCII and multi-byte UTF-8 across read boundaries', async () => {
    const dir = await tempDir();
    const piece = fc.oneof(fc.string({ maxLength: 40 }), fc.constantFrom('\n', '\r\n', 'é', '用户画像', '😀', '\n\n'), fc.string({ unit: 'grapheme', maxLength: 20 }));
    let n = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(piece, { maxLength: 200 }), fc.integer({ min: 0, max: 2 }), async (pieces, repeat) => {
        // Repeated to cross the 1 MiB reads at many offsets.
        const unit = pieces.join('');
        const text = unit.repeat(repeat === 0 || unit.length === 0 ? 1 : Math.ceil((repeat << 20) / unit.length));
        const file = join(dir, `f${n++}.txt`);
        writeFileSync(file, text);
        expect(await readAll(file)).toEqual(linesOf(text));
      }),
      { numRuns: 30 },
    );
  });

  it('reads a line longer than a read, a file without a final newline and an empty file', async () => {
    const dir = await tempDir();
    const long = `{"type":"x","note":"${'ü'.repeat(700_000)}${'a'.repeat(1_500_000)}"}`;
    const cases = [`${long}\nshort\n${long}`, '', '\n', 'no newline', 'a\r\nb\r\n', `${'x'.repeat((1 << 20) - 1)}\n${'y'.repeat(10)}`];
    for (const [i, text] of cases.entries()) {
      const file = join(dir, `c${i}.txt`);
      writeFileSync(file, text);
      expect(await readAll(file)).toEqual(linesOf(text));
    }
  });
});
