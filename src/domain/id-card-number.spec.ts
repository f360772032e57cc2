import fc from 'fast-check';
import { checkIdCardNumber, idCardCheckCharacter, maskIdCardNumber, normalizeIdCardNumber } from './id-card-number';

const NOW = new Date('2024-06-15T12:00:00Z');

describe('checkIdCardNumber', () => {
  it.each([
    ['360426199101010071', '360426199101010071', '1991-01-01', 'male'],
    ['34052419800101001X', '34052419800101001X', '1980-01-01', 'male'],
    ['440305199505132561', '440305199505132561', '1995-05-13', 'female'],
    ['34052419800101001x', '34052419800101001X', '1980-01-01', 'male'],
    ['  360426199101010071 ', '360426199101010071', '1991-01-01', 'male'],
  ])('accepts %s', (input, normalized, birthDate, sex) => {
    expect(checkIdCardNumber(input, NOW)).toEqual({ ok: true, normalized, birthDate, sex, legacy: false });
  });

  it('accepts 29 February in a leap year (2000 is one: divisible by 400)', () => {
    const number = `11010120000229001${idCardCheckCharacter('11010120000229001')}`;
    expect(checkIdCardNumber(number, NOW)).toMatchObject({ ok: true, birthDate: '2000-02-29', sex: 'male' });
  });

  it('converts the 15-digit legacy form by inserting 19 and computing the check character', () => {
    // 360426 910101 007 → 360426 19 910101 007 + check 1
    expect(checkIdCardNumber('360426910101007', NOW)).toEqual({
      ok: true,
      normalized: '360426199101010071',
      birthDate: '1991-01-01',
      sex: 'male',
      legacy: true,
    });
    expect(checkIdCardNumber('340524800101001', NOW)).toMatchObject({ ok: true, normalized: '34052419800101001X' });
    // A legacy number with an impossible date is still refused.
    expect(checkIdCardNumber('360426910230007', NOW)).toEqual({ ok: false, reason: 'invalid_birth_date' });
  });

  it.each([
    ['110101199003071234', 'wrong_check_character'], // the popular "example" number: its check character is 3
    ['360426199101010072', 'wrong_check_character'],
    ['34052419800101001Y', 'invalid_characters'],
    ['440305199505132560', 'wrong_check_character'],
    ['110101199902290010', 'invalid_birth_date'], // 1999 is not a leap year
    ['110101190002290014', 'invalid_birth_date'], // nor is 1900
    ['110101199013010019', 'invalid_birth_date'], // month 13
    ['110101199000010012', 'invalid_birth_date'], // month 00
    ['110101199001000015', 'invalid_birth_date'], // day 00
    ['110101199004310013', 'invalid_birth_date'], // 31 April
    ['110101189912310019', 'invalid_birth_date'], // before 1900
    ['110101203001010016', 'future_birth_date'],
    ['11010119900307123', 'wrong_length'],
    ['1101011990030712345', 'wrong_length'],
    ['', 'empty'],
    ['   ', 'empty'],
    ['11010119900307123４', 'invalid_characters'], // full-width digit
    ['1101011990030 1234', 'invalid_characters'],
    ['X10101199003071234', 'invalid_characters'],
    ['11010119900307123X0', 'wrong_length'],
    ['abc', 'invalid_characters'],
    ['36042619910101007x1', 'wrong_length'],
    ['3604269101010071', 'wrong_length'], // 16 digits
    ['36042691010100X', 'invalid_characters'], // legacy numbers have no check character
  ])('refuses %j (%s)', (input, reason) => {
    expect(checkIdCardNumber(input, NOW)).toEqual({ ok: false, reason });
  });

  it('uses the calendar day in China (UTC+8) for "not in the future"', () => {
    const first17 = '11010120240616001';
    const bornOn16June = first17 + idCardCheckCharacter(first17);
    // 2024-06-15T16:30Z is already 16 June 00:30 in Beijing.
    expect(checkIdCardNumber(bornOn16June, new Date('2024-06-15T16:30:00Z')).ok).toBe(true);
    expect(checkIdCardNumber(bornOn16June, new Date('2024-06-15T15:30:00Z'))).toEqual({
      ok: false,
      reason: 'future_birth_date',
    });
  });

  it('does not reject address codes missing from today’s region list', () => {
    const first17 = '51020219800101001'; // 5102xx: Chongqing before 1997
    expect(checkIdCardNumber(first17 + idCardCheckCharacter(first17), NOW).ok).toBe(true);
    const unknownRegion = '99999919800101001';
    expect(checkIdCardNumber(unknownRegion + idCardCheckCharacter(unknownRegion), NOW).ok).toBe(true);
  });

  it('accepts every number built with the right check character, and no other last character', () => {
    const first17 = fc
      .record({
        region: fc.integer({ min: 100000, max: 999999 }),
        day: fc.date({
          min: new Date('1900-01-01T00:00:00Z'),
          max: new Date('2024-06-14T00:00:00Z'),
          noInvalidDate: true,
        }),
        sequence: fc.integer({ min: 0, max: 999 }),
      })
      .map(
        ({ region, day, sequence }) =>
          `${region}${day.toISOString().slice(0, 10).replaceAll('-', '')}${String(sequence).padStart(3, '0')}`,
      );
    fc.assert(
      fc.property(first17, fc.constantFrom(...'0123456789X'), (digits, last) => {
        const result = checkIdCardNumber(digits + last, NOW);
        const right = idCardCheckCharacter(digits) === last;
        expect(result.ok).toBe(right);
        if (result.ok) expect(result.sex).toBe(Number(digits[16]) % 2 ? 'male' : 'female');
      }),
    );
  });

  it('never throws on arbitrary input', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 40 }), (s) => {
        expect(() => checkIdCardNumber(s, NOW)).not.toThrow();
      }),
    );
  });
});

