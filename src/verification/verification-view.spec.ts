import identities from '../upstream/sandbox/fixtures/identities.json';
import { PiiView, toUpstreamStyleBody, toVerificationDto } from './verification-view';
import type { VerificationRecord } from './verification.types';

function record(mode: 'image' | 'name_id_card', person: (typeof identities)[number]): VerificationRecord {
  const { sex, nation, birth, address } = person;
  const image = mode === 'image';
  return {
    id: '0190a0a0-0000-7000-8000-000000000001',
    clientId: '0190a0a0-0000-7000-8000-000000000002',
    channel: 'api',
    mode,
    reference: 'order-1',
    status: 'completed',
    result: '0',
    description: 'The name and ID card number are consistent',
    chargeStatus: 'charged',
    unitPrice: 50,
    amount: 50,
    currency: 'CNY',
    localCheck: false,
    reusedFromId: null,
    upstreamTraceId: 'trace-1',
    upstreamError: null,
    createdAt: new Date('2026-11-25T12:00:00Z'),
    completedAt: new Date('2026-11-25T12:00:01Z'),
    pii: {
      name: person.name,
      idCard: person.id_card,
      ocr: image
        ? { name: person.name, id_card: person.id_card, sex, nation, birth, address }
        : { name: person.name, id_card: person.id_card, sex: '', nation: '', birth: '', address: '' },
    },
    piiPurgedAt: null,
  };
}

const masked = (id: string) => `${id.slice(0, 6)}********${id.slice(-4)}`;

describe('toVerificationDto', () => {
  const person = identities[2];

  it('full: everything the vendor returned', () => {
    expect(toVerificationDto(record('image', person), 'full')).toMatchObject({
      name: person.name,
      id_card: person.id_card,
      sex: person.sex,
      nation: person.nation,
      birth: person.birth,
      address: person.address,
    });
    expect(toVerificationDto(record('image', person), true)).toEqual(
      toVerificationDto(record('image', person), 'full'),
    );
  });

  it('masked: name first and last, ID number 6 + 4, no sex, nation, birth or address', () => {
    for (const mode of ['image', 'name_id_card'] as const) {
      expect(toVerificationDto(record(mode, person), 'masked')).toMatchObject({
        name: `${Array.from(person.name)[0]}*`,
        id_card: masked(person.id_card),
        sex: '',
        nation: '',
        birth: '',
        address: '',
      });
    }
  });

  it('answer: the card as read in image mode; in name + ID mode the masked echo', () => {
    expect(toVerificationDto(record('image', person), 'answer')).toEqual(
      toVerificationDto(record('image', person), 'full'),
    );
    expect(toVerificationDto(record('name_id_card', person), 'answer')).toEqual(
      toVerificationDto(record('name_id_card', person), 'masked'),
    );
    // The boolean form apiReply uses: false is the answer to the submission.
    expect(toVerificationDto(record('image', person), false)).toEqual(
      toVerificationDto(record('image', person), 'answer'),
    );
  });

  it('a masked view never holds the masked digits, the birth date, sex, ethnic group or address', () => {
    for (const p of identities) {
      for (const mode of ['image', 'name_id_card'] as const) {
        const dto = toVerificationDto(record(mode, p), 'masked');
        const text = JSON.stringify(dto);
        expect(text).not.toContain(p.id_card.slice(6, 14)); // the birth date the mask hides
        expect(text).not.toContain(p.birth);
        expect(text).not.toContain(p.address);
        expect(text).not.toContain(p.id_card);
        expect([dto.sex, dto.nation, dto.birth, dto.address]).toEqual(['', '', '', '']);
      }
    }
  });

  it('has the same fields in every view', () => {
    const keys = (view: PiiView) => Object.keys(toVerificationDto(record('image', person), view)).sort();
    expect(keys('masked')).toEqual(keys('full'));
    expect(keys('answer')).toEqual(keys('full'));
  });
});

describe('toUpstreamStyleBody (the drop-in answers as the vendor does)', () => {
  it('carries the card fields in image mode', () => {
    const person = identities[3];
    expect(toUpstreamStyleBody(record('image', person))).toMatchObject({
      name: person.name,
      id_card: person.id_card,
      birth: person.birth,
    });
  });
});
