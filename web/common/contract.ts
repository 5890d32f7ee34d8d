/**
 * Request bodies typed from the server's own zod schemas (types only: `import type` never brings
 * server code into the bundle). A field renamed on the server is a type error here, not a 400 at a till.
 */
import type { z } from 'zod';
import type { cashBody, quoteBody } from '@server/till/till.routes';

export type CashRequest = z.input<typeof cashBody>;
export type QuoteRequest = z.input<typeof quoteBody>;
