/**
 * The wire contract of PROTOCOL.md §2–§4: command and event types. The
 * schemas that validate commands are in `command_schema.ts`; the codec
 * (`decodeCommand`, `encodeEvent`, `encodeCommand`, `decodeEvent`) is in
 * `codec.ts`.
 *
 * @module
 */

/** Largest value a u64 field can hold: 2^64 - 1. */
export const U64_MAX: bigint = (1n << 64n) - 1n;

/**
 * An unsigned 64-bit integer as it travels through srv: a plain `number`
 * while it is a safe integer, a `bigint` above 2^53 - 1 so no digit is lost.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeCommand } from "@srv/srv";
 *
 * const r = decodeCommand('{"cmd":"ping","nonce":18446744073709551615}');
 * assert(r.ok && r.command.cmd === "ping");
 * assert.equal(r.command.nonce, 18446744073709551615n);
 * ```
 */
export type U64 = number | bigint;

/** Who a connection says it is (`register.kind`). */
export type ClientKind = "host" | "renderer" | "srv" | "tool";
/** Every {@linkcode ClientKind}, in protocol order. */
export const CLIENT_KINDS: readonly ClientKind[] = ["host", "renderer", "srv", "tool"];

/** The `code` of an `error` event. */
export type ErrorCode = "invalid_command" | "not_registered" | "already_registered";

/** The server's lifecycle (`lifecycle_phase_changed`, `srv_snapshot.lifecycle`). */
export type LifecyclePhase = "starting" | "running" | "quitting" | "dead";
/** Every {@linkcode LifecyclePhase}, in protocol order. */
export const LIFECYCLE_PHASES: readonly LifecyclePhase[] = [
  "starting",
  "running",
  "quitting",
  "dead",
];

/** Any JSON value (block metadata may be any of these). */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
/** A JSON object: workspace and tab metadata, and every merge patch. */
export type JsonObject = { [key: string]: Json };

/** Version of the srv protocol extensions, sent as `registered.protocol`. */
export const PROTOCOL_EXTENSIONS_VERSION = 1;

// ---------------------------------------------------------------------------
// Commands

