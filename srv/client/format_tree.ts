/**
 * The workspace → tab → block tree as text, for people: `srv snapshot`
 * prints it, and so does the live-tree example.
 *
 * @module
 */

import type { Json } from "../core/protocol.ts";
import type { State } from "../core/state.ts";

/**
 * What a terminal would act on rather than show: C0 controls (ESC starts
 * title and colour sequences, a newline forges a line), DEL, C1 controls
 * (U+009B is a one-byte CSI), lone surrogates (not text at all) and the
 * bidi overrides and isolates (they reorder what follows on the line).
 */
const UNSAFE =
  // deno-lint-ignore no-control-regex -- matching controls is the point
  /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

const SHORT: Record<string, string> = {
  "\n": "\\n",
  "\r": "\\r",
  "\t": "\\t",
  "\\": "\\\\",
};

/** {@linkcode UNSAFE}, and the backslash that starts every escape. */
const UNSAFE_OR_BACKSLASH = new RegExp(`\\\\|${UNSAFE.source}`, "g");

/** How {@linkcode escapeControls} treats text that has its own escapes. */
export interface EscapeOptions {
  /**
   * Leave backslashes as they are: for text whose backslashes are already
   * escapes (JSON from `JSON.stringify`) or plain path separators. Default
   * false: a backslash becomes `\\`, so `\n` written out cannot be taken
   * for an escaped newline.
   */
  readonly keepBackslashes?: boolean;
}

/**
 * Makes text from the server safe to print for people: every character a
 * terminal would act on becomes visible (`\x1b`, `\n`, `\u202e`), and a
 * backslash becomes `\\` so the escapes are unambiguous (a newline prints
 * `\n`, a backslash and an `n` print `\\n`); the rest is untouched. Names
 * and meta are anyone's to set, so human output passes them through this;
 * `--json` output never does (JSON has its own escapes).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { escapeControls } from "@srv/srv/client";
 *
 * assert.equal(escapeControls("\u001b]0;pwned\u0007a\nb"), "\\x1b]0;pwned\\x07a\\nb");
 * assert.equal(escapeControls("a\\nb"), "a\\\\nb");
 * assert.equal(escapeControls("plain café"), "plain café");
 * assert.equal(escapeControls('"a\\nb"', { keepBackslashes: true }), '"a\\nb"');
 * ```
 */
export function escapeControls(text: string, options: EscapeOptions = {}): string {
  const pattern = options.keepBackslashes === true ? UNSAFE : UNSAFE_OR_BACKSLASH;
  return text.replace(pattern, (c) => {
    const short = SHORT[c];
    if (short !== undefined) return short;
    const code = c.charCodeAt(0);
    return code <= 0xff
      ? `\\x${code.toString(16).padStart(2, "0")}`
      : `\\u${code.toString(16).padStart(4, "0")}`;
  });
}

function metaText(meta: Json): string {
  if (meta === null) return "";
  if (typeof meta === "object" && !Array.isArray(meta) && Object.keys(meta).length === 0) {
    return "";
  }
  // JSON.stringify already escapes C0 and lone surrogates; the rest is ours.
  return ` ${escapeControls(JSON.stringify(meta), { keepBackslashes: true })}`;
}

/**
 * Renders the tree: workspaces by name (then id), their tabs and blocks in
 * order, `*` before each workspace's active tab, non-empty metadata as
 * JSON. An empty tree is `(no workspaces)`. Ends without a newline. Names
 * and meta go through {@linkcode escapeControls}, so each entity stays one
 * line and nothing in them reaches the terminal as a control.
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
    lines.push(
      `workspace ${escapeControls(ws.name)} (${escapeControls(ws.id)})${metaText(ws.meta)}`,
    );
    for (const tabId of ws.tabIds) {
      const tab = state.tabs.get(tabId);
      if (tab === undefined) continue;
      const mark = ws.activeTabId === tabId ? "*" : " ";
      lines.push(
        `  ${mark} tab ${escapeControls(tab.name)} (${escapeControls(tab.id)})${
          metaText(tab.meta)
        }`,
      );
      for (const blockId of tab.blockIds) {
        const block = state.blocks.get(blockId);
        if (block === undefined) continue;
        lines.push(`      block ${escapeControls(block.id)}${metaText(block.meta)}`);
      }
    }
  }
  return lines.join("\n");
}
