/**
 * What the simulator programs (`pos sim-terminal`, `pos sim-printer`, `pos sim-acquirer`) share: their
 * command-line flags, and the small JSON control API a test or a trainer drives them with.
 */
import { createServer, IncomingMessage } from 'node:http';
import { AddressInfo } from 'node:net';

export function arg(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > 1_000_000) throw new Error('body too large');
    chunks.push(c as Buffer);
  }
  return JSON.parse(Buffer.concat(chunks).toString('utf8') || 'null');
}

/** A route's answer: `[status, payload]`, or undefined for "no such route" (404). */
export type ControlRoute = (
  method: string,
  url: string,
  body: () => Promise<unknown>,
) => Promise<[number, unknown] | undefined>;

/** Serves the control API on `HOST:PORT` (port 0: any) and prints `NAME control on URL` once it listens. */
export async function serveControl(name: string, listen: string, route: ControlRoute): Promise<void> {
  const [host, port] = listen.split(':');
  const server = createServer(async (req, res) => {
    let answer: [number, unknown];
    try {
      answer = (await route(req.method ?? 'GET', req.url ?? '/', () => readJson(req))) ?? [404, { error: 'not found' }];
    } catch (err) {
      answer = [400, { error: String(err) }];
    }
    res.writeHead(answer[0], { 'content-type': 'application/json' });
    res.end(JSON.stringify(answer[1]));
  });
  await new Promise<void>((r) => server.listen(Number(port || 0), host || '127.0.0.1', r));
  process.stdout.write(`${name} control on http://${host || '127.0.0.1'}:${(server.address() as AddressInfo).port}\n`);
}

/** Closes the simulator and exits on SIGINT/SIGTERM. */
export function exitOnSignals(close: () => Promise<void>): void {
  const stop = async () => {
    await close();
    process.exit(0);
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