/** `register`: binds the connection to a kind and pid (PROTOCOL.md §5). */
export interface RegisterCommand {
  cmd: "register";
  kind: ClientKind;
  pid: number;
  version: string;
}
/** `ping`: answered by a broadcast `pong` carrying the same nonce. */
export interface PingCommand {
  cmd: "ping";
  nonce: U64;
}
/** `goodbye`: marks the pid exited; the server then closes the connection. */
export interface GoodbyeCommand {
  cmd: "goodbye";
}
/** `get_srv_snapshot`: answered by a broadcast `srv_snapshot`. */
export interface GetSrvSnapshotCommand {
  cmd: "get_srv_snapshot";
}
/** `get_events`: answered privately by the server with `event_list`. */
export interface GetEventsCommand {
  cmd: "get_events";
  since: U64;
}
/** `get_server_info` (extension): answered privately with `server_info`. */
export interface GetServerInfoCommand {
  cmd: "get_server_info";
}
/** `create_workspace`. */
export interface CreateWorkspaceCommand {
  cmd: "create_workspace";
  name: string;
}
/** `delete_workspace`; always cascades to its tabs and blocks (`force` is accepted, not needed). */
export interface DeleteWorkspaceCommand {
  cmd: "delete_workspace";
  workspace_id: string;
  force?: boolean | null;
}
/** `rename_workspace`. */
export interface RenameWorkspaceCommand {
  cmd: "rename_workspace";
  workspace_id: string;
  name: string;
}
/** `create_tab`. */
export interface CreateTabCommand {
  cmd: "create_tab";
  workspace_id: string;
  name: string;
}
/** `delete_tab`; deleting a workspace's last tab needs `force`. */
export interface DeleteTabCommand {
  cmd: "delete_tab";
  workspace_id: string;
  tab_id: string;
  force?: boolean | null;
}
/** `rename_tab`. */
export interface RenameTabCommand {
  cmd: "rename_tab";
  tab_id: string;
  name: string;
}
/** `set_active_tab`. */
export interface SetActiveTabCommand {
  cmd: "set_active_tab";
  workspace_id: string;
  tab_id: string;
}
/** `reorder_tab`: `new_index` is clamped to the last index. */
export interface ReorderTabCommand {
  cmd: "reorder_tab";
  workspace_id: string;
  tab_id: string;
  new_index: number;
}
/** `reorder_tabs_bulk`: `tab_ids` must be a permutation of the workspace's tabs. */
export interface ReorderTabsBulkCommand {
  cmd: "reorder_tabs_bulk";
  workspace_id: string;
  tab_ids: string[];
}
/** `move_tab` between (or within) workspaces. */
export interface MoveTabCommand {
  cmd: "move_tab";
  tab_id: string;
  src_workspace_id: string;
  dst_workspace_id: string;
  dst_index: number;
}
/** `create_block`; `meta` is any JSON, `null` when absent. */
export interface CreateBlockCommand {
  cmd: "create_block";
  tab_id: string;
  meta?: Json;
}
/** `delete_block`. */
export interface DeleteBlockCommand {
  cmd: "delete_block";
  tab_id: string;
  block_id: string;
}
/** `move_block` between (or within) tabs. */
export interface MoveBlockCommand {
  cmd: "move_block";
  block_id: string;
  src_tab_id: string;
  dst_tab_id: string;
  dst_index: number;
}
/** `update_workspace_meta`: an RFC 7386 merge patch. */
export interface UpdateWorkspaceMetaCommand {
  cmd: "update_workspace_meta";
  workspace_id: string;
  meta_patch: JsonObject;
}
/** `update_tab_meta`: an RFC 7386 merge patch. */
export interface UpdateTabMetaCommand {
  cmd: "update_tab_meta";
  tab_id: string;
  meta_patch: JsonObject;
}
/** `update_block_meta`: an RFC 7386 merge patch. */
export interface UpdateBlockMetaCommand {
  cmd: "update_block_meta";
  block_id: string;
  meta_patch: JsonObject;
}

/**
 * A command of the reference's launcher pipe (`get_snapshot`, `report_*`).
 * It parses, so the client learns it is "not accepted here" rather than
 * "unknown".
 */
