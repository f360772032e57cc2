import fc from 'fast-check';
import { checkPersonName, maskPersonName, MAX_NAME_CODE_POINTS } from './person-name';

describe('checkPersonName', () => {
  it.each([
    ['张三', '张三'],
    ['  欧阳娜娜 ', '欧阳娜娜'],
    ['\u3000李四\u3000', '李四'], // ideographic spaces trimmed
    ['买买提·艾力', '买买提·艾力'],
    ['买买提•艾力', '买买提·艾力'], // U+2022 bullet
    ['买买提・艾力', '买买提·艾力'], // U+30FB katakana middle dot
    ['买买提･艾力', '买买提·艾力'], // U+FF65 half-width katakana middle dot
    ['买买提．艾力', '买买提·艾力'], // U+FF0E full-width full stop
    ['买买提‧艾力', '买买提·艾力'], // U+2027 hyphenation point
    ['买买提\u0387艾力', '买买提·艾力'], // U+0387 Greek ano teleia
    ['阿依古丽·吐尔逊·买买提', '阿依古丽·吐尔逊·买买提'],
    ['刘䶮', '刘䶮'], // CJK Extension A
    ['王𠀀', '王𠀀'], // CJK Extension B, supplementary plane
    ['𪚥𪚥', '𪚥𪚥'],
    ['李〇', '李〇'],
    ['John', 'John'],
    ['MARIA  JOSE', 'MARIA JOSE'], // inner whitespace collapsed
    ['Zoe·Smith', 'Zoe·Smith'],
    ['王', '王'],
    ['\uFA0E\u4E09', '\uFA0E\u4E09'], // a unified ideograph in the compatibility block
    ['\u8C48', '\u8C48'],
    ['\uF900', '\u8C48'], // a compatibility ideograph: NFC maps it to the unified one
  ])('accepts %j as %j', (input, normalized) => {
    expect(checkPersonName(input)).toEqual({ ok: true, normalized });
  });

  it.each([
    ['', 'empty'],
    ['   ', 'empty'],
    ['·买买提', 'misplaced_separator'],
    ['买买提·', 'misplaced_separator'],
    ['买买提··艾力', 'misplaced_separator'],
    ['买买提•・艾力', 'misplaced_separator'], // two look-alikes make a doubled separator
    ['MARIA · JOSE', 'misplaced_space'],
    ['MARIA· JOSE', 'misplaced_separator'],
    ['张 三', 'misplaced_space'],
    ['John 张', 'misplaced_space'],
    ['张三1', 'contains_digits'],
    ['张三１', 'contains_digits'], // full-width digit
    ['张三Ⅳ', 'contains_digits'], // Roman numeral
    ['张三😀', 'invalid_characters'],
    ['张-三', 'invalid_characters'],
    ['张.三', 'invalid_characters'], // ASCII full stop is not a look-alike of the separator
    ['O’Brien', 'invalid_characters'],
    ['张三!', 'invalid_characters'],
    ['张\u0000三', 'invalid_characters'],
    ['⺀三', 'invalid_characters'], // a CJK radical, not a character
    ['\u0301a', 'invalid_characters'], // combining mark with nothing to combine with
    // Combining marks never pass, whatever they decorate (NFC composes none of these).
    ['张\u0301三', 'invalid_characters'],
    ['张三\u0301', 'invalid_characters'],
    ['张\u0301\u0302\u0303\u0304三', 'invalid_characters'], // stacked diacritics
    ['Zalgo\u0336\u0337', 'invalid_characters'],
    ['张\u20DD三', 'invalid_characters'], // enclosing mark (Me)
    ['张\u0903三', 'invalid_characters'], // spacing mark (Mc)
    ['张\uFE00三', 'invalid_characters'], // variation selector
    ['\u{20000}\u{E0100}', 'invalid_characters'], // ideographic variation selector
    // Letters beyond ASCII, composed or not.
    ['José', 'invalid_characters'],
    ['Jose\u0301', 'invalid_characters'], // NFC composes it to é: still not ASCII
    ['Zoë·Smith', 'invalid_characters'],
    ['Иван', 'invalid_characters'],
    ['ＭＡＲＩＡ', 'invalid_characters'], // full-width letters
    ['Straße', 'invalid_characters'],
    ['김민준', 'invalid_characters'], // Hangul
    ['さくら', 'invalid_characters'], // Kana
    ['佐々木', 'invalid_characters'], // iteration mark (Han by script, not a character)
    ['⼀三', 'invalid_characters'], // a Kangxi radical
    ['张\u200B三', 'invalid_characters'], // zero-width space
    ['张\u200D三', 'invalid_characters'], // zero-width joiner
    ['\uE000三', 'invalid_characters'], // private use
    ['张'.repeat(MAX_NAME_CODE_POINTS + 1), 'too_long'],
  ])('refuses %j (%s)', (input, reason) => {
    expect(checkPersonName(input)).toEqual({ ok: false, reason });
  });

  it('counts code points, not UTF-16 units: 50 supplementary-plane characters fit', () => {
    const fifty = '𠀀'.repeat(50);
    expect(fifty.length).toBe(100);
    expect(checkPersonName(fifty)).toEqual({ ok: true, normalized: fifty });
    expect(checkPersonName(fifty + '𠀀')).toEqual({ ok: false, reason: 'too_long' });
  });

  it('is idempotent: a normalised name normalises to itself', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 20 }), (s) => {
        const first = checkPersonName(s);
        if (first.ok) expect(checkPersonName(first.normalized)).toEqual(first);
      }),
    );
  });

  it('accepts only Han characters, ASCII letters, spaces and the separator after NFC', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 20 }), (s) => {
        const check = checkPersonName(s);
        if (check.ok) expect(check.normalized).toMatch(/^(?:[\p{Script=Han}A-Za-z ·])+$/u);
        if (check.ok) expect(check.normalized).not.toMatch(/\p{M}/u);
      }),
    );
  });

  it('never throws on arbitrary input', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 60 }), (s) => {
        expect(() => checkPersonName(s)).not.toThrow();
      }),
    );
  });
});

describe('maskPersonName', () => {
  it.each([
    ['张小三', '张*三'],
    ['张三', '张*'],
    ['张', '张'],
    ['欧阳娜娜', '欧**娜'],
    ['王𠀀𠀀', '王*𠀀'],
    ['', ''],
  ])('%j → %j', (name, masked) => {
    expect(maskPersonName(name)).toBe(masked);
  });
});
