import type { z } from 'zod';
import { ValidationError } from '../lib/errors.ts';

/** Parses `input` with `schema`, or throws a 422 naming every offending field. */
export function parseInput<S extends z.ZodType>(
  schema: S,
  input: unknown,
  what = 'request body',
): z.infer<S> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const errors = result.error.issues.map((issue) => {
    const path = issue.path.map(String);
    if (issue.code === 'unrecognized_keys') {
      return {
        field: [...path, ...issue.keys].join('.') || '(root)',
        message: `unknown field; ${issue.message}`,
      };
    }
    return { field: path.join('.') || '(root)', message: issue.message };
  });
  throw new ValidationError(
    `The ${what} is not valid: ${errors.map((e) => `${e.field}: ${e.message}`).join('; ')}`,
    errors,
  );
}
