/**
 * Layouts: the tree as a file people can read, keep and apply again.
 * {@linkcode layoutOf} turns a snapshot into one (workspaces by id, tabs
 * and blocks in order, the active tab marked, every meta and id);
 * {@linkcode parseLayout} checks a file's value and names the bad path;
 * {@linkcode layoutCommands} turns a layout into the domain commands that
 * build it, ids included, for one `batch` (docs/PROTOCOL.md §11.3). Applying an
 * exported layout to an empty server reproduces the tree exactly.
 *
 * @module
 */

import { ID_PATTERN, isJsonObject } from "../core/command_schema.ts";
import type { DomainCommand, Json, JsonObject, SrvSnapshotEvent } from "../core/protocol.ts";

/** A block of a layout. */
export interface BlockLayout {
  /** Its id; a fresh one is chosen when absent. */
  id?: string;
  /** Its metadata (any JSON; null when absent). */
  meta?: Json;
}
/** A tab of a layout, its blocks in order. */
export interface TabLayout {
  /** Its id; a fresh one is chosen when absent. */
  id?: string;
  /** Its name. */
  name: string;
  /** Whether it is its workspace's active tab (else the first tab is). */
  active?: boolean;
  /** Its metadata (an object). */
  meta?: JsonObject;
  /** Its blocks, in order. */
  blocks?: BlockLayout[];
}
/** A workspace of a layout, its tabs in order. */
export interface WorkspaceLayout {
  /** Its id; a fresh one is chosen when absent. */
  id?: string;
  /** Its name. */
  name: string;
  /** Its metadata (an object). */
  meta?: JsonObject;
  /** Its tabs, in order. */
  tabs?: TabLayout[];
}
/** A layout file: what `srv export` writes and `srv apply` reads. */
export interface Layout {
  /** The workspaces (srv keeps no order among them: by id on export). */
  workspaces: WorkspaceLayout[];
}

/** A layout file that cannot be used; the message names the path in the file. */
export class LayoutError extends Error {
  /** Where in the file, e.g. `workspaces[0].tabs[2].name`. */
  readonly path: string;
  /** Made by {@linkcode parseLayout}. */
  constructor(path: string, problem: string) {
    super(`${path}${problem.startsWith(" ") ? "" : ": "}${problem}`);
    this.name = "LayoutError";
    this.path = path;
  }
}

/**
 * The layout of a snapshot: every workspace (by id), its tabs and their
 * blocks in order, the active tab marked, metas and ids kept. Empty metas
 * and lists are left out, so a small tree reads small.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { layoutOf } from "@srv/srv/client";
 * import { initialState, snapshotOf } from "@srv/srv";
 *
 * assert.deepEqual(layoutOf({ ...snapshotOf(initialState()), version: 0 }), { workspaces: [] });
 * ```
 */
export function layoutOf(snapshot: Omit<SrvSnapshotEvent, "event">): Layout {
  const names = new Map(snapshot.tabs.map(([id, , name]) => [id, name]));
  const tabsOf = new Map<string, string[]>();
  for (const [tab, ws] of snapshot.tabs) tabsOf.set(ws, [...(tabsOf.get(ws) ?? []), tab]);
  const active = new Map(snapshot.active_tabs);
  const meta = snapshot.meta ?? { workspaces: {}, tabs: {}, blocks: {} };
  return {
    workspaces: snapshot.workspaces.map(([id, name]) => {
      const ws: WorkspaceLayout = { id, name };
      if (Object.keys(meta.workspaces[id] ?? {}).length > 0) ws.meta = meta.workspaces[id];
      const tabIds = snapshot.tab_order?.[id] ?? tabsOf.get(id) ?? [];
      if (tabIds.length > 0) {
        ws.tabs = tabIds.map((tabId) => {
          const tab: TabLayout = { id: tabId, name: names.get(tabId) ?? "" };
          if (active.get(id) === tabId) tab.active = true;
          if (Object.keys(meta.tabs[tabId] ?? {}).length > 0) tab.meta = meta.tabs[tabId];
          const blockIds = snapshot.block_order?.[tabId] ??
            snapshot.blocks.filter(([, t]) => t === tabId).map(([b]) => b);
          if (blockIds.length > 0) {
            tab.blocks = blockIds.map((blockId) => {
              const block: BlockLayout = { id: blockId };
              const m = meta.blocks[blockId] ?? null;
              if (m !== null) block.meta = m;
              return block;
            });
          }
          return tab;
        });
      }
      return ws;
    }),
  };
}

