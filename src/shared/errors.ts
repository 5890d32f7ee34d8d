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
    // A refusal is an answer, not a bug: its stack is never read, and capturing one was ~1.5 % of the
    // service's CPU when most requests are refused (an on-sale's seats).
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    super(message);
    Error.stackTraceLimit = limit;
    this.name = 'DomainError';
  }
}

export const notFound = (what: string, id: string) =>
  new DomainError(404, `${what}_not_found`, `${what.replace(/_/g, ' ')} ${id} does not exist`, { id });

export const conflict = (code: string, message: string, details?: Record<string, unknown>) =>
  new DomainError(409, code, message, details);

export const unprocessable = (code: string, message: string, details?: Record<string, unknown>) =>
  new DomainError(422, code, message, details);
