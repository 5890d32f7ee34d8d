/**
 * The ECR serial protocol's frames and messages (../shared/spec/ecr-serial-protocol.md §2–3):
 * STX | LEN (2 bytes packed BCD) | DATA | ETX | LRC (XOR of LEN, DATA, ETX), and DATA as
 * TAG(2 ASCII) VLEN(3 ASCII digits) VALUE fields. Values are ASCII except RM, which is GBK.
 */
import iconv from 'iconv-lite';

export const STX = 0x02;
export const ETX = 0x03;
export const ACK = 0x06;
export const NAK = 0x15;
export const MAX_DATA = 1024;

/** A message: its fields in wire order (MT first). Insertion order is kept so encoding is byte-exact. */
export type EcrMessage = Record<string, string>;

const GBK_TAGS = new Set(['RM']);

export class CodecError extends Error {}

export function lrc(bytes: Uint8Array, from = 0, to = bytes.length): number {
  let x = 0;
  for (let i = from; i < to; i++) x ^= bytes[i];
  return x;
}

/** 37 → [0x00, 0x37]; 1024 → [0x10, 0x24]. */
export function bcdLength(n: number): [number, number] {
  if (!Number.isInteger(n) || n < 1 || n > MAX_DATA) throw new CodecError(`DATA length ${n} is outside 1–${MAX_DATA}`);
  const d = n.toString().padStart(4, '0');
  return [(Number(d[0]) << 4) | Number(d[1]), (Number(d[2]) << 4) | Number(d[3])];
}

/** The length a packed-BCD LEN says, or null when it is not valid BCD or out of range. */
export function parseBcdLength(hi: number, lo: number): number | null {
  const digits = [hi >> 4, hi & 0xf, lo >> 4, lo & 0xf];
  if (digits.some((d) => d > 9)) return null;
  const n = digits[0] * 1000 + digits[1] * 100 + digits[2] * 10 + digits[3];
  return n >= 1 && n <= MAX_DATA ? n : null;
}

export function encodeData(msg: EcrMessage): Buffer {
  if (!msg.MT) throw new CodecError('a message needs MT');
  const parts: Buffer[] = [];
  const tags = ['MT', ...Object.keys(msg).filter((t) => t !== 'MT')];
  for (const tag of tags) {
    if (!/^[A-Z0-9]{2}$/.test(tag)) throw new CodecError(`bad tag "${tag}"`);
    const value = GBK_TAGS.has(tag) ? iconv.encode(msg[tag], 'gbk') : Buffer.from(msg[tag], 'latin1');
    if (value.length > 999) throw new CodecError(`field ${tag} is longer than 999 bytes`);
    parts.push(Buffer.from(tag + value.length.toString().padStart(3, '0'), 'ascii'), value);
  }
  return Buffer.concat(parts);
}

export function decodeData(data: Uint8Array): EcrMessage {
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const msg: EcrMessage = {};
  let i = 0;
  while (i < buf.length) {
    if (i + 5 > buf.length) throw new CodecError(`truncated field header at byte ${i}`);
    const tag = buf.toString('latin1', i, i + 2);
    const lenText = buf.toString('latin1', i + 2, i + 5);
    if (!/^[A-Z0-9]{2}$/.test(tag) || !/^\d{3}$/.test(lenText)) throw new CodecError(`bad field header at byte ${i}`);
    const len = Number(lenText);
    const start = i + 5;
    if (start + len > buf.length) throw new CodecError(`field ${tag} runs past the end of DATA`);
    const raw = buf.subarray(start, start + len);
    msg[tag] = GBK_TAGS.has(tag) ? iconv.decode(raw, 'gbk') : raw.toString('latin1');
    i = start + len;
  }
  if (!msg.MT || Object.keys(msg)[0] !== 'MT') throw new CodecError('the first field must be MT');
  return msg;
}

export function encodeFrame(msg: EcrMessage): Buffer {
  const data = encodeData(msg);
  const [hi, lo] = bcdLength(data.length);
  const frame = Buffer.alloc(data.length + 5);
  frame[0] = STX;
  frame[1] = hi;
  frame[2] = lo;
  data.copy(frame, 3);
  frame[3 + data.length] = ETX;
  frame[4 + data.length] = lrc(frame, 1, 4 + data.length);
  return frame;
}

/** Decodes one complete frame; throws CodecError on anything the link must NAK. */
export function decodeFrame(frame: Uint8Array): EcrMessage {
  if (frame.length < 6 || frame[0] !== STX) throw new CodecError('not a frame');
  const len = parseBcdLength(frame[1], frame[2]);
  if (len === null || frame.length !== len + 5) throw new CodecError('bad LEN');
  if (frame[3 + len] !== ETX) throw new CodecError('no ETX after DATA');
  if (lrc(frame, 1, 4 + len) !== frame[4 + len]) throw new CodecError('bad LRC');
  return decodeData(frame.subarray(3, 3 + len));
}

export const amountField = (fen: number) => {
  if (!Number.isSafeInteger(fen) || fen < 0 || fen > 999_999_999_999)
    throw new CodecError(`amount ${fen} does not fit AM`);
  return fen.toString().padStart(12, '0');
};
