#!/usr/bin/env node
/*
 * Run before `npm start`, `npm test` and the benchmarks so that a fresh clone needs nothing else:
 * installs node_modules when they are missing or older than package-lock.json, and (unless
 * --no-build) compiles dist/ when any source is newer than the last build, and builds the browser
 * pages (web/ → dist/web with Vite) when any of web/ is newer than the last page build.
 * --web builds only the pages (the browser tests ask for that).
 */
const { spawnSync } = require('node:child_process');
const { existsSync, statSync, readdirSync } = require('node:fs');
const { join } = require('node:path');

const root = join(__dirname, '..');
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

function run(cmd, args) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status === null ? 1 : r.status);
}

function mtime(p) {
  try {
    return statSync(p).mtimeMs;
  } catch {
    return 0;
  }
}

function newestUnder(dir) {
  let newest = 0;
  if (!existsSync(dir)) return newest;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    newest = Math.max(newest, e.isDirectory() ? newestUnder(p) : mtime(p));
  }
  return newest;
}

const marker = join(root, 'node_modules', '.package-lock.json');
let freshInstall = false;
if (!existsSync(marker) || mtime(join(root, 'package-lock.json')) > mtime(marker)) {
  process.stderr.write('installing dependencies (npm ci)…\n');
  run(npm, ['ci', '--no-audit', '--no-fund']);
  freshInstall = true;
}

/** The lane and back-office pages: Vite builds web/ into dist/web (served at /lane and /backoffice). */
function buildWeb() {
  const stamp = join(root, 'dist', 'web', '.build-stamp');
  const sources = Math.max(newestUnder(join(root, 'web')), mtime(join(root, 'package-lock.json')));
  if (sources > mtime(stamp)) {
    process.stderr.write('building the pages (vite)…\n');
    run(process.execPath, [
      join(root, 'node_modules', 'vite', 'bin', 'vite.js'),
      'build',
      '--config',
      'web/vite.config.ts',
    ]);
    require('node:fs').writeFileSync(stamp, new Date().toISOString());
  }
}

if (process.argv.includes('--web')) {
  buildWeb();
} else if (!process.argv.includes('--no-build')) {
  buildWeb();
  const stamp = join(root, 'dist', '.build-stamp');
  const sources = Math.max(
    ...['src', 'migrations', 'bench'].map((d) => newestUnder(join(root, d))),
    ...['ormconfig.ts', 'tsconfig.json', 'tsconfig.build.json', 'package-lock.json'].map((f) => mtime(join(root, f))),
  );
  if (sources > mtime(stamp)) {
    process.stderr.write('building (tsc)…\n');
    const tsc = [require.resolve('typescript/bin/tsc', { paths: [root] }), '-p', 'tsconfig.build.json'];
    // Twice (sessions 4 and 5) the first build right after `npm ci` in a fresh clone reported a module or a
    // type that was there (TS2307 / TS2339 on files present on disk), and the same build passed when run again;
    // the cause is not known. After a fresh install only, one failed build is tried again, and says so.
    if (freshInstall && spawnSync(process.execPath, tsc, { cwd: root, stdio: 'inherit' }).status !== 0) {
      process.stderr.write('ensure: the first build after npm ci failed; building once more\n');
      run(process.execPath, tsc);
    } else if (!freshInstall) run(process.execPath, tsc);
    require('node:fs').writeFileSync(stamp, new Date().toISOString());
  }
}