export interface LauncherCommand {
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

/** Commands the server answers itself, never through the reducer (§5 step 4). */
export type QueryCommand = GetEventsCommand | GetServerInfoCommand;

/** Commands the reducer decides. */
export type ReducerCommand =
  | RegisterCommand
  | PingCommand
  | GoodbyeCommand
  | GetSrvSnapshotCommand
  | DomainCommand
  | LauncherCommand;

/** Every command a client may send. */
export type Command = ReducerCommand | QueryCommand;

// ---------------------------------------------------------------------------
// Events

/** `registered`; `instance_id` and `protocol` are extensions. */
export interface RegisteredEvent {
  event: "registered";
  client_id: number;
  launcher_pid: number;
  launcher_version: string;
  instance_id: string;
  protocol: number;
  version: number;
}
/** `pong`: echoes the ping's nonce digit for digit. */
export interface PongEvent {
  event: "pong";
  nonce: U64;
  version: number;
}
/** `error`: private with version 0, or broadcast with a real version (§5, §6). */
export interface ErrorEvent {
  event: "error";
  code: ErrorCode;
  message: string;
  fatal: boolean;
  version: number;
}
/** `process_spawned`. */
export interface ProcessSpawnedEvent {
  event: "process_spawned";
  pid: number;
  kind: ClientKind;
  client_version: string;
  version: number;
}
/** `process_exited`; `code` is always 0. */
export interface ProcessExitedEvent {
  event: "process_exited";
  pid: number;
  code: number;
  version: number;
}
/** `lifecycle_phase_changed`. */
export interface LifecyclePhaseChangedEvent {
  event: "lifecycle_phase_changed";
  from: LifecyclePhase;
  to: LifecyclePhase;
  version: number;
}
/** Metadata of every entity, keyed by id (extension of `srv_snapshot`). */
export interface SnapshotMeta {
  workspaces: Record<string, JsonObject>;
  tabs: Record<string, JsonObject>;
  blocks: Record<string, Json>;
}
/**
 * `srv_snapshot`: the whole tree. Tuple lists are sorted by their first
 * element; `tab_order`, `block_order` and `meta` are extensions.
 */
export interface SrvSnapshotEvent {
  event: "srv_snapshot";
  lifecycle: LifecyclePhase;
  workspaces: [id: string, name: string][];
  tabs: [tabId: string, workspaceId: string, name: string][];
  active_tabs: [workspaceId: string, tabId: string][];
  blocks: [blockId: string, tabId: string][];
  tab_order: Record<string, string[]>;
  block_order: Record<string, string[]>;
  meta: SnapshotMeta;
  version: number;
}
/** `event_list`: the private answer to `get_events`. */
export interface EventListEvent {
  event: "event_list";
  events: Event[];
  truncated: boolean;
  instance_id: string;
  version: number;
}
/** The `log` part of `server_info`. */
export interface LogStats {
  /** Version of the oldest event `get_events` can still return, null when none. */
  oldest: number | null;
  /** Version of the newest logged event, null when none. */
  newest: number | null;
  /** How many events `get_events` can still return. */
  retained: number;
}
/**
 * `server_info.last_command` (extension): the most recent command of the
 * asking connection that went through the reducer, and the versions of the
 * first and last event it emitted (both null when it emitted none). Events
 * of one command take consecutive versions, so a client that follows each
 * command with `get_server_info` knows exactly which broadcasts were its
 * own, whatever other connections sent in between.
 */
export interface LastCommand {
  cmd: string;
  first: number | null;
  last: number | null;
}
/** `server_info` (extension): the private answer to `get_server_info`. */
export interface ServerInfoEvent {
  event: "server_info";
  pid: number;
  server_version: string;
  instance_id: string;
  uptime_ms: number;
  connections: number;
  event_version: number;
  log: LogStats;
  store: string | null;
  /** This connection's latest reduced command; null before the first. */
  last_command: LastCommand | null;
  version: number;
}
/** `workspace_created`. */
export interface WorkspaceCreatedEvent {
  event: "workspace_created";
  workspace_id: string;
  name: string;
  version: number;
}
/** `workspace_deleted`: `block_ids` lists every block the cascade removed. */
export interface WorkspaceDeletedEvent {
  event: "workspace_deleted";
  workspace_id: string;
  block_ids: string[];
  version: number;
}
/** `workspace_renamed`. */
export interface WorkspaceRenamedEvent {
  event: "workspace_renamed";
  workspace_id: string;
  name: string;
  version: number;
}
/** `tab_created`. */
export interface TabCreatedEvent {
  event: "tab_created";
  workspace_id: string;
  tab_id: string;
  name: string;
  version: number;
}
/** `tab_deleted`: `block_ids` lists every block the cascade removed. */
export interface TabDeletedEvent {
  event: "tab_deleted";
  workspace_id: string;
  tab_id: string;
  block_ids: string[];
  version: number;
}
/** `tab_renamed`. */
export interface TabRenamedEvent {
  event: "tab_renamed";
  tab_id: string;
  name: string;
  version: number;
}
/** `active_tab_changed`; `tab_id` null means the workspace has no active tab. */
export interface ActiveTabChangedEvent {
  event: "active_tab_changed";
  workspace_id: string;
  tab_id: string | null;
  version: number;
}
/** `tab_reordered`; `new_index` is the clamped index. */
export interface TabReorderedEvent {
  event: "tab_reordered";
  workspace_id: string;
  tab_id: string;
  new_index: number;
  version: number;
}
/** `tabs_reordered_bulk`. */
export interface TabsReorderedBulkEvent {
  event: "tabs_reordered_bulk";
  workspace_id: string;
  tab_ids: string[];
  version: number;
}
/** `tab_moved`: says which tab is active in both workspaces afterwards. */
export interface TabMovedEvent {
  event: "tab_moved";
  tab_id: string;
  src_workspace_id: string;
  dst_workspace_id: string;
  dst_index: number;
  new_src_active_tab_id: string | null;
  new_dst_active_tab_id: string | null;
  version: number;
}
/** `block_created`. */
export interface BlockCreatedEvent {
  event: "block_created";
  tab_id: string;
  block_id: string;
  meta: Json;
  version: number;
}
/** `block_deleted`. */
export interface BlockDeletedEvent {
  event: "block_deleted";
  tab_id: string;
  block_id: string;
  version: number;
}
/** `block_moved`; `dst_index` is the clamped index. */
export interface BlockMovedEvent {
  event: "block_moved";
  block_id: string;
  src_tab_id: string;
  dst_tab_id: string;
  dst_index: number;
  version: number;
}
/** `workspace_meta_updated`. */
export interface WorkspaceMetaUpdatedEvent {
  event: "workspace_meta_updated";
  workspace_id: string;
  meta_patch: JsonObject;
  version: number;
}
/** `tab_meta_updated`. */
export interface TabMetaUpdatedEvent {
  event: "tab_meta_updated";
  tab_id: string;
  meta_patch: JsonObject;
  version: number;
}
/** `block_meta_updated`. */
export interface BlockMetaUpdatedEvent {
  event: "block_meta_updated";
  block_id: string;
  meta_patch: JsonObject;
  version: number;
}

/** Events that change the workspace → tab → block tree. */
export type DomainEvent =
  | WorkspaceCreatedEvent
  | WorkspaceDeletedEvent
  | WorkspaceRenamedEvent
  | TabCreatedEvent
  | TabDeletedEvent
  | TabRenamedEvent
  | ActiveTabChangedEvent
  | TabReorderedEvent
  | TabsReorderedBulkEvent
  | TabMovedEvent
  | BlockCreatedEvent
  | BlockDeletedEvent
  | BlockMovedEvent
  | WorkspaceMetaUpdatedEvent
  | TabMetaUpdatedEvent
  | BlockMetaUpdatedEvent;

/** Events that go into the event log (PROTOCOL.md §4 "logged"). */
export type LoggedEvent =
  | RegisteredEvent
  | PongEvent
  | ProcessSpawnedEvent
  | ProcessExitedEvent
  | LifecyclePhaseChangedEvent
  | DomainEvent;

/** Every event the server sends. */
export type Event =
  | LoggedEvent
  | ErrorEvent
  | SrvSnapshotEvent
  | EventListEvent
  | ServerInfoEvent;

/** The `event` tag of every event. */
export type EventName = Event["event"];

const UNLOGGED: ReadonlySet<EventName> = new Set<EventName>([
  "error",
  "srv_snapshot",
  "event_list",
  "server_info",
]);

/**
 * Whether an event belongs in the event log (PROTOCOL.md §4): replies and
 * errors do not, state changes and `pong` do.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type Event, isLogged } from "@srv/srv";
 *
 * assert.equal(isLogged({ event: "pong", nonce: 1, version: 3 }), true);
 * const refusal: Event = {
 *   event: "error",
 *   code: "not_registered",
 *   message: "Ping before Register",
 *   fatal: false,
 *   version: 0,
 * };
 * assert.equal(isLogged(refusal), false);
 * ```
 */
export function isLogged(event: Event): event is LoggedEvent {
  return !UNLOGGED.has(event.event);
}
