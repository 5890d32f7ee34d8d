import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import fc from 'fast-check';
import { fixturesDir } from '../../test/support/fixtures';
import { ACK, NAK, decodeFrame, encodeFrame, EcrMessage } from './ecr-codec';
import { Framer } from './ecr-framer';

const fixtures = JSON.parse(readFileSync(resolve(fixturesDir(), 'ecr/frames.json'), 'utf8')) as {
  frames: { name: string; hex: string; fields: Record<string, string> }[];
  invalid: { name: string; hex: string }[];
};

/** The fixtures give RM as raw bytes where it is not text (RM_hex). */
function expected(fields: Record<string, string>): EcrMessage {
  const out: EcrMessage = {};
  for (const [k, v] of Object.entries(fields)) {
    if (k.endsWith('_hex')) out[k.slice(0, -4)] = Buffer.from(v, 'hex').toString('latin1');
    else out[k] = v;
  }
  return out;
}

describe('ECR codec against the fixtures', () => {
  it.each(fixtures.frames.map((f) => [f.name, f] as const))(
    '%s decodes to its fields and encodes back byte for byte',
    (_name, f) => {
      const msg = decodeFrame(Buffer.from(f.hex, 'hex'));
      expect(msg).toEqual(expected(f.fields));
      expect(encodeFrame(msg).toString('hex')).toBe(f.hex);
    },
  );

  it.each(fixtures.invalid.map((f) => [f.name, f] as const))('%s is NAKed and dropped', (_name, f) => {
    const events = new Framer().push(Buffer.from(f.hex, 'hex'));
    expect(events).toEqual([{ kind: 'bad', reason: 'bad LRC' }]);
    expect(() => decodeFrame(Buffer.from(f.hex, 'hex'))).toThrow(/LRC/);
  });

  it('encodes a 1024-byte DATA length as packed BCD 10 24 and refuses 1025', () => {
    // MT (7) + SQ (11) + RM (5 + 500) + ZZ (5 + n) = 1024 when n = 496
    const frame = encodeFrame({ MT: 'P1', SQ: '000001', RM: 'x'.repeat(500), ZZ: 'y'.repeat(496) });
    expect([frame[1], frame[2]]).toEqual([0x10, 0x24]);
    expect(decodeFrame(frame).ZZ).toHaveLength(496);
    expect(() => encodeFrame({ MT: 'P1', SQ: '000001', RM: 'x'.repeat(500), ZZ: 'y'.repeat(497) })).toThrow(/outside/);
  });
});

const fieldValue = fc.stringMatching(/^[A-Za-z0-9 _-]{0,40}$/);
const message = fc
  .record({
    SQ: fc.integer({ min: 1, max: 999_999 }),
    RF: fieldValue,
    RM: fc.constantFrom('请插卡', '交易成功', '', 'x\u0002\u0003'),
  })
  .map(({ SQ, RF, RM }) => ({ MT: 'P1', SQ: String(SQ).padStart(6, '0'), RF, RM }) as EcrMessage);

function framesOf(events: ReturnType<Framer['push']>): EcrMessage[] {
  return events.filter((e) => e.kind === 'frame').map((e) => decodeFrame((e as { frame: Buffer }).frame));
}

describe('framer properties', () => {
  it('any chunking of a stream of valid frames yields the same messages', () => {
    fc.assert(
      fc.property(
        fc.array(message, { minLength: 1, maxLength: 6 }),
        fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 1, maxLength: 50 }),
        (msgs, cuts) => {
          const stream = Buffer.concat(msgs.map((m) => Buffer.concat([encodeFrame(m), Buffer.from([ACK])])));
          const framer = new Framer(300, () => 0);
          const got: EcrMessage[] = [];
          let i = 0;
          let c = 0;
          while (i < stream.length) {
            const n = cuts[c++ % cuts.length];
            got.push(...framesOf(framer.push(stream.subarray(i, i + n))));
            i += n;
          }
          expect(got).toEqual(msgs);
        },
      ),
    );
  });

  it('noise between frames is skipped', () => {
    fc.assert(
      fc.property(
        fc.array(message, { minLength: 1, maxLength: 4 }),
        fc.uint8Array({ maxLength: 20 }),
        (msgs, noise) => {
          const clean = Buffer.from(noise.filter((b) => b !== 0x02 && b !== ACK && b !== NAK));
          const stream = Buffer.concat(msgs.flatMap((m) => [clean, encodeFrame(m)]));
          expect(framesOf(new Framer(300, () => 0).push(stream))).toEqual(msgs);
        },
      ),
    );
  });

  it('any single corrupted byte gives a NAK or a dropped frame, never a wrong message', () => {
    fc.assert(
      fc.property(message, message, fc.nat(), fc.integer({ min: 1, max: 255 }), (a, b, pos, flip) => {
        const first = encodeFrame(a);
        const stream = Buffer.concat([first, encodeFrame(b)]);
        const at = pos % first.length;
        stream[at] ^= flip;
        const events = new Framer(300, () => 0).push(stream);
        const got = framesOf(events);
        // Whatever survives is one of the messages that was sent, untouched; the corrupted one never appears altered.
        for (const m of got) expect(m).toEqual(b);
      }),
    );
  });
});
