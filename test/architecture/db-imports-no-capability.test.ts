import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** db/ is plumbing: it may import itself and packages, never a capability (those hand their entities over, see src/capabilities.ts). */
it('src/db imports no capability', () => {
  const dir = join(__dirname, '..', '..', 'src', 'db');
  const offenders: string[] = [];
  for (const f of readdirSync(dir).filter((x) => x.endsWith('.ts'))) {
    for (const m of readFileSync(join(dir, f), 'utf8').matchAll(
      /from\s+'([^']+)'|import\s+'([^']+)'|require\('([^']+)'\)/g,
    )) {
      const spec = m[1] ?? m[2] ?? m[3];
      if (spec.startsWith('.') && !spec.startsWith('./') && spec !== '../../migrations')
        offenders.push(`${f}: ${spec}`);
    }
  }
  expect(offenders).toEqual([]);
});
