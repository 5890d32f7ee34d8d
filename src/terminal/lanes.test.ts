import { parseTerminalsEnv } from './lanes';

describe('POS_TERMINALS', () => {
  it('reads devices with and without a baud rate, and simulated lanes', () => {
    expect(parseTerminalsEnv('lane-1:/dev/ttyUSB0@115200, lane-2:/dev/ttyS1,lane-3:sim')).toEqual([
      { kind: 'device', lane: 'lane-1', path: '/dev/ttyUSB0', baudRate: 115200 },
      { kind: 'device', lane: 'lane-2', path: '/dev/ttyS1', baudRate: 9600 },
      { kind: 'sim', lane: 'lane-3' },
    ]);
    expect(parseTerminalsEnv('')).toEqual([]);
  });

  it.each([['lane-1'], ['lane-1:/dev/x@12345'], ['lane 1:sim'], ['a:sim,a:sim']])(
    'refuses %s with a clear message',
    (v) => {
      expect(() => parseTerminalsEnv(v)).toThrow(/POS_TERMINALS/);
    },
  );
});
