import { DomainError } from '../shared/errors';

/** An opaque page position for lists ordered by (created_at, id): callers pass it back unchanged. */
export function encodeCursor(at: number, id: string): string {
  return Buffer.from(JSON.stringify([at, id])).toString('base64url');
}

export function decodeCursor(cursor: string): { at: number; id: string } {
  try {
    const [at, id] = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as [unknown, unknown];
    if (Number.isSafeInteger(at) && typeof id === 'string' && id.length <= 36) return { at: at as number, id };
  } catch {
    /* fall through */
  }
  throw new DomainError(400, 'invalid_request', 'cursor: not a cursor this service returned', {
    issues: [{ path: 'cursor', message: 'not a cursor this service returned' }],
  });
}
