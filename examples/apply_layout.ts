#!/usr/bin/env -S deno run --allow-net --allow-read --allow-write --allow-env --allow-sys
/**
 * Creates workspaces, tabs and blocks in srv from a JSON layout file, then
 * prints what it created (one JSON object per line with `--json`).
 *
 * ```sh
 * deno run --allow-net --allow-read --allow-write --allow-env --allow-sys \
 *   examples/apply_layout.ts layout.json [--socket PATH] [--json]
 * ```
 *
 * The layout:
 *
 * ```json
 * { "workspaces": [
 *   { "name": "dev", "meta": { "color": "blue" },
 *     "tabs": [
 *       { "name": "editor", "blocks": [{ "meta": { "kind": "editor" } }] },
 *       { "name": "shell", "active": true, "blocks": [{ "meta": { "kind": "term" } }, {}] }
 *     ] }
 * ] }
 * ```
 *
 * Exit codes: 0 done, 2 unusable layout, 6 no srv, 7 srv refused a command.
 *
 * @module
 */

// An example script's job is to print; console is its output.
// deno-lint-ignore-file no-console

import { parseArgs } from "node:util";
import { connect, SrvError, UnreachableError } from "@srv/srv/client";
import type { Json, JsonObject, TabCreatedEvent } from "@srv/srv/core";

interface BlockLayout {
  meta?: Json;
}
interface TabLayout {
  name: string;
  active?: boolean;
  meta?: JsonObject;
  blocks?: BlockLayout[];
}
interface WorkspaceLayout {
  name: string;
  meta?: JsonObject;
  tabs?: TabLayout[];
}
interface Layout {
  workspaces: WorkspaceLayout[];
}

function isObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Checks the layout's shape; returns the first problem, or null. */
function problemOf(layout: unknown): string | null {
  if (!isObject(layout) || !Array.isArray(layout.workspaces)) {
    return "expected { workspaces: [...] }";
  }
  for (const [i, ws] of layout.workspaces.entries()) {
    if (!isObject(ws) || typeof ws.name !== "string") return `workspaces[${i}] needs a name`;
    if (ws.meta !== undefined && !isObject(ws.meta)) return `workspaces[${i}].meta: not an object`;
    if (ws.tabs !== undefined && !Array.isArray(ws.tabs)) {
      return `workspaces[${i}].tabs: not a list`;
    }
    for (const [j, tab] of (ws.tabs ?? []).entries()) {
      const at = `workspaces[${i}].tabs[${j}]`;
      if (!isObject(tab) || typeof tab.name !== "string") return `${at} needs a name`;
      if (tab.meta !== undefined && !isObject(tab.meta)) return `${at}.meta: not an object`;
      if (tab.blocks !== undefined && !Array.isArray(tab.blocks)) return `${at}.blocks: not a list`;
      for (const [k, block] of (tab.blocks ?? []).entries()) {
        if (!isObject(block)) return `${at}.blocks[${k}]: not an object`;
      }
    }
  }
  return null;
}

const { values, positionals } = parseArgs({
  options: { socket: { type: "string" }, json: { type: "boolean" } },
  allowPositionals: true,
});
if (positionals.length !== 1) {
  console.error("usage: apply_layout.ts LAYOUT.json [--socket PATH] [--json]");
  Deno.exit(2);
}
let layout: Layout;
try {
  const parsed: unknown = JSON.parse(await Deno.readTextFile(positionals[0]));
  const problem = problemOf(parsed);
  if (problem !== null) throw new Error(problem);
  layout = parsed as unknown as Layout;
} catch (e) {
  console.error(`apply_layout: ${positionals[0]}: ${(e as Error).message}`);
  Deno.exit(2);
}

function report(kind: string, name: string, id: string, parent: string | null): void {
  if (values.json) console.log(JSON.stringify({ kind, name, id, parent }));
  else console.log(`${kind.padEnd(9)} ${id} ${name}`.trimEnd());
}

try {
  await using client = await connect({ socket: values.socket, reconnect: false });
  await client.register({ kind: "tool", version: "apply_layout example" });
  for (const ws of layout.workspaces) {
    const [created] = await client.command({ cmd: "create_workspace", name: ws.name });
    const wsId = created.workspace_id;
    report("workspace", ws.name, wsId, null);
    if (ws.meta) {
      await client.command({
        cmd: "update_workspace_meta",
        workspace_id: wsId,
        meta_patch: ws.meta,
      });
    }
    for (const tab of ws.tabs ?? []) {
      const events = await client.command({
        cmd: "create_tab",
        workspace_id: wsId,
        name: tab.name,
      });
      const tabId = events.find((e): e is TabCreatedEvent => e.event === "tab_created")!.tab_id;
      report("tab", tab.name, tabId, wsId);
      if (tab.meta) {
        await client.command({ cmd: "update_tab_meta", tab_id: tabId, meta_patch: tab.meta });
      }
      if (tab.active) {
        await client.command({ cmd: "set_active_tab", workspace_id: wsId, tab_id: tabId });
      }
      for (const block of tab.blocks ?? []) {
        const [made] = await client.command({
          cmd: "create_block",
          tab_id: tabId,
          meta: block.meta ?? null,
        });
        report("block", "", made.block_id, tabId);
      }
    }
  }
} catch (e) {
  if (e instanceof UnreachableError) {
    console.error(`apply_layout: ${e.message}`);
    Deno.exit(6);
  }
  if (e instanceof SrvError) {
    console.error(`apply_layout: srv refused: ${e.message}`);
    Deno.exit(7);
  }
  throw e;
}
