import { Writable } from 'node:stream';
import { jsonLogger } from './logger';

function capture(): { stream: Writable & { write(s: string): boolean }; lines(): Record<string, unknown>[] } {
  let out = '';
  const stream = new Writable({
    write(chunk, _enc, cb) {
      out += chunk.toString();
      cb();
    },
  }) as Writable & { write(s: string): boolean };
  return {
    stream,
    lines: () =>
      out
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l)),
  };
}

describe('jsonLogger (pino)', () => {
  it('writes one JSON line per entry with level, msg and the fields', () => {
    const c = capture();
    jsonLogger(false, c.stream).warn('sweep', { queried: 3 });
    expect(c.lines()).toEqual([
      expect.objectContaining({ level: 'warn', msg: 'sweep', queried: 3, time: expect.any(String) }),
    ]);
  });

  it('masks a full card number wherever it appears', () => {
    const c = capture();
    jsonLogger(false, c.stream).error('peer said 6228480402564890018', { raw: 'CN=6228480402564890018' });
    const text = JSON.stringify(c.lines());
    expect(text).not.toMatch(/6228480402564890018/);
    expect(text).toMatch(/622848\*{6}0018/);
  });

  it('keeps only errors when quiet', () => {
    const c = capture();
    const log = jsonLogger(true, c.stream);
    log.info('hidden');
    log.error('shown');
    expect(c.lines().map((l) => l.msg)).toEqual(['shown']);
  });
});
