/**
 * Expected business outcomes carry a stable `code` and map to a 4xx in one place (http/errors.ts).
 * Anything that is not a DomainError is a bug: a 500 with a log.
 */
export class DomainError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'DomainError';
  }
}

export const notFound = (what: string, id: string) =>
  new DomainError(404, `${what}_not_found`, `${what.replace(/_/g, ' ')} ${id} does not exist`, { id });

export const conflict = (code: string, message: string, details?: Record<string, unknown>) =>
  new DomainError(409, code, message, details);

export const unprocessable = (code: string, message: string, details?: Record<string, unknown>) =>
  new DomainError(422, code, message, details);
