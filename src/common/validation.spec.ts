import { ArgumentMetadata } from '@nestjs/common';
import { IntersectionType, PartialType } from '@nestjs/swagger';
import { IsArray, IsInt, IsOptional, IsString, Length, Matches, Max, Min, MinLength } from 'class-validator';
import { IsInteger } from './integer';
import { Nullable } from './nullable';
import { FieldError, ProblemException } from './problem';
import {
  MAX_FIELD_LENGTH,
  MAX_MESSAGE_LENGTH,
  MAX_REPORTED_ERRORS,
  boundedValidationProblem,
  createValidationPipe,
} from './validation';

class Sample {
  @IsOptional()
  @IsString()
  @MinLength(2)
  label?: string;

  // Range decorators written before the type: class-validator runs them first.
  @IsOptional()
  @Max(10)
  @Min(1)
  @IsInt()
  count?: number;

  @Nullable()
  @IsInteger({ min: 0, max: 5 })
  limit!: number | null;

  @IsOptional()
  @IsArray()
  tags?: unknown[];
}

class Required {
  @IsString()
  @Length(1, 100)
  @Matches(/\S/, { message: 'must not be blank' })
  name!: string;
}

class Mapped extends IntersectionType(PartialType(Sample), Required) {}

describe('the validation pipe', () => {
  const pipe = createValidationPipe();
  const body = (metatype: ArgumentMetadata['metatype']): ArgumentMetadata => ({ type: 'body', metatype });

  const errorsOf = async (value: unknown, metadata: ArgumentMetadata = body(Sample)): Promise<FieldError[]> => {
    try {
      await pipe.transform(value, metadata);
    } catch (err) {
      expect(err).toBeInstanceOf(ProblemException);
      return (err as ProblemException).body.errors as FieldError[];
    }
    throw new Error('expected a validation problem');
  };

  it('refuses null unless the property is @Nullable()', async () => {
    await expect(pipe.transform({ limit: null }, body(Sample))).resolves.toMatchObject({ limit: null });
    expect(await errorsOf({ limit: null, label: null })).toEqual([
      { field: 'label', message: 'must not be null (leave the field out instead)' },
    ]);
    expect(await errorsOf({ name: null }, body(Required))).toEqual([{ field: 'name', message: 'must not be null' }]);
  });

  it('keeps @Nullable() through Swagger mapped types', async () => {
    await expect(pipe.transform({ limit: null, name: 'x' }, body(Mapped))).resolves.toMatchObject({ limit: null });
    expect(await errorsOf({ count: null, name: 'x' }, body(Mapped))).toEqual([
      { field: 'count', message: expect.stringMatching(/^must not be null/) },
    ]);
  });

  it('refuses NUL in every string and key, at any depth, with the other fields’ own errors', async () => {
    expect(await errorsOf({ limit: 1, label: 'a\u0000', count: 'x' })).toEqual([
      { field: 'label', message: 'must not contain NUL characters (\\u0000)' },
      { field: 'count', message: 'must be an integer number' },
    ]);
    expect(await errorsOf({ limit: 1, tags: [{ a: ['ok', 'b\u0000'] }] })).toEqual([
      { field: 'tags.0.a.1', message: 'must not contain NUL characters (\\u0000)' },
    ]);
    expect(await errorsOf({ limit: 1, tags: [{ 'k\u0000': 1 }] })).toEqual([
      { field: 'tags.0.k\u0000', message: 'must not contain NUL characters (\\u0000)' },
    ]);
    expect(await errorsOf({ limit: 'x\u0000y' }, { type: 'query', metatype: Sample })).toEqual([
      { field: 'limit', message: 'must not contain NUL characters (\\u0000)' },
    ]);
    expect(await errorsOf('a\u0000', { type: 'param', metatype: String, data: 'id' })).toEqual([
      { field: 'id', message: 'must not contain NUL characters (\\u0000)' },
    ]);
  });

  it('reports the type before the range, whatever the order of the decorators', async () => {
    expect(await errorsOf({ limit: 1, count: 'abc' })).toEqual([
      { field: 'count', message: 'must be an integer number' },
    ]);
    expect(await errorsOf({ limit: 1, count: 1.5 })).toEqual([
      { field: 'count', message: 'must be an integer number' },
    ]);
    expect(await errorsOf({ limit: 1, count: 11 })).toEqual([
      { field: 'count', message: 'must not be greater than 10' },
    ]);
    expect(await errorsOf({ limit: '3' })).toEqual([{ field: 'limit', message: 'must be an integer' }]);
    expect(await errorsOf({ limit: 2 ** 31 })).toEqual([{ field: 'limit', message: 'must not be greater than 5' }]);
    expect(await errorsOf({ limit: 1, label: 5 })).toEqual([{ field: 'label', message: 'must be a string' }]);
  });

  it('says "is required" for a field not sent, not the constraints it would have had', async () => {
    expect(await errorsOf({}, body(Required))).toEqual([{ field: 'name', message: 'is required' }]);
    expect(await errorsOf({ label: 'ab' })).toEqual([{ field: 'limit', message: 'is required' }]);
  });

  it('reports the first constraint as written when the type is right', async () => {
    expect(await errorsOf({ name: '' }, body(Required))).toEqual([
      { field: 'name', message: 'must be longer than or equal to 1 characters' },
    ]);
    expect(await errorsOf({ name: '   ' }, body(Required))).toEqual([{ field: 'name', message: 'must not be blank' }]);
  });

  it('still refuses unknown fields by name, an empty name included', async () => {
    expect(await errorsOf({ limit: 1, admin: null })).toEqual([
      { field: 'admin', message: 'property admin should not exist' },
    ]);
    expect(await errorsOf({ limit: 1, '': 1 })).toEqual([{ field: '""', message: 'property "" should not exist' }]);
  });

  it('answers at most 20 errors, and counts the rest', async () => {
    const many = Object.fromEntries(Array.from({ length: 500 }, (_, i) => [`k${i}`, 1]));
    let problem: ProblemException | undefined;
    try {
      await pipe.transform({ limit: 1, ...many }, body(Sample));
    } catch (err) {
      problem = err as ProblemException;
    }
    expect(problem?.body.errors).toHaveLength(MAX_REPORTED_ERRORS);
    expect(problem?.body.errors_omitted).toBe(500 - MAX_REPORTED_ERRORS);
    expect(problem?.body.detail).toMatch(/; and 480 more$/);
    // NUL errors found before class-validator runs are merged within the same bound.
    try {
      await pipe.transform({ limit: 1, label: 'a\u0000', ...many }, body(Sample));
    } catch (err) {
      problem = err as ProblemException;
    }
    expect(problem?.body.errors).toHaveLength(MAX_REPORTED_ERRORS);
    expect((problem?.body.errors as FieldError[])[0].field).toBe('label');
    expect(problem?.body.errors_omitted).toBe(501 - MAX_REPORTED_ERRORS);
  });

  it('describes long property names instead of echoing them', async () => {
    const long = 'x'.repeat(41);
    expect(await errorsOf({ limit: 1, [long]: 1 })).toEqual([
      { field: '(a name of 41 characters)', message: 'property (a name of 41 characters) should not exist' },
    ]);
    expect(await errorsOf({ limit: 1, ['y'.repeat(40)]: 1 })).toEqual([
      { field: 'y'.repeat(40), message: `property ${'y'.repeat(40)} should not exist` },
    ]);
    expect(await errorsOf({ limit: 1, tags: [{ [`${long}\u0000`]: 1 }] })).toEqual([
      { field: 'tags.0.(a name of 42 characters)', message: 'must not contain NUL characters (\\u0000)' },
    ]);
  });

  it('cuts long field paths and messages', () => {
    const problem = boundedValidationProblem([{ field: `${'a.'.repeat(100)}last`, message: 'm'.repeat(1000) }]);
    const [error] = problem.body.errors as FieldError[];
    expect(error.field).toHaveLength(MAX_FIELD_LENGTH);
    expect(error.field).toMatch(/^….*\.last$/);
    expect(error.message).toHaveLength(MAX_MESSAGE_LENGTH);
    expect(error.message.endsWith('…')).toBe(true);
    expect(problem.body).not.toHaveProperty('errors_omitted');
  });
});
