/**
 * `node dist/bench/opening-wave.js`: what the load generator itself adds to the first answers of a run.
 * 256 new autocannon connections against bench/bare-server in its own process (served as the service
 * serves its app: an express handler that does no work), five times: how long `autocannon()` takes to
 * build its clients (the event loop of the generating process is busy meanwhile), and the latency of the
 * first 256 answers (each timed, as in bench:seats, from the moment its request was made) against the
 * rest of the second. Why bench:seats times its on-sale on the connections its warm-up opened.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { percentile } from './support';

const CONNECTIONS = 256;

async function main(): Promise<void> {
  const child = spawn(process.execPath, [join(__dirname, 'bare-server.js'), 'served'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const url = await new Promise<string>((resolve) => {
    child.stdout!.on('data', (d: Buffer) => {
      const m = /listening on (\S+)/.exec(d.toString());
      if (m) resolve(m[1]);
    });
  });
  const pct = (xs: number[], p: number) => percentile(xs, p).toFixed(1);
  try {
    console.log(`opening wave: ${CONNECTIONS} new connections, 1 s each, against a handler that does no work (${url})`);
    for (let round = 1; round <= 5; round++) {
      const latencies: number[] = [];
      const t0 = performance.now();
      const instance = autocannon(
        {
          url,
          connections: CONNECTIONS,
          duration: 1,
          headers: { 'content-type': 'application/json' },
          requests: [
            {
              method: 'POST',
              path: '/v1/orders',
              setupRequest: (req: any, context: { sent?: number }) => {
                context.sent = performance.now();
                return { ...req, body: '{"lines":[]}' };
              },
              onResponse: (_status: number, _body: string, context: { sent?: number }) => {
                latencies.push(performance.now() - (context.sent ?? 0));
              },
            },
          ],
        } as autocannon.Options,
        () => undefined,
      );
      const built = performance.now() - t0;
      await new Promise((r) => instance.on('done', r));
      const wave = latencies.slice(0, CONNECTIONS);
      const rest = latencies.slice(CONNECTIONS);
      console.log(
        `round ${round}: autocannon() returned after ${built.toFixed(1)} ms; the first ${wave.length} answers p50 ${pct(wave, 0.5)} ms, max ${pct(wave, 1)} ms; the ${rest.length} after them p50 ${pct(rest, 0.5)} ms, p99 ${pct(rest, 0.99)} ms`,
      );
    }
  } finally {
    child.kill('SIGTERM');
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
