/**
 * Cuts a byte stream from the serial line into frames and link control bytes
 * (spec §2): the end of a frame is found by LEN, never by looking for ETX; noise outside a frame
 * is skipped up to the next STX; a frame that stalls longer than T_BYTE is dropped without NAK.
 */
import { ACK, ETX, NAK, STX, lrc, parseBcdLength } from './ecr-codec';

export type FramerEvent =
  | { kind: 'frame'; frame: Buffer }
  | { kind: 'ack' }
  | { kind: 'nak' }
  /** A complete frame that failed its checks: the receiver NAKs it. */
  | { kind: 'bad'; reason: string }
  /** A frame left incomplete for longer than T_BYTE: dropped silently. */
  | { kind: 'stalled' };

export class Framer {
  private buf: Buffer = Buffer.alloc(0);
  private inFrame = false;
  private lastByteAt = 0;

  constructor(
    private readonly tByteMs = 300,
    private readonly now: () => number = Date.now,
  ) {}

  /** Feeds bytes; returns what they completed, in order. */
  push(chunk: Uint8Array): FramerEvent[] {
    const events: FramerEvent[] = [];
    const t = this.now();
    if (this.inFrame && t - this.lastByteAt > this.tByteMs) {
      this.buf = Buffer.alloc(0);
      this.inFrame = false;
      events.push({ kind: 'stalled' });
    }
    this.lastByteAt = t;
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : Buffer.from(chunk);
    for (;;) {
      if (!this.inFrame) {
        let i = 0;
        while (i < this.buf.length && this.buf[i] !== STX) {
          if (this.buf[i] === ACK) events.push({ kind: 'ack' });
          else if (this.buf[i] === NAK) events.push({ kind: 'nak' });
          i++;
        }
        this.buf = this.buf.subarray(i);
        if (this.buf.length === 0) return events;
        this.inFrame = true;
      }
      if (this.buf.length < 3) return events;
      const len = parseBcdLength(this.buf[1], this.buf[2]);
      if (len === null) {
        // Not a frame start after all: NAK it and look for the next STX after this one.
        events.push({ kind: 'bad', reason: 'bad LEN' });
        this.buf = this.buf.subarray(1);
        this.inFrame = false;
        continue;
      }
      if (this.buf.length < len + 5) return events;
      const frame = Buffer.from(this.buf.subarray(0, len + 5));
      this.buf = this.buf.subarray(len + 5);
      this.inFrame = false;
      if (frame[3 + len] !== ETX) events.push({ kind: 'bad', reason: 'no ETX after DATA' });
      else if (lrc(frame, 1, 4 + len) !== frame[4 + len]) events.push({ kind: 'bad', reason: 'bad LRC' });
      else events.push({ kind: 'frame', frame });
    }
  }

  /** Called by a timer: drops a frame whose next byte has not come within T_BYTE. */
  expire(): FramerEvent | null {
    if (this.inFrame && this.now() - this.lastByteAt > this.tByteMs) {
      this.buf = Buffer.alloc(0);
      this.inFrame = false;
      return { kind: 'stalled' };
    }
    return null;
  }

  get pending(): boolean {
    return this.inFrame;
  }
}
