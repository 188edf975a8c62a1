/**
 * `srv snapshot --json`: the tree with named fields, for jq and scripts
 * (`jq '.workspaces[] | select(.name=="main")'`), as `swaymsg -t get_tree`
 * and `niri msg --json` give theirs. The wire's `srv_snapshot` (tuple
 * lists) stays behind `--wire`.
 *
 * @module
 */

import type { Json } from "../core/protocol.ts";
import type { State } from "../core/state.ts";

/** One workspace of {@linkcode snapshotTreeJson}, with its tabs and their blocks in order. */
export interface TreeWorkspace {
  readonly id: string;
  readonly name: string;
  readonly active_tab_id: string | null;
  readonly meta: Json;
  readonly tabs: readonly {
    readonly id: string;
    readonly name: string;
    readonly meta: Json;
    readonly blocks: readonly { readonly id: string; readonly meta: Json }[];
  }[];
}

/** Workspaces in the order the human tree shows them: by name, then id. */
function byName(a: { name: string; id: string }, b: { name: string; id: string }): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/** The workspaces of `state` as named-field objects. */
export function treeWorkspaces(state: State): TreeWorkspace[] {
  return [...state.workspaces.values()].sort(byName).map((ws) => ({
    id: ws.id,
    name: ws.name,
    active_tab_id: ws.activeTabId,
    meta: ws.meta,
    tabs: ws.tabIds.flatMap((tabId) => {
      const tab = state.tabs.get(tabId);
      if (tab === undefined) return [];
      return [{
        id: tab.id,
        name: tab.name,
        meta: tab.meta,
        blocks: tab.blockIds.flatMap((blockId) => {
          const block = state.blocks.get(blockId);
          return block === undefined ? [] : [{ id: block.id, meta: block.meta }];
        }),
      }];
    }),
  }));
}

/**
 * One line of JSON: `{"version":N,"lifecycle":…,"workspaces":[…]}`. The
 * version is a u64 and is written as its digits (JSON.stringify cannot
 * write a bigint).
 */
export function snapshotTreeJson(state: State, version: number | bigint): string {
  return `{"version":${String(version)},"lifecycle":${JSON.stringify(state.lifecycle)},` +
    `"workspaces":${JSON.stringify(treeWorkspaces(state))}}`;
}
