/** JSON values as skyrl reads them. Pure. */

/**
 * A JSON object (not null, not an array): the one definition. `isObject<any>(u)` where the caller reads
 * fields of a raw API body loosely.
 */
export const isObject = <V = unknown>(u: unknown): u is Record<string, V> =>
  typeof u === "object" && u !== null && !Array.isArray(u)
