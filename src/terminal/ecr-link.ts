/**
 * The link layer both ends of the line share (spec §2): ACK a good frame and NAK a bad one, send a
 * frame and wait T_ACK for its ACK, resend on NAK or silence up to 3 sends, and hand each message
 * up once even when the peer repeats a frame whose ACK it missed (same SQ and MT).
 * The simulator uses the fault switches to misbehave on purpose.
 */
import { EventEmitter } from 'node:events';
import { ACK, EcrMessage, NAK, decodeData, encodeFrame } from './ecr-codec';
import { Framer } from './ecr-framer';

export interface LinkIo {
  write(bytes: Buffer): void;
}

export interface LinkOptions {
  tAckMs?: number;
  tByteMs?: number;
  maxSends?: number;
}

export interface SendResult {
  acked: boolean;
  sends: number;
  naks: number;
}

/** Deliberate misbehaviour, each a count of how many times to do it. */
export interface LinkFaults {
  nakFrames: number; // NAK the next good frames instead of handling them
  dropAcks: number; // say nothing instead of ACKing the next good frames (they are still handled)
  corruptLrc: number; // send the next frames with a wrong LRC
  noiseBeforeFrames: number; // send line noise before the next frames
}

export class EcrLink extends EventEmitter {
  readonly faults: LinkFaults = { nakFrames: 0, dropAcks: 0, corruptLrc: 0, noiseBeforeFrames: 0 };
  private readonly framer: Framer;
  private readonly tAckMs: number;
  private readonly maxSends: number;
  private readonly tByteMs: number;
  private lastHandled: string | null = null;
  private waitingAck: ((r: 'ack' | 'nak' | 'down') => void) | null = null;
  private sending: Promise<unknown> = Promise.resolve();
  private stallTimer: NodeJS.Timeout | null = null;
  private down = false;

  constructor(
    private readonly io: LinkIo,
    opts: LinkOptions = {},
  ) {
    super();
    this.tAckMs = opts.tAckMs ?? 500;
    this.maxSends = opts.maxSends ?? 3;
    this.tByteMs = opts.tByteMs ?? 300;
    this.framer = new Framer(this.tByteMs);
  }

  /** Bytes from the line. */
  feed(chunk: Buffer): void {
    for (const ev of this.framer.push(chunk)) {
      switch (ev.kind) {
        case 'ack':
        case 'nak':
          this.waitingAck?.(ev.kind);
          break;
        case 'bad':
          this.emit('bad', ev.reason);
          this.io.write(Buffer.from([NAK]));
          break;
        case 'stalled':
          this.emit('bad', 'frame stalled past T_BYTE');
          break;
        case 'frame':
          this.receive(ev.frame);
          break;
      }
    }
    if (this.stallTimer) clearTimeout(this.stallTimer);
    this.stallTimer = this.framer.pending
      ? setTimeout(() => {
          if (this.framer.expire()) this.emit('bad', 'frame stalled past T_BYTE');
        }, this.tByteMs + 10)
      : null;
  }

  private receive(frame: Buffer): void {
    if (this.faults.nakFrames > 0) {
      this.faults.nakFrames--;
      this.io.write(Buffer.from([NAK]));
      return;
    }
    let msg: EcrMessage;
    try {
      msg = decodeData(frame.subarray(3, frame.length - 2));
    } catch (err) {
      // The frame was intact but its fields are not: NAK it like any frame we cannot use.
      this.emit('bad', String(err));
      this.io.write(Buffer.from([NAK]));
      return;
    }
    if (this.faults.dropAcks > 0) this.faults.dropAcks--;
    else this.io.write(Buffer.from([ACK]));
    // A resend after a lost ACK repeats the frame byte for byte. Prompts (P1) share their request's SQ,
    // so SQ+MT alone would swallow the second prompt; the whole DATA tells a resend from a new message.
    const id = frame.subarray(3, frame.length - 2).toString('latin1');
    if (id === this.lastHandled) return;
    this.lastHandled = id;
    this.emit('message', msg);
  }

  /**
   * Sends one message reliably; sends are serialised, one frame awaiting its ACK at a time.
   * `onWrite` is called as the first byte goes out (the caller's "the peer may have it" point).
   */
  send(msg: EcrMessage, onWrite?: () => void): Promise<SendResult> {
    const run = this.sending.then(() => this.sendNow(msg, onWrite));
    this.sending = run.catch(() => undefined);
    return run;
  }

  private async sendNow(msg: EcrMessage, onWrite?: () => void): Promise<SendResult> {
    const frame = encodeFrame(msg);
    let naks = 0;
    for (let sends = 1; sends <= this.maxSends; sends++) {
      if (this.down) return { acked: false, sends: sends - 1, naks };
      if (this.faults.noiseBeforeFrames > 0) {
        this.faults.noiseBeforeFrames--;
        this.io.write(Buffer.from([0x00, 0x41, 0x03, 0x7f, 0xff, 0x20]));
      }
      let out = frame;
      if (this.faults.corruptLrc > 0) {
        this.faults.corruptLrc--;
        out = Buffer.from(frame);
        out[out.length - 1] ^= 0x5a;
      }
      const answer = new Promise<'ack' | 'nak' | 'down' | 'silence'>((resolve) => {
        const timer = setTimeout(() => {
          this.waitingAck = null;
          resolve('silence');
        }, this.tAckMs);
        this.waitingAck = (r) => {
          clearTimeout(timer);
          this.waitingAck = null;
          resolve(r);
        };
      });
      onWrite?.();
      this.io.write(out);
      const r = await answer;
      if (r === 'ack') return { acked: true, sends, naks };
      if (r === 'down') return { acked: false, sends, naks };
      if (r === 'nak') naks++;
    }
    return { acked: false, sends: this.maxSends, naks };
  }

  /** The line went away: a frame waiting for its ACK will never get one. */
  lineDown(): void {
    this.down = true;
    this.waitingAck?.('down');
    if (this.stallTimer) clearTimeout(this.stallTimer);
  }

  lineUp(): void {
    this.down = false;
  }
}
