import { CoreContext, Extension } from '../extensions';

/** Ticketing: events, seats held as orders, tickets. (Being built: see issue 5.) */
export const ticketingEntities: Function[] = [];

export function ticketingExtension(_ctx: CoreContext): Extension | null {
  return null;
}
