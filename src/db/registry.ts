/**
 * The entity classes the data source maps. db/ knows no capability: each capability hands its
 * entities over (src/capabilities.ts registers them all when the app or the CLI is loaded), and a
 * data source made later maps whatever was handed over. Raw SQL needs none of it.
 */
// eslint-disable-next-line @typescript-eslint/no-unsafe-function-type
export type EntityClass = Function;

const registered = new Set<EntityClass>();

export function registerEntities(list: readonly EntityClass[]): void {
  for (const e of list) registered.add(e);
}

export function registeredEntities(): EntityClass[] {
  return [...registered];
}
