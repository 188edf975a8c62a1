/**
 * The command types of the wire contract (docs/PROTOCOL.md §2–§3): one interface
 * per command and the unions over them. Re-exported by `protocol.ts`; the
 * schemas that validate them are in `command_schema.ts`.
 *
 * @module
 */

import type { ClientKind, Json, JsonObject, U64 } from "./protocol.ts";

/** `register`: binds the connection to a kind and pid (docs/PROTOCOL.md §5). */
export interface RegisterCommand {
  /** The command tag. */
  cmd: "register";
  /** What kind of client this is. */
  kind: ClientKind;
  /** The client's process id (u32); one Running registration per pid. */
  pid: number;
  /** The client's own version string. */
  version: string;
  /**
   * Protocol 2 (§11.1): register as a read-only observer that leaves no
   * trace (no process record, no event, no version); absent or false: a
   * normal registration.
   */
  observe?: boolean | null;
}
/** `ping`: answered by a broadcast `pong` carrying the same nonce. */
export interface PingCommand {
  /** The command tag. */
  cmd: "ping";
  /** Chosen by the client; `pong` echoes it digit for digit. */
  nonce: U64;
}
/** `goodbye`: marks the pid exited; the server then closes the connection. */
export interface GoodbyeCommand {
  /** The command tag. */
  cmd: "goodbye";
}
/** `get_srv_snapshot`: answered by a broadcast `srv_snapshot`. */
export interface GetSrvSnapshotCommand {
  /** The command tag. */
  cmd: "get_srv_snapshot";
}
/** `get_events`: answered privately by the server with `event_list`. */
export interface GetEventsCommand {
  /** The command tag. */
  cmd: "get_events";
  /** Return the logged events with a version strictly greater than this. */
  since: U64;
}
/** `get_server_info` (extension): answered privately with `server_info`. */
export interface GetServerInfoCommand {
  /** The command tag. */
  cmd: "get_server_info";
}
/** `create_workspace`. */
export interface CreateWorkspaceCommand {
  /** The command tag. */
  cmd: "create_workspace";
  /** The new workspace's name. */
  name: string;
  /** Protocol 2 (§11.2): the id to give it (a lowercase UUID); srv mints one when absent. */
  workspace_id?: string | null;
}
/** `delete_workspace`; always cascades to its tabs and blocks (`force` is accepted, not needed). */
export interface DeleteWorkspaceCommand {
  /** The command tag. */
  cmd: "delete_workspace";
  /** The workspace. */
  workspace_id: string;
  /** Accepted and not needed: deleting a workspace always cascades. */
  force?: boolean | null;
}
/** `rename_workspace`. */
export interface RenameWorkspaceCommand {
  /** The command tag. */
  cmd: "rename_workspace";
  /** The workspace. */
  workspace_id: string;
  /** The new name. */
  name: string;
}
/** `create_tab`. */
export interface CreateTabCommand {
  /** The command tag. */
  cmd: "create_tab";
  /** The workspace the tab goes into. */
  workspace_id: string;
  /** The new tab's name. */
  name: string;
  /** Protocol 2 (§11.2): the id to give it (a lowercase UUID); srv mints one when absent. */
  tab_id?: string | null;
}
/** `delete_tab`; deleting a workspace's last tab needs `force`. */
export interface DeleteTabCommand {
  /** The command tag. */
  cmd: "delete_tab";
  /** The workspace that holds the tab. */
  workspace_id: string;
  /** The tab. */
  tab_id: string;
  /** Deleting a workspace's last tab needs `true`; absent or null means false. */
  force?: boolean | null;
}
/** `rename_tab`. */
export interface RenameTabCommand {
  /** The command tag. */
  cmd: "rename_tab";
  /** The tab. */
  tab_id: string;
  /** The new name. */
  name: string;
}
/** `set_active_tab`. */
export interface SetActiveTabCommand {
  /** The command tag. */
  cmd: "set_active_tab";
  /** The workspace. */
  workspace_id: string;
  /** The tab. */
  tab_id: string;
}
/** `reorder_tab`: `new_index` is clamped to the last index. */
export interface ReorderTabCommand {
  /** The command tag. */
  cmd: "reorder_tab";
  /** The workspace. */
  workspace_id: string;
  /** The tab. */
  tab_id: string;
  /** Where the tab goes; past the end means last. */
  new_index: number;
}
/** `reorder_tabs_bulk`: `tab_ids` must be a permutation of the workspace's tabs. */
export interface ReorderTabsBulkCommand {
  /** The command tag. */
  cmd: "reorder_tabs_bulk";
  /** The workspace. */
  workspace_id: string;
  /** Every tab of the workspace, in the new order. */
  tab_ids: string[];
}
/** `move_tab` between (or within) workspaces. */
export interface MoveTabCommand {
  /** The command tag. */
  cmd: "move_tab";
  /** The tab. */
  tab_id: string;
  /** The workspace the tab leaves. */
  src_workspace_id: string;
  /** The workspace the tab joins (may be the same one). */
  dst_workspace_id: string;
  /** Its index in the destination workspace; past the end means last. */
  dst_index: number;
}
/** `create_block`; `meta` is any JSON, `null` when absent. */
export interface CreateBlockCommand {
  /** The command tag. */
  cmd: "create_block";
  /** The tab the block goes into. */
  tab_id: string;
  /** The block's metadata: any JSON, null when absent. */
  meta?: Json;
  /** Protocol 2 (§11.2): the id to give it (a lowercase UUID); srv mints one when absent. */
  block_id?: string | null;
}
/** `delete_block`. */
export interface DeleteBlockCommand {
  /** The command tag. */
  cmd: "delete_block";
  /** The tab that holds the block. */
  tab_id: string;
  /** The block. */
  block_id: string;
}
/** `move_block` between (or within) tabs. */
export interface MoveBlockCommand {
  /** The command tag. */
  cmd: "move_block";
  /** The block. */
  block_id: string;
  /** The tab the block leaves. */
  src_tab_id: string;
  /** The tab the block joins (may be the same one). */
  dst_tab_id: string;
  /** Its index in the destination tab; past the end means last. */
  dst_index: number;
}
/** `update_workspace_meta`: an RFC 7386 merge patch. */
export interface UpdateWorkspaceMetaCommand {
  /** The command tag. */
  cmd: "update_workspace_meta";
  /** The workspace. */
  workspace_id: string;
  /** Merged into the workspace's metadata (RFC 7386). */
  meta_patch: JsonObject;
}
/** `update_tab_meta`: an RFC 7386 merge patch. */
export interface UpdateTabMetaCommand {
  /** The command tag. */
  cmd: "update_tab_meta";
  /** The tab. */
  tab_id: string;
  /** Merged into the tab's metadata (RFC 7386). */
  meta_patch: JsonObject;
}
/** `update_block_meta`: an RFC 7386 merge patch. */
export interface UpdateBlockMetaCommand {
  /** The command tag. */
  cmd: "update_block_meta";
  /** The block. */
  block_id: string;
  /** Merged into the block's metadata (RFC 7386). */
  meta_patch: JsonObject;
}

