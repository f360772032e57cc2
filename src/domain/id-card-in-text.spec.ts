import { containsIdCardNumber } from './id-card-in-text';

describe('containsIdCardNumber', () => {
  it.each([
    ['360426199101010071'],
    ['order for 34052419800101001x'],
    ['id:440305199505132561;'],
    ['360426910101007'], // 15-digit legacy form
    ['３６０４２６１９９１０１０１００７１'], // full-width digits
  ])('finds one in %j', (text) => {
    expect(containsIdCardNumber(text)).toBe(true);
  });

  it.each([
    ['order-1234'],
    ['110101199003071234'], // wrong check character: not an ID number
    ['1360426199101010071'], // part of a longer run of digits
    ['3604261991010100712'],
    ['2026112512000000001'],
    [''],
  ])('finds none in %j', (text) => {
    expect(containsIdCardNumber(text)).toBe(false);
  });
});