describe('idCardCheckCharacter', () => {
  it('computes ISO 7064 MOD 11-2', () => {
    expect(idCardCheckCharacter('36042619910101007')).toBe('1');
    expect(idCardCheckCharacter('34052419800101001')).toBe('X');
    expect(idCardCheckCharacter('44030519950513256')).toBe('1');
    expect(idCardCheckCharacter('11010119900307123')).toBe('3');
  });

  it('refuses anything but 17 digits', () => {
    expect(() => idCardCheckCharacter('1234')).toThrow(RangeError);
  });
});

describe('maskIdCardNumber', () => {
  it('shows the first 6 and last 4 characters of a well-formed 18-character number', () => {
    expect(maskIdCardNumber('110101199003071234')).toBe('110101********1234');
    expect(maskIdCardNumber('34052419800101001X')).toBe('340524********001X');
    expect(maskIdCardNumber('34052419800101001x')).toBe('340524********001x');
    // Well-formed but invalid (wrong check character): the last 4 are still no birth-date digits.
    expect(maskIdCardNumber(' 360426199101010072 ')).toBe('360426********0072');
  });

  it('shows the first 6 and the sequence (last 3) of a 15-digit legacy number', () => {
    expect(maskIdCardNumber('360426910101007')).toBe('360426******007');
    // Not a legacy number (no month 91): an 18-character number cut short, ending in its birth day.
    expect(maskIdCardNumber('360426199101010')).toBe('360426*********');
  });

  it.each([
    ['36042619910101', '360426********'], // 14: the last 4 are the birth day
    ['36042619910101007', '360426***********'], // 17
    ['360426199101', '360426******'], // 12: ends with the birth month
    ['3604261991010', '360426*******'], // 13
    ['36042619910', '360426*****'], // 11
    ['3604261991010100', '360426**********'], // 16
    ['3604261991010100711', '360426*************'], // 19
    ['36042619910101007Y', '360426************'], // 18, not well-formed
    ['３６０４２６１９９１０１０１００７１', '３６０４２６************'], // full-width: not well-formed
    ['1234ab5678', '1234ab****'],
    ['12345678', '123456**'],
  ])('shows at most the first 6 of anything else: %j', (input, masked) => {
    expect(maskIdCardNumber(input)).toBe(masked);
  });

  it('shows nothing of input shorter than 8, and always holds a mask character', () => {
    expect(maskIdCardNumber('1234567')).toBe('*******');
    expect(maskIdCardNumber('1')).toBe('*');
    expect(maskIdCardNumber('')).toBe('*');
    expect(maskIdCardNumber('   ')).toBe('*');
  });

  it('never shows a character of the birth date of a number of any length', () => {
    const digits = '360426199101010071';
    for (let length = 1; length <= 24; length++) {
      const value = (digits + digits).slice(0, length);
      const masked = Array.from(maskIdCardNumber(value));
      // Places 7-14 (index 6-13) hold the birth date; in a valid legacy number, places 7-12.
      const end = length === 15 ? 12 : 14;
      for (let i = 6; i < Math.min(end, value.length); i++)
        expect({ length, i, c: masked[i] }).toEqual({ length, i, c: '*' });
    }
  });
});

describe('normalizeIdCardNumber (the form hashed for search)', () => {
  it('normalises valid numbers and leaves invalid ones trimmed and upper-cased', () => {
    expect(normalizeIdCardNumber(' 34052419800101001x ')).toBe('34052419800101001X');
    expect(normalizeIdCardNumber('360426910101007')).toBe('360426199101010071');
    expect(normalizeIdCardNumber(' 110101199003071234x ')).toBe('110101199003071234X');
  });
});
