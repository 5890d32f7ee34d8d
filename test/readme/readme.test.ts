/**
 * The README's shell blocks, run as written against the service started the way `npm start` starts
 * it (`pos serve --embedded` as a child process: embedded SQLite under ./data of a fresh directory, the
 * simulated terminal on lane-1 and the simulated acquirer), so the README cannot drift from the code.
 *
 * How blocks run (README.md says the same for its authors, above its walk-throughs):
 * - every ```sh block, in order, in ONE bash session (`set -eo pipefail`): a block may use what an
 *   earlier one set (`$KEY`, the `auth` array, `$ORDER` …); any command failing fails the test,
 *   and `curl -fsS` makes a non-2xx answer a failure;
 * - the session's working directory is the service's, so `data/admin.key` is there; `POS` is the
 *   service's URL (the first block keeps it: `export POS=${POS:-http://127.0.0.1:3000}`);
 * - a block right after `<!-- readme-test: skip (why) -->` is not run (it starts the service itself,
 *   needs hardware, …).
 */
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const ROOT = join(__dirname, '..', '..');

export interface ShellBlock {
  index: number;
  line: number;
  code: string;
  skip: string | null;
}

/** The ```sh blocks of a markdown text, each with the skip reason of a `<!-- readme-test: skip … -->` right above it. */
export function shellBlocks(markdown: string): ShellBlock[] {
  const lines = markdown.split('\n');
  const out: ShellBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (!/^```(sh|bash|shell)\s*$/.test(lines[i])) continue;
    let j = i + 1;
    while (j < lines.length && !/^```\s*$/.test(lines[j])) j++;
    let k = i - 1;
    while (k >= 0 && lines[k].trim() === '') k--;
    const m = k >= 0 ? /^<!--\s*readme-test:\s*skip\b(.*)-->\s*$/.exec(lines[k]) : null;
    out.push({
      index: out.length + 1,
      line: i + 1,
      code: lines.slice(i + 1, j).join('\n'),
      skip: m ? m[1].trim() || 'skipped' : null,
    });
    i = j;
  }
  return out;
}

interface Service {
  proc: ChildProcess;
  url: string;
  stdout: () => string;
  stop(): Promise<void>;
}

/** `pos serve --embedded` from the sources (ts-node, as `npm start` runs the built CLI) in `cwd`. */
async function startService(cwd: string, env: Record<string, string> = {}): Promise<Service> {
  const proc = spawn(
    process.execPath,
    ['-r', require.resolve('ts-node/register/transpile-only'), join(ROOT, 'src', 'cli.ts'), 'serve', '--embedded'],
    {
      cwd,
      env: {
        ...process.env,
        PORT: '0',
        HOST: '127.0.0.1',
        POS_LOG: 'silent',
        TS_NODE_PROJECT: join(ROOT, 'tsconfig.json'),
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let out = '';
  let err = '';
  proc.stdout!.on('data', (d) => {
    out += d;
  });
  proc.stderr!.on('data', (d) => {
    err += d;
  });
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the service did not start in 90 s:\n${out}\n${err}`)), 90_000);
    // The start-up lines are the URL, the wiring, then what it says about the admin key.
    const look = () => {
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m && /admin key: .*\n/.test(out)) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    };
    proc.stdout!.on('data', look);
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the service exited (${code}):\n${out}\n${err}`));
    });
  });
  return {
    proc,
    url,
    stdout: () => out,
    stop: () =>
      new Promise((resolve) => {
        if (proc.exitCode !== null) return resolve();
        proc.once('exit', () => resolve());
        proc.kill('SIGTERM');
        setTimeout(() => proc.kill('SIGKILL'), 5000).unref();
      }),
  };
}

describe('README.md', () => {
  const blocks = shellBlocks(readFileSync(join(ROOT, 'README.md'), 'utf8'));
  let dir: string;
  let svc: Service;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pos-readme-'));
    svc = await startService(dir);
  }, 120_000);
  afterAll(async () => {
    await svc?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('prints the admin key it generated', () => {
    const key = readFileSync(join(dir, 'data', 'admin.key'), 'utf8').trim();
    expect(svc.stdout()).toContain(`admin key: ${key}`);
  });

  it('runs every shell block in order, as written', () => {
    const runnable = blocks.filter((b) => !b.skip);
    expect(runnable.length).toBeGreaterThanOrEqual(4);
    const script = [
      'set -eo pipefail',
      ...runnable.map((b) => `echo "::readme block ${b.index} (README.md line ${b.line})::" >&2\n${b.code}`),
    ].join('\n');
    writeFileSync(join(dir, 'readme.sh'), script);
    const r = spawnSync('bash', ['readme.sh'], {
      cwd: dir,
      env: { ...process.env, POS: svc.url },
      encoding: 'utf8',
      timeout: 120_000,
    });
    const at = [...(r.stderr ?? '').matchAll(/::readme block (\d+) \(README\.md line (\d+)\)::/g)].pop();
    if (r.status !== 0) {
      throw new Error(
        `README block ${at?.[1]} (README.md line ${at?.[2]}) failed with exit ${r.status}:\n--- stderr\n${r.stderr.slice(-3000)}\n--- stdout\n${r.stdout.slice(-3000)}`,
      );
    }
    // The stock-count example's export shows the variances it describes.
    expect(r.stdout).toContain('TEA-500,24,24,22,24,-2,0,2,-900,no,');
    expect(r.stdout).toContain('# totals,shrinkage_fen=900,held_by_open_payments_fen=0,surplus_fen=4990');
    expect(r.stdout).toMatch(/"status":"approved"/); // the card checkout
    expect(r.stdout).toMatch(/"status":"declined"/); // the ¥51.00 demo amount
  }, 180_000);

  it('never prints an admin key it did not generate (POS_ADMIN_KEY)', async () => {
    const other = mkdtempSync(join(tmpdir(), 'pos-readme-env-'));
    const secret = 'pos_from-the-environment-0123456789abcdef';
    const s = await startService(other, { POS_ADMIN_KEY: secret });
    try {
      expect(s.stdout()).not.toContain(secret);
      const r = await fetch(`${s.url}/v1/orders`, { headers: { authorization: `Bearer ${secret}` } });
      expect(r.status).toBe(200);
    } finally {
      await s.stop();
      rmSync(other, { recursive: true, force: true });
    }
  }, 120_000);
});
