/**
 * `pos sim-acquirer --listen HOST:PORT [--cert-dir DIR] [--print-config]`: the acquirer gateway
 * simulator as its own program. It makes a test chain at start; `--cert-dir` writes the root and
 * intermediate PEMs there so a service can trust it, `--print-config` prints the environment a
 * service needs (ACQUIRER_URL, ACQUIRER_ROOT_CERT, ACQUIRER_MIDDLE_CERT, ACQUIRER_TEST_MODE).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { AcquirerSimulator } from './acp-simulator';
import { arg, exitOnSignals } from '../shared/sim-control';

export async function runSimAcquirer(args: string[]): Promise<void> {
  const listen = arg(args, '--listen') ?? '127.0.0.1:8090';
  const m = /^([^:]+):(\d+)$/.exec(listen);
  if (!m) throw new Error('usage: pos sim-acquirer --listen HOST:PORT [--cert-dir DIR] [--print-config]');
  const sim = new AcquirerSimulator();
  const url = await sim.start(m[1], Number(m[2]));
  const dir = resolve(arg(args, '--cert-dir') ?? join('data', 'sim-acquirer'));
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'root.pem'), sim.chain.rootPem);
  writeFileSync(join(dir, 'middle.pem'), sim.chain.middlePem);
  process.stdout.write(`sim-acquirer listening on ${url}\n`);
  if (args.includes('--print-config')) {
    process.stdout.write(
      [
        `ACQUIRER_URL=${url}`,
        `ACQUIRER_ROOT_CERT=${join(dir, 'root.pem')}`,
        `ACQUIRER_MIDDLE_CERT=${join(dir, 'middle.pem')}`,
        'ACQUIRER_TEST_MODE=true',
        '# plus the merchant key: ACQUIRER_MER_ID, ACQUIRER_SIGN_PFX and ACQUIRER_SIGN_PFX_PASSWORD (this simulator accepts any merchant signature)',
      ].join('\n') + '\n',
    );
  }
  exitOnSignals(() => sim.close());
}
