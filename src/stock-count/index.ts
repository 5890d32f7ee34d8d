import { CoreContext, Extension } from '../extensions';

/** Stock counts (盘点). (Being built: see issue 6.) */
export const stockCountEntities: Function[] = [];

export function stockCountExtension(_ctx: CoreContext): Extension | null {
  return null;
}
