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
            // A reply due after the test closed the port is dropped (a slow machine may get there).
            if (Buffer.isBuffer(r))
              setImmediate(() => {
                if (port.isOpen) port.emitData(r);
              });
            else
              setTimeout(() => {
                if (port.isOpen) port.emitData(r.bytes);
              }, r.after);
          }
        }
      };
      return port;
    },
  };
  const frames: EcrMessage[] = [];
  const terminal = await new SerialTerminal('lane-t', {
    binding,
    path: '/dev/ttyMOCK0',
    tRespMs: opts.tRespMs ?? 300,
    tAckMs: 60,
  }).start();
  return { terminal, frames, port: () => port };
}

const ack = Buffer.from([ACK]);
const nak = Buffer.from([NAK]);
/** The final response to request `m`: same SQ and RF, as the spec has the terminal echo them. */
const s1 = (m: EcrMessage, rc: string, extra: EcrMessage = {}) =>
  encodeFrame({ MT: 'S1', SQ: m.SQ, RC: rc, RF: m.RF, ...extra });
const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Closes the ECR's port under it, as a pulled cable or a USB reset does. */
const pullCable = (t: SerialTerminal) =>
  new Promise<void>((r) => {
    const port = (t as unknown as { port: { close(cb: () => void): void } | null }).port;
    if (port) port.close(() => r());
    else r();
  });

