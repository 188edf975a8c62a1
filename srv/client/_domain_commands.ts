/**
 * The typed helpers of {@linkcode SrvClient}, one per domain command, and
 * the map of the events each command can cause. Each helper is one call to
 * `command()`, which {@linkcode SrvClient} implements.
 *
 * @module
 */

import type {
  ActiveTabChangedEvent,
  BlockCreatedEvent,
  BlockDeletedEvent,
  BlockMetaUpdatedEvent,
  BlockMovedEvent,
  DomainCommand,
  Json,
  JsonObject,
  TabCreatedEvent,
  TabDeletedEvent,
  TabMetaUpdatedEvent,
  TabMovedEvent,
  TabRenamedEvent,
  TabReorderedEvent,
  TabsReorderedBulkEvent,
  WorkspaceCreatedEvent,
  WorkspaceDeletedEvent,
  WorkspaceMetaUpdatedEvent,
  WorkspaceRenamedEvent,
} from "../core/protocol.ts";

/** The events each domain command can cause (an `error` rejects instead). */
export interface CommandEventMap {
  /** `create_workspace` causes `workspace_created`. */
  create_workspace: WorkspaceCreatedEvent;
  /** `delete_workspace` causes `workspace_deleted`. */
  delete_workspace: WorkspaceDeletedEvent;
  /** `rename_workspace` causes `workspace_renamed`. */
  rename_workspace: WorkspaceRenamedEvent;
  /** `create_tab` causes `tab_created`, and `active_tab_changed` for a workspace's first tab. */
  create_tab: TabCreatedEvent | ActiveTabChangedEvent;
  /** `delete_tab` causes `tab_deleted`, and `active_tab_changed` when it was the active one. */
  delete_tab: TabDeletedEvent | ActiveTabChangedEvent;
  /** `rename_tab` causes `tab_renamed`. */
  rename_tab: TabRenamedEvent;
  /** `set_active_tab` causes `active_tab_changed`. */
  set_active_tab: ActiveTabChangedEvent;
  /** `reorder_tab` causes `tab_reordered` (none when the tab is already there). */
  reorder_tab: TabReorderedEvent;
  /** `reorder_tabs_bulk` causes `tabs_reordered_bulk`. */
  reorder_tabs_bulk: TabsReorderedBulkEvent;
  /** `move_tab` causes `tab_moved`. */
  move_tab: TabMovedEvent;
  /** `create_block` causes `block_created`. */
  create_block: BlockCreatedEvent;
  /** `delete_block` causes `block_deleted`. */
  delete_block: BlockDeletedEvent;
  /** `move_block` causes `block_moved`. */
  move_block: BlockMovedEvent;
  /** `update_workspace_meta` causes `workspace_meta_updated`. */
  update_workspace_meta: WorkspaceMetaUpdatedEvent;
  /** `update_tab_meta` causes `tab_meta_updated`. */
  update_tab_meta: TabMetaUpdatedEvent;
  /** `update_block_meta` causes `block_meta_updated`. */
  update_block_meta: BlockMetaUpdatedEvent;
}

/**
 * The typed domain-command helpers {@linkcode SrvClient} inherits: each one
 * is a call to {@linkcode DomainCommands.command}, which `SrvClient`
 * implements.
 */
export abstract class DomainCommands {
  /**
   * Sends a domain command and resolves with the events it caused; an
   * `error` rejects with {@linkcode SrvError}. See `SrvClient.command`.
   */
  abstract command<C extends DomainCommand>(command: C): Promise<CommandEventMap[C["cmd"]][]>;
  /**
   * `create_workspace`.
   *
   * @example
   * ```ts ignore
   * const [ws] = await client.createWorkspace("main");
   * console.log(ws.workspace_id);
   * ```
   */
  createWorkspace(name: string): Promise<WorkspaceCreatedEvent[]> {
    return this.command({ cmd: "create_workspace", name });
  }

  /**
   * `delete_workspace`: cascades to its tabs and blocks (`block_ids`).
   *
   * @example
   * ```ts ignore
   * await client.deleteWorkspace(workspaceId);
   * ```
   */
  deleteWorkspace(
    workspaceId: string,
    options: { force?: boolean } = {},
  ): Promise<WorkspaceDeletedEvent[]> {
    return this.command({
      cmd: "delete_workspace",
      workspace_id: workspaceId,
      ...(options.force === undefined ? {} : { force: options.force }),
    });
  }

  /**
   * `rename_workspace`.
   *
   * @example
   * ```ts ignore
   * await client.renameWorkspace(workspaceId, "work");
   * ```
   */
  renameWorkspace(workspaceId: string, name: string): Promise<WorkspaceRenamedEvent[]> {
    return this.command({ cmd: "rename_workspace", workspace_id: workspaceId, name });
  }

  /**
   * `create_tab`: the first tab of a workspace also becomes active.
   *
   * @example
   * ```ts ignore
   * const [tab] = await client.createTab(workspaceId, "shell");
   * if (tab.event === "tab_created") console.log(tab.tab_id);
   * ```
   */
  createTab(
    workspaceId: string,
    name: string,
  ): Promise<(TabCreatedEvent | ActiveTabChangedEvent)[]> {
    return this.command({ cmd: "create_tab", workspace_id: workspaceId, name });
  }

