/**
 * Where ../shared/fixtures is. Tests read the fixtures in place (they are not copied into the
 * project): beside the repository, or — in a clean clone made elsewhere, as CI does — beside the
 * repository it was cloned from. POS_SHARED_DIR overrides both.
 */
import { execSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';

const repo = resolve(__dirname, '..', '..');

function originDir(): string | null {
  try {
    const url = execSync('git remote get-url origin', { cwd: repo, stdio: ['ignore', 'pipe', 'ignore'] })
      .toString()
      .trim();
    return url && !/^[a-z]+:\/\//.test(url) && !url.includes('@') ? resolve(repo, url) : null;
  } catch {
    return null;
  }
}

export function fixturesDir(): string {
  const candidates = [
    process.env.POS_SHARED_DIR && join(process.env.POS_SHARED_DIR, 'fixtures'),
    join(repo, '..', 'shared', 'fixtures'),
    originDir() && join(originDir()!, '..', 'shared', 'fixtures'),
  ].filter((c): c is string => !!c);
  const found = candidates.find((c) => existsSync(join(c, 'ecr', 'frames.json')));
  if (!found) throw new Error(`../shared/fixtures not found (looked in ${candidates.join(', ')}); set POS_SHARED_DIR`);
  return found;
}