describe('SerialTerminal on a mock serial port', () => {
  it('approves on S1 00 and ACKs the answer', async () => {
    const h = await harness((m) =>
      m.MT === 'S0'
        ? [ack, s1(m, '00', { AM: m.AM, RF: m.RF, CN: '622848******1234', TN: '000001', RR: '261125000001' })]
        : [],
    );
    const out = await h.terminal.sale({ rf: 'R1', amountFen: 1234 });
    expect(out).toMatchObject({
      kind: 'approved',
      sale: { amountFen: 1234, cardMasked: '622848******1234', traceNo: '000001' },
    });
    await new Promise((r) => setTimeout(r, 20));
    expect(h.port().recording.includes(ACK)).toBe(true);
    await h.terminal.close();
  });

  it('resends a NAKed frame and handles the request once', async () => {
    const h = await harness((m, nth) => (m.MT !== 'S0' ? [] : nth === 0 ? [nak] : [ack, s1(m, '00')]));
    expect((await h.terminal.sale({ rf: 'R2', amountFen: 1 })).kind).toBe('approved');
    expect(h.frames.filter((f) => f.MT === 'S0')).toHaveLength(2);
    expect(h.frames[0]).toEqual(h.frames[1]);
    await h.terminal.close();
  });

  it('NAKed on all three sends: not executed; nothing more is sent', async () => {
    const h = await harness(() => [nak]);
    expect(await h.terminal.sale({ rf: 'R3', amountFen: 1 })).toMatchObject({
      kind: 'not_executed',
      reason: expect.stringMatching(/NAKed on all 3/),
    });
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
    const h = await harness(
      (m) =>
        m.MT !== 'S0'
          ? []
          : [
              ack,
              // Each gap is well inside T_RESP (slack for a loaded machine); the answer comes long after one T_RESP.
              { after: 600, bytes: encodeFrame({ MT: 'P1', SQ: m.SQ, RM: '请插卡' }) },
              { after: 1200, bytes: encodeFrame({ MT: 'P1', SQ: m.SQ, RM: '请输入密码' }) },
              { after: 1800, bytes: s1(m, '00') },
            ],
      { tRespMs: 1000 },
    );
    expect(
      (
        await h.terminal.sale(
          { rf: 'R6', amountFen: 1 },
          {
            onPrompt: (t) => {
              prompts.push(t);
            },
          },
        )
      ).kind,
    ).toBe('approved');
    expect(prompts).toEqual(['请插卡', '请输入密码']);
    await h.terminal.close();
  });

  it('a repeated answer frame (our ACK was lost) is ACKed again but handled once', async () => {
    const h = await harness((m) => (m.MT === 'S0' ? [ack, s1(m, '51'), s1(m, '51')] : []));
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
    const h = await harness((m) => (m.MT === 'S0' ? [ack, { after: 100, bytes: s1(m, '00') }] : []));
    const first = h.terminal.sale({ rf: 'R8', amountFen: 1 });
    await new Promise((r) => setTimeout(r, 10));
    expect(h.terminal.isIdle()).toBe(false);
    expect(await h.terminal.sale({ rf: 'R9', amountFen: 1 })).toMatchObject({
      kind: 'not_executed',
      reason: expect.stringMatching(/busy/),
    });
    expect((await first).kind).toBe('approved');
    expect(h.frames.map((f) => f.RF)).toEqual(['R8']);
    await h.terminal.close();
  });

  it('a sale waits for a status query in flight instead of failing; a query is refused during a sale', async () => {
    const h = await harness((m) =>
      m.MT === 'Q0'
        ? [ack, { after: 80, bytes: encodeFrame({ MT: 'Q1', SQ: m.SQ, RC: '00', RF: m.RF, ST: 'N' }) }]
        : [ack, { after: 80, bytes: s1(m, '00') }],
    );
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
      const h = await harness((m) => (m.MT === 'S0' ? [ack, s1(m, rc)] : []));
      const out = await h.terminal.sale({ rf: `RC${rc}`, amountFen: 1 });
      expect([rc, out.kind]).toEqual([rc, rc === 'BZ' || rc === 'FE' ? 'not_executed' : 'unknown']);
      await h.terminal.close();
    }
    let signedIn = false;
    const h = await harness((m) => {
      if (m.MT === 'L0') {
        signedIn = true;
        return [ack, encodeFrame({ MT: 'L1', SQ: m.SQ, RC: '00' })];
      }
      return [ack, s1(m, signedIn ? '00' : 'NS')];
    });
    expect((await h.terminal.sale({ rf: 'RNS', amountFen: 1 })).kind).toBe('approved');
    expect(h.frames.map((f) => f.MT)).toEqual(['S0', 'L0', 'S0']);
    await h.terminal.close();
  });
  // Defect 1 (issue 10): once a byte of the request is on the line, a lost line means "we do not know".
  it('line lost before the ACK becomes declined: a port close after the request went out, before its ACK, is unknown with acked:false', async () => {
    const h = await harness(() => []);
    const sale = h.terminal.sale({ rf: 'LOST1', amountFen: 100 });
    await wait(20);
    expect(h.frames.map((f) => f.MT)).toEqual(['S0']);
    await pullCable(h.terminal);
    expect(await sale).toMatchObject({ kind: 'unknown', acked: false });
    await h.terminal.close();
  });

  it('line lost before the ACK becomes declined: a NAK then the line going away is still unknown (a later send might have been taken)', async () => {
    const h = await harness((m, nth) => (nth === 0 ? [nak] : []));
    const sale = h.terminal.sale({ rf: 'LOST2', amountFen: 100 });
    while (h.frames.length < 2) await wait(2);
    await pullCable(h.terminal);
    expect(await sale).toMatchObject({ kind: 'unknown', acked: false });
    await h.terminal.close();
  });

  it('line lost before the ACK becomes declined: a port close after the ACK is unknown with acked:true', async () => {
    const h = await harness((m) => (m.MT === 'S0' ? [ack] : []), { tRespMs: 5000 });
    const sale = h.terminal.sale({ rf: 'LOST3', amountFen: 100 });
    await wait(30);
    await pullCable(h.terminal);
    expect(await sale).toMatchObject({ kind: 'unknown', acked: true });
    await h.terminal.close();
  });

  it('line lost before the ACK becomes declined: shutting the driver down during an exchange is unknown, never declined', async () => {
    const before = await harness(() => []);
    const unacked = before.terminal.sale({ rf: 'LOST4', amountFen: 100 });
    await wait(20);
    await before.terminal.close();
    expect(await unacked).toMatchObject({ kind: 'unknown', acked: false });

    const after = await harness((m) => (m.MT === 'S0' ? [ack] : []), { tRespMs: 5000 });
    const acked = after.terminal.sale({ rf: 'LOST5', amountFen: 100 });
    await wait(30);
    await after.terminal.close();
    expect(await acked).toMatchObject({ kind: 'unknown', acked: true });
  });

  it('line lost before the ACK becomes declined: no byte written (port not open at send time) is not executed', async () => {
    const h = await harness(() => []);
    await pullCable(h.terminal);
    expect(await h.terminal.sale({ rf: 'LOST6', amountFen: 100 })).toMatchObject({ kind: 'not_executed' });
    expect(h.frames).toHaveLength(0);
    await h.terminal.close();
  });

  // Defect 6 (issue 10): a final response is the answer only when SQ and RF (and AM when it carries one) match.
  it('answers matched too loosely: an S1 with our SQ but another RF is ignored and the real answer is taken', async () => {
    const h = await harness((m) =>
      m.MT === 'S0' ? [ack, s1(m, '51', { RF: 'SOMEONE-ELSE' }), { after: 40, bytes: s1(m, '00', { AM: m.AM }) }] : [],
    );
    expect(await h.terminal.sale({ rf: 'MATCH1', amountFen: 100 })).toMatchObject({
      kind: 'approved',
      sale: { rf: 'MATCH1' },
    });
    await h.terminal.close();
  });

  it('answers matched too loosely: an approval for another amount is ignored (unknown when nothing else comes)', async () => {
    const h = await harness((m) => (m.MT === 'S0' ? [ack, s1(m, '00', { AM: '000000009999' })] : []), { tRespMs: 150 });
    expect(await h.terminal.sale({ rf: 'MATCH2', amountFen: 100 })).toMatchObject({ kind: 'unknown', acked: true });
    await h.terminal.close();
  });

  it('answers matched too loosely: an S1 carrying no RF is not taken as a decline', async () => {
    const h = await harness((m) => (m.MT === 'S0' ? [ack, encodeFrame({ MT: 'S1', SQ: m.SQ, RC: '51' })] : []), {
      tRespMs: 150,
    });
    expect(await h.terminal.sale({ rf: 'MATCH3', amountFen: 100 })).toMatchObject({ kind: 'unknown', acked: true });
    await h.terminal.close();
  });

  it('answers matched too loosely: an S1 with another SQ is ignored', async () => {
    const h = await harness(
      (m) => (m.MT === 'S0' ? [ack, encodeFrame({ MT: 'S1', SQ: '000777', RC: '51', RF: m.RF })] : []),
      { tRespMs: 150 },
    );
    expect(await h.terminal.sale({ rf: 'MATCH4', amountFen: 100 })).toMatchObject({ kind: 'unknown', acked: true });
    await h.terminal.close();
  });

  it('answers matched too loosely: a Q1 about another RF is ignored', async () => {
    const h = await harness((m) => [
      ack,
      encodeFrame({ MT: 'Q1', SQ: m.SQ, RC: '00', RF: 'OTHER', ST: 'N' }),
      { after: 40, bytes: encodeFrame({ MT: 'Q1', SQ: m.SQ, RC: '00', RF: m.RF, ST: 'A', AM: '000000000100' }) },
    ]);
    expect(await h.terminal.query('MATCH5')).toMatchObject({ kind: 'status', status: 'A' });
    await h.terminal.close();
  });
});
