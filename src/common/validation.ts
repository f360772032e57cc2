import { ArgumentMetadata, ValidationError, ValidationPipe } from '@nestjs/common';
import { propertyRules } from './nullable';
import { FieldError, ProblemException } from './problem';

/*
 * The one validation library is class-validator, run by this pipe for every
 * body, query and path parameter. On top of it, rules class-validator does not
 * enforce by itself, for everyone's DTOs at once:
 * - NUL (U+0000) and unpaired UTF-16 surrogates (`"\ud800"`) are refused in every string, keys
 *   included, at any depth: PostgreSQL cannot store either (NUL in text; an unpaired surrogate's
 *   JSON escape in jsonb), so they used to end as a 500.
 * - `null` is refused for every DTO property not marked @Nullable():
 *   @IsOptional lets null through to services.
 * - One error per field, and the one that tells the truth: a field not sent
 *   "is required"; otherwise type errors (a string where an integer is due)
 *   before format and range errors, whatever the order of the decorators.
 * - A bounded answer, whatever the input: at most MAX_REPORTED_ERRORS errors (then "and N more"),
 *   property names longer than MAX_SHOWN_NAME_LENGTH described instead of echoed, field paths and
 *   messages cut to a fixed length. A body of 300,000 unknown keys used to be answered with 32 MB
 *   echoing every name (the body parser now also refuses such bodies: body-parsers.ts).
 */

export const NUL_MESSAGE = 'must not contain NUL characters (\\u0000)';
export const SURROGATE_MESSAGE = 'must be valid Unicode (an unpaired UTF-16 surrogate such as \\ud800 is not)';
/** An unpaired surrogate: with the u flag a well-formed pair is one code point, never matched. */
const UNPAIRED_SURROGATE = /\p{Cs}/u;

/** What makes a string unstorable, or null. */
function unstorable(text: string): string | null {
  if (text.includes('\u0000')) return NUL_MESSAGE;
  if (UNPAIRED_SURROGATE.test(text)) return SURROGATE_MESSAGE;
  return null;
}

/** class-validator constraints that say the value is of the wrong type (or should not be there at all). */
const TYPE_CONSTRAINTS = new Set([
  'whitelistValidation',
  'isDefined',
  'isString',
  'isInt',
  'isNumber',
  'isBoolean',
  'isArray',
  'isObject',
  'isDate',
  'nestedValidation',
]);

/** Errors listed in one answer; the rest are counted ("and N more"). */
export const MAX_REPORTED_ERRORS = 20;
/** Longer property names are described, not echoed: a name is the caller's input, of any size. */
export const MAX_SHOWN_NAME_LENGTH = 40;
/** A field path (up to 32 levels of names) and a message (one rule may list many problems) are cut to these. */
export const MAX_FIELD_LENGTH = 120;
export const MAX_MESSAGE_LENGTH = 240;

/**
 * A property name as errors show it. An empty key (`{"": 1}`, `?=1`) is a field too: shown as
 * `""` so that the error still names it. A long one is described by its length.
 */
export function shownName(key: string): string {
  if (key === '') return '""';
  return key.length > MAX_SHOWN_NAME_LENGTH ? `(a name of ${key.length} characters)` : key;
}
const join = (parent: string, key: string) => (parent ? `${parent}.${shownName(key)}` : shownName(key));

/** At most `max` characters (code points), the cut marked with "…". */
function cut(text: string, max: number, keep: 'start' | 'end'): string {
  if (text.length <= max) return text;
  const chars = Array.from(text);
  if (chars.length <= max) return text;
  return keep === 'start' ? `${chars.slice(0, max - 1).join('')}…` : `…${chars.slice(1 - max).join('')}`;
}

/** One error as it is answered: the end of a long path (the field itself) and the start of a long message. */
function bounded(error: FieldError): FieldError {
  return { field: cut(error.field, MAX_FIELD_LENGTH, 'end'), message: cut(error.message, MAX_MESSAGE_LENGTH, 'start') };
}

/**
 * The 400 for these errors, its size bounded whatever their number: the first MAX_REPORTED_ERRORS,
 * each bounded, and `errors_omitted` (with "and N more" in `detail`) for the rest. `alsoOmitted`:
 * errors already left out of an earlier answer that these are merged from.
 */
export function boundedValidationProblem(errors: FieldError[], alsoOmitted = 0): ProblemException {
  const listed = errors.slice(0, MAX_REPORTED_ERRORS).map(bounded);
  const omitted = errors.length - listed.length + alsoOmitted;
  const detail =
    listed.map((e) => `${e.field}: ${e.message}`).join('; ') + (omitted > 0 ? `; and ${omitted} more` : '');
  return new ProblemException(
    'validation',
    detail,
    omitted > 0 ? { errors: listed, errors_omitted: omitted } : { errors: listed },
  );
}

