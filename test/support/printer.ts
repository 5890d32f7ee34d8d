import { spawn, ChildProcess } from 'node:child_process';
import { join } from 'node:path';

const root = join(__dirname, '..', '..');

/** `pos sim-printer` as its own process on `path`, writing receipts to `outDir`, with its control API. */
export async function simPrinterProcess(
  path: string,
  outDir: string,
): Promise<{ control: string; proc: ChildProcess; output: () => string; stop(): Promise<void> }> {
  const proc = spawn(
    process.execPath,
    [
      '-r',
      'ts-node/register/transpile-only',
      join(root, 'src', 'cli.ts'),
      'sim-printer',
      '--port',
      path,
      '--out',
      outDir,
      '--control',
      '127.0.0.1:0',
    ],
    {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, TS_NODE_PROJECT: join(root, 'tsconfig.json') },
    },
  );
  let out = '';
  proc.stderr!.on('data', (d: Buffer) => {
    out += d.toString();
  });
  const control = await new Promise<string>((resolve, reject) => {
    proc.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /control on (http:\/\/\S+)/.exec(out);
      if (m) resolve(m[1]);
    });
    proc.once('exit', (code) => reject(new Error(`sim-printer exited ${code}: ${out}`)));
  });
  return {
    control,
    proc,
    output: () => out,
    stop: () =>
      new Promise((resolve) => {
        if (proc.exitCode !== null) return resolve();
        proc.once('exit', () => resolve());
        proc.kill('SIGTERM');
      }),
  };
}