function list(value: unknown, path: string): unknown[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw new LayoutError(path, "not a list");
  return value;
}
function entity(value: unknown, path: string, named: boolean): JsonObject {
  if (!isJsonObject(value)) throw new LayoutError(path, "not an object");
  if (named && typeof value.name !== "string") throw new LayoutError(path, " needs a name");
  if (value.id !== undefined && (typeof value.id !== "string" || !ID_PATTERN.test(value.id))) {
    throw new LayoutError(`${path}.id`, "not a lowercase UUID");
  }
  if (named && value.meta !== undefined && !isJsonObject(value.meta)) {
    throw new LayoutError(`${path}.meta`, "not an object");
  }
  return value;
}

/**
 * Checks that a value (a parsed file) is a {@linkcode Layout}; throws
 * {@linkcode LayoutError} naming the first bad path. Ids must be lowercase
 * UUIDs and used once; at most one tab per workspace is active.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { LayoutError, parseLayout } from "@srv/srv/client";
 *
 * assert.throws(
 *   () => parseLayout({ workspaces: [{ name: "a", tabs: [{ name: 1 }] }] }),
 *   (e) => e instanceof LayoutError && e.message === "workspaces[0].tabs[0] needs a name",
 * );
 * ```
 */
export function parseLayout(value: unknown): Layout {
  if (!isJsonObject(value) || !Array.isArray(value.workspaces)) {
    throw new LayoutError("(top)", "expected { workspaces: [...] }");
  }
  const seen = new Set<string>();
  const once = (id: unknown, path: string) => {
    if (typeof id !== "string") return;
    if (seen.has(id)) throw new LayoutError(`${path}.id`, `${id} is used twice`);
    seen.add(id);
  };
  value.workspaces.forEach((ws, i) => {
    const at = `workspaces[${i}]`;
    once(entity(ws, at, true).id, at);
    let actives = 0;
    list((ws as JsonObject).tabs, `${at}.tabs`).forEach((tab, j) => {
      const tabAt = `${at}.tabs[${j}]`;
      const t = entity(tab, tabAt, true);
      once(t.id, tabAt);
      if (t.active !== undefined && typeof t.active !== "boolean") {
        throw new LayoutError(`${tabAt}.active`, "not true or false");
      }
      if (t.active === true && ++actives > 1) {
        throw new LayoutError(`${tabAt}.active`, "a second active tab in one workspace");
      }
      list(t.blocks, `${tabAt}.blocks`).forEach((block, k) => {
        const blockAt = `${tabAt}.blocks[${k}]`;
        once(entity(block, blockAt, false).id, blockAt);
      });
    });
  });
  return value as unknown as Layout;
}

/**
 * The domain commands that build `layout`, in an order one `batch` can run
 * (each workspace, its meta, its tabs with their metas and blocks, then its
 * active tab). Every entity gets its layout id, or one from `newId`, so
 * later commands can name it. Commands that would change nothing (an
 * empty meta) are left out.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { layoutCommands } from "@srv/srv/client";
 *
 * const ids = ["6f1c0000-0000-4000-8000-000000000001", "9a2e0000-0000-4000-8000-000000000002"];
 * const commands = layoutCommands(
 *   { workspaces: [{ name: "dev", tabs: [{ name: "shell" }] }] },
 *   () => ids.shift()!,
 * );
 * assert.deepEqual(commands.map((c) => c.cmd), ["create_workspace", "create_tab"]);
 * ```
 */
export function layoutCommands(
  layout: Layout,
  newId: () => string = () => crypto.randomUUID(),
): DomainCommand[] {
  const commands: DomainCommand[] = [];
  for (const ws of layout.workspaces) {
    const wsId = ws.id ?? newId();
    commands.push({ cmd: "create_workspace", name: ws.name, workspace_id: wsId });
    if (ws.meta !== undefined && Object.keys(ws.meta).length > 0) {
      commands.push({ cmd: "update_workspace_meta", workspace_id: wsId, meta_patch: ws.meta });
    }
    let active: string | null = null;
    let first: string | null = null;
    for (const tab of ws.tabs ?? []) {
      const tabId = tab.id ?? newId();
      first ??= tabId;
      commands.push({ cmd: "create_tab", workspace_id: wsId, name: tab.name, tab_id: tabId });
      if (tab.meta !== undefined && Object.keys(tab.meta).length > 0) {
        commands.push({ cmd: "update_tab_meta", tab_id: tabId, meta_patch: tab.meta });
      }
      if (tab.active === true) active = tabId;
      for (const block of tab.blocks ?? []) {
        commands.push({
          cmd: "create_block",
          tab_id: tabId,
          meta: block.meta ?? null,
          block_id: block.id ?? newId(),
        });
      }
    }
    // The first tab became active by itself; another needs saying so.
    if (active !== null && active !== first) {
      commands.push({ cmd: "set_active_tab", workspace_id: wsId, tab_id: active });
    }
  }
  return commands;
}
