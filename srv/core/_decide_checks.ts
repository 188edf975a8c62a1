/**
 * The checks `decide` runs before it emits: the size caps' refusal
 * messages (names, counts, metas, `--max-state-bytes`) and the tab lookups
 * and permutation check the tab commands share.
 *
 * @module
 */

import { isJsonObject } from "./command_schema.ts";
import type { JsonObject } from "./protocol.ts";
import { LIMIT_FLAGS, type Limits, nameBytes, utf8Bytes } from "./limits.ts";
import type { State, Workspace } from "./state.ts";

/** Bytes of the meta every new workspace and tab starts with: `{}`. */
export const EMPTY_META = 2;

export function over(limits: Limits, limit: keyof Limits): string {
  return `over the limit of ${limits[limit]} (${LIMIT_FLAGS[limit]})`;
}

export function nameRefusal(verb: string, name: string, limits: Limits): string | null {
  // A UTF-16 unit is at most 3 UTF-8 bytes: most names need no count.
  if (name.length * 3 <= limits.maxNameBytes) return null;
  const bytes = utf8Bytes(name);
  return bytes > limits.maxNameBytes
    ? `${verb}: name is ${bytes} bytes, ${over(limits, "maxNameBytes")}`
    : null;
}

/**
 * A client-chosen id (docs/PROTOCOL.md §11.2) a live entity already has. Ids
 * are refused across all three kinds, not only the created one's: the
 * store files tabs and blocks by id in one namespace, and a condition
 * (§11.3) looks an id up without its kind.
 */
export function takenRefusal(
  verb: string,
  state: State,
  id: string | null | undefined,
): string | null {
  if (id === undefined || id === null) return null;
  const kind = state.workspaces.has(id)
    ? "workspace"
    : state.tabs.has(id)
    ? "tab"
    : state.blocks.has(id)
    ? "block"
    : null;
  return kind === null ? null : `${verb}: ${kind} already exists: ${id}`;
}

export const COUNT_LIMITS = {
  workspaces: "maxWorkspaces",
  tabs: "maxTabs",
  blocks: "maxBlocks",
} as const satisfies Record<string, keyof Limits>;

export function countRefusal(
  verb: string,
  count: number,
  what: keyof typeof COUNT_LIMITS,
  limits: Limits,
): string | null {
  const limit = COUNT_LIMITS[what];
  return count >= limits[limit]
    ? `${verb}: srv holds ${count} ${what}, the limit (${LIMIT_FLAGS[limit]})`
    : null;
}

/** {@linkcode growthRefusal} of a rename, counting bytes only when it could matter. */
export function renameRefusal(
  verb: string,
  state: State,
  before: string,
  after: string,
  limits: Limits,
): string | null {
  // A UTF-16 unit is at most 6 bytes in JSON (`\u0001`).
  if (state.contentBytes + after.length * 6 <= limits.maxStateBytes) return null;
  return growthRefusal(verb, state, nameBytes(after) - nameBytes(before), limits);
}

/** Refuses growing the names and metas past `--max-state-bytes`; shrinking always passes. */
export function growthRefusal(
  verb: string,
  state: State,
  growth: number,
  limits: Limits,
): string | null {
  if (growth <= 0) return null;
  const total = state.contentBytes + growth;
  return total > limits.maxStateBytes
    ? `${verb}: names and metas would total ${total} bytes, ${over(limits, "maxStateBytes")}`
    : null;
}

/** The tab that becomes active when the one at `index` leaves `tabIds`. */
export function successorOf(tabIds: readonly string[], index: number): string | null {
  return tabIds[index + 1] ?? tabIds[index - 1] ?? null;
}

/**
 * The string `id` is stored as in `entities` (the entity's own `id`, the
 * one its parent's child list holds), or `id` itself when absent: to search
 * a child list with. A command's or event's id is another string with the
 * same text, and V8's `indexOf` compares such pairs several times slower
 * than a string with itself (moving a block within a 50k-block tab: 386 µs
 * against 104 µs). Same text, so every answer is the same.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { storedId } from "./_decide_checks.ts";
 * const stored = "b-1";
 * assert.equal(storedId(new Map([[stored, { id: stored }]]), "b-1"), stored);
 * assert.equal(storedId(new Map(), "b-2"), "b-2");
 * ```
 */
export function storedId(
  entities: ReadonlyMap<string, { readonly id: string }>,
  id: string,
): string {
  return entities.get(id)?.id ?? id;
}

/** The string a tab's id is stored as, to search a workspace's `tabIds` with (see {@linkcode storedId}). */
export function storedTabId(state: State, tabId: string): string {
  return storedId(state.tabs, tabId);
}

export function findTabIn(
  state: State,
  verb: string,
  workspaceId: string,
  tabId: string,
): { ws: Workspace; index: number } | string {
  const ws = state.workspaces.get(workspaceId);
  if (ws === undefined) return `${verb}: workspace not found: ${workspaceId}`;
  const index = ws.tabIds.indexOf(storedTabId(state, tabId));
  if (index < 0) return `${verb}: tab ${tabId} not in workspace ${workspaceId}`;
  return { ws, index };
}

export function permutationProblem(
  current: readonly string[],
  proposed: readonly string[],
): string | null {
  const seen = new Set<string>();
  for (const id of proposed) {
    if (seen.has(id)) return `tab_ids lists ${id} twice`;
    seen.add(id);
  }
  const missing = current.find((id) => !seen.has(id));
  if (missing !== undefined) return `tab_ids leaves out tab ${missing}`;
  if (proposed.length !== current.length) {
    // A set, not current.includes per id: 10,000 tabs and a list naming
    // 16,000 more took 0.6 s of the only thread per command, O(n × m).
    const known = new Set(current);
    const stranger = proposed.find((id) => !known.has(id));
    return `tab_ids names tab ${stranger}, which is not in the workspace`;
  }
  return null;
}

/**
 * Whether every value of `patch` replaces its key as it is (no `null`,
 * which deletes, and no object, which merges): then the patched meta holds
 * each of the patch's entries byte for byte, so its JSON is at least as
 * long as the patch's.
 */
export function isFlatWithoutNulls(patch: JsonObject): boolean {
  for (const key in patch) {
    const value = patch[key];
    if (value === null || isJsonObject(value)) return false;
  }
  return true;
}
