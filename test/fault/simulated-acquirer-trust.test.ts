/**
 * Issue 10, defect 3: a store's real terminals must never be settled against the built-in acquirer
 * simulator, and no simulator may say "reversed" or "declined" about a transaction it never saw.
 */
import { buildAdapters } from '../../src/adapters';
import { configFromEnv } from '../../src/config';
import { silentLogger } from '../../src/shared/logger';
import { chinaTimestamp, systemClock } from '../../src/shared/clock';
import { MemorySimBank } from '../../src/acquirer/bank-memory';
import { ACK, decodeFrame, encodeFrame, EcrMessage } from '../../src/terminal/ecr-codec';
import { Framer } from '../../src/terminal/ecr-framer';
import { TerminalSimulator } from '../../src/terminal/ecr-simulator';
import { simulatedAcquirer } from '../support/acquirer';

const config = (env: Record<string, string>) => configFromEnv({ DATABASE_URL: 'sqlite::memory:', ...env });

describe('real lanes trusting the simulated acquirer', () => {
  it('real lanes trusting the simulated acquirer: a device lane without ACQUIRER_URL refuses to start', async () => {
    await expect(
      buildAdapters(config({ POS_TERMINALS: 'lane-1:sim,lane-2:/dev/ttyPOS-NOT-THERE' }), silentLogger, {}),
    ).rejects.toThrow(/lane-2 drive real terminals.*ACQUIRER_URL/);
  });

  it('a device lane with ACQUIRER_URL=none starts without any acquirer (terminal-only resolution)', async () => {
    const a = await buildAdapters(
      config({ POS_TERMINALS: 'lane-2:/dev/ttyPOS-NOT-THERE', ACQUIRER_URL: 'none' }),
      silentLogger,
      {},
    );
    try {
      expect(a.acquirer).toBeNull();
      expect(a.acquirerDescription).toMatch(/none/);
      expect([...a.terminals.keys()]).toEqual(['lane-2']);
    } finally {
      await a.close();
    }
  });

  it('all-sim lanes keep the built-in simulator; ACQUIRER_URL=none starts no simulator at all', async () => {
    const sim = await buildAdapters(config({ POS_TERMINALS: 'lane-1:sim' }), silentLogger, {});
    try {
      expect(sim.acquirer).not.toBeNull();
      const url = /built-in simulator at (http:\/\/\S+)/.exec(sim.acquirerDescription)![1];
      expect((await fetch(`${url}/healthz`)).status).toBe(200);
    } finally {
      await sim.close();
    }
    const none = await buildAdapters(config({ POS_TERMINALS: 'lane-1:sim', ACQUIRER_URL: 'none' }), silentLogger, {});
    try {
      expect(none.acquirer).toBeNull();
      expect(none.acquirerDescription).not.toMatch(/http/);
    } finally {
      await none.close();
    }
  });
});

describe('simulators answering for transactions they never saw', () => {
  const ref = () => ({
    orderId: `NEVER-${Date.now()}-${Math.floor(Math.random() * 1e6)}`,
    txnTime: chinaTimestamp(new Date()),
  });

  it('real lanes trusting the simulated acquirer: the ACP simulator refuses to reverse an unknown orderId (34), never "reversed"', async () => {
    const { sim, acquirer } = await simulatedAcquirer(systemClock, 2000);
    try {
      expect(await acquirer.reverse({ ...ref(), amountFen: 100 })).toMatchObject({ kind: 'refused', respCode: '34' });
    } finally {
      await sim.close();
    }
  });

  it('the ACP simulator answers a query of an unknown orderId with 34 (no such transaction), never "failed"', async () => {
    const { sim, acquirer } = await simulatedAcquirer(systemClock, 2000);
    try {
      expect(await acquirer.query(ref())).toMatchObject({ kind: 'not_found', respCode: '34' });
    } finally {
      await sim.close();
    }
  });

  it('the simulated bank says not_found for a reversal of a reference it has no record of', async () => {
    const bank = new MemorySimBank();
    expect(await bank.reverse('NEVER-SEEN')).toBe('not_found');
    expect(await bank.get('NEVER-SEEN')).toBeUndefined();
  });

  it('real lanes trusting the simulated acquirer: the ECR simulator will not "approve" a void of a sale it never made (RC 25)', async () => {
    const framer = new Framer();
    const got: EcrMessage[] = [];
    const bank = new MemorySimBank();
    const s: TerminalSimulator = new TerminalSimulator(
      {
        write: (b: Buffer) => {
          for (const ev of framer.push(b)) {
            if (ev.kind !== 'frame') continue;
            got.push(decodeFrame(ev.frame));
            setImmediate(() => s.feed(Buffer.from([ACK])));
          }
        },
      },
      { bank },
    );
    s.feed(encodeFrame({ MT: 'V0', SQ: '000001', AM: '000000000100', TN: '424242', RF: 'VOID-NEVER' }));
    for (let i = 0; i < 200 && !got.some((m) => m.MT === 'V1'); i++) await new Promise((r) => setTimeout(r, 5));
    expect(got.find((m) => m.MT === 'V1')).toMatchObject({ RC: '25', RF: 'VOID-NEVER' });
    expect(bank.size).toBe(0);
    s.feed(encodeFrame({ MT: 'Q0', SQ: '000002', RF: 'NEVER-QUERIED' }));
    for (let i = 0; i < 200 && !got.some((m) => m.MT === 'Q1'); i++) await new Promise((r) => setTimeout(r, 5));
    expect(got.find((m) => m.MT === 'Q1')).toMatchObject({ RC: '00', ST: 'N', RF: 'NEVER-QUERIED' });
  });
});
