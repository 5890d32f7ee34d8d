import { spawn, ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';

const root = join(__dirname, '..', '..');

export interface ServiceProcess {
  url: string;
  adminKey: string;
  pid: number;
  /** Pids of the cluster's workers (empty for a single process). */
  workerPids(): number[];
  stop(): Promise<void>;
}

/** `pos serve` from source (ts-node, transpile only) in a child process; resolves once it listens. */
export async function startService(
  databaseUrl: string,
  opts: { workers?: number; env?: Record<string, string>; adminKey?: string } = {},
): Promise<ServiceProcess> {
  const adminKey = opts.adminKey ?? `pos_scale_${randomBytes(16).toString('hex')}`;
  const args = [
    '-r',
    'ts-node/register/transpile-only',
    join(root, 'src', 'cli.ts'),
    'serve',
    ...(opts.workers ? ['--workers', String(opts.workers)] : []),
  ];
  const child: ChildProcess = spawn(process.execPath, args, {
    cwd: root,
    env: {
      ...process.env,
      DATABASE_URL: databaseUrl,
      POS_ADMIN_KEY: adminKey,
      PORT: '0',
      HOST: '127.0.0.1',
      POS_TERMINALS: '',
      ACQUIRER_URL: 'none',
      POS_LOG: 'silent',
      SWEEP_CRON: '0 0 1 1 *',
      TS_NODE_TRANSPILE_ONLY: '1',
      ...opts.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const url = await new Promise<string>((resolve, reject) => {
    const onData = (d: Buffer) => {
      out += d.toString();
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) resolve(m[1]);
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.once('exit', (code) => reject(new Error(`pos serve exited with ${code} before listening:\n${out}`)));
  });
  return {
    url,
    adminKey,
    pid: child.pid!,
    workerPids: () => {
      const f = `/proc/${child.pid}/task/${child.pid}/children`;
      return existsSync(f) ? readFileSync(f, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number) : [];
    },
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}
