import { spawn, spawnSync, ChildProcess } from 'node:child_process';
import { join } from 'node:path';

const root = join(__dirname, '..', '..');

export function socatAvailable(): boolean {
  return spawnSync('socat', ['-V'], { stdio: 'ignore' }).status === 0;
}

/** A pty pair joined by socat: what is written to one end is read from the other. */
export async function ptyPair(): Promise<{ a: string; b: string; stop(): void }> {
  const socat = spawn('socat', ['-d', '-d', 'pty,raw,echo=0', 'pty,raw,echo=0'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const paths = await new Promise<string[]>((resolve, reject) => {
    let err = '';
    const found: string[] = [];
    socat.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      for (const m of d.toString().matchAll(/PTY is (\/dev\/pts\/\d+)/g)) found.push(m[1]);
      if (found.length === 2 && /starting data transfer loop/.test(err)) resolve(found);
    });
    socat.once('exit', (code) => reject(new Error(`socat exited ${code}: ${err}`)));
  });
  return {
    a: paths[0],
    b: paths[1],
    stop: () => {
      socat.kill('SIGTERM');
    },
  };
}

export interface SimProgram {
  control: string;
  proc: ChildProcess;
  output: () => string;
  stop(): Promise<void>;
}

/** A `pos sim-…` command as its own process (from the sources), ready once it prints its control URL. */
export async function simProgram(args: string[]): Promise<SimProgram> {
  const proc = spawn(
    process.execPath,
    ['-r', 'ts-node/register/transpile-only', join(root, 'src', 'cli.ts'), ...args],
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
    proc.once('exit', (code) => reject(new Error(`${args[0]} exited ${code}: ${out}`)));
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

/** `pos sim-terminal` as its own process on `path`, with its control API. */
export function simTerminalProcess(path: string, extra: string[] = []): Promise<SimProgram> {
  return simProgram(['sim-terminal', '--port', path, '--control', '127.0.0.1:0', ...extra]);
}

/** `pos sim-acquirer` as its own process; its trust chain is written to `certDir`. */
export async function simAcquirerProcess(certDir: string): Promise<{ url: string; stop(): Promise<void> }> {
  const proc = spawn(
    process.execPath,
    [
      '-r',
      'ts-node/register/transpile-only',
      join(root, 'src', 'cli.ts'),
      'sim-acquirer',
      '--listen',
      '127.0.0.1:0',
      '--cert-dir',
      certDir,
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
  const url = await new Promise<string>((resolve, reject) => {
    proc.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) resolve(m[1]);
    });
    proc.once('exit', (code) => reject(new Error(`sim-acquirer exited ${code}: ${out}`)));
  });
  return {
    url,
    stop: () =>
      new Promise((resolve) => {
        if (proc.exitCode !== null) return resolve();
        proc.once('exit', () => resolve());
        proc.kill('SIGTERM');
      }),
  };
}
