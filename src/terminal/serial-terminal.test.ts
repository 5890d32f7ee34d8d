/**
 * The driver over @serialport/binding-mock: the test plays the terminal byte by byte, so every
 * link rule (NAK/resend, T_ACK, SQ wrap, duplicate frames, prompts restarting T_RESP, one request
 * at a time) is checked against what actually went on the wire.
 */
import { MockBinding, MockPortBinding } from '@serialport/binding-mock';
import type { BindingInterface, OpenOptions } from '@serialport/bindings-interface';
import { ACK, NAK, decodeFrame, encodeFrame, EcrMessage } from './ecr-codec';
import { Framer } from './ecr-framer';
import { SerialTerminal } from './serial-terminal';

type Reply = (msg: EcrMessage, nth: number) => (Buffer | { after: number; bytes: Buffer })[];

/** A scripted terminal on a mock port: `reply` decides what to send back for each frame the ECR writes. */
async function harness(reply: Reply, opts: { tRespMs?: number } = {}) {
  MockBinding.reset();
  MockBinding.createPort('/dev/ttyMOCK0', { echo: false, record: true });
  let port!: MockPortBinding;
  const binding: BindingInterface = {
    list: () => MockBinding.list(),
    open: async (o: OpenOptions) => {
      port = await MockBinding.open(o);
      const write = port.write.bind(port);
      const framer = new Framer();
      let nth = 0;
      port.write = async (buf: Buffer) => {
        await write(buf);
        for (const ev of framer.push(buf)) {
          if (ev.kind !== 'frame') continue;
          const msg = decodeFrame(ev.frame);
          frames.push(msg);
          for (const r of reply(msg, nth++)) {
            if (Buffer.isBuffer(r)) setImmediate(() => port.emitData(r));
            else setTimeout(() => port.emitData(r.bytes), r.after);
          }
        }
      };
      return port;
    },
  };
  const frames: EcrMessage[] = [];
  const terminal = await new SerialTerminal('lane-t', { binding, path: '/dev/ttyMOCK0', tRespMs: opts.tRespMs ?? 300, tAckMs: 60 }).start();
  return { terminal, frames, port: () => port };
}

const ack = Buffer.from([ACK]);
const nak = Buffer.from([NAK]);
const s1 = (sq: string, rc: string, extra: EcrMessage = {}) => encodeFrame({ MT: 'S1', SQ: sq, RC: rc, ...extra });

