/**
 * `pos serve` as a real child process for the fault harness: started from dist/ (built by
 * scripts/ensure.js), killed with SIGKILL at any moment and started again on the same port and database.
 */
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';

export const repoRoot = join(__dirname, '..', '..');

/** Compiles dist/ when any source is newer than the last build (what `npm start` does). */
export function ensureBuilt(): void {
  const r = spawnSync(process.execPath, [join(repoRoot, 'scripts', 'ensure.js')], {
    cwd: repoRoot,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (r.status !== 0) throw new Error(`scripts/ensure.js failed: ${r.stderr?.toString()}${r.stdout?.toString()}`);
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export class ServiceProcess {
  private proc: ChildProcess | null = null;
  private output = '';
  starts = 0;
  kills = 0;

  constructor(private readonly env: NodeJS.ProcessEnv) {}

  get running(): boolean {
    return !!this.proc && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  log(): string {
    return this.output.slice(-4000);
  }

  /** Starts `pos serve` and resolves once it listens. */
  async start(timeoutMs = 30_000): Promise<void> {
    const proc = spawn(process.execPath, [join(repoRoot, 'dist', 'src', 'cli.js'), 'serve'], {
      // The same till restarted keeps its instance id, so it takes its lanes' leases straight back (a new id would
      // wait for the dead process's leases to run out).
      cwd: repoRoot,
      env: { POS_INSTANCE_ID: 'crash-till', ...this.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.proc = proc;
    this.starts++;
    let out = '';
    proc.stderr!.on('data', (d: Buffer) => {
      this.output = (this.output + d.toString()).slice(-20_000);
    });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`service did not start in ${timeoutMs} ms: ${out}${this.log()}`)),
        timeoutMs,
      );
      proc.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        if (/listening on/.test(out)) {
          clearTimeout(timer);
          resolve();
        }
      });
      proc.once('exit', (code, sig) => {
        clearTimeout(timer);
        reject(new Error(`service exited (${code ?? sig}) before listening: ${out}${this.log()}`));
      });
    });
  }

  /** kill -9: no shutdown hook runs, transactions in flight are cut off. */
  async kill(): Promise<void> {
    const proc = this.proc;
    if (!proc || !this.running) return;
    const exited = new Promise<void>((r) => proc.once('exit', () => r()));
    proc.kill('SIGKILL');
    await exited;
    this.kills++;
  }

  async stop(): Promise<void> {
    const proc = this.proc;
    if (!proc || !this.running) return;
    const exited = new Promise<void>((r) => proc.once('exit', () => r()));
    proc.kill('SIGTERM');
    const t = setTimeout(() => proc.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(t);
  }
}

/** A small seeded RNG (mulberry32), so a failing run can be replayed with its seed. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
