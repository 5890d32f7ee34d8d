import fc from 'fast-check';
import { ean13CheckDigit, isValidEan13 } from './ean13';

describe('EAN-13', () => {
  it.each(['6901234567892', '4006381333931', '6920202888883', '0000000000000'])('%s is valid', (code) => {
    expect(isValidEan13(code)).toBe(true);
  });

  it('a wrong check digit, a wrong length or letters are refused', () => {
    expect(isValidEan13('6901234567891')).toBe(false);
    expect(isValidEan13('690123456789')).toBe(false);
    expect(isValidEan13('69012345678920')).toBe(false);
    expect(isValidEan13('690123456789X')).toBe(false);
  });

  it('any single-digit misread is caught', () => {
    fc.assert(
      fc.property(
        fc.stringMatching(/^\d{12}$/),
        fc.integer({ min: 0, max: 12 }),
        fc.integer({ min: 1, max: 9 }),
        (body, pos, bump) => {
          const code = body + ean13CheckDigit(body);
          const misread = code.slice(0, pos) + ((Number(code[pos]) + bump) % 10) + code.slice(pos + 1);
          expect(isValidEan13(code)).toBe(true);
          expect(isValidEan13(misread)).toBe(false);
        },
      ),
    );
  });
});