describe('SerialTerminal on a mock serial port', () => {
  it('approves on S1 00 and ACKs the answer', async () => {
    const h = await harness((m) => (m.MT === 'S0' ? [ack, s1(m.SQ, '00', { AM: m.AM, RF: m.RF, CN: '622848******1234', TN: '000001', RR: '261125000001' })] : []));
    const out = await h.terminal.sale({ rf: 'R1', amountFen: 1234 });
    expect(out).toMatchObject({ kind: 'approved', sale: { amountFen: 1234, cardMasked: '622848******1234', traceNo: '000001' } });
    await new Promise((r) => setTimeout(r, 20));
    expect(h.port().recording.includes(ACK)).toBe(true);
    await h.terminal.close();
  });

  it('resends a NAKed frame and handles the request once', async () => {
    const h = await harness((m, nth) => (m.MT !== 'S0' ? [] : nth === 0 ? [nak] : [ack, s1(m.SQ, '00')]));
    expect((await h.terminal.sale({ rf: 'R2', amountFen: 1 })).kind).toBe('approved');
    expect(h.frames.filter((f) => f.MT === 'S0')).toHaveLength(2);
    expect(h.frames[0]).toEqual(h.frames[1]);
    await h.terminal.close();
  });

  it('NAKed on all three sends: not executed; nothing more is sent', async () => {
    const h = await harness(() => [nak]);
    expect(await h.terminal.sale({ rf: 'R3', amountFen: 1 })).toMatchObject({ kind: 'not_executed', reason: expect.stringMatching(/NAKed on all 3/) });
    expect(h.frames).toHaveLength(3);
    await h.terminal.close();
  });

  it('no ACK within T_ACK on any of three sends: unknown, never ACKed (a lost ACK may hide a charge)', async () => {
    const h = await harness(() => []);
    expect(await h.terminal.sale({ rf: 'R4', amountFen: 1 })).toMatchObject({ kind: 'unknown', acked: false });
    expect(h.frames).toHaveLength(3);
    await h.terminal.close();
  });

  it('no final response within T_RESP after the ACK: unknown, acked', async () => {
    const h = await harness((m) => (m.MT === 'S0' ? [ack] : []), { tRespMs: 150 });
    expect(await h.terminal.sale({ rf: 'R5', amountFen: 1 })).toMatchObject({ kind: 'unknown', acked: true });
    await h.terminal.close();
  });

  it('each prompt restarts T_RESP and reaches the hook', async () => {
    const prompts: string[] = [];
    const h = await harness((m) => (m.MT !== 'S0' ? [] : [
      ack,
      { after: 100, bytes: encodeFrame({ MT: 'P1', SQ: m.SQ, RM: '请插卡' }) },
      { after: 200, bytes: encodeFrame({ MT: 'P1', SQ: m.SQ, RM: '请输入密码' }) },
      { after: 300, bytes: s1(m.SQ, '00') },
    ]), { tRespMs: 150 });
    expect((await h.terminal.sale({ rf: 'R6', amountFen: 1 }, { onPrompt: (t) => { prompts.push(t); } })).kind).toBe('approved');
    expect(prompts).toEqual(['请插卡', '请输入密码']);
    await h.terminal.close();
  });

  it('a repeated answer frame (our ACK was lost) is ACKed again but handled once', async () => {
    const h = await harness((m) => (m.MT === 'S0' ? [ack, s1(m.SQ, '51'), s1(m.SQ, '51')] : []));
    expect(await h.terminal.sale({ rf: 'R7', amountFen: 1 })).toMatchObject({ kind: 'declined', rc: '51' });
    await new Promise((r) => setTimeout(r, 20));
    expect(h.port().recording.filter((b) => b === ACK).length).toBe(2);
    await h.terminal.close();
  });

  it('SQ wraps from 999999 to 000001', async () => {
    const h = await harness((m) => [ack, encodeFrame({ MT: 'Q1', SQ: m.SQ, RC: '00', RF: m.RF, ST: 'N' })]);
    h.terminal.setSequence(999_998);
    await h.terminal.query('X1');
    await h.terminal.query('X2');
    expect(h.frames.map((f) => f.SQ)).toEqual(['999999', '000001']);
    await h.terminal.close();
  });

  it('a second request while one is in flight is refused and never reaches the wire', async () => {
    const h = await harness((m) => (m.MT === 'S0' ? [ack, { after: 100, bytes: s1(m.SQ, '00') }] : []));
    const first = h.terminal.sale({ rf: 'R8', amountFen: 1 });
    await new Promise((r) => setTimeout(r, 10));
    expect(h.terminal.isIdle()).toBe(false);
    expect(await h.terminal.sale({ rf: 'R9', amountFen: 1 })).toMatchObject({ kind: 'not_executed', reason: expect.stringMatching(/busy/) });
    expect((await first).kind).toBe('approved');
    expect(h.frames.map((f) => f.RF)).toEqual(['R8']);
    await h.terminal.close();
  });

  it('a sale waits for a status query in flight instead of failing; a query is refused during a sale', async () => {
    const h = await harness((m) => (m.MT === 'Q0'
      ? [ack, { after: 80, bytes: encodeFrame({ MT: 'Q1', SQ: m.SQ, RC: '00', RF: m.RF, ST: 'N' }) }]
      : [ack, { after: 80, bytes: s1(m.SQ, '00') }]));
    const query = h.terminal.query('OLD');
    await new Promise((r) => setTimeout(r, 10));
    const sale = h.terminal.sale({ rf: 'NEW', amountFen: 1 });
    await new Promise((r) => setTimeout(r, 100));
    expect(await h.terminal.query('OTHER')).toMatchObject({ kind: 'failed', reason: expect.stringMatching(/busy/) });
    expect(await query).toMatchObject({ kind: 'status', status: 'N' });
    expect((await sale).kind).toBe('approved');
    expect(h.frames.map((f) => `${f.MT}:${f.RF}`)).toEqual(['Q0:OLD', 'S0:NEW']);
    await h.terminal.close();
  });

  it('RC 98 and unlisted codes are unknown; BZ/FE are not executed; NS signs in and retries once', async () => {
    const rcs = ['98', 'Q7', 'BZ', 'FE'];
    for (const rc of rcs) {
      const h = await harness((m) => (m.MT === 'S0' ? [ack, s1(m.SQ, rc)] : []));
      const out = await h.terminal.sale({ rf: `RC${rc}`, amountFen: 1 });
      expect([rc, out.kind]).toEqual([rc, rc === 'BZ' || rc === 'FE' ? 'not_executed' : 'unknown']);
      await h.terminal.close();
    }
    let signedIn = false;
    const h = await harness((m) => {
      if (m.MT === 'L0') { signedIn = true; return [ack, encodeFrame({ MT: 'L1', SQ: m.SQ, RC: '00' })]; }
      return [ack, s1(m.SQ, signedIn ? '00' : 'NS')];
    });
    expect((await h.terminal.sale({ rf: 'RNS', amountFen: 1 })).kind).toBe('approved');
    expect(h.frames.map((f) => f.MT)).toEqual(['S0', 'L0', 'S0']);
    await h.terminal.close();
  });
});
