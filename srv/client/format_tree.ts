/**
 * The workspace → tab → block tree as text, for people: `srv snapshot`
 * prints it, and so does the live-tree example.
 *
 * @module
 */

import type { Json } from "../core/protocol.ts";
import type { State } from "../core/state.ts";

function metaText(meta: Json): string {
  if (meta === null) return "";
  if (typeof meta === "object" && !Array.isArray(meta) && Object.keys(meta).length === 0) {
    return "";
  }
  return ` ${JSON.stringify(meta)}`;
}

/**
 * Renders the tree: workspaces by name (then id), their tabs and blocks in
 * order, `*` before each workspace's active tab, non-empty metadata as
 * JSON. An empty tree is `(no workspaces)`. Ends without a newline.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatTree, stateFromSnapshot } from "@srv/srv";
 *
 * const tree = formatTree(stateFromSnapshot({
 *   lifecycle: "running",
 *   workspaces: [["w1", "main"]],
 *   tabs: [["t1", "w1", "shell"]],
 *   active_tabs: [["w1", "t1"]],
 *   blocks: [["b1", "t1"]],
 *   tab_order: { w1: ["t1"] },
 *   block_order: { t1: ["b1"] },
 *   meta: { workspaces: { w1: {} }, tabs: { t1: {} }, blocks: { b1: { kind: "term" } } },
 *   version: 9,
 * }));
 * assert.equal(
 *   tree,
 *   'workspace main (w1)\n  * tab shell (t1)\n      block b1 {"kind":"term"}',
 * );
 * ```
 */
export function formatTree(state: State): string {
  const workspaces = [...state.workspaces.values()].sort((a, b) =>
    a.name < b.name ? -1 : a.name > b.name ? 1 : a.id < b.id ? -1 : a.id > b.id ? 1 : 0
  );
  if (workspaces.length === 0) return "(no workspaces)";
  const lines: string[] = [];
  for (const ws of workspaces) {
    lines.push(`workspace ${ws.name} (${ws.id})${metaText(ws.meta)}`);
    for (const tabId of ws.tabIds) {
      const tab = state.tabs.get(tabId);
      if (tab === undefined) continue;
      const mark = ws.activeTabId === tabId ? "*" : " ";
      lines.push(`  ${mark} tab ${tab.name} (${tab.id})${metaText(tab.meta)}`);
      for (const blockId of tab.blockIds) {
        const block = state.blocks.get(blockId);
        if (block === undefined) continue;
        lines.push(`      block ${block.id}${metaText(block.meta)}`);
      }
    }
  }
  return lines.join("\n");
}
