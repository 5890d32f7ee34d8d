import { ACK, decodeFrame, encodeFrame, EcrMessage } from './ecr-codec';
import { Framer } from './ecr-framer';
import { TerminalSimulator } from './ecr-simulator';
import { MemorySimBank } from '../acquirer/bank-memory';

/** Plays the ECR against the simulator: feeds frames, ACKs what comes back, collects the messages. */
function ecr(sim: () => TerminalSimulator) {
  const framer = new Framer();
  const got: EcrMessage[] = [];
  const io = {
    write: (b: Buffer) => {
      for (const ev of framer.push(b)) {
        if (ev.kind !== 'frame') continue;
        got.push(decodeFrame(ev.frame));
        setImmediate(() => sim().feed(Buffer.from([ACK])));
      }
    },
  };
  const send = (m: EcrMessage) => sim().feed(encodeFrame(m));
  const until = async (pred: () => boolean) => {
    for (let i = 0; i < 200 && !pred(); i++) await new Promise((r) => setTimeout(r, 5));
  };
  return { io, got, send, until };
}

describe('terminal simulator', () => {
  it('answers BZ to a request that arrives while it is working on another', async () => {
    let s!: TerminalSimulator;
    const e = ecr(() => s);
    s = new TerminalSimulator(e.io, { script: { next: [{ action: 'approve', delayMs: 100 }] } });
    e.send({ MT: 'S0', SQ: '000001', AM: '000000000100', RF: 'A' });
    await new Promise((r) => setTimeout(r, 20));
    e.send({ MT: 'S0', SQ: '000002', AM: '000000000100', RF: 'B' });
    await e.until(() => e.got.filter((m) => m.MT === 'S1').length === 2);
    expect(e.got.find((m) => m.SQ === '000002')).toMatchObject({ MT: 'S1', RC: 'BZ' });
    expect(e.got.find((m) => m.SQ === '000001')).toMatchObject({ MT: 'S1', RC: '00' });
  });

  it('keeps a 98 sale pending (Q0 → P) and reverses it at the bank on sign-in (Q0 → R)', async () => {
    let s!: TerminalSimulator;
    const e = ecr(() => s);
    const bank = new MemorySimBank();
    s = new TerminalSimulator(e.io, { bank, script: { next: [{ action: '98' }] } });
    e.send({ MT: 'S0', SQ: '000001', AM: '000000000500', RF: 'R98' });
    await e.until(() => e.got.some((m) => m.MT === 'S1'));
    expect(e.got.at(-1)).toMatchObject({ RC: '98' });
    expect((await bank.get('R98'))?.status).toBe('approved');
    e.send({ MT: 'Q0', SQ: '000002', RF: 'R98' });
    await e.until(() => e.got.some((m) => m.MT === 'Q1'));
    expect(e.got.at(-1)).toMatchObject({ ST: 'P' });
    e.send({ MT: 'L0', SQ: '000003' });
    await e.until(() => e.got.some((m) => m.MT === 'L1'));
    e.send({ MT: 'Q0', SQ: '000004', RF: 'R98' });
    await e.until(() => e.got.filter((m) => m.MT === 'Q1').length === 2);
    expect(e.got.at(-1)).toMatchObject({ ST: 'R', AM: '000000000500' });
    expect((await bank.get('R98'))?.status).toBe('reversed');
  });

  it('answers NS until signed in, and N for a reference it never took', async () => {
    let s!: TerminalSimulator;
    const e = ecr(() => s);
    s = new TerminalSimulator(e.io, { script: { signedOut: true } });
    e.send({ MT: 'S0', SQ: '000001', AM: '000000000100', RF: 'X' });
    await e.until(() => e.got.some((m) => m.MT === 'S1'));
    expect(e.got.at(-1)).toMatchObject({ RC: 'NS' });
    e.send({ MT: 'Q0', SQ: '000002', RF: 'X' });
    await e.until(() => e.got.some((m) => m.MT === 'Q1'));
    expect(e.got.at(-1)).toMatchObject({ ST: 'N' });
  });
});
