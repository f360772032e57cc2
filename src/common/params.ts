import { ParseUUIDPipe } from '@nestjs/common';
import { validationProblem } from './problem';

/** A path parameter that must be a UUID; anything else is a 400 naming it. */
export const uuidParam = (field: string) =>
  new ParseUUIDPipe({ exceptionFactory: () => validationProblem([{ field, message: 'must be a UUID' }]) });
