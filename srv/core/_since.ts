/**
 * The two rules of `get_events{since}` (docs/PROTOCOL.md §6) shared by the
 * memory ring and the durable store.
 *
 * @module
 */

import type { U64 } from "./protocol.ts";

/**
 * `since` as a number to compare versions with. Versions are safe
 * integers, so a bigint beyond them compares as Infinity.
 *
 * @example
 * ```ts
 * import { sinceBound } from "./_since.ts";
 * sinceBound(18446744073709551615n); // Infinity
 * ```
 */
export function sinceBound(since: U64): number {
  if (typeof since === "number") return since;
  return since <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(since) : Infinity;
}

/**
 * Whether events after `since` were dropped, given the oldest retained
 * version: oldest > since + 1, in bigint so 2^64 - 1 cannot overflow or
 * round; never for an empty log.
 *
 * @example
 * ```ts
 * import { truncatedAfter } from "./_since.ts";
 * truncatedAfter(7, 0); // true
 * truncatedAfter(null, 0); // false
 * ```
 */
export function truncatedAfter(oldest: number | null, since: U64): boolean {
  return oldest !== null && BigInt(oldest) > BigInt(since) + 1n;
}
