import { ProblemException } from '../common/problem';
import { parseSubmission } from './submission-rules';

/** The fields a 400 names, or null when the submission parses. */
function faults(...args: Parameters<typeof parseSubmission>): string[] | null {
  try {
    parseSubmission(...args);
    return null;
  } catch (err) {
    if (!(err instanceof ProblemException)) throw err;
    const body = err.getResponse() as { errors?: Array<{ field: string }> };
    return (body.errors ?? []).map((e) => e.field);
  }
}

describe('parseSubmission', () => {
  it('name + ID number, or an image URL: the mode follows what was sent', () => {
    expect(parseSubmission('api', { name: '张三', id_card: '11010519491231002X' }, undefined)).toMatchObject({
      mode: 'name_id_card',
      request: { name: '张三', idCard: '11010519491231002X' },
    });
    expect(parseSubmission('drop_in', { image_url: 'https://x.example/a.jpg' }, 'k-1')).toMatchObject({
      mode: 'image',
      idempotencyKey: 'k-1',
      request: { imageUrl: 'https://x.example/a.jpg' },
    });
  });

  it('names every missing field at once; encrypted input needs no clear fields', () => {
    expect(faults('api', {}, undefined)).toEqual(['name', 'id_card']);
    expect(faults('drop_in', { name: '张三' }, undefined)).toEqual(['id_card']);
    expect(faults('api', { encryption: [] }, undefined)).toBeNull();
  });

  it('the API refuses an image with name fields, and image_base64; the drop-in passes them as the vendor would', () => {
    expect(faults('api', { image_url: 'https://x.example/a.jpg', name: '张三' }, undefined)).toEqual(['image_url']);
    expect(faults('api', { image_base64: 'AAAA', name: '张三', id_card: '11010519491231002X' }, undefined)).toEqual([
      'image_base64',
    ]);
    expect(faults('drop_in', { image_url: 'https://x.example/a.jpg', name: '张三' }, undefined)).toBeNull();
  });

  it('an Idempotency-Key is 1-255 characters, named as the header', () => {
    expect(faults('api', { name: '张三', id_card: '11010519491231002X' }, '')).toEqual(['Idempotency-Key']);
    expect(faults('api', { name: '张三', id_card: '11010519491231002X' }, 'k'.repeat(256))).toEqual([
      'Idempotency-Key',
    ]);
    expect(faults('api', { name: '张三', id_card: '11010519491231002X' }, 'k'.repeat(255))).toBeNull();
  });

  it('the reference is the API channel’s own field', () => {
    const body = { name: '张三', id_card: '11010519491231002X', reference: 'order-1' };
    expect(parseSubmission('api', body, undefined).request.reference).toBe('order-1');
    expect(parseSubmission('drop_in', body, undefined).request.reference).toBeUndefined();
  });
});