/**
 * A command of the reference's launcher pipe (`get_snapshot`, `report_*`).
 * It parses, so the client learns it is "not accepted here" rather than
 * "unknown".
 */
export interface LauncherCommand {
  /** A launcher-pipe command name. */
  cmd: "get_snapshot" | `report_${string}`;
}

/** Every command that changes the workspace → tab → block tree. */
export type DomainCommand =
  | CreateWorkspaceCommand
  | DeleteWorkspaceCommand
  | RenameWorkspaceCommand
  | CreateTabCommand
  | DeleteTabCommand
  | RenameTabCommand
  | SetActiveTabCommand
  | ReorderTabCommand
  | ReorderTabsBulkCommand
  | MoveTabCommand
  | CreateBlockCommand
  | DeleteBlockCommand
  | MoveBlockCommand
  | UpdateWorkspaceMetaCommand
  | UpdateTabMetaCommand
  | UpdateBlockMetaCommand;

/**
 * `batch` (protocol 2, §11.3): domain commands applied all or nothing, as
 * one turn, optionally only if nothing they name changed after a version.
 */
export interface BatchCommand {
  /** The command tag. */
  cmd: "batch";
  /** 1 to {@linkcode MAX_BATCH_COMMANDS} domain commands, applied in order. */
  commands: DomainCommand[];
  /** Apply only if no entity the commands name changed after this version. */
  if_unchanged_since?: U64 | null;
}

/** Most commands one `batch` may hold (§11.3). */
export const MAX_BATCH_COMMANDS = 1000;

/** Commands the server answers itself, never through the reducer (§5 step 4). */
export type QueryCommand = GetEventsCommand | GetServerInfoCommand;

/** Commands the reducer decides. */
export type ReducerCommand =
  | RegisterCommand
  | PingCommand
  | GoodbyeCommand
  | GetSrvSnapshotCommand
  | DomainCommand
  | BatchCommand
  | LauncherCommand;

/** Every reducer command but `batch`: what {@linkcode decide} takes (a batch is `batch.ts`'s). */
export type SingleCommand = Exclude<ReducerCommand, BatchCommand>;

/** Every command a client may send. */
export type Command = ReducerCommand | QueryCommand;
