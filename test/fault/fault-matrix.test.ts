/**
 * docs/fault-matrix.md names, for every fault, the test that proves its end state. This reads the
 * matrix and checks that each named test exists with exactly that title in that file, so renaming or
 * deleting a test (or a typo in the matrix) fails here instead of leaving the matrix stale.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const root = join(__dirname, '..', '..');

interface Row {
  fault: string;
  tests: { file: string; name: string }[];
  pending: string | null;
}

function readMatrix(): Row[] {
  const text = readFileSync(join(root, 'docs', 'fault-matrix.md'), 'utf8');
  const rows: Row[] = [];
  let inMatrix = false; // only tables headed | Fault | End state | Test | are the matrix
  for (const line of text.split('\n')) {
    const cells = line.split('|').map((c) => c.trim());
    if (cells.length < 5) {
      inMatrix = false;
      continue;
    }
    if (cells[1] === 'Fault') {
      inMatrix = cells[2] === 'End state' && cells[3] === 'Test';
      continue;
    }
    if (!inMatrix || /^-+$/.test(cells[1])) continue;
    const last = cells[3];
    const tests = [...last.matchAll(/`([^`]+\.test\.ts)` › ([^<]+?)(?=<br>|$)/g)].map((m) => ({
      file: m[1],
      name: m[2].replace(/\s*\((?:asserts it;|the fix is|fails until).*\)$/, '').trim(),
    }));
    rows.push({ fault: cells[1], tests, pending: /^pending\b/.test(last) ? last : null });
  }
  return rows;
}

/** Every literal it('…')/test('…') title in a file (quotes of any kind; escaped quotes unescaped). */
function titles(file: string): Set<string> {
  const src = readFileSync(join(root, file), 'utf8');
  const out = new Set<string>();
  for (const m of src.matchAll(/\b(?:it|test)(?:\.(?:only|skip|each\([^)]*\)))?\(\s*(['"`])((?:\\.|(?!\1)[^\\])*)\1/g))
    out.add(m[2].replace(/\\(.)/g, '$1'));
  return out;
}

describe('fault matrix', () => {
  const rows = readMatrix();

  it('the matrix has rows, and every row names a test or says whose branch brings it', () => {
    expect(rows.length).toBeGreaterThan(20);
    expect(rows.flatMap((r) => r.tests).length).toBeGreaterThan(30);
    expect(rows.filter((r) => r.tests.length === 0 && !r.pending).map((r) => r.fault)).toEqual([]);
    const pending = rows.filter((r) => r.pending).map((r) => `${r.fault} → ${r.pending}`);
    if (pending.length)
      process.stdout.write(`fault matrix: ${pending.length} row(s) pending:\n  ${pending.join('\n  ')}\n`);
  });

  it('every test the matrix names exists with exactly that title', () => {
    const missing: string[] = [];
    for (const r of rows) {
      for (const t of r.tests) {
        if (!existsSync(join(root, t.file))) {
          missing.push(`${t.file} (no such file) for "${r.fault}"`);
          continue;
        }
        if (!titles(t.file).has(t.name)) missing.push(`${t.file} › ${t.name}`);
      }
    }
    expect(missing).toEqual([]);
  });
});