/** The one message that describes what is wrong with this field. */
function fieldMessage(error: ValidationError): string | null {
  const constraints = error.constraints ?? {};
  // class-validator records constraints in execution order, which is the reverse of the decorators as written.
  const names = Object.keys(constraints).reverse();
  if (names.length === 0) return null;
  if (constraints.whitelistValidation) return `property ${shownName(error.property)} should not exist`;
  if (error.value === undefined) return 'is required';
  const chosen = names.find((n) => TYPE_CONSTRAINTS.has(n)) ?? names[0];
  const message = constraints[chosen];
  // class-validator starts messages with the property name; keep the message about the field only.
  return message.startsWith(`${error.property} `) ? message.slice(error.property.length + 1) : message;
}

function flatten(errors: ValidationError[], parent = ''): FieldError[] {
  return errors.flatMap((error) => {
    const field = join(parent, error.property);
    const message = fieldMessage(error);
    return [...(message === null ? [] : [{ field, message }]), ...flatten(error.children ?? [], field)];
  });
}

/** Every place in `value` (strings, and object keys) holding a NUL or an unpaired surrogate. Iterative: input depth is the client's. */
export function unstorableFields(value: unknown, root = ''): FieldError[] {
  const found: FieldError[] = [];
  const stack: Array<[unknown, string]> = [[value, root]];
  while (stack.length > 0) {
    const [node, path] = stack.pop()!;
    if (typeof node === 'string') {
      const message = unstorable(node);
      if (message) found.push({ field: path, message });
    } else if (node !== null && typeof node === 'object') {
      for (const [key, child] of Object.entries(node as Record<string, unknown>)) {
        const childPath = join(path, key);
        const message = unstorable(key);
        if (message) found.push({ field: childPath, message });
        else stack.push([child, childPath]);
      }
    }
  }
  return found.reverse();
}

type Class = abstract new (...args: never[]) => unknown;

/** DTO properties sent as null without being @Nullable(). */
function nullFields(value: unknown, metatype: Class | undefined): FieldError[] {
  if (!metatype || value === null || typeof value !== 'object' || Array.isArray(value)) return [];
  const plain = value as Record<string, unknown>;
  const errors: FieldError[] = [];
  for (const [property, rules] of propertyRules(metatype)) {
    if (plain[property] !== null || rules.nullable) continue;
    errors.push({
      field: property,
      message: rules.optional ? 'must not be null (leave the field out instead)' : 'must not be null',
    });
  }
  return errors;
}

/** ValidationPipe plus the project-wide rules above. */
export class IdgateValidationPipe extends ValidationPipe {
  override async transform(value: unknown, metadata: ArgumentMetadata): Promise<unknown> {
    // Custom parameter decorators (the principal, the audit context) carry server-made values, not input.
    if (metadata.type === 'custom') return super.transform(value, metadata);
    const early: FieldError[] = [
      ...unstorableFields(value, metadata.type === 'param' ? (metadata.data ?? '') : ''),
      ...nullFields(value, metadata.metatype as Class | undefined),
    ];
    const seen = new Set(early.map((e) => e.field));
    let result: unknown;
    try {
      result = await super.transform(value, metadata);
    } catch (err) {
      if (early.length === 0 || !(err instanceof ProblemException) || err.kind !== 'validation') throw err;
      // The NUL, surrogate or null is what is wrong with those fields; other fields keep their own errors.
      const others = ((err.body.errors as FieldError[] | undefined) ?? []).filter((e) => !seen.has(e.field));
      const omittedBefore = typeof err.body.errors_omitted === 'number' ? err.body.errors_omitted : 0;
      throw boundedValidationProblem([...early, ...others], omittedBefore);
    }
    if (early.length > 0) throw boundedValidationProblem(early);
    return result;
  }
}

/** One validation library for every input: class-validator, unknown fields refused, field named. */
export function createValidationPipe(): ValidationPipe {
  return new IdgateValidationPipe({
    whitelist: true,
    forbidNonWhitelisted: true,
    transform: true,
    // Every constraint runs, so that the pipe can choose the error that describes the field (see fieldMessage).
    stopAtFirstError: false,
    // Values are kept on the errors only to tell "not sent" from "sent wrong"; they are never rendered.
    validationError: { target: false, value: true },
    exceptionFactory: (errors) => boundedValidationProblem(flatten(errors)),
  });
}
