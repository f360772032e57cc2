import {
  containsIdCardNumber,
  decimalDigitValue,
  digitRunHoldsIdShape,
  longestDigitRun,
  normalizeForIdSearch,
} from './id-card-in-text';

const NOW = new Date('2026-06-01T00:00:00Z');
const finds = (text: string) => containsIdCardNumber(text, NOW);

describe('normalizeForIdSearch', () => {
  it('reads every script’s decimal digits as ASCII digits', () => {
    expect(decimalDigitValue('٣')).toBe(3); // Arabic-Indic
    expect(decimalDigitValue('۷')).toBe(7); // Extended Arabic-Indic
    expect(decimalDigitValue('९')).toBe(9); // Devanagari
    expect(decimalDigitValue('০')).toBe(0); // Bengali
    expect(decimalDigitValue('𝟗')).toBe(9); // mathematical bold, in a run of adjoining blocks
    expect(normalizeForIdSearch('٣٦٠४२६１９９１')).toBe('3604261991');
  });

  it('drops invisible characters and the separators between digits, and keeps the rest', () => {
    expect(normalizeForIdSearch('360426-19910101-0071')).toBe('360426199101010071');
    expect(normalizeForIdSearch('3604 2619.9101/0100_71')).toBe('360426199101010071');
    expect(normalizeForIdSearch('36\u200b04\u00ad26\u206019\ufeff91')).toBe('3604261991');
    expect(normalizeForIdSearch('3\u03014')).toBe('34'); // a combining mark on a digit
    expect(normalizeForIdSearch('12 - x')).toBe('12x');
    expect(normalizeForIdSearch('order 12, ok')).toBe('order 12, ok');
    expect(normalizeForIdSearch('a-b 1-')).toBe('a-b 1-');
    expect(normalizeForIdSearch('36 -\u200b- 04')).toBe('3604');
    expect(normalizeForIdSearch('12 \u200b, ab\u200bc')).toBe('12 , abc');
    expect(normalizeForIdSearch('１２－３４ｘ')).toBe('1234x');
  });

  it('measures the longest run of digits after normalisation', () => {
    expect(longestDigitRun('138-0013-8000')).toBe(11);
    expect(longestDigitRun('v1')).toBe(1);
    expect(longestDigitRun('none')).toBe(0);
  });
});

describe('digitRunHoldsIdShape', () => {
  it('finds the 18-character form at any position, check character or not', () => {
    expect(digitRunHoldsIdShape('36042619910101007', 2026)).toBe(true);
    expect(digitRunHoldsIdShape('99360426199101010071', 2026)).toBe(true);
  });

  it('finds the legacy 15-digit form', () => {
    expect(digitRunHoldsIdShape('360426910101007', 2026)).toBe(true);
  });

  it('needs a real birth date in the right place', () => {
    expect(digitRunHoldsIdShape('360426911301007', 2026)).toBe(false); // legacy form, month 13
    expect(digitRunHoldsIdShape('360426910230007', 2026)).toBe(false); // legacy form, 30 February
    expect(digitRunHoldsIdShape('000000000000000000', 2026)).toBe(false);
    expect(digitRunHoldsIdShape('12345678901234', 2026)).toBe(false); // too short for either form
  });
});

describe('containsIdCardNumber', () => {
  it.each([
    ['360426199101010071'],
    ['order for 34052419800101001x'],
    ['id:440305199505132561;'],
    ['360426910101007'], // 15-digit legacy form
    ['110101199003071234'], // wrong check character: a mistyped ID number is still one
    ['1360426199101010071'], // inside a longer run of digits
    ['abc360426199101010071def'],
    ['３６０４２６１９９１０１０１００７１'], // full-width digits
    ['٣٦٠٤٢٦١٩٩١٠١٠١٠٠٧١'], // Arabic-Indic digits
    ['३६०४२६१९९१०१०१००७१'], // Devanagari digits
    ['360426-19910101-0071'],
    ['360426 1991 0101 0071'],
    ['360426.19910101.0071'],
    ['360426/19910101/0071'],
    ['360426_19910101_0071'],
    ['360426 — 1991/01/01 — 0071'],
    ['3604261991010100\u200b71'], // zero-width space
    ['3604261991\u00ad01010071'], // soft hyphen
    ['36042619910101\u20600071'], // word joiner
    ['3\u03016042619910101007\u0301X'], // combining marks
    ['34052419800101001 X'],
    ['ref 36042619910101007'], // the check character cut off
  ])('finds one in %j', (text) => {
    expect(finds(text)).toBe(true);
  });

  it.each([
    ['order-1234'],
    ['2026112512000000001'],
    ['invoice 2024-0001'],
    ['12345678901234'],
    ['0af76519-16cd-43dd-8448-eb211c80319c'],
    ['order 0af76519-16cd-43dd-8448-eb211c80319c'],
    ['12345678-1234-1234-1234-123456789012'], // UUIDs are identifiers, whatever their digits
    [''],
  ])('finds none in %j', (text) => {
    expect(finds(text)).toBe(false);
  });

  it('stays linear on the largest field a body can carry', () => {
    // Shapes chosen so that every window is examined and none matches.
    for (const text of ['0'.repeat(1_000_000), '0-'.repeat(500_000), '٠\u200b'.repeat(500_000)]) {
      const started = process.hrtime.bigint();
      expect(finds(text)).toBe(false);
      // Generous: a quadratic scan of a million characters would take minutes.
      expect(Number(process.hrtime.bigint() - started) / 1e6).toBeLessThan(5000);
    }
  });
});