  /**
   * `delete_tab`: the last tab of a workspace needs `force`.
   *
   * @example
   * ```ts ignore
   * await client.deleteTab(workspaceId, tabId, { force: true });
   * ```
   */
  deleteTab(
    workspaceId: string,
    tabId: string,
    options: { force?: boolean } = {},
  ): Promise<(TabDeletedEvent | ActiveTabChangedEvent)[]> {
    return this.command({
      cmd: "delete_tab",
      workspace_id: workspaceId,
      tab_id: tabId,
      ...(options.force === undefined ? {} : { force: options.force }),
    });
  }

  /**
   * `rename_tab`.
   *
   * @example
   * ```ts ignore
   * await client.renameTab(tabId, "logs");
   * ```
   */
  renameTab(tabId: string, name: string): Promise<TabRenamedEvent[]> {
    return this.command({ cmd: "rename_tab", tab_id: tabId, name });
  }

  /**
   * `set_active_tab`.
   *
   * @example
   * ```ts ignore
   * await client.setActiveTab(workspaceId, tabId);
   * ```
   */
  setActiveTab(workspaceId: string, tabId: string): Promise<ActiveTabChangedEvent[]> {
    return this.command({ cmd: "set_active_tab", workspace_id: workspaceId, tab_id: tabId });
  }

  /**
   * `reorder_tab`: `newIndex` is clamped to the last index.
   *
   * @example
   * ```ts ignore
   * await client.reorderTab(workspaceId, tabId, 0);
   * ```
   */
  reorderTab(workspaceId: string, tabId: string, newIndex: number): Promise<TabReorderedEvent[]> {
    return this.command({
      cmd: "reorder_tab",
      workspace_id: workspaceId,
      tab_id: tabId,
      new_index: newIndex,
    });
  }

  /**
   * `reorder_tabs_bulk`: `tabIds` must be a permutation of the workspace's tabs.
   *
   * @example
   * ```ts ignore
   * await client.reorderTabsBulk(workspaceId, [tabB, tabA]);
   * ```
   */
  reorderTabsBulk(workspaceId: string, tabIds: string[]): Promise<TabsReorderedBulkEvent[]> {
    return this.command({ cmd: "reorder_tabs_bulk", workspace_id: workspaceId, tab_ids: tabIds });
  }

  /**
   * `move_tab` to another workspace.
   *
   * @example
   * ```ts ignore
   * await client.moveTab(tabId, fromWorkspace, toWorkspace, 0);
   * ```
   */
  moveTab(
    tabId: string,
    srcWorkspaceId: string,
    dstWorkspaceId: string,
    dstIndex: number,
  ): Promise<TabMovedEvent[]> {
    return this.command({
      cmd: "move_tab",
      tab_id: tabId,
      src_workspace_id: srcWorkspaceId,
      dst_workspace_id: dstWorkspaceId,
      dst_index: dstIndex,
    });
  }

  /**
   * `create_block` with any JSON as its metadata (null by default).
   *
   * @example
   * ```ts ignore
   * const [block] = await client.createBlock(tabId, { kind: "term" });
   * console.log(block.block_id);
   * ```
   */
  createBlock(tabId: string, meta: Json = null): Promise<BlockCreatedEvent[]> {
    return this.command({ cmd: "create_block", tab_id: tabId, meta });
  }

  /**
   * `delete_block`.
   *
   * @example
   * ```ts ignore
   * await client.deleteBlock(tabId, blockId);
   * ```
   */
  deleteBlock(tabId: string, blockId: string): Promise<BlockDeletedEvent[]> {
    return this.command({ cmd: "delete_block", tab_id: tabId, block_id: blockId });
  }

  /**
   * `move_block` within a tab or to another one.
   *
   * @example
   * ```ts ignore
   * await client.moveBlock(blockId, fromTab, toTab, 0);
   * ```
   */
  moveBlock(
    blockId: string,
    srcTabId: string,
    dstTabId: string,
    dstIndex: number,
  ): Promise<BlockMovedEvent[]> {
    return this.command({
      cmd: "move_block",
      block_id: blockId,
      src_tab_id: srcTabId,
      dst_tab_id: dstTabId,
      dst_index: dstIndex,
    });
  }

  /**
   * `update_workspace_meta`: an RFC 7386 merge patch (null deletes a key).
   *
   * @example
   * ```ts ignore
   * await client.updateWorkspaceMeta(workspaceId, { color: "red" });
   * ```
   */
  updateWorkspaceMeta(
    workspaceId: string,
    metaPatch: JsonObject,
  ): Promise<WorkspaceMetaUpdatedEvent[]> {
    return this.command({
      cmd: "update_workspace_meta",
      workspace_id: workspaceId,
      meta_patch: metaPatch,
    });
  }

  /**
   * `update_tab_meta`: an RFC 7386 merge patch.
   *
   * @example
   * ```ts ignore
   * await client.updateTabMeta(tabId, { pinned: true });
   * ```
   */
  updateTabMeta(tabId: string, metaPatch: JsonObject): Promise<TabMetaUpdatedEvent[]> {
    return this.command({ cmd: "update_tab_meta", tab_id: tabId, meta_patch: metaPatch });
  }

  /**
   * `update_block_meta`: an RFC 7386 merge patch.
   *
   * @example
   * ```ts ignore
   * await client.updateBlockMeta(blockId, { title: "build" });
   * ```
   */
  updateBlockMeta(blockId: string, metaPatch: JsonObject): Promise<BlockMetaUpdatedEvent[]> {
    return this.command({ cmd: "update_block_meta", block_id: blockId, meta_patch: metaPatch });
  }
}
