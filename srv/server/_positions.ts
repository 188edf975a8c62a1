/**
 * Sparse positions for ordered children stored as rows (the store's tabs and
 * blocks): each child has an integer `position`, children are ordered by
 * it, and a change of order rewrites only the children that must move, not
 * every sibling. Pure: no I/O.
 *
 * @module
 */

/** Gap between neighbours when positions are handed out fresh. */
export const POSITION_STEP = 65536;

/**
 * The positions to write so that positions rise strictly along `ids`, given
 * what each child holds now (`undefined`: no position yet, e.g. a new or
 * moved-in child). Keeps the longest run of children already in order (a
 * longest increasing subsequence), and places every other child between its
 * kept neighbours, so moving one child rewrites one row and appending one
 * writes one. Only when a gap has no integer left for the children that go
 * into it are all children renumbered (every `POSITION_STEP`), which spaces
 * them out again for the next ~16 insertions at one spot.
 *
 * Returns `[id, position]` for exactly the children whose position changes.
 * O(n log n) time for n children; the caller already spends O(n) on the
 * reordered list itself.
 *
 * @example
 * ```ts
 * import { placeInOrder } from "./_positions.ts";
 * const now = new Map([["a", 10], ["b", 20], ["c", 30]]);
 * placeInOrder(["c", "a", "b"], (id) => now.get(id)); // [["c", -65526]]
 * ```
 */
export function placeInOrder(
  ids: readonly string[],
  positionOf: (id: string) => number | undefined,
): [string, number][] {
  const n = ids.length;
  const known: (number | undefined)[] = new Array(n);
  let inOrder = true;
  let previous = -Infinity;
  for (let i = 0; i < n; i++) {
    const p = positionOf(ids[i]);
    known[i] = p;
    if (p === undefined || p <= previous) inOrder = false;
    else previous = p;
  }
  if (inOrder) return [];
  const keep = longestRising(known);
  const out: [string, number][] = [];
  let lo: number | undefined = undefined;
  let i = 0;
  while (i < n) {
    if (keep[i]) {
      lo = known[i];
      i++;
      continue;
    }
    // A run of children to place, between `lo` and the next kept position.
    let end = i;
    while (end < n && !keep[end]) end++;
    const k = end - i;
    let hi: number | undefined = end < n ? known[end] : undefined;
    let from: number;
    if (lo === undefined && hi === undefined) {
      from = 0;
      hi = POSITION_STEP * (k + 1);
    } else if (lo === undefined) {
      from = hi! - POSITION_STEP * (k + 1);
    } else {
      from = lo;
      hi ??= lo + POSITION_STEP * (k + 1);
    }
    const gap = (hi! - from) / (k + 1);
    if (gap < 1) return renumbered(ids, known);
    for (let j = 0; j < k; j++) {
      const p = from + Math.floor(gap * (j + 1));
      if (p !== known[i + j]) out.push([ids[i + j], p]);
    }
    lo = from + Math.floor(gap * k);
    i = end;
  }
  return out;
}

/** Every child at `(i + 1) * POSITION_STEP`: the rows whose position changes. */
function renumbered(ids: readonly string[], known: readonly (number | undefined)[]) {
  const out: [string, number][] = [];
  for (let i = 0; i < ids.length; i++) {
    const p = (i + 1) * POSITION_STEP;
    if (known[i] !== p) out.push([ids[i], p]);
  }
  return out;
}

/** Which entries form a longest strictly rising subsequence of the defined values. */
function longestRising(values: readonly (number | undefined)[]): boolean[] {
  // Patience sorting: tails[l] is the index ending the best run of length l + 1.
  const tails: number[] = [];
  const before = new Int32Array(values.length).fill(-1);
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v === undefined) continue;
    let lo = 0;
    let hi = tails.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (values[tails[mid]]! < v) lo = mid + 1;
      else hi = mid;
    }
    if (lo > 0) before[i] = tails[lo - 1];
    tails[lo] = i;
  }
  const keep = new Array<boolean>(values.length).fill(false);
  for (let i = tails.at(-1) ?? -1; i >= 0; i = before[i]) keep[i] = true;
  return keep;
}

/** Where to look for a child first: its index in the list, or `AT_END` (just appended). */
export const AT_END = -1;

/** How far from its hint a child is looked for before the whole list is scanned. */
const NEAR = 256;

/** Index of `id` in `ids`, looked for around `hint` first, or -1. */
function findNear(ids: readonly string[], id: string, hint: number): number {
  const n = ids.length;
  const from = hint === AT_END || hint >= n ? n - 1 : hint;
  for (let d = 0; d <= NEAR; d++) {
    if (from - d >= 0 && ids[from - d] === id) return from - d;
    if (d > 0 && from + d < n && ids[from + d] === id) return from + d;
  }
  return ids.indexOf(id);
}

/**
 * Like {@linkcode placeInOrder}, when only the children in `moved` (with
 * where to look for each, see {@linkcode AT_END}) may have changed place and
 * every other child keeps a position: the others stay in order among
 * themselves (moving or adding a child does not reorder the rest), so only
 * each run of moved children needs a place, between its two unmoved
 * neighbours. O(moved) for appends and for moves whose hint holds, instead
 * of O(n log n) over the whole list, which made every `create_block` into
 * a 50k-block tab read 50k positions. Returns null when that is not enough
 * (a gap with no integer left, a child without a position): then
 * `placeInOrder` renumbers.
 *
 * @example
 * ```ts
 * import { AT_END, placeMoved } from "./_positions.ts";
 * const now = new Map([["a", 10], ["b", 20]]);
 * placeMoved(["a", "b", "c"], new Map([["c", AT_END]]), (id) => now.get(id)); // [["c", 65556]]
 * ```
 */
export function placeMoved(
  ids: readonly string[],
  moved: ReadonlyMap<string, number>,
  positionOf: (id: string) => number | undefined,
): [string, number][] | null {
  const at: number[] = [];
  for (const [id, hint] of moved) {
    const i = findNear(ids, id, hint);
    if (i >= 0) at.push(i);
  }
  at.sort((a, b) => a - b);
  const out: [string, number][] = [];
  for (let r = 0; r < at.length;) {
    // One run of moved children, ids[first..last], between unmoved neighbours.
    const first = at[r];
    let last = first;
    for (r++; r < at.length && at[r] <= last + 1; r++) last = at[r];
    const lo = first > 0 ? positionOf(ids[first - 1]) : undefined;
    const hi = last + 1 < ids.length ? positionOf(ids[last + 1]) : undefined;
    if ((first > 0 && lo === undefined) || (last + 1 < ids.length && hi === undefined)) return null;
    const k = last - first + 1;
    let from: number;
    let to: number;
    if (lo === undefined && hi === undefined) {
      from = 0;
      to = POSITION_STEP * (k + 1);
    } else if (lo === undefined) {
      from = hi! - POSITION_STEP * (k + 1);
      to = hi!;
    } else {
      from = lo;
      to = hi ?? lo + POSITION_STEP * (k + 1);
    }
    const gap = (to - from) / (k + 1);
    if (!(gap >= 1)) return null;
    for (let j = 0; j < k; j++) out.push([ids[first + j], from + Math.floor(gap * (j + 1))]);
  }
  return out;
}
